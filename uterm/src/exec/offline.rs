//! Commands that need no server: offline validation of a conf directory or of one unit
//! directory, through the `deployments` crate (the same checks the server runs).

use std::path::Path;

use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::present::output::{Block, Output, Span, Tone};

/// `validate --dir`: a conf directory (with esb.toml), or one unit directory checked against
/// the root config two levels up. Offline.
pub fn validate_dir(dir: &Path) -> Result<Output, CmdError> {
    use deployments::check::{check_dir, check_units, DirReport};
    let report = if dir.join(deployments::root::ROOT_FILE).is_file() {
        check_dir(dir)
    } else if dir.join("unit.toml").is_file() {
        let conf = dir.join("..").join("..");
        match deployments::RootConfig::load(&conf) {
            Ok(root) => check_units(&root, std::iter::once(dir)),
            Err(errors) => DirReport {
                root_errors: errors,
                units: vec![],
            },
        }
    } else {
        return Err(CmdError::failed(format!(
            "{} is neither a conf directory (no esb.toml) nor a unit directory (no unit.toml)",
            dir.display()
        ))
        .with_hint(Some(
            "give the conf directory (validate --dir conf) or a unit directory \
             (validate --dir conf/deployments/orders)"
                .into(),
        )));
    };
    let ok = report.ok();
    let mut json = serde_json::to_value(&report).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut json {
        m.insert("ok".into(), json!(ok));
    }
    let lines = report
        .render()
        .lines()
        .map(|l| {
            let tone = if l.starts_with('✓') {
                Tone::Good
            } else if l.starts_with('✗') {
                Tone::Bad
            } else {
                Tone::Plain
            };
            vec![Span::new(l, tone)]
        })
        .collect();
    let out = Output::new(json).with(Block::Lines(lines));
    if ok {
        Ok(out)
    } else {
        let message = if report.root_errors.is_empty() {
            let bad = report.units.iter().filter(|u| !u.errors.is_empty()).count();
            format!(
                "validation failed: {bad} unit{} with errors",
                if bad == 1 { "" } else { "s" }
            )
        } else {
            "validation failed: the root config is invalid".to_string()
        };
        Err(CmdError::with_output(message, out))
    }
}

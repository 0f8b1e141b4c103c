//! Unit files on the operator's side: what `deploy --file/--dir` sends (a unit.toml with
//! the files it includes, or a whole unit directory, read with the server's own rules for
//! unit files), and what `show source` prints or saves (the exact files of a revision).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deployments::source::UNIT_FILE;
use deployments::UnitSources;
use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::present::output::{Block, Line, Output, Span, Tone};

fn cannot_read(path: &Path, e: impl std::fmt::Display) -> CmdError {
    CmdError::failed(format!("cannot read {}: {e}", path.display()))
        .with_hint(Some("give the path of a unit.toml with --file".into()))
}

/// The `include` list of a unit file's text (empty when there is none or it does not parse:
/// the server reports syntax errors with their location).
fn includes(text: &str) -> Vec<String> {
    /// The one key of a unit file read here.
    #[derive(serde::Deserialize)]
    struct Includes {
        #[serde(default)]
        include: Vec<toml::Value>,
    }
    toml::from_str::<Includes>(text)
        .ok()
        .map(|t| {
            t.include
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `FILE` as the unit's unit.toml plus every file it includes (transitively), read relative
/// to FILE's directory. A bare unit.toml is sent as text; with includes, as an object of
/// files.
pub fn content_of_file(file: &Path) -> Result<Value, CmdError> {
    let main = std::fs::read_to_string(file).map_err(|e| cannot_read(file, e))?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = BTreeMap::from([(UNIT_FILE.to_owned(), main)]);
    let mut todo: Vec<String> = includes(&files[UNIT_FILE]);
    while let Some(rel) = todo.pop() {
        if files.contains_key(&rel) || rel.contains("..") || rel.starts_with('/') {
            // Escapes and cycles are the server's to report, with their location.
            continue;
        }
        let path = base.join(&rel);
        let text = std::fs::read_to_string(&path).map_err(|e| cannot_read(&path, e))?;
        todo.extend(includes(&text));
        files.insert(rel, text);
    }
    Ok(if files.len() == 1 {
        json!(files[UNIT_FILE])
    } else {
        json!(files)
    })
}

/// Every file of a local unit directory, read like the server reads one.
pub fn content_of_dir(dir: &Path) -> Result<Value, CmdError> {
    let sources = UnitSources::read_dir(dir).map_err(|e| {
        CmdError::failed(e.to_string()).with_hint(Some(
            "give a unit directory (holding unit.toml) with --dir".into(),
        ))
    })?;
    Ok(json!(sources.files))
}

/// The files of one revision as the server returned them (`source` operation).
pub fn source_output(v: &Value, out: Option<&Path>) -> Result<Output, CmdError> {
    let files: BTreeMap<String, String> =
        serde_json::from_value(v["files"].clone()).unwrap_or_default();
    let head = format!(
        "{} revision {} ({}, {}{})",
        v["unit"].as_str().unwrap_or(""),
        v["revision"],
        v["origin"].as_str().unwrap_or(""),
        v["hash"]
            .as_str()
            .map(|h| &h[..h.len().min(12)])
            .unwrap_or(""),
        if v["active"] == true { ", active" } else { "" },
    );
    let mut lines: Vec<Line> = vec![vec![Span::new(head, Tone::Good)]];
    match out {
        Some(dir) => {
            for (rel, text) in &files {
                let path: PathBuf = dir.join(rel);
                let written = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|_| std::fs::write(&path, text));
                written.map_err(|e| {
                    CmdError::failed(format!("cannot write {}: {e}", path.display()))
                })?;
                lines.push(vec![Span::plain(format!("wrote {}", path.display()))]);
            }
        }
        None => {
            for (rel, text) in &files {
                lines.push(vec![Span::new(format!("── {rel}"), Tone::Dim)]);
                lines.extend(text.lines().map(|l| vec![Span::plain(l.to_owned())]));
            }
        }
    }
    Ok(Output::new(v.clone()).with(Block::Lines(lines)))
}

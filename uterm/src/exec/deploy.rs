//! DeploymentManager operations: load, reload, unload (one unit, or several as one atomic
//! batch), deploy from local files or the server's disk, canaries, rollback, validation,
//! diff, history, the source of a revision and ending drains. A rejected deployment is a
//! failure with every error in its output.

use std::path::Path;

use deployments::protocol::Request;
use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::exec::executor::{manager, value_of, Executor};
use crate::exec::unitfiles;
use crate::lang::command::DeployFrom;
use crate::present::output::{Block, Output, Span, Tone};
use crate::present::report;

fn read_file(path: &Path) -> Result<String, CmdError> {
    std::fs::read_to_string(path).map_err(|e| {
        CmdError::failed(format!("cannot read {}: {e}", path.display()))
            .with_hint(Some("give the path of a unit.toml with --file".into()))
    })
}

impl Executor {
    /// load/reload/unload: one unit, or several as one batch.
    pub(crate) fn deploy_op(
        &self,
        units: &[String],
        op: &str,
        batch_op: &str,
    ) -> Result<Output, CmdError> {
        let what = format!("{op} {}", units.join(" "));
        match units {
            [one] => self.manager_outcome(&what, op, vec![json!(one)], Some(one)),
            many => self.manager_outcome(&what, batch_op, vec![json!(many)], None),
        }
    }

    /// A DeploymentManager operation returning outcomes; a rejection is a failure with output.
    pub(crate) fn manager_outcome(
        &self,
        what: &str,
        op: &str,
        args: Vec<Value>,
        unit: Option<&str>,
    ) -> Result<Output, CmdError> {
        let r = self.one(Request::exec(manager(), op, args))?;
        let v = match value_of(&r, what) {
            Ok(v) => v,
            Err(e) => return Err(e.with_hint(unit.and_then(|u| self.unit_hint(u)))),
        };
        let (out, failed) = report::outcomes(v);
        if failed {
            // A misspelt unit is a rejected outcome, not an error envelope: suggest it here too.
            let hint = unit.and_then(|u| self.unit_hint(u));
            Err(CmdError::with_output(format!("{what}: rejected"), out).with_hint(hint))
        } else {
            Ok(out)
        }
    }

    /// A DeploymentManager operation on one unit, with `content_op` when a file is given.
    pub(crate) fn manager_op(
        &self,
        unit: &str,
        op: &str,
        content_op: &str,
        file: Option<&Path>,
    ) -> Result<Value, CmdError> {
        let (op, args) = match file {
            None => (op, vec![json!(unit)]),
            Some(f) => (content_op, vec![json!(unit), json!(read_file(f)?)]),
        };
        let r = self.one(Request::exec(manager(), op, args))?;
        match value_of(&r, &format!("{op} {unit}")) {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(e.with_hint(self.unit_hint(unit))),
        }
    }

    /// `deploy UNIT --file F | --dir D | --from-disk`.
    pub(crate) fn deploy(&self, unit: &str, from: &DeployFrom) -> Result<Output, CmdError> {
        let (op, args) = match from {
            DeployFrom::File(f) => ("deploy", vec![json!(unit), unitfiles::content_of_file(f)?]),
            DeployFrom::Dir(d) => ("deploy", vec![json!(unit), unitfiles::content_of_dir(d)?]),
            DeployFrom::ServerDisk => ("deployFromDisk", vec![json!(unit)]),
        };
        self.manager_outcome(&format!("deploy {unit}"), op, args, Some(unit))
    }

    /// `deploy UNIT --canary P% | --canary-header NAME=VALUE [--sticky HEADER]`.
    pub(crate) fn canary(
        &self,
        unit: &str,
        from: &DeployFrom,
        percent: f64,
        header: Option<&str>,
        sticky: Option<&str>,
    ) -> Result<Output, CmdError> {
        let header = json!(header.unwrap_or_default());
        let sticky = json!(sticky.unwrap_or_default());
        let content = match from {
            DeployFrom::ServerDisk => None,
            DeployFrom::File(f) => Some(unitfiles::content_of_file(f)?),
            DeployFrom::Dir(d) => Some(unitfiles::content_of_dir(d)?),
        };
        let (op, args) = match content {
            None => ("canary", vec![json!(unit), json!(percent), header, sticky]),
            Some(c) => (
                "canaryContent",
                vec![json!(unit), c, json!(percent), header, sticky],
            ),
        };
        self.manager_outcome(&format!("deploy {unit} (canary)"), op, args, Some(unit))
    }

    pub(crate) fn promote(&self, unit: &str) -> Result<Output, CmdError> {
        self.manager_outcome(
            &format!("promote {unit}"),
            "promote",
            vec![json!(unit)],
            Some(unit),
        )
    }

    /// A DeploymentManager operation on a unit that answers a plain value (no outcome).
    fn manager_value(
        &self,
        what: &str,
        op: &str,
        args: Vec<Value>,
        unit: &str,
    ) -> Result<Value, CmdError> {
        let r = self.one(Request::exec(manager(), op, args))?;
        value_of(&r, what)
            .cloned()
            .map_err(|e| e.with_hint(self.unit_hint(unit)))
    }

    pub(crate) fn abort_canary(&self, unit: &str) -> Result<Output, CmdError> {
        let v = self.manager_value(
            &format!("abort {unit}"),
            "abortCanary",
            vec![json!(unit)],
            unit,
        )?;
        let line = format!(
            "unit {unit}: canary revision {} aborted; the running revision serves alone",
            v["aborted"]
        );
        Ok(Output::line(v, vec![Span::plain(line)]))
    }

    pub(crate) fn canary_weight(&self, unit: &str, percent: f64) -> Result<Output, CmdError> {
        let v = self.manager_value(
            &format!("canary {unit}"),
            "setCanaryWeight",
            vec![json!(unit), json!(percent)],
            unit,
        )?;
        Ok(Output::line(
            v,
            vec![Span::plain(format!(
                "unit {unit}: the canary takes {percent}% of requests"
            ))],
        ))
    }

    /// `show source UNIT [--rev N] [--out DIR]`.
    pub(crate) fn source(
        &self,
        unit: &str,
        revision: Option<u64>,
        out: Option<&Path>,
    ) -> Result<Output, CmdError> {
        let v = self.manager_value(
            &format!("show source {unit}"),
            "source",
            vec![json!(unit), json!(revision.unwrap_or(0))],
            unit,
        )?;
        unitfiles::source_output(&v, out)
    }

    pub(crate) fn rollback(&self, unit: &str, to: Option<u64>) -> Result<Output, CmdError> {
        let (op, args) = match to {
            None => ("rollback", vec![json!(unit)]),
            Some(r) => ("rollbackTo", vec![json!(unit), json!(r)]),
        };
        self.manager_outcome(&format!("rollback {unit}"), op, args, Some(unit))
    }

    /// `validate UNIT --checks`: builds the revision and runs its checks; nothing is deployed.
    pub(crate) fn validate_checks(&self, unit: &str) -> Result<Output, CmdError> {
        let v = self.manager_value(
            &format!("validate {unit} --checks"),
            "validateChecks",
            vec![json!(unit)],
            unit,
        )?;
        let (out, valid) = report::validation(&v);
        if valid {
            Ok(out)
        } else {
            Err(CmdError::with_output(
                format!("validate {unit} --checks: invalid"),
                out,
            ))
        }
    }

    /// `validate UNIT [--file F]`.
    pub(crate) fn validate(&self, unit: &str, file: Option<&Path>) -> Result<Output, CmdError> {
        let v = self.manager_op(unit, "validate", "validateContent", file)?;
        let (out, valid) = report::validation(&v);
        if valid {
            Ok(out)
        } else {
            Err(CmdError::with_output(format!("{unit} is not valid"), out))
        }
    }

    /// `diff UNIT [--file F]`.
    pub(crate) fn diff(&self, unit: &str, file: Option<&Path>) -> Result<Output, CmdError> {
        let v = self.manager_op(unit, "diff", "diffContent", file)?;
        let (out, ok) = report::diff(&v);
        if ok {
            Ok(out)
        } else {
            Err(CmdError::with_output(
                format!("cannot diff {unit}: its files do not validate"),
                out,
            ))
        }
    }

    pub(crate) fn history(&self, unit: &str, now: u64) -> Result<Output, CmdError> {
        let v = self.manager_op(unit, "history", "", None)?;
        Ok(report::history(unit, &v, now))
    }

    /// `drain cancel`: ends the drain of one (or every) old revision of a unit.
    pub(crate) fn drain_cancel(
        &self,
        unit: &str,
        revision: Option<u64>,
    ) -> Result<Output, CmdError> {
        // Through the DeploymentManager: it also reaches the drains of an unloaded unit.
        let r = self.one(Request::exec(
            manager(),
            "cancelDrain",
            vec![json!(unit), json!(revision.unwrap_or(0))],
        ))?;
        let v = value_of(&r, &format!("drain cancel {unit}"))?;
        let ended = v.as_array().cloned().unwrap_or_default();
        let mut lines = Vec::new();
        for e in &ended {
            let n = e["ended"].as_u64().unwrap_or(0);
            lines.push(vec![
                Span::plain(format!("unit {unit}: revision {} ", e["revision"])),
                Span::new("drained", Tone::Good),
                Span::new(
                    format!(
                        ", {n} request{} answered 503",
                        if n == 1 { "" } else { "s" }
                    ),
                    Tone::Dim,
                ),
            ]);
        }
        let json = json!({ "unit": unit, "operation": "cancelDrain", "ended": ended });
        Ok(Output::new(json).with(Block::Lines(lines)))
    }
}

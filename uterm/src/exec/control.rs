//! The changing side of the executor: deployments through the DeploymentManager (one unit,
//! or several as one atomic batch), and operations on one object, each bulked with a read of
//! the state it produced so the answer shows the result.

use std::path::Path;

use deployments::protocol::{ObjectName, Request};
use serde_json::{json, Value};

use crate::exec::{manager, value_of, CmdError, Executor};
use crate::lang::command::AddressOp;
use crate::lang::kind::{Kind, Target};
use crate::present::output::{now_ms, Output, Span, Tone};
use crate::present::{report, view};

pub(crate) fn read_file(path: &Path) -> Result<String, CmdError> {
    std::fs::read_to_string(path).map_err(|e| {
        CmdError::failed(format!("cannot read {}: {e}", path.display()))
            .with_hint(Some("give the path of a unit.toml with --file".into()))
    })
}

pub(crate) fn hot_deploy_output(v: &Value, json: Value) -> Output {
    let on = v.as_bool();
    Output::line(
        json,
        vec![
            Span::plain("hot deploy "),
            match on {
                Some(true) => Span::state("on"),
                Some(false) => Span::state("off"),
                None => Span::plain(crate::present::output::cell(Some(v))),
            },
        ],
    )
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

    /// An operation on a named object, bulked with a read of its state.
    pub(crate) fn object_op(
        &self,
        t: &Target,
        verb: &str,
        op: &str,
        args: Vec<Value>,
    ) -> Result<Output, CmdError> {
        let label = t.to_string();
        let rs = self.bulk(vec![
            Request::exec(t.bean(), op, args.clone()),
            Request::read(t.bean(), Some("State")),
        ])?;
        if rs[0].status == 404 {
            return Err(self.missing(t));
        }
        let result = value_of(&rs[0], &format!("{verb} {label}"))?.clone();
        let state = rs[1].value.clone().unwrap_or(Value::Null);
        let json = json!({
            "object": label, "mbean": t.bean().original(), "operation": op,
            "arguments": args, "result": result, "state": state,
        });
        let mut line = vec![Span::plain(format!("{label}: "))];
        match state.as_str() {
            Some(s) => line.push(Span::state(s)),
            None => line.push(Span::new("done", Tone::Good)),
        }
        let mut out = Output::line(json, line);
        if !result.is_null() && op == "runNow" {
            out.blocks.extend(view::value(&result, now_ms()).blocks);
        }
        Ok(out)
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
        Ok(Output::new(json).with(crate::present::output::Block::Lines(lines)))
    }

    /// An operation on a singleton bean, bulked with a read of `attr`.
    pub(crate) fn bean_op(
        &self,
        (label, bean): &(&str, ObjectName),
        verb: &str,
        op: &str,
        args: Vec<Value>,
        attr: &str,
    ) -> Result<Output, CmdError> {
        let rs = self.bulk(vec![
            Request::exec(bean.clone(), op, args.clone()),
            Request::read(bean.clone(), Some(attr)),
        ])?;
        let result = value_of(&rs[0], verb)?.clone();
        let state = rs[1].value.clone().unwrap_or(Value::Null);
        let json = json!({
            "object": label, "mbean": bean.original(), "operation": op,
            "arguments": args, "result": result, "state": state,
        });
        let mut line = vec![Span::plain(format!("{label}: "))];
        line.push(Span::state(crate::present::output::cell(Some(&state))));
        Ok(Output::line(json, line))
    }

    pub(crate) fn address(
        &self,
        op: AddressOp,
        unit: &str,
        endpoint: &str,
        url: &str,
        now: u64,
    ) -> Result<Output, CmdError> {
        let t = Target::Element {
            kind: Kind::Endpoint,
            unit: unit.into(),
            name: endpoint.into(),
        };
        let rs = self.bulk(vec![
            Request::exec(t.bean(), op.operation(), vec![json!(url)]),
            Request::read(t.bean(), Some("Addresses")),
        ])?;
        if rs[0].status == 404 {
            return Err(self.missing(&t));
        }
        let what = format!("{} address {} {url}", op.word(), t.name());
        let result = value_of(&rs[0], &what)?.clone();
        let addrs = rs[1].value.clone().unwrap_or(Value::Null);
        let done = match op {
            AddressOp::Add => "added",
            AddressOp::Remove => "removed",
            AddressOp::Suspend => "suspended",
            AddressOp::Activate => "activated",
        };
        let json = json!({
            "object": t.to_string(), "operation": op.operation(), "url": url,
            "result": result, "addresses": addrs,
        });
        let mut out = Output::line(json, vec![Span::plain(format!("{t}: {done} {url}"))]);
        out.blocks.extend(view::value(&addrs, now).blocks);
        Ok(out)
    }
}

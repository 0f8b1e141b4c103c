//! State changes of objects and of the server: pause/resume/stop/start of one object, address
//! operations, runtime flags, maintenance, hot deploy, warm restart and binary upgrade. Each
//! operation is bulked with a read of the state it produced, so the answer shows the result.

use deployments::protocol::{ObjectName, Request};
use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::exec::executor::{manager, server, value_of, Executor};
use crate::lang::command::AddressOp;
use crate::lang::kind::{Kind, Target};
use crate::present::output::{cell, now_ms, Block, Output, Span, Tone};
use crate::present::{report, view};

impl Executor {
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
        line.push(Span::state(cell(Some(&state))));
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

impl Executor {
    /// `pause TARGET [--hold MS]`: a unit can hold new requests instead of answering 503.
    pub(crate) fn pause(&self, target: &Target, hold_ms: Option<u64>) -> Result<Output, CmdError> {
        let (op, args) = match hold_ms {
            Some(ms) => ("pauseHold", vec![json!(ms)]),
            None => ("pause", vec![]),
        };
        let mut out = self.object_op(target, "pause", op, args)?;
        if let Some(ms) = hold_ms {
            out.push(Block::Lines(vec![vec![Span::new(
                format!(
                    "new requests wait up to {ms} ms for `resume {}`",
                    target.name()
                ),
                Tone::Dim,
            )]]));
        }
        Ok(out)
    }

    /// `flag UNIT NAME on|off`, bulked with a read of the unit's flags.
    pub(crate) fn flag(&self, unit: &str, flag: &str, on: bool) -> Result<Output, CmdError> {
        let bean = Target::Unit(unit.to_string()).bean();
        let rs = self.bulk(vec![
            Request::exec(bean.clone(), "setFlag", vec![json!(flag), json!(on)]),
            Request::read(bean, Some("Flags")),
        ])?;
        value_of(&rs[0], &format!("flag {unit} {flag}"))
            .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
        let flags = rs[1].value.clone().unwrap_or(Value::Null);
        let now_on = flags.get(flag).and_then(Value::as_bool) == Some(true);
        Ok(Output::line(
            json!({"unit": unit, "flag": flag, "on": now_on, "flags": flags}),
            vec![
                Span::plain(format!("unit {unit}: flag {flag} ")),
                Span::state(if now_on { "on" } else { "off" }),
            ],
        ))
    }

    pub(crate) fn maintenance(&self, on: bool) -> Result<Output, CmdError> {
        let t = ("server", server());
        let out = self.bean_op(&t, "maintenance", "maintenance", vec![json!(on)], "State")?;
        Ok(out.with(Block::Lines(vec![vec![Span::new(
            if on {
                "/health answers 503 so load balancers drain; traffic is still served"
            } else {
                "/health answers 200 again"
            },
            Tone::Dim,
        )]])))
    }

    /// A warm restart: the server answers once the new configuration serves (or why not).
    pub(crate) fn restart(&self) -> Result<Output, CmdError> {
        let r = self.one(Request::exec(server(), "restart", vec![]))?;
        let v = value_of(&r, "restart")?;
        let (out, ok) = report::restart(v);
        if ok {
            Ok(out)
        } else {
            Err(CmdError::with_output("restart: rejected", out))
        }
    }

    /// A binary upgrade: the new process takes over the sockets.
    pub(crate) fn upgrade(&self) -> Result<Output, CmdError> {
        let r = self.one(Request::exec(server(), "upgrade", vec![]))?;
        let v = value_of(&r, "upgrade")?;
        Ok(report::upgrade(v))
    }

    /// `hot-deploy [on|off]`: switches the hot deployer, or shows whether it is on.
    pub(crate) fn hot_deploy(&self, on: Option<bool>) -> Result<Output, CmdError> {
        let v = match on {
            None => {
                let r = self.one(Request::read(manager(), Some("HotDeploy")))?;
                value_of(&r, "hot-deploy")?.clone()
            }
            Some(on) => {
                let rs = self.bulk(vec![
                    Request::exec(manager(), "setHotDeploy", vec![json!(on)]),
                    Request::read(manager(), Some("HotDeploy")),
                ])?;
                value_of(&rs[0], "hot-deploy")?;
                rs[1].value.clone().unwrap_or(json!(on))
            }
        };
        Ok(report::hot_deploy(&v))
    }
}

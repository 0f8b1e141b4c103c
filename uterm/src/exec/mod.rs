//! Runs parsed [`Command`]s against the management endpoint (shared by script mode and the
//! TUI) and says how they failed ([`CmdError`], with the exit code). Each command is as few
//! round trips as possible: one Jolokia bulk request where it needs several reads; reads are
//! in [`crate::exec::query`], state changes (bulked with a read of the state they produced) in
//! [`crate::exec::control`]. Offline commands (help, `validate --dir`) never touch the network.

pub mod control;
pub mod offline;
pub mod query;
pub mod script;
pub mod unitfiles;

use deployments::protocol::{join_path, ObjectName, Request, Response};
use serde_json::{json, Value};

use crate::conn::client::Client;
use crate::conn::error::ClientError;
use crate::conn::sse::Event;
use crate::lang::command::{Command, DeployFrom, ValidateWhat};
use crate::lang::error::UsageError;
use crate::lang::kind::{Kind, Target};
use crate::present::event;
use crate::present::output::{now_ms, Block, Output, Span, Tone};
use crate::present::report;
use crate::present::view::{self, Attrs};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The command is not valid as typed (exit 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The server cannot be reached or refused us (exit 3), or answered garbage (exit 1).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command ran and failed (exit 1); `output` shows what happened when there is more to
    /// say (e.g. a rejected reload with every error).
    #[error("{message}{}", .hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Failed {
        message: String,
        hint: Option<String>,
        output: Option<Box<Output>>,
    },
}

impl CmdError {
    pub fn failed(message: impl Into<String>) -> CmdError {
        CmdError::Failed {
            message: message.into(),
            hint: None,
            output: None,
        }
    }

    pub(crate) fn with_hint(self, h: Option<String>) -> CmdError {
        match self {
            CmdError::Failed {
                message, output, ..
            } => CmdError::Failed {
                message,
                hint: h,
                output,
            },
            other => other,
        }
    }

    pub(crate) fn with_output(message: impl Into<String>, output: Output) -> CmdError {
        CmdError::Failed {
            message: message.into(),
            hint: None,
            output: Some(Box::new(output)),
        }
    }

    /// 1 failed, 2 usage error, 3 cannot connect or not authorised.
    pub fn exit_code(&self) -> i32 {
        match self {
            CmdError::Usage(_) => 2,
            CmdError::Client(c) => c.exit_code(),
            CmdError::Failed { .. } => 1,
        }
    }

    /// What the command produced before it failed, if anything.
    pub fn output(&self) -> Option<&Output> {
        match self {
            CmdError::Failed { output, .. } => output.as_deref(),
            _ => None,
        }
    }

    /// The error as JSON: `{"message", "hint"?, "suggestion"?, "usage"?}`.
    pub fn to_json(&self) -> Value {
        match self {
            CmdError::Usage(u) => json!({
                "message": u.message,
                "suggestion": u.suggestion,
                "hint": u.hint,
                "usage": u.usage,
            }),
            CmdError::Client(c) => json!({ "message": c.to_string() }),
            CmdError::Failed { message, hint, .. } => json!({ "message": message, "hint": hint }),
        }
    }
}

/// What `follow_events` reports to its caller.
#[derive(Debug)]
pub enum Follow<'a> {
    Event(&'a Event),
    /// The stream broke; reconnecting (the reason).
    Reconnecting(&'a str),
    /// The stream is back, resuming after the last event seen.
    Reconnected,
}

/// Runs commands against one management endpoint.
#[derive(Debug)]
pub struct Executor {
    client: Client,
}

pub(crate) fn server() -> ObjectName {
    ObjectName::new("esb", &[("type", "Server")])
}

pub(crate) fn manager() -> ObjectName {
    ObjectName::new("esb", &[("type", "DeploymentManager")])
}

/// The message of an error envelope without the `error_type : ` prefix.
pub(crate) fn envelope_message(r: &Response) -> String {
    let msg = r
        .error
        .clone()
        .unwrap_or_else(|| format!("status {}", r.status));
    match &r.error_type {
        Some(t) => msg
            .strip_prefix(&format!("{t} : "))
            .map(str::to_string)
            .unwrap_or(msg),
        None => msg,
    }
}

pub(crate) fn value_of<'a>(r: &'a Response, what: &str) -> Result<&'a Value, CmdError> {
    if r.is_ok() {
        Ok(r.value.as_ref().unwrap_or(&Value::Null))
    } else {
        Err(CmdError::failed(format!("{what}: {}", envelope_message(r))))
    }
}

pub(crate) fn attrs_of(v: &Value) -> Attrs {
    match v {
        Value::Object(m) => m.clone(),
        _ => Attrs::new(),
    }
}

pub(crate) fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl Executor {
    pub fn new(client: Client) -> Executor {
        Executor { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn bulk(&self, requests: Vec<Request>) -> Result<Vec<Response>, CmdError> {
        Ok(self.client.bulk(&requests)?)
    }

    pub(crate) fn one(&self, request: Request) -> Result<Response, CmdError> {
        Ok(self.bulk(vec![request])?.remove(0))
    }

    /// Runs one command. `events --follow` streams and is run with [`Executor::follow_events`].
    pub fn run(&self, cmd: &Command) -> Result<Output, CmdError> {
        let now = now_ms();
        match cmd {
            Command::Help(topic) => Ok(crate::present::help::render(topic.as_deref())),
            Command::Status => self.status(now),
            Command::List { kind, unit } => self.list(*kind, unit.as_deref(), now),
            Command::Show(t) => self.show(t, now),
            Command::Load(units) => self.deploy_op(units, "load", "batch"),
            Command::Reload(units) => self.deploy_op(units, "reload", "batch"),
            Command::Unload(units) => self.deploy_op(units, "unload", "unloadBatch"),
            Command::ReloadAll => self.manager_outcome("reload --all", "reloadAll", vec![], None),
            Command::Deploy { unit, from } => {
                let (op, args) = match from {
                    DeployFrom::File(f) => {
                        ("deploy", vec![json!(unit), unitfiles::content_of_file(f)?])
                    }
                    DeployFrom::Dir(d) => {
                        ("deploy", vec![json!(unit), unitfiles::content_of_dir(d)?])
                    }
                    DeployFrom::ServerDisk => ("deployFromDisk", vec![json!(unit)]),
                };
                self.manager_outcome(&format!("deploy {unit}"), op, args, Some(unit))
            }
            Command::Canary {
                unit,
                from,
                percent,
                header,
                sticky,
            } => {
                let header = json!(header.clone().unwrap_or_default());
                let sticky = json!(sticky.clone().unwrap_or_default());
                let (op, args) = match from {
                    DeployFrom::ServerDisk => {
                        ("canary", vec![json!(unit), json!(percent), header, sticky])
                    }
                    DeployFrom::File(f) => (
                        "canaryContent",
                        vec![
                            json!(unit),
                            unitfiles::content_of_file(f)?,
                            json!(percent),
                            header,
                            sticky,
                        ],
                    ),
                    DeployFrom::Dir(d) => (
                        "canaryContent",
                        vec![
                            json!(unit),
                            unitfiles::content_of_dir(d)?,
                            json!(percent),
                            header,
                            sticky,
                        ],
                    ),
                };
                self.manager_outcome(&format!("deploy {unit} (canary)"), op, args, Some(unit))
            }
            Command::Promote(unit) => self.manager_outcome(
                &format!("promote {unit}"),
                "promote",
                vec![json!(unit)],
                Some(unit),
            ),
            Command::Abort(unit) => {
                let r = self.one(Request::exec(manager(), "abortCanary", vec![json!(unit)]))?;
                let v = value_of(&r, &format!("abort {unit}"))
                    .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
                Ok(Output::line(
                    v.clone(),
                    vec![Span::plain(format!(
                        "unit {unit}: canary revision {} aborted; the running revision serves alone",
                        v["aborted"]
                    ))],
                ))
            }
            Command::CanaryWeight { unit, percent } => {
                let r = self.one(Request::exec(
                    manager(),
                    "setCanaryWeight",
                    vec![json!(unit), json!(percent)],
                ))?;
                let v = value_of(&r, &format!("canary {unit}"))
                    .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
                Ok(Output::line(
                    v.clone(),
                    vec![Span::plain(format!(
                        "unit {unit}: the canary takes {percent}% of requests"
                    ))],
                ))
            }
            Command::Source {
                unit,
                revision,
                out,
            } => {
                let r = self.one(Request::exec(
                    manager(),
                    "source",
                    vec![json!(unit), json!(revision.unwrap_or(0))],
                ))?;
                let v = value_of(&r, &format!("show source {unit}"))
                    .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
                unitfiles::source_output(v, out.as_deref())
            }
            Command::Rollback { unit, to } => {
                let (op, args) = match to {
                    None => ("rollback", vec![json!(unit)]),
                    Some(r) => ("rollbackTo", vec![json!(unit), json!(r)]),
                };
                self.manager_outcome(&format!("rollback {unit}"), op, args, Some(unit))
            }
            Command::Validate(ValidateWhat::Dir(d)) => offline::validate_dir(d),
            Command::Validate(ValidateWhat::Checks { unit }) => {
                let r = self.one(Request::exec(
                    manager(),
                    "validateChecks",
                    vec![json!(unit)],
                ))?;
                let v = value_of(&r, &format!("validate {unit} --checks"))
                    .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
                let (out, valid) = report::validation(v);
                if valid {
                    Ok(out)
                } else {
                    Err(CmdError::with_output(
                        format!("validate {unit} --checks: invalid"),
                        out,
                    ))
                }
            }
            Command::Validate(ValidateWhat::Unit { unit, file }) => {
                let v = self.manager_op(unit, "validate", "validateContent", file.as_deref())?;
                let (out, valid) = report::validation(&v);
                if valid {
                    Ok(out)
                } else {
                    Err(CmdError::with_output(format!("{unit} is not valid"), out))
                }
            }
            Command::Diff { unit, file } => {
                let v = self.manager_op(unit, "diff", "diffContent", file.as_deref())?;
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
            Command::DrainCancel { unit, revision } => self.drain_cancel(unit, *revision),
            Command::History(unit) => {
                let v = self.manager_op(unit, "history", "", None)?;
                Ok(report::history(unit, &v, now))
            }
            Command::Pause { target, hold_ms } => {
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
            Command::Resume(t) => self.object_op(t, "resume", "resume", vec![]),
            Command::Stop(t) => self.object_op(t, "stop", "stop", vec![]),
            Command::Start(t) => self.object_op(t, "start", "start", vec![]),
            Command::RunTask { unit, task } => {
                let t = Target::Element {
                    kind: Kind::Task,
                    unit: unit.clone(),
                    name: task.clone(),
                };
                self.object_op(&t, "run", "runNow", vec![])
            }
            Command::Address {
                op,
                unit,
                endpoint,
                url,
            } => self.address(*op, unit, endpoint, url, now),
            Command::Flag { unit, flag, on } => {
                let bean = ObjectName::new("esb", &[("type", "Unit"), ("name", unit)]);
                let rs = self.bulk(vec![
                    Request::exec(bean.clone(), "setFlag", vec![json!(flag), json!(on)]),
                    Request::read(bean, Some("Flags")),
                ])?;
                value_of(&rs[0], &format!("flag {unit} {flag}"))
                    .map_err(|e| e.with_hint(self.unit_hint(unit)))?;
                let flags = rs[1].value.clone().unwrap_or(Value::Null);
                let now_on = flags.get(flag.as_str()).and_then(Value::as_bool) == Some(true);
                Ok(Output::line(
                    json!({"unit": unit, "flag": flag, "on": now_on, "flags": flags}),
                    vec![
                        Span::plain(format!("unit {unit}: flag {flag} ")),
                        Span::state(if now_on { "on" } else { "off" }),
                    ],
                ))
            }
            Command::Maintenance(on) => {
                let t = ("server", server());
                let out =
                    self.bean_op(&t, "maintenance", "maintenance", vec![json!(on)], "State")?;
                Ok(out.with(Block::Lines(vec![vec![Span::new(
                    if *on {
                        "/health answers 503 so load balancers drain; traffic is still served"
                    } else {
                        "/health answers 200 again"
                    },
                    Tone::Dim,
                )]])))
            }
            Command::Restart => {
                // The server answers once the new configuration serves (or why not).
                let r = self.one(Request::exec(server(), "restart", vec![]))?;
                let v = value_of(&r, "restart")?;
                report::restart(v)
            }
            Command::Upgrade => {
                let r = self.one(Request::exec(server(), "upgrade", vec![]))?;
                let v = value_of(&r, "upgrade")?;
                let took = v
                    .get("duration_ms")
                    .and_then(Value::as_f64)
                    .map(|ms| format!(" in {ms} ms"))
                    .unwrap_or_default();
                Ok(Output::line(
                    v.clone(),
                    vec![
                        Span::state("upgraded"),
                        Span::plain(format!(
                            "{took}: process {} ({}) serves; process {} drains and exits",
                            v["pid"],
                            v["binary"].as_str().unwrap_or(""),
                            v["old_pid"]
                        )),
                    ],
                ))
            }
            Command::HotDeploy(None) => {
                let r = self.one(Request::read(manager(), Some("HotDeploy")))?;
                let v = value_of(&r, "hot-deploy")?;
                Ok(crate::exec::control::hot_deploy_output(
                    v,
                    json!({ "hot_deploy": v }),
                ))
            }
            Command::HotDeploy(Some(on)) => {
                let rs = self.bulk(vec![
                    Request::exec(manager(), "setHotDeploy", vec![json!(on)]),
                    Request::read(manager(), Some("HotDeploy")),
                ])?;
                value_of(&rs[0], "hot-deploy")?;
                let v = rs[1].value.clone().unwrap_or(json!(on));
                Ok(crate::exec::control::hot_deploy_output(
                    &v,
                    json!({ "hot_deploy": v }),
                ))
            }
            Command::Events {
                follow: false,
                recent,
            } => {
                let evs: Vec<Event> = self
                    .client
                    .events(Some(*recent), None)?
                    .map(|e| e.map(Event::from))
                    .collect::<Result<_, _>>()?;
                Ok(event::events(&evs))
            }
            Command::Events { follow: true, .. } => Err(UsageError::new(
                "events --follow streams until interrupted and runs only in script mode",
            )
            .into()),
            Command::Tap { .. } => Err(UsageError::new(
                "tap streams until interrupted and runs only in script mode (uterm -c \"tap PROXY\")",
            )
            .into()),
            Command::Beans(pattern) => self.beans(pattern.as_deref()),
            Command::Info(bean) => {
                let path = join_path(&[bean.domain().to_string(), bean.key_list()]);
                let r = self.one(Request::list(Some(&path), None))?;
                let v = value_of(&r, &format!("info {}", bean.original()))
                    .map_err(|e| self.bean_missing(e, &r, bean))?;
                Ok(view::info(&bean.original(), v))
            }
            Command::Get { bean, attributes } => self.get(bean, attributes, now),
            Command::Set {
                bean,
                attribute,
                value,
            } => {
                let r = self.one(Request::write(bean.clone(), attribute, value.clone()))?;
                let what = format!("set {} {attribute}", bean.original());
                let old = value_of(&r, &what)
                    .map_err(|e| self.bean_missing(e, &r, bean))?
                    .clone();
                let json = json!({
                    "mbean": bean.original(), "attribute": attribute, "old": old, "new": value,
                });
                Ok(Output::line(
                    json,
                    vec![Span::plain(format!(
                        "{} {attribute}: {} → {}",
                        bean.original(),
                        crate::present::output::compact(&old, 60),
                        crate::present::output::compact(value, 60)
                    ))],
                ))
            }
            Command::Exec {
                bean,
                operation,
                arguments,
            } => {
                let r = self.one(Request::exec(bean.clone(), operation, arguments.clone()))?;
                let what = format!("exec {} {operation}", bean.original());
                let v = value_of(&r, &what).map_err(|e| self.bean_missing(e, &r, bean))?;
                let is_outcome = |x: &Value| x.get("outcome").is_some();
                if is_outcome(v)
                    || v.as_array()
                        .is_some_and(|a| !a.is_empty() && a.iter().all(is_outcome))
                {
                    let (out, failed) = report::outcomes(v);
                    if failed {
                        return Err(CmdError::with_output(format!("{what}: rejected"), out));
                    }
                    return Ok(out);
                }
                Ok(view::value(v, now))
            }
        }
    }

    /// Streams `/events` live, calling `on` for every event until it returns false. When the
    /// stream breaks it reconnects (backing off up to 5 s) and resumes after the last event
    /// seen. Fails only if the first connection fails or the server refuses the token.
    /// Streams the finished requests of a proxy to `on` (one JSON record each) until `on`
    /// says stop or the server ends the stream (after `limit`).
    pub fn tap(
        &self,
        name: &str,
        unit: Option<&str>,
        limit: Option<u64>,
        consumer: bool,
        mut on: impl FnMut(&Value) -> bool,
    ) -> Result<(), CmdError> {
        let stream = self.client.tap(name, unit, limit, consumer)?;
        for sse in stream {
            let sse = sse?;
            let v: Value = serde_json::from_str(&sse.data).unwrap_or(Value::Null);
            let v = if sse.event == "lost" {
                json!({"lost": v.get("lost").cloned().unwrap_or(Value::Null)})
            } else {
                v
            };
            if !on(&v) {
                break;
            }
        }
        Ok(())
    }

    pub fn follow_events(&self, mut on: impl FnMut(Follow) -> bool) -> Result<(), CmdError> {
        let mut last_id: Option<String> = None;
        let mut stream = self.client.events(None, None)?;
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            let reason = loop {
                match stream.next() {
                    Some(Ok(sse)) => {
                        backoff = std::time::Duration::from_millis(250);
                        if sse.id.is_some() {
                            last_id = sse.id.clone();
                        }
                        let ev = Event::from(sse);
                        if !on(Follow::Event(&ev)) {
                            return Ok(());
                        }
                        // A stopping server's stream may outlive it (warm restart): reconnect
                        // to whatever serves the endpoint next. Event ids carry on across a
                        // warm restart, so resuming after this event misses nothing.
                        if ev.kind == "server_stopping" {
                            break "the server is stopping".to_string();
                        }
                    }
                    Some(Err(e)) => break e.to_string(),
                    None => break "the server closed the stream".to_string(),
                }
            };
            if !on(Follow::Reconnecting(&reason)) {
                return Ok(());
            }
            loop {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                match self.client.events(None, last_id.as_deref()) {
                    Ok(s) => {
                        stream = s;
                        if !on(Follow::Reconnected) {
                            return Ok(());
                        }
                        break;
                    }
                    Err(e @ ClientError::Unauthorized { .. }) => return Err(e.into()),
                    Err(e) => {
                        if !on(Follow::Reconnecting(&e.to_string())) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;

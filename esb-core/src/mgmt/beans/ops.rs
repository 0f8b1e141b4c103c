//! Attribute writes and operations: runtime control and every deployment operation, one
//! function per bean kind, each an exhaustive match over the protocol's typed operations
//! (decoded and checked before they get here). Engine calls stay one per operation.

use super::Bean;
use crate::engine::{self, AddressAction, Change, Command, CommandError, Run, Source, TaskAction};
use crate::events::EventKind;
use crate::server::Server;
use deployments::protocol::args::{ArgValue, Content, Percent};
use deployments::protocol::ops::{
    ConsumerOp, EndpointOp, ManagerOp, ProxyOp, ServerOp, TaskOp, TransportOp, UnitOp,
};
use deployments::protocol::outcome::{
    CanaryAborted, CanaryWeight, ChecksRun, DiffResult, DrainCancelled, HistoryEntry, Outcome,
    RevisionSource, Validation,
};
use deployments::protocol::{ManagementError, ObjectName, Operation};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Writes an attribute; only `HotDeploy` of the server and the manager is writable.
pub async fn write(
    server: &Server,
    bean: &Bean,
    attribute: &str,
    value: &Value,
) -> Result<Value, ManagementError> {
    let name = bean.object_name();
    let specs = deployments::protocol::meta::attributes(bean.kind());
    let Some(spec) = specs.iter().find(|s| s.name == attribute) else {
        return Err(ManagementError::attribute_not_found(
            &name,
            attribute,
            specs.iter().map(|s| s.name),
        ));
    };
    if !spec.writable {
        return Err(ManagementError::ReadOnlyAttribute {
            mbean: name.original(),
            attribute: attribute.into(),
        });
    }
    let on = bool::decode(Some(value))
        .map_err(|_| ManagementError::BadRequest(format!("HotDeploy is a boolean; got {value}")))?;
    Ok(server.engine.set_hot_deploy(on).into())
}

fn json(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("answers serialize")
}

/// The protocol's outcome of the engine's.
fn outcome(o: engine::Outcome) -> Outcome {
    match o {
        engine::Outcome::Activated {
            unit,
            revision,
            hash,
            label,
            duration_ms,
            diff,
        } => Outcome::Activated {
            unit,
            revision,
            hash,
            label,
            duration_ms,
            diff,
        },
        engine::Outcome::Unchanged { unit, revision } => Outcome::Unchanged { unit, revision },
        engine::Outcome::Rejected { unit, errors } => Outcome::Rejected { unit, errors },
        engine::Outcome::Unloaded { unit, revision } => Outcome::Unloaded { unit, revision },
        engine::Outcome::Canary {
            unit,
            revision,
            stable,
            hash,
            label,
            percent,
            header,
            duration_ms,
            diff,
        } => Outcome::Canary {
            unit,
            revision,
            stable,
            hash,
            label,
            percent,
            header,
            duration_ms,
            diff,
        },
    }
}

fn outcomes(o: Vec<engine::Outcome>) -> Value {
    json(o.into_iter().map(outcome).collect::<Vec<_>>())
}

fn source(content: &Content) -> Source {
    match content {
        Content::UnitToml(text) => Source::unit_toml(text.clone()),
        Content::Files(files) => Source::Content(files.clone()),
    }
}

/// The split of a canary: its share, a header (`x-canary=1`) that picks its requests
/// instead, and a sticky key header.
fn canary_split(
    percent: Percent,
    header: &Option<String>,
    sticky: &Option<String>,
) -> Result<crate::proxy::Split, ManagementError> {
    let bad = |what: &str| ManagementError::BadRequest(format!("invalid canary {what}"));
    let header = match header {
        None => None,
        Some(h) => {
            let (name, value) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .ok_or_else(|| bad("header: write NAME=VALUE, e.g. x-canary=1"))?;
            Some((
                http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| bad("header name"))?,
                http::HeaderValue::from_str(value.trim()).map_err(|_| bad("header value"))?,
            ))
        }
    };
    let sticky = match sticky {
        None => None,
        Some(k) => {
            Some(http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("sticky key header"))?)
        }
    };
    Ok(crate::proxy::Split::new(percent.0, header, sticky))
}

/// What every operation needs: the server, the bean's name and the operation's.
struct Ctx<'a> {
    server: &'a Arc<Server>,
    name: ObjectName,
    op: &'static str,
}

impl Ctx<'_> {
    fn failed(&self, message: String) -> ManagementError {
        ManagementError::OperationFailed {
            mbean: self.name.original(),
            operation: self.op.into(),
            message,
        }
    }

    fn gone(&self) -> ManagementError {
        ManagementError::instance_not_found(&self.name)
    }

    /// Emits `state_changed` for the bean (with `detail`, e.g. ` flag beta`).
    fn state(&self, detail: &str, state: &str) {
        self.server.events.emit(EventKind::StateChanged {
            object: format!("{}{detail}", self.name.canonical()),
            state: state.into(),
        });
    }

    /// Runs an operator command; the element's state afterwards.
    async fn control(&self, command: Command) -> Result<String, ManagementError> {
        self.server
            .engine
            .control(command)
            .await
            .map_err(|e| match e {
                CommandError::NotFound => self.gone(),
                CommandError::Refused(message) => self.failed(message),
            })
    }

    async fn deploy(&self, unit: &str, source: Source) -> Value {
        let change = Change::Deploy {
            unit: unit.to_owned(),
            source,
        };
        outcomes_one(self.server.engine.apply(vec![change]).await)
    }

    async fn unload(&self, unit: &str) -> Value {
        let change = Change::Unload {
            unit: unit.to_owned(),
        };
        outcomes_one(self.server.engine.apply(vec![change]).await)
    }
}

fn outcomes_one(mut o: Vec<engine::Outcome>) -> Value {
    json(outcome(o.remove(0)))
}

/// Runs a decoded operation on `bean` (an operation of the bean's kind).
pub async fn exec(
    server: &Arc<Server>,
    bean: &Bean,
    op: &Operation,
) -> Result<Value, ManagementError> {
    let cx = Ctx {
        server,
        name: bean.object_name(),
        op: op.name(),
    };
    let mismatch = || {
        ManagementError::no_such_operation(
            &cx.name,
            op.name(),
            Operation::specs(bean.kind()).iter().map(|s| s.name),
        )
    };
    match op {
        Operation::Server(o) => server_op(&cx, o).await,
        Operation::Manager(o) => manager_op(&cx, o).await,
        Operation::Transport(o) => {
            let Bean::Transport(t) = bean else {
                return Err(mismatch());
            };
            transport_op(&cx, t, o).await
        }
        Operation::Unit(o) => {
            let Bean::Unit(u) = bean else {
                return Err(mismatch());
            };
            unit_op(&cx, u, o).await
        }
        Operation::Proxy(o) => {
            let Bean::Proxy(u, p) = bean else {
                return Err(mismatch());
            };
            proxy_op(&cx, u, p, o).await
        }
        Operation::Endpoint(o) => {
            let Bean::Endpoint(u, e) = bean else {
                return Err(mismatch());
            };
            endpoint_op(&cx, u, e, o).await
        }
        Operation::Task(o) => {
            let Bean::Task(u, t) = bean else {
                return Err(mismatch());
            };
            task_op(&cx, u, t, o).await
        }
        Operation::Consumer(o) => {
            let Bean::Consumer(u, c) = bean else {
                return Err(mismatch());
            };
            consumer_op(&cx, u, c, o).await
        }
    }
}

async fn server_op(cx: &Ctx<'_>, op: &ServerOp) -> Result<Value, ManagementError> {
    match op {
        ServerOp::Maintenance { on } => {
            cx.server.maintenance.store(*on, Relaxed);
            cx.state("", if *on { "Maintenance" } else { "Running" });
            Ok(Value::Null)
        }
        ServerOp::Restart {} => crate::mgmt::restart(cx.server)
            .await
            .map(json)
            .map_err(|e| cx.failed(e)),
        ServerOp::Upgrade {} => crate::upgrade::upgrade(cx.server)
            .await
            .map_err(|e| cx.failed(e)),
    }
}

async fn manager_op(cx: &Ctx<'_>, op: &ManagerOp) -> Result<Value, ManagementError> {
    let engine = &cx.server.engine;
    Ok(match op {
        ManagerOp::Load { unit } | ManagerOp::Reload { unit } => {
            cx.deploy(unit, Source::Disk).await
        }
        ManagerOp::Unload { unit } => cx.unload(unit).await,
        ManagerOp::ReloadAll {} => outcomes(engine.reload_all().await),
        ManagerOp::Batch { units } => {
            let changes = units.0.iter().map(|unit| Change::Deploy {
                unit: unit.clone(),
                source: Source::Disk,
            });
            outcomes(engine.apply(changes.collect()).await)
        }
        ManagerOp::UnloadBatch { units } => {
            let changes = units
                .0
                .iter()
                .map(|unit| Change::Unload { unit: unit.clone() });
            outcomes(engine.apply(changes.collect()).await)
        }
        ManagerOp::Deploy { unit, content } => cx.deploy(unit, source(content)).await,
        ManagerOp::DeployFromDisk { unit } => cx.deploy(unit, Source::FromDisk).await,
        ManagerOp::Rollback { unit } => cx.deploy(unit, Source::Revision(None)).await,
        ManagerOp::RollbackTo { unit, revision } => {
            cx.deploy(unit, Source::Revision(Some(*revision))).await
        }
        ManagerOp::Validate { unit } => validate(cx.server, unit, Source::Disk).await,
        ManagerOp::ValidateContent { unit, content } => {
            validate(cx.server, unit, source(content)).await
        }
        ManagerOp::ValidateChecks { unit } => {
            let (valid, checks, errors) = match engine.run_checks_of(unit).await {
                Ok(n) => (true, Some(n), None),
                Err(errors) => (false, None, Some(errors)),
            };
            json(ChecksRun {
                unit: unit.clone(),
                valid,
                checks,
                errors,
            })
        }
        ManagerOp::Diff { unit } => diff(cx.server, unit, Source::Disk).await,
        ManagerOp::DiffContent { unit, content } => diff(cx.server, unit, source(content)).await,
        ManagerOp::History { unit } => history(cx.server, unit).await.map_err(|e| cx.failed(e))?,
        ManagerOp::Canary {
            unit,
            percent,
            header,
            sticky,
        } => {
            let split = canary_split(*percent, header, sticky)?;
            json(outcome(
                engine.deploy_canary(unit, Source::Disk, split).await,
            ))
        }
        ManagerOp::CanaryContent {
            unit,
            content,
            percent,
            header,
            sticky,
        } => {
            let split = canary_split(*percent, header, sticky)?;
            json(outcome(
                engine.deploy_canary(unit, source(content), split).await,
            ))
        }
        ManagerOp::Promote { unit } => json(outcome(engine.promote(unit).await)),
        ManagerOp::AbortCanary { unit } => engine
            .abort_canary(unit, "by an operator")
            .await
            .map(|aborted| json(CanaryAborted { aborted }))
            .map_err(|e| cx.failed(e))?,
        ManagerOp::SetCanaryWeight { unit, percent } => engine
            .set_canary_weight(unit, percent.0)
            .await
            .map(|()| json(CanaryWeight { percent: percent.0 }))
            .map_err(|e| cx.failed(e))?,
        ManagerOp::Source { unit, revision } => {
            let s = engine
                .source_of(unit, revision.0)
                .await
                .map_err(|e| cx.failed(e))?;
            json(RevisionSource {
                unit: s.unit,
                revision: s.revision,
                hash: s.hash,
                label: s.label,
                origin: s.origin,
                active: s.active,
                files: s.files,
            })
        }
        ManagerOp::CancelDrain { unit, revision } => cancel_drain(cx.server, unit, *revision)
            .await
            .map_err(|e| cx.failed(e))?,
        ManagerOp::SetHotDeploy { enabled } => {
            engine.set_hot_deploy(*enabled);
            Value::Null
        }
    })
}

fn run(op: &TransportOp) -> Run {
    match op {
        TransportOp::Pause {} => Run::Pause,
        TransportOp::Resume {} => Run::Resume,
        TransportOp::Stop {} => Run::Stop,
        TransportOp::Start {} => Run::Start,
    }
}

async fn transport_op(cx: &Ctx<'_>, t: &str, op: &TransportOp) -> Result<Value, ManagementError> {
    let Some(t) = cx.server.transport(t) else {
        // Not a listener: an AMQP link of the root config.
        let command = Command::Amqp {
            transport: t.to_owned(),
            run: run(op),
        };
        let state = cx.control(command).await?;
        cx.state("", &state);
        return Ok(Value::Null);
    };
    match op {
        TransportOp::Pause {} => t.pause().map_err(|e| cx.failed(e))?,
        TransportOp::Resume {} => t.resume().map_err(|e| cx.failed(e))?,
        TransportOp::Stop {} => t.stop().await,
        TransportOp::Start {} => {
            let was_stopped = t.state() == crate::transport::TransportState::Stopped;
            t.start().await.map_err(|e| cx.failed(e))?;
            if was_stopped {
                tracing::info!(transport = %t.name, bind = %t.bind, kind = ?t.kind, "transport listening");
            }
        }
    }
    cx.state("", t.state().as_str());
    Ok(Value::Null)
}

async fn unit_op(cx: &Ctx<'_>, u: &str, op: &UnitOp) -> Result<Value, ManagementError> {
    match op {
        UnitOp::Reload {} => Ok(cx.deploy(u, Source::Disk).await),
        UnitOp::Unload {} => Ok(cx.unload(u).await),
        UnitOp::Rollback {} => Ok(cx.deploy(u, Source::Revision(None)).await),
        UnitOp::RollbackTo { revision } => {
            Ok(cx.deploy(u, Source::Revision(Some(*revision))).await)
        }
        UnitOp::Diff {} => Ok(diff(cx.server, u, Source::Disk).await),
        UnitOp::Validate {} => Ok(validate(cx.server, u, Source::Disk).await),
        UnitOp::History {} => history(cx.server, u).await.map_err(|e| cx.failed(e)),
        UnitOp::CancelDrain { revision } => cancel_drain(cx.server, u, *revision)
            .await
            .map_err(|e| cx.failed(e)),
        UnitOp::SetFlag { flag, on } => {
            let command = Command::Flag {
                unit: u.to_owned(),
                flag: flag.clone(),
                on: *on,
            };
            let state = cx.control(command).await?;
            cx.state(&format!(" flag {flag}"), &state);
            Ok(Value::Null)
        }
        UnitOp::Pause {} => unit_control(cx, u, Some(0)).await,
        UnitOp::PauseHold { hold_millis } => unit_control(cx, u, Some(*hold_millis)).await,
        UnitOp::Resume {} => unit_control(cx, u, None).await,
    }
}

/// Pauses a unit (new requests wait `hold` ms for a resume, then get 503) or resumes it
/// (`None`), releasing held requests.
async fn unit_control(cx: &Ctx<'_>, u: &str, pause: Option<u64>) -> Result<Value, ManagementError> {
    let unit = u.to_owned();
    let command = match pause {
        Some(hold_ms) => Command::PauseUnit { unit, hold_ms },
        None => Command::ResumeUnit { unit },
    };
    let state = cx.control(command).await?;
    cx.state("", &state);
    Ok(Value::Null)
}

async fn proxy_op(cx: &Ctx<'_>, u: &str, p: &str, op: &ProxyOp) -> Result<Value, ManagementError> {
    let run = match op {
        ProxyOp::Pause {} => Run::Pause,
        ProxyOp::Resume {} => Run::Resume,
        ProxyOp::Stop {} => Run::Stop,
        ProxyOp::Start {} => Run::Start,
    };
    let command = Command::Proxy {
        unit: u.to_owned(),
        proxy: p.to_owned(),
        run,
    };
    let state = cx.control(command).await?;
    cx.state("", &state);
    Ok(Value::Null)
}

async fn endpoint_op(
    cx: &Ctx<'_>,
    u: &str,
    e: &str,
    op: &EndpointOp,
) -> Result<Value, ManagementError> {
    let (unit, endpoint) = (u.to_owned(), e.to_owned());
    let (url, action) = match op {
        EndpointOp::Pause {} | EndpointOp::Resume {} => {
            let on = matches!(op, EndpointOp::Pause {});
            let state = cx
                .control(Command::Maintenance { unit, endpoint, on })
                .await?;
            cx.state("", &state);
            return Ok(Value::Null);
        }
        EndpointOp::AddAddress { url } => {
            let parsed = url::Url::parse(&url.0).map_err(|err| {
                ManagementError::BadRequest(format!("invalid address URL \"{}\": {err}", url.0))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ManagementError::BadRequest(format!(
                    "address \"{}\" must be http:// or https://",
                    url.0
                )));
            }
            (url, AddressAction::Add)
        }
        EndpointOp::RemoveAddress { url } => (url, AddressAction::Remove),
        EndpointOp::SuspendAddress { url } => (url, AddressAction::Suspend),
        EndpointOp::ActivateAddress { url } => (url, AddressAction::Activate),
    };
    let command = Command::Address {
        unit,
        endpoint,
        url: url.0.clone(),
        action,
    };
    cx.control(command).await?;
    cx.state(&format!(" address {}", url.0), op.name());
    Ok(Value::Null)
}

async fn task_op(cx: &Ctx<'_>, u: &str, k: &str, op: &TaskOp) -> Result<Value, ManagementError> {
    let action = match op {
        TaskOp::Pause {} => TaskAction::Pause,
        TaskOp::Resume {} => TaskAction::Resume,
        TaskOp::RunNow {} => TaskAction::RunNow,
    };
    let command = Command::Task {
        unit: u.to_owned(),
        task: k.to_owned(),
        action,
    };
    let state = cx.control(command).await?;
    cx.state("", &state);
    Ok(Value::Null)
}

async fn consumer_op(
    cx: &Ctx<'_>,
    u: &str,
    k: &str,
    op: &ConsumerOp,
) -> Result<Value, ManagementError> {
    let run = match op {
        ConsumerOp::Pause {} => Run::Pause,
        ConsumerOp::Resume {} => Run::Resume,
        ConsumerOp::Stop {} => Run::Stop,
        ConsumerOp::Start {} => Run::Start,
    };
    let command = Command::Consumer {
        unit: u.to_owned(),
        consumer: k.to_owned(),
        run,
    };
    let state = cx.control(command).await?;
    cx.state("", &state);
    Ok(Value::Null)
}

/// `cancelDrain`: revision 0 means every draining revision of the unit.
async fn cancel_drain(server: &Server, unit: &str, revision: u64) -> Result<Value, String> {
    let revision = (revision != 0).then_some(revision);
    let ended = server.engine.cancel_drain(unit, revision).await?;
    Ok(json(
        ended
            .into_iter()
            .map(|(revision, ended)| DrainCancelled { revision, ended })
            .collect::<Vec<_>>(),
    ))
}

async fn validate(server: &Server, unit: &str, source: Source) -> Value {
    let errors = server.engine.preview(unit, source).await.err();
    json(Validation {
        unit: unit.to_owned(),
        valid: errors.is_none(),
        errors,
    })
}

async fn diff(server: &Server, unit: &str, source: Source) -> Value {
    let (diff, new, errors) = match server.engine.preview(unit, source).await {
        Ok((_, Some(d))) => (Some(d), false, None),
        Ok((parsed, None)) => (
            Some(deployments::diff::diff_from(None, &parsed.unit)),
            true,
            None,
        ),
        Err(errors) => (None, false, Some(errors)),
    };
    json(DiffResult {
        unit: unit.to_owned(),
        text: diff.as_ref().map(ToString::to_string),
        diff,
        new,
        errors,
    })
}

async fn history(server: &Server, unit: &str) -> Result<Value, String> {
    let units = server.engine.snapshot();
    let slot = units
        .get(unit)
        .ok_or_else(|| format!("unit \"{unit}\" is not loaded"))?;
    let current = slot.current.as_ref().map(|c| c.info.number);
    let entries: Vec<HistoryEntry> = slot
        .history
        .iter()
        .rev()
        .map(|r| HistoryEntry {
            revision: r.number,
            hash: r.hash.clone(),
            label: r.label.clone(),
            deployed_at: attrs_epoch_ms(r.deployed_at),
            deploy_ms: crate::revision::millis(r.deploy_time),
            active: Some(r.number) == current,
            degraded: r.degraded,
        })
        .collect();
    Ok(json(entries))
}

/// Milliseconds since the epoch (0 before it).
pub(super) fn attrs_epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

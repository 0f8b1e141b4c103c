//! Attribute writes and operations: one function per bean kind, each an exhaustive match
//! over the protocol's typed operations (decoded and checked before they get here);
//! deployment operations are in `deploy`, runtime control in `control`. Engine calls stay
//! one per operation.

mod control;
mod deploy;

use control::*;
use deploy::*;

use super::Bean;
use crate::engine::{self, AddressAction, Change, Command, CommandError, Run, Source, TaskAction};
use crate::events::EventKind;
use crate::server::Server;
use deployments::protocol::args::{ArgValue, Content, Percent};
use deployments::protocol::ops::{
    ConsumerOp, EndpointOp, ManagerOp, ProxyOp, ServerOp, TaskOp, TransportOp, UnitOp,
};
use deployments::protocol::outcome::{
    CanaryAborted, CanaryWeight, ChecksRun, DiffResult, DrainCancelled, HistoryEntry, Validation,
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
    server
        .set_hot_deploy(on)
        .map(Value::from)
        .map_err(|e| ManagementError::OperationFailed {
            mbean: name.original(),
            operation: format!("write {attribute}"),
            message: e,
        })
}

fn json(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("answers serialize")
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

    /// Runs an operator command and tells `/events` the bean's state afterwards.
    async fn command(&self, command: Command) -> Result<Value, ManagementError> {
        let state = self.control(command).await?;
        self.state("", &state);
        Ok(Value::Null)
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
        Operation::Cluster(o) => super::cluster::exec(server, o).await,
    }
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

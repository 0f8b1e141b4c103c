//! Runtime control: operator commands on transports, units, proxies, endpoints, tasks and
//! consumers, each run by the engine, then announced as a `state_changed` event.

use super::*;

pub(super) fn run(op: &TransportOp) -> Run {
    match op {
        TransportOp::Pause {} => Run::Pause,
        TransportOp::Resume {} => Run::Resume,
        TransportOp::Stop {} => Run::Stop,
        TransportOp::Start {} => Run::Start,
    }
}

pub(super) async fn transport_op(
    cx: &Ctx<'_>,
    t: &str,
    op: &TransportOp,
) -> Result<Value, ManagementError> {
    let Some(t) = cx.server.transport(t) else {
        // Not a listener: an AMQP link of the root config.
        let command = Command::Amqp {
            transport: t.to_owned(),
            run: run(op),
        };
        return cx.command(command).await;
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

/// Pauses a unit (new requests wait `hold` ms for a resume, then get 503) or resumes it
/// (`None`), releasing held requests.
pub(super) async fn unit_control(
    cx: &Ctx<'_>,
    u: &str,
    pause: Option<u64>,
) -> Result<Value, ManagementError> {
    let unit = u.to_owned();
    let command = match pause {
        Some(hold_ms) => Command::PauseUnit { unit, hold_ms },
        None => Command::ResumeUnit { unit },
    };
    cx.command(command).await
}

pub(super) async fn proxy_op(
    cx: &Ctx<'_>,
    u: &str,
    p: &str,
    op: &ProxyOp,
) -> Result<Value, ManagementError> {
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
    cx.command(command).await
}

pub(super) async fn endpoint_op(
    cx: &Ctx<'_>,
    u: &str,
    e: &str,
    op: &EndpointOp,
) -> Result<Value, ManagementError> {
    let (unit, endpoint) = (u.to_owned(), e.to_owned());
    let (url, action) = match op {
        EndpointOp::Pause {} | EndpointOp::Resume {} => {
            let on = matches!(op, EndpointOp::Pause {});
            return cx
                .command(Command::Maintenance { unit, endpoint, on })
                .await;
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

pub(super) async fn task_op(
    cx: &Ctx<'_>,
    u: &str,
    k: &str,
    op: &TaskOp,
) -> Result<Value, ManagementError> {
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
    cx.command(command).await
}

pub(super) async fn consumer_op(
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
    cx.command(command).await
}

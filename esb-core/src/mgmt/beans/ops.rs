//! Attribute writes and operations: runtime control and every deployment operation.

use super::{info, read_all, Bean};
use crate::engine::{
    AddressAction, Change, Command, CommandError, Outcome, Run, Source, TaskAction,
};
use crate::server::Server;
use deployments::protocol::ManagementError;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub async fn write(
    server: &Server,
    bean: &Bean,
    attribute: &str,
    value: &Value,
) -> Result<Value, ManagementError> {
    let name = bean.object_name();
    let writable = matches!(
        (bean, attribute),
        (Bean::Server | Bean::Manager, "HotDeploy")
    );
    if !writable {
        let all = read_all(server, bean).await?;
        if !all.contains_key(attribute) {
            return Err(ManagementError::attribute_not_found(
                &name,
                attribute,
                all.keys().map(|k| k.as_str()),
            ));
        }
        return Err(ManagementError::ReadOnlyAttribute {
            mbean: name.original(),
            attribute: attribute.into(),
        });
    }
    let on = as_bool(value).ok_or_else(|| {
        ManagementError::BadRequest(format!("HotDeploy is a boolean; got {value}"))
    })?;
    Ok(server.engine.set_hot_deploy(on).into())
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "on" | "1" => Some(true),
            "false" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn arg_str(args: &[Value], i: usize, what: &str) -> Result<String, ManagementError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        other => Err(ManagementError::BadRequest(format!(
            "argument {} ({what}) must be a string, got {}",
            i + 1,
            other.cloned().unwrap_or(Value::Null)
        ))),
    }
}

fn arg_u64(args: &[Value], i: usize, what: &str) -> Result<u64, ManagementError> {
    match args.get(i) {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().unwrap_or_default()),
        other => Err(ManagementError::BadRequest(format!(
            "argument {} ({what}) must be a whole number, got {}",
            i + 1,
            other.cloned().unwrap_or(Value::Null)
        ))),
    }
}

/// Pushed content: the text of `unit.toml`, or an object of files (relative path → text)
/// holding a `unit.toml` and the files it includes.
fn arg_content(args: &[Value], i: usize) -> Result<Source, ManagementError> {
    match args.get(i) {
        Some(Value::Object(files)) => files
            .iter()
            .map(|(path, text)| match text {
                Value::String(t) => Ok((path.clone(), t.clone())),
                other => Err(ManagementError::BadRequest(format!(
                    "argument {} (content): file \"{path}\" must be a string of text, got {other}",
                    i + 1
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Source::Content),
        _ => arg_str(args, i, "content").map(Source::unit_toml),
    }
}

/// An optional revision number: null or 0 mean the active one.
fn arg_revision(args: &[Value], i: usize) -> Result<Option<u64>, ManagementError> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        _ => arg_u64(args, i, "revision").map(|n| (n > 0).then_some(n)),
    }
}

/// A share of requests in percent (0–100); `"10%"` or `10`.
fn arg_percent(args: &[Value], i: usize) -> Result<f64, ManagementError> {
    let v = match args.get(i) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    };
    v.filter(|p| (0.0..=100.0).contains(p)).ok_or_else(|| {
        ManagementError::BadRequest(format!(
            "argument {} (percent) must be a share of requests from 0 to 100, e.g. 10 or \"10%\"",
            i + 1
        ))
    })
}

/// The split of a canary: `percent` at `at`, then a header (`"x-canary=1"`, empty for a
/// weight) and a sticky key header (empty: by turns).
fn canary_split(args: &[Value], at: usize) -> Result<crate::proxy::Split, ManagementError> {
    let percent = arg_percent(args, at)?;
    let text = |i: usize| {
        args.get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let bad = |what: &str| ManagementError::BadRequest(format!("invalid canary {what}"));
    let header = match text(at + 1) {
        h if h.is_empty() => None,
        h => {
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
    let sticky = match text(at + 2) {
        k if k.is_empty() => None,
        k => {
            Some(http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("sticky key header"))?)
        }
    };
    Ok(crate::proxy::Split::new(percent, header, sticky))
}

fn arg_list(args: &[Value], i: usize) -> Result<Vec<String>, ManagementError> {
    match args.get(i) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ManagementError::BadRequest("unit names must be strings".into()))
            })
            .collect(),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()),
        other => Err(ManagementError::BadRequest(format!(
            "argument 1 (units) must be an array of names, got {}",
            other.cloned().unwrap_or(Value::Null)
        ))),
    }
}

/// `cancelDrain`: revision 0 means every draining revision of the unit.
async fn cancel_drain(server: &Server, unit: &str, revision: u64) -> Result<Value, String> {
    let revision = (revision != 0).then_some(revision);
    let ended = server.engine.cancel_drain(unit, revision).await?;
    Ok(ended
        .into_iter()
        .map(|(revision, ended)| json!({ "revision": revision, "ended": ended }))
        .collect())
}

fn outcome(o: Outcome) -> Value {
    serde_json::to_value(o).expect("outcome serializes")
}

fn outcomes(o: Vec<Outcome>) -> Value {
    Value::Array(o.into_iter().map(outcome).collect())
}

/// Executes an operation. Checks the operation exists and the argument count first.
pub async fn exec(
    server: &Arc<Server>,
    bean: &Bean,
    op: &str,
    args: &[Value],
) -> Result<Value, ManagementError> {
    let name = bean.object_name();
    let meta = info(bean);
    let Some(op_info) = meta.op.get(op) else {
        return Err(ManagementError::no_such_operation(
            &name,
            op,
            meta.op.keys().map(|k| k.as_str()),
        ));
    };
    if op_info.args.len() != args.len() {
        return Err(ManagementError::WrongArgumentCount {
            mbean: name.original(),
            operation: op.into(),
            expected: op_info.args.len(),
            given: args.len(),
        });
    }
    let failed = |message: String| ManagementError::OperationFailed {
        mbean: name.original(),
        operation: op.into(),
        message,
    };
    let engine = &server.engine;
    let deploy = |unit: String, source: Source| async move {
        outcome(
            engine
                .apply(vec![Change::Deploy { unit, source }])
                .await
                .remove(0),
        )
    };
    let control = |command: Command| async {
        engine.control(command).await.map_err(|e| match e {
            CommandError::NotFound => ManagementError::instance_not_found(&name),
            CommandError::Refused(message) => failed(message),
        })
    };
    let run = || match op {
        "pause" => Run::Pause,
        "resume" => Run::Resume,
        "stop" => Run::Stop,
        _ => Run::Start,
    };
    let state = |object: String, state: &str| {
        server.events.emit(crate::events::EventKind::StateChanged {
            object,
            state: state.into(),
        });
    };
    let oname = name.canonical();
    match bean {
        Bean::Server => match op {
            "maintenance" => {
                let on = as_bool(&args[0]).ok_or_else(|| {
                    ManagementError::BadRequest("argument 1 (on) must be a boolean".into())
                })?;
                server.maintenance.store(on, Relaxed);
                state(oname, if on { "Maintenance" } else { "Running" });
                Ok(Value::Null)
            }
            "upgrade" => crate::upgrade::upgrade(server).await.map_err(failed),
            _ => crate::mgmt::restart(server).await.map_err(failed),
        },
        Bean::Manager => {
            let unit = || arg_str(args, 0, "unit");
            match op {
                "load" | "reload" => Ok(deploy(unit()?, Source::Disk).await),
                "unload" => Ok(outcome(
                    engine
                        .apply(vec![Change::Unload { unit: unit()? }])
                        .await
                        .remove(0),
                )),
                "reloadAll" => Ok(outcomes(engine.reload_all().await)),
                "batch" => {
                    let list = arg_list(args, 0)?;
                    Ok(outcomes(
                        engine
                            .apply(
                                list.into_iter()
                                    .map(|unit| Change::Deploy {
                                        unit,
                                        source: Source::Disk,
                                    })
                                    .collect(),
                            )
                            .await,
                    ))
                }
                "unloadBatch" => {
                    let list = arg_list(args, 0)?;
                    Ok(outcomes(
                        engine
                            .apply(
                                list.into_iter()
                                    .map(|unit| Change::Unload { unit })
                                    .collect(),
                            )
                            .await,
                    ))
                }
                "deploy" => Ok(deploy(unit()?, arg_content(args, 1)?).await),
                "validate" => Ok(validate(server, unit()?, Source::Disk).await),
                "validateChecks" => {
                    let unit = unit()?;
                    Ok(match engine.run_checks_of(&unit).await {
                        Ok(n) => json!({"unit": unit, "valid": true, "checks": n}),
                        Err(errors) => json!({"unit": unit, "valid": false, "errors": errors}),
                    })
                }
                "validateContent" => Ok(validate(server, unit()?, arg_content(args, 1)?).await),
                "diff" => Ok(diff(server, unit()?, Source::Disk).await),
                "diffContent" => Ok(diff(server, unit()?, arg_content(args, 1)?).await),
                "history" => history(server, &unit()?).await.map_err(failed),
                "deployFromDisk" => Ok(deploy(unit()?, Source::FromDisk).await),
                "canary" | "canaryContent" => {
                    let u = unit()?;
                    let (source, at) = if op == "canary" {
                        (Source::Disk, 1)
                    } else {
                        (arg_content(args, 1)?, 2)
                    };
                    let split = canary_split(args, at)?;
                    Ok(outcome(engine.deploy_canary(&u, source, split).await))
                }
                "promote" => Ok(outcome(engine.promote(&unit()?).await)),
                "abortCanary" => engine
                    .abort_canary(&unit()?, "by an operator")
                    .await
                    .map(|n| json!({"aborted": n}))
                    .map_err(failed),
                "setCanaryWeight" => {
                    let percent = arg_percent(args, 1)?;
                    engine
                        .set_canary_weight(&unit()?, percent)
                        .await
                        .map(|()| json!({"percent": percent}))
                        .map_err(failed)
                }
                "source" => {
                    let s = engine
                        .source_of(&unit()?, arg_revision(args, 1)?)
                        .await
                        .map_err(failed)?;
                    Ok(serde_json::to_value(s).expect("source serializes"))
                }
                "rollback" => Ok(deploy(unit()?, Source::Revision(None)).await),
                "rollbackTo" => Ok(deploy(
                    unit()?,
                    Source::Revision(Some(arg_u64(args, 1, "revision")?)),
                )
                .await),
                "cancelDrain" => cancel_drain(server, &unit()?, arg_u64(args, 1, "revision")?)
                    .await
                    .map_err(failed),
                _ => {
                    let on = as_bool(&args[0]).ok_or_else(|| {
                        ManagementError::BadRequest("argument 1 (enabled) must be a boolean".into())
                    })?;
                    engine.set_hot_deploy(on);
                    Ok(Value::Null)
                }
            }
        }
        Bean::Transport(t) if server.transport(t).is_none() => {
            let st = control(Command::Amqp {
                transport: t.clone(),
                run: run(),
            })
            .await?;
            state(oname, &st);
            Ok(Value::Null)
        }
        Bean::Transport(t) => {
            let t = server
                .transport(t)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            match op {
                "pause" => t.pause().map_err(failed)?,
                "resume" => t.resume().map_err(failed)?,
                "stop" => t.stop().await,
                _ => {
                    let was_stopped = t.state() == crate::transport::TransportState::Stopped;
                    t.start().await.map_err(failed)?;
                    if was_stopped {
                        tracing::info!(transport = %t.name, bind = %t.bind, kind = ?t.kind, "transport listening");
                    }
                }
            }
            state(oname, t.state().as_str());
            Ok(Value::Null)
        }
        Bean::Unit(u) => {
            let u = u.clone();
            match op {
                "reload" => Ok(deploy(u, Source::Disk).await),
                "unload" => Ok(outcome(
                    engine
                        .apply(vec![Change::Unload { unit: u }])
                        .await
                        .remove(0),
                )),
                "rollback" => Ok(deploy(u, Source::Revision(None)).await),
                "rollbackTo" => {
                    Ok(deploy(u, Source::Revision(Some(arg_u64(args, 0, "revision")?))).await)
                }
                "diff" => Ok(diff(server, u, Source::Disk).await),
                "validate" => Ok(validate(server, u, Source::Disk).await),
                "history" => history(server, &u).await.map_err(failed),
                "cancelDrain" => cancel_drain(server, &u, arg_u64(args, 0, "revision")?)
                    .await
                    .map_err(failed),
                "setFlag" => {
                    let flag = arg_str(args, 0, "flag")?;
                    let on = as_bool(&args[1]).ok_or_else(|| {
                        ManagementError::BadRequest("argument 2 (on) must be a boolean".into())
                    })?;
                    let st = control(Command::Flag {
                        unit: u,
                        flag: flag.clone(),
                        on,
                    })
                    .await?;
                    state(format!("{oname} flag {flag}"), &st);
                    Ok(Value::Null)
                }
                _ => {
                    let command = match op {
                        "pause" | "pauseHold" => Command::PauseUnit {
                            unit: u,
                            hold_ms: if op == "pauseHold" {
                                arg_u64(args, 0, "holdMillis")?
                            } else {
                                0
                            },
                        },
                        _ => Command::ResumeUnit { unit: u },
                    };
                    let st = control(command).await?;
                    state(oname, &st);
                    Ok(Value::Null)
                }
            }
        }
        Bean::Proxy(u, p) => {
            let st = control(Command::Proxy {
                unit: u.clone(),
                proxy: p.clone(),
                run: run(),
            })
            .await?;
            state(oname, &st);
            Ok(Value::Null)
        }
        Bean::Sequence(..) => Err(ManagementError::no_such_operation(
            &name,
            op,
            std::iter::empty(),
        )),
        Bean::Endpoint(u, e) => {
            let (unit, endpoint) = (u.clone(), e.clone());
            match op {
                "pause" | "resume" => {
                    let on = op == "pause";
                    let st = control(Command::Maintenance { unit, endpoint, on }).await?;
                    state(oname, &st);
                }
                _ => {
                    let url = arg_str(args, 0, "url")?;
                    let action = match op {
                        "addAddress" => {
                            let parsed = url::Url::parse(&url).map_err(|err| {
                                ManagementError::BadRequest(format!(
                                    "invalid address URL \"{url}\": {err}"
                                ))
                            })?;
                            if !matches!(parsed.scheme(), "http" | "https") {
                                return Err(ManagementError::BadRequest(format!(
                                    "address \"{url}\" must be http:// or https://"
                                )));
                            }
                            AddressAction::Add
                        }
                        "removeAddress" => AddressAction::Remove,
                        "suspendAddress" => AddressAction::Suspend,
                        _ => AddressAction::Activate,
                    };
                    control(Command::Address {
                        unit,
                        endpoint,
                        url: url.clone(),
                        action,
                    })
                    .await?;
                    state(format!("{oname} address {url}"), op);
                }
            }
            Ok(Value::Null)
        }
        Bean::Consumer(u, k) => {
            let st = control(Command::Consumer {
                unit: u.clone(),
                consumer: k.clone(),
                run: run(),
            })
            .await?;
            state(oname, &st);
            Ok(Value::Null)
        }
        Bean::Task(u, k) => {
            let action = match op {
                "pause" => TaskAction::Pause,
                "resume" => TaskAction::Resume,
                _ => TaskAction::RunNow,
            };
            let st = control(Command::Task {
                unit: u.clone(),
                task: k.clone(),
                action,
            })
            .await?;
            state(oname, &st);
            Ok(Value::Null)
        }
    }
}

async fn validate(server: &Server, unit: String, source: Source) -> Value {
    match server.engine.preview(&unit, source).await {
        Ok(_) => json!({"unit": unit, "valid": true}),
        Err(errors) => json!({"unit": unit, "valid": false, "errors": errors}),
    }
}

async fn diff(server: &Server, unit: String, source: Source) -> Value {
    match server.engine.preview(&unit, source).await {
        Ok((_, Some(d))) => json!({"unit": unit, "diff": d, "text": d.to_string()}),
        Ok((parsed, None)) => {
            let d = deployments::diff::diff_from(None, &parsed.unit);
            json!({"unit": unit, "diff": d, "text": d.to_string(), "new": true})
        }
        Err(errors) => json!({"unit": unit, "errors": errors}),
    }
}

async fn history(server: &Server, unit: &str) -> Result<Value, String> {
    let units = server.engine.snapshot();
    let slot = units
        .get(unit)
        .ok_or_else(|| format!("unit \"{unit}\" is not loaded"))?;
    let current = slot.current.as_ref().map(|c| c.info.number);
    Ok(Value::Array(
        slot.history
            .iter()
            .rev()
            .map(|r| {
                json!({
                    "revision": r.number, "hash": r.hash, "label": r.label,
                    "deployed_at": r.deployed_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
                    "deploy_ms": crate::revision::millis(r.deploy_time),
                    "active": Some(r.number) == current, "degraded": r.degraded,
                })
            })
            .collect(),
    ))
}

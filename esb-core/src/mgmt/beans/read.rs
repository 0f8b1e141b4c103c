//! Attribute values of the beans, read from the running server.

use super::Bean;
use crate::server::Server;
use deployments::protocol::ManagementError;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;

fn snapshot_counters(m: &mut Map<String, Value>, s: crate::metrics::StatsSnapshot, latency: bool) {
    m.insert("Requests".into(), s.requests.into());
    m.insert("RequestsPerSecond".into(), s.rate.into());
    m.insert("Errors".into(), s.errors.into());
    m.insert("InFlight".into(), s.in_flight.into());
    if latency {
        m.insert("P50Micros".into(), s.p50_us.into());
        m.insert("P99Micros".into(), s.p99_us.into());
    }
}

fn names<'a>(it: impl Iterator<Item = &'a deployments::Spanned<String>>) -> Value {
    Value::Array(it.map(|n| Value::String(n.get_ref().clone())).collect())
}

/// Every attribute of a bean.
pub async fn read_all(server: &Server, bean: &Bean) -> Result<Map<String, Value>, ManagementError> {
    let engine = &server.engine;
    let mut m = Map::new();
    let gone = || ManagementError::instance_not_found(&bean.object_name());
    match bean {
        Bean::Server => {
            let units = engine.snapshot();
            let proxies: Vec<_> = units
                .values()
                .filter_map(|s| s.current.as_ref())
                .flat_map(|r| r.proxies.iter())
                .collect();
            let mut total = crate::metrics::StatsSnapshot::default();
            for t in &server.transports {
                let s = t.stats.snapshot();
                total.requests += s.requests;
                total.rate += s.rate;
                total.errors += s.errors;
                total.in_flight += s.in_flight;
            }
            m.insert("Name".into(), engine.root.server.name.clone().into());
            m.insert("Version".into(), env!("CARGO_PKG_VERSION").into());
            m.insert(
                "State".into(),
                if server.maintenance.load(Relaxed) {
                    "Maintenance"
                } else {
                    "Running"
                }
                .into(),
            );
            m.insert(
                "UptimeSeconds".into(),
                server.started.elapsed().as_secs().into(),
            );
            m.insert("Units".into(), units.len().into());
            m.insert("Proxies".into(), proxies.len().into());
            m.insert("HotDeploy".into(), engine.hot_deploy.load(Relaxed).into());
            snapshot_counters(&mut m, total, false);
        }
        Bean::Manager => {
            let units = engine.snapshot();
            m.insert("Units".into(), json!(units.keys().collect::<Vec<_>>()));
            m.insert("UnitsOnDisk".into(), json!(engine.units_on_disk()));
            m.insert("HotDeploy".into(), engine.hot_deploy.load(Relaxed).into());
            m.insert(
                "DeploymentsDir".into(),
                engine.root.deployments_dir().display().to_string().into(),
            );
            let draining: Vec<Value> = engine
                .draining()
                .into_iter()
                .chain(engine.orphans_draining())
                .map(|d| json!({"unit": d.unit, "revision": d.revision, "in_flight": d.in_flight}))
                .collect();
            m.insert("Draining".into(), Value::Array(draining));
        }
        Bean::Transport(name) if server.transport(name).is_none() => {
            let l = engine.amqp.get(name).ok_or_else(gone)?;
            let state = if l.stopped.load(Relaxed) {
                "Stopped"
            } else if l.paused.load(Relaxed) {
                "Paused"
            } else {
                "Started"
            };
            m.insert("State".into(), state.into());
            m.insert("Kind".into(), "amqp".into());
            m.insert("Url".into(), l.url.clone().into());
            m.insert("Published".into(), l.published.load(Relaxed).into());
            m.insert(
                "PublishFailures".into(),
                l.publish_failures.load(Relaxed).into(),
            );
        }
        Bean::Transport(name) => {
            let t = server.transport(name).ok_or_else(gone)?;
            m.insert("State".into(), t.state().as_str().into());
            m.insert("Kind".into(), format!("{:?}", t.kind).to_lowercase().into());
            m.insert("Bind".into(), t.bind.to_string().into());
            m.insert("Connections".into(), t.gate.open().into());
            m.insert("MaxConnections".into(), t.gate.max().into());
            snapshot_counters(&mut m, t.stats.snapshot(), false);
        }
        Bean::Unit(name) => {
            let units = engine.snapshot();
            let slot = units.get(name).ok_or_else(gone)?;
            let state = if slot.current.is_none() {
                "Failed"
            } else if slot.control.paused.load(Relaxed) {
                "Paused"
            } else {
                "Active"
            };
            m.insert("State".into(), state.into());
            let rev = slot.current.as_ref();
            m.insert("Revision".into(), rev.map(|r| r.info.number).into());
            m.insert("Label".into(), rev.and_then(|r| r.label.clone()).into());
            m.insert("Hash".into(), rev.map(|r| r.hash.clone()).into());
            m.insert(
                "DeployedAt".into(),
                rev.map(|r| {
                    r.deployed_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0)
                })
                .into(),
            );
            m.insert(
                "DeployMillis".into(),
                rev.map(|r| {
                    crate::revision::millis(r.deploy_time.get().copied().unwrap_or_default())
                })
                .into(),
            );
            m.insert(
                "Degraded".into(),
                rev.map(|r| r.degraded).unwrap_or(false).into(),
            );
            // A pushed unit's disk files (if any) are not its source: never "modified".
            let modified = slot.origin == deployments::source::Origin::Disk
                && match (rev, engine.disk_hash(name)) {
                    (Some(r), Some(h)) => r.hash != h,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
            m.insert("ModifiedOnDisk".into(), modified.into());
            m.insert("Origin".into(), slot.origin.as_str().into());
            m.insert(
                "Draining".into(),
                Value::Array(
                    engine
                        .draining_of(name)
                        .into_iter()
                        .map(|d| json!({"revision": d.revision, "in_flight": d.in_flight}))
                        .collect(),
                ),
            );
            let empty = deployments::Unit::default();
            let u = rev.map(|r| &r.parsed.unit).unwrap_or(&empty);
            m.insert("Proxies".into(), names(u.proxies.iter().map(|p| &p.name)));
            m.insert(
                "Sequences".into(),
                names(u.sequences.iter().map(|p| &p.name)),
            );
            m.insert(
                "Endpoints".into(),
                names(u.endpoints.iter().map(|p| &p.name)),
            );
            m.insert("Tasks".into(), names(u.tasks.iter().map(|p| &p.name)));
            m.insert(
                "Consumers".into(),
                names(u.consumers.iter().map(|p| &p.name)),
            );
            let errors = slot
                .failed
                .clone()
                .unwrap_or_else(|| slot.last_errors.clone());
            m.insert(
                "LastErrors".into(),
                serde_json::to_value(errors).unwrap_or_default(),
            );
            let flags: serde_json::Map<String, Value> = rev
                .map(|r| {
                    r.info
                        .vars
                        .flags
                        .iter()
                        .map(|(n, (f, d))| (n.clone(), Value::Bool(f.value(*d))))
                        .collect()
                })
                .unwrap_or_default();
            m.insert("Flags".into(), Value::Object(flags));
            m.insert("GuardTripped".into(), slot.guard_trip.clone().into());
            let canary = slot.canary.as_ref().map(|c| {
                let mut total = crate::metrics::StatsSnapshot::default();
                let mut p99 = 0;
                for p in &c.revision.proxies {
                    let s = p.stats.snapshot();
                    total.requests += s.requests;
                    total.errors += s.errors;
                    total.rate += s.rate;
                    p99 = p99.max(p.stats.latency.quantile(0.99));
                }
                json!({
                    "revision": c.revision.info.number,
                    "percent": c.split.percent(),
                    "header": c.split.header.as_ref().map(|(n, v)| format!("{n}={}", v.to_str().unwrap_or(""))),
                    "requests": total.requests,
                    "errors": total.errors,
                    "rate": total.rate,
                    "p99_us": p99,
                    "running_ms": c.started.elapsed().as_millis() as u64,
                })
            });
            m.insert("Canary".into(), canary.unwrap_or(Value::Null));
            let mut total = crate::metrics::StatsSnapshot::default();
            for p in rev.map(|r| r.proxies.as_slice()).unwrap_or(&[]) {
                let s = p.stats.snapshot();
                total.requests += s.requests;
                total.rate += s.rate;
                total.errors += s.errors;
                total.in_flight += s.in_flight;
            }
            snapshot_counters(&mut m, total, false);
        }
        Bean::Proxy(unit, name) => {
            let units = engine.snapshot();
            let rev = units
                .get(unit)
                .and_then(|s| s.current.clone())
                .ok_or_else(gone)?;
            let p = rev
                .proxies
                .iter()
                .find(|p| p.name == *name)
                .ok_or_else(gone)?;
            m.insert("State".into(), p.proxy_state().as_str().into());
            m.insert("Path".into(), p.path.clone().into());
            m.insert(
                "Methods".into(),
                json!(p.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
            );
            m.insert("Transports".into(), json!(p.transports));
            m.insert(
                "Endpoint".into(),
                p.endpoint.as_ref().map(|e| e.name.clone()).into(),
            );
            m.insert("Revision".into(), rev.info.number.into());
            snapshot_counters(&mut m, p.stats.snapshot(), true);
        }
        Bean::Sequence(unit, name) => {
            let units = engine.snapshot();
            let rev = units
                .get(unit)
                .and_then(|s| s.current.clone())
                .ok_or_else(gone)?;
            let s = rev.parsed.unit.sequence(name).ok_or_else(gone)?;
            m.insert("Steps".into(), s.steps.len().into());
            let kinds: Vec<Value> = s
                .steps
                .iter()
                .map(|st| {
                    serde_json::to_value(st.get_ref())
                        .ok()
                        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                        .unwrap_or_default()
                        .into()
                })
                .collect();
            m.insert("StepKinds".into(), Value::Array(kinds));
        }
        Bean::Endpoint(unit, name) => {
            let units = engine.snapshot();
            let rev = units
                .get(unit)
                .and_then(|s| s.current.clone())
                .ok_or_else(gone)?;
            let e = rev.endpoints.get(name).ok_or_else(gone)?;
            m.insert(
                "State".into(),
                if e.maintenance.load(Relaxed) {
                    "Maintenance"
                } else {
                    "Active"
                }
                .into(),
            );
            m.insert(
                "Strategy".into(),
                serde_json::to_value(e.strategy).unwrap_or_default(),
            );
            m.insert(
                "TimeoutMillis".into(),
                (e.timeout.as_millis() as u64).into(),
            );
            let now = crate::endpoint::now_ms();
            let addrs: Vec<Value> = e
                .addresses()
                .iter()
                .map(|a| {
                    let s = a.stats.snapshot();
                    json!({
                        "url": a.url, "state": format!("{:?}", a.state()), "weight": a.weight,
                        "failures": a.consecutive_failures(),
                        "suspended_for_ms": a.suspended_until_ms().map(|u| u.saturating_sub(now)),
                        "requests": s.requests, "errors": s.errors,
                    })
                })
                .collect();
            m.insert("Addresses".into(), Value::Array(addrs));
            snapshot_counters(&mut m, e.stats.snapshot(), true);
        }
        Bean::Task(unit, name) => {
            let units = engine.snapshot();
            let slot = units.get(unit).ok_or_else(gone)?;
            let t = slot
                .tasks
                .iter()
                .find(|t| t.name == *name)
                .ok_or_else(gone)?;
            m.insert("State".into(), t.state_name().into());
            m.insert("EveryMillis".into(), (t.every.as_millis() as u64).into());
            m.insert("Sequence".into(), t.sequence.clone().into());
            m.insert("Runs".into(), t.runs.load(Relaxed).into());
            m.insert("Failures".into(), t.failures.load(Relaxed).into());
            let last = t.last_run_ms.load(Relaxed);
            m.insert(
                "LastRun".into(),
                if last == 0 { Value::Null } else { last.into() },
            );
            m.insert(
                "LastError".into(),
                t.last_error.lock().expect("task error").clone().into(),
            );
        }
        Bean::Consumer(unit, name) => {
            let units = engine.snapshot();
            let slot = units.get(unit).ok_or_else(gone)?;
            let c = slot.consumers.get(name).ok_or_else(gone)?;
            let (state, reason) = c.state();
            let b = c.binding();
            let def = slot
                .current
                .as_ref()
                .and_then(|r| r.parsed.unit.consumer(name).cloned());
            m.insert("State".into(), state.into());
            m.insert("Reason".into(), reason.into());
            m.insert("Kind".into(), b.kind().into());
            m.insert("Source".into(), b.source().into());
            m.insert(
                "Sequence".into(),
                def.as_ref()
                    .and_then(|d| d.sequence.as_ref().map(|s| s.get_ref().clone()))
                    .into(),
            );
            m.insert(
                "Endpoint".into(),
                def.as_ref()
                    .and_then(|d| d.endpoint.as_ref().map(|s| s.get_ref().clone()))
                    .into(),
            );
            let k = c.counters();
            m.insert("Received".into(), k.received.into());
            m.insert("Acked".into(), k.acked.into());
            m.insert("Retried".into(), k.retried.into());
            m.insert("DeadLettered".into(), k.dead_lettered.into());
            m.insert("Redelivered".into(), k.redelivered.into());
            m.insert("InFlight".into(), k.in_flight.into());
            m.insert("Reconnects".into(), k.reconnects.into());
            m.insert(
                "QueueDepth".into(),
                if k.queue_depth < 0 {
                    Value::Null
                } else {
                    k.queue_depth.into()
                },
            );
        }
    }
    Ok(m)
}

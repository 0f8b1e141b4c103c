//! The managed objects of DESIGN §6: naming, list metadata, attribute reads and writes, and
//! operations. Beans are not registered anywhere: they are derived on each request from the
//! running server (units, revisions, transports), so they can never go stale.

use crate::engine::{Change, Outcome, Source};
use crate::proxy::ProxyState;
use crate::server::Server;
use deployments::protocol::{MBeanInfo, ManagementError, ObjectName};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A bean as the code knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bean {
    Server,
    Manager,
    Transport(String),
    Unit(String),
    Proxy(String, String),
    Sequence(String, String),
    Endpoint(String, String),
    Task(String, String),
}

impl Bean {
    pub fn object_name(&self) -> ObjectName {
        match self {
            Bean::Server => ObjectName::new("esb", &[("type", "Server")]),
            Bean::Manager => ObjectName::new("esb", &[("type", "DeploymentManager")]),
            Bean::Transport(n) => ObjectName::new("esb", &[("type", "Transport"), ("name", n)]),
            Bean::Unit(n) => ObjectName::new("esb", &[("type", "Unit"), ("name", n)]),
            Bean::Proxy(u, n) => {
                ObjectName::new("esb", &[("type", "Proxy"), ("unit", u), ("name", n)])
            }
            Bean::Sequence(u, n) => {
                ObjectName::new("esb", &[("type", "Sequence"), ("unit", u), ("name", n)])
            }
            Bean::Endpoint(u, n) => {
                ObjectName::new("esb", &[("type", "Endpoint"), ("unit", u), ("name", n)])
            }
            Bean::Task(u, n) => {
                ObjectName::new("esb", &[("type", "Task"), ("unit", u), ("name", n)])
            }
        }
    }
}

/// Every bean of the running server.
pub async fn all(server: &Server) -> Vec<Bean> {
    let mut out = vec![Bean::Server, Bean::Manager];
    out.extend(
        server
            .transports
            .iter()
            .map(|t| Bean::Transport(t.name.clone())),
    );
    let units = server.engine.units.lock().await;
    for (name, slot) in units.iter() {
        out.push(Bean::Unit(name.clone()));
        if let Some(rev) = &slot.current {
            let u = &rev.parsed.unit;
            out.extend(
                u.proxies
                    .iter()
                    .map(|p| Bean::Proxy(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.sequences
                    .iter()
                    .map(|p| Bean::Sequence(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.endpoints
                    .iter()
                    .map(|p| Bean::Endpoint(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.tasks
                    .iter()
                    .map(|p| Bean::Task(name.clone(), p.name.get_ref().clone())),
            );
        }
    }
    out
}

/// The bean a (non-pattern) name designates, if it exists.
pub async fn resolve(server: &Server, name: &ObjectName) -> Result<Bean, ManagementError> {
    all(server)
        .await
        .into_iter()
        .find(|b| b.object_name() == *name)
        .ok_or_else(|| ManagementError::instance_not_found(name))
}

pub fn info(bean: &Bean) -> MBeanInfo {
    let counters = |i: MBeanInfo| {
        i.with_attr("Requests", "long", "requests served", false)
            .with_attr(
                "RequestsPerSecond",
                "long",
                "requests in the last second",
                false,
            )
            .with_attr(
                "Errors",
                "long",
                "requests answered with a 5xx status",
                false,
            )
            .with_attr("InFlight", "long", "requests in progress", false)
    };
    let latency = |i: MBeanInfo| {
        i.with_attr("P50Micros", "long", "median latency (µs)", false)
            .with_attr("P99Micros", "long", "99th percentile latency (µs)", false)
    };
    let s = "java.lang.String";
    let none: &[(&str, &str, &str)] = &[];
    let unit_arg = [("unit", s, "unit name")];
    match bean {
        Bean::Server => counters(MBeanInfo::new("The ESB server"))
            .with_attr("Name", s, "server name", false)
            .with_attr("Version", s, "esb version", false)
            .with_attr("State", s, "Running or Maintenance", false)
            .with_attr("UptimeSeconds", "long", "seconds since start", false)
            .with_attr("Units", "int", "units loaded", false)
            .with_attr("Proxies", "int", "proxies active", false)
            .with_attr(
                "HotDeploy",
                "boolean",
                "whether the hot deployer watches the deployments directory",
                true,
            )
            .with_op(
                "maintenance",
                &[(
                    "on",
                    "boolean",
                    "true: /health answers 503 so load balancers drain",
                )],
                "void",
                "server maintenance on/off",
            )
            .with_op(
                "restart",
                none,
                "java.lang.String",
                "warm restart: re-read esb.toml and rebind transports",
            ),
        Bean::Manager => MBeanInfo::new("Deploys, reloads and rolls back units")
            .with_attr("Units", "[Ljava.lang.String;", "units loaded", false)
            .with_attr(
                "UnitsOnDisk",
                "[Ljava.lang.String;",
                "unit directories on disk",
                false,
            )
            .with_attr("HotDeploy", "boolean", "hot deployer on/off", true)
            .with_attr("DeploymentsDir", s, "directory of the units", false)
            .with_attr(
                "Draining",
                "[Ljava.lang.Object;",
                "revisions still finishing requests",
                false,
            )
            .with_op(
                "load",
                &unit_arg,
                "java.lang.Object",
                "load a unit from disk",
            )
            .with_op("unload", &unit_arg, "java.lang.Object", "unload a unit")
            .with_op(
                "reload",
                &unit_arg,
                "java.lang.Object",
                "reload a unit from disk",
            )
            .with_op(
                "reloadAll",
                none,
                "[Ljava.lang.Object;",
                "reload every changed unit, load new, unload removed",
            )
            .with_op(
                "batch",
                &[("units", "[Ljava.lang.String;", "unit names")],
                "[Ljava.lang.Object;",
                "load/reload several units from disk, all-or-nothing, one swap",
            )
            .with_op(
                "unloadBatch",
                &[("units", "[Ljava.lang.String;", "unit names")],
                "[Ljava.lang.Object;",
                "unload several units at once",
            )
            .with_op(
                "deploy",
                &[
                    ("unit", s, "unit name"),
                    ("content", s, "TOML of unit.toml"),
                ],
                "java.lang.Object",
                "deploy a unit from content",
            )
            .with_op(
                "validate",
                &unit_arg,
                "java.lang.Object",
                "validate a unit's files on disk against the running server",
            )
            .with_op(
                "validateContent",
                &[
                    ("unit", s, "unit name"),
                    ("content", s, "TOML of unit.toml"),
                ],
                "java.lang.Object",
                "validate content",
            )
            .with_op(
                "diff",
                &unit_arg,
                "java.lang.Object",
                "what a reload from disk would change",
            )
            .with_op(
                "diffContent",
                &[
                    ("unit", s, "unit name"),
                    ("content", s, "TOML of unit.toml"),
                ],
                "java.lang.Object",
                "what deploying content would change",
            )
            .with_op(
                "history",
                &unit_arg,
                "[Ljava.lang.Object;",
                "revisions kept for rollback",
            )
            .with_op(
                "rollback",
                &unit_arg,
                "java.lang.Object",
                "re-activate the previous revision",
            )
            .with_op(
                "rollbackTo",
                &[
                    ("unit", s, "unit name"),
                    ("revision", "long", "revision number"),
                ],
                "java.lang.Object",
                "re-activate a revision from history",
            )
            .with_op(
                "setHotDeploy",
                &[("enabled", "boolean", "on/off")],
                "void",
                "switch the hot deployer",
            ),
        Bean::Transport(_) => counters(MBeanInfo::new("An HTTP(S) listener"))
            .with_attr("State", s, "Started, Paused or Stopped", false)
            .with_attr("Kind", s, "http or https", false)
            .with_attr("Bind", s, "listen address", false)
            .with_op(
                "pause",
                none,
                "void",
                "stop accepting; clients wait until resume",
            )
            .with_op("resume", none, "void", "accept again")
            .with_op(
                "stop",
                none,
                "void",
                "close the listener and release the port",
            )
            .with_op("start", none, "void", "bind the port again"),
        Bean::Unit(_) => counters(MBeanInfo::new("A deployment unit"))
            .with_attr("State", s, "Active, Paused or Failed", false)
            .with_attr("Revision", "long", "active revision", false)
            .with_attr("Label", s, "the unit's version label", false)
            .with_attr("Hash", s, "SHA-256 of the active revision's files", false)
            .with_attr(
                "DeployedAt",
                "long",
                "activation time (ms since epoch)",
                false,
            )
            .with_attr(
                "DeployMillis",
                "double",
                "how long building the revision took",
                false,
            )
            .with_attr(
                "Degraded",
                "boolean",
                "running the last-good copy because the files on disk are invalid",
                false,
            )
            .with_attr(
                "ModifiedOnDisk",
                "boolean",
                "files on disk differ from the active revision",
                false,
            )
            .with_attr(
                "Draining",
                "[Ljava.lang.Object;",
                "older revisions still finishing requests",
                false,
            )
            .with_attr("Proxies", "[Ljava.lang.String;", "proxy names", false)
            .with_attr("Sequences", "[Ljava.lang.String;", "sequence names", false)
            .with_attr("Endpoints", "[Ljava.lang.String;", "endpoint names", false)
            .with_attr("Tasks", "[Ljava.lang.String;", "task names", false)
            .with_attr(
                "LastErrors",
                "[Ljava.lang.Object;",
                "errors of the last rejected deploy",
                false,
            )
            .with_op("reload", none, "java.lang.Object", "reload from disk")
            .with_op("unload", none, "java.lang.Object", "unload")
            .with_op("pause", none, "void", "new requests get 503")
            .with_op(
                "pauseHold",
                &[(
                    "holdMillis",
                    "long",
                    "how long new requests wait for a resume",
                )],
                "void",
                "new requests wait, then 503",
            )
            .with_op(
                "resume",
                none,
                "void",
                "serve again, releasing held requests",
            )
            .with_op(
                "rollback",
                none,
                "java.lang.Object",
                "re-activate the previous revision",
            )
            .with_op(
                "rollbackTo",
                &[("revision", "long", "revision number")],
                "java.lang.Object",
                "re-activate a revision",
            )
            .with_op(
                "diff",
                none,
                "java.lang.Object",
                "what a reload would change",
            )
            .with_op(
                "validate",
                none,
                "java.lang.Object",
                "validate the files on disk",
            )
            .with_op("history", none, "[Ljava.lang.Object;", "revisions kept"),
        Bean::Proxy(..) => latency(counters(MBeanInfo::new("A proxy service")))
            .with_attr("State", s, "Active, Paused or Stopped", false)
            .with_attr("Path", s, "path prefix", false)
            .with_attr(
                "Methods",
                "[Ljava.lang.String;",
                "allowed methods (empty: any)",
                false,
            )
            .with_attr(
                "Transports",
                "[Ljava.lang.String;",
                "transports (empty: all)",
                false,
            )
            .with_attr("Endpoint", s, "default endpoint", false)
            .with_attr("Revision", "long", "unit revision", false)
            .with_op("pause", none, "void", "answer 503 with Retry-After")
            .with_op("resume", none, "void", "serve again")
            .with_op("stop", none, "void", "answer 404 as if not deployed")
            .with_op("start", none, "void", "serve again"),
        Bean::Sequence(..) => MBeanInfo::new("A mediation sequence")
            .with_attr("Steps", "int", "number of steps", false)
            .with_attr(
                "StepKinds",
                "[Ljava.lang.String;",
                "kind of each step",
                false,
            ),
        Bean::Endpoint(..) => latency(counters(MBeanInfo::new("A backend endpoint")))
            .with_attr("State", s, "Active or Maintenance", false)
            .with_attr("Strategy", s, "failover, round-robin or weighted", false)
            .with_attr("TimeoutMillis", "long", "exchange timeout", false)
            .with_attr(
                "Addresses",
                "[Ljava.lang.Object;",
                "addresses with state and counters",
                false,
            )
            .with_op(
                "pause",
                none,
                "void",
                "maintenance: fail fast into the fault sequence",
            )
            .with_op("resume", none, "void", "end maintenance")
            .with_op(
                "addAddress",
                &[("url", s, "http(s) URL")],
                "void",
                "add an address",
            )
            .with_op(
                "removeAddress",
                &[("url", s, "address URL")],
                "void",
                "remove an address",
            )
            .with_op(
                "suspendAddress",
                &[("url", s, "address URL")],
                "void",
                "take an address out of rotation",
            )
            .with_op(
                "activateAddress",
                &[("url", s, "address URL")],
                "void",
                "put an address back",
            ),
        Bean::Task(..) => MBeanInfo::new("A scheduled task")
            .with_attr("State", s, "Scheduled, Running or Paused", false)
            .with_attr("EveryMillis", "long", "period", false)
            .with_attr("Sequence", s, "sequence run", false)
            .with_attr("Runs", "long", "completed runs", false)
            .with_attr("Failures", "long", "failed runs", false)
            .with_attr("LastRun", "long", "last run (ms since epoch)", false)
            .with_attr("LastError", s, "error of the last run", false)
            .with_op("pause", none, "void", "skip scheduled runs")
            .with_op("resume", none, "void", "run on schedule again")
            .with_op("runNow", none, "void", "run once now"),
    }
}

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
            let units = engine.units.lock().await;
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
            let units = engine.units.lock().await;
            m.insert("Units".into(), json!(units.keys().collect::<Vec<_>>()));
            m.insert("UnitsOnDisk".into(), json!(engine.units_on_disk()));
            m.insert("HotDeploy".into(), engine.hot_deploy.load(Relaxed).into());
            m.insert(
                "DeploymentsDir".into(),
                engine.root.deployments_dir().display().to_string().into(),
            );
            let mut draining: Vec<Value> = units
                .iter()
                .flat_map(|(n, s)| s.draining.iter().map(move |d| json!({"unit": n, "revision": d.revision.info.number, "in_flight": d.revision.info.in_flight.load(Relaxed)})))
                .collect();
            draining.extend(
                engine
                    .orphans_draining()
                    .into_iter()
                    .map(|(u, r, f)| json!({"unit": u, "revision": r, "in_flight": f})),
            );
            m.insert("Draining".into(), Value::Array(draining));
        }
        Bean::Transport(name) => {
            let t = server.transport(name).ok_or_else(gone)?;
            m.insert("State".into(), t.state().as_str().into());
            m.insert("Kind".into(), format!("{:?}", t.kind).to_lowercase().into());
            m.insert("Bind".into(), t.bind.to_string().into());
            snapshot_counters(&mut m, t.stats.snapshot(), false);
        }
        Bean::Unit(name) => {
            let units = engine.units.lock().await;
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
                rev.map(|r| r.deploy_time.as_secs_f64() * 1000.0).into(),
            );
            m.insert(
                "Degraded".into(),
                rev.map(|r| r.degraded).unwrap_or(false).into(),
            );
            let on_disk = deployments::UnitSources::read_dir(&engine.unit_dir(name))
                .ok()
                .map(|s| s.content_hash());
            let modified = match (rev, on_disk) {
                (Some(r), Some(h)) => r.hash != h,
                (Some(_), None) => true,
                (None, _) => false,
            };
            m.insert("ModifiedOnDisk".into(), modified.into());
            m.insert("Draining".into(), Value::Array(slot.draining.iter().map(|d| json!({"revision": d.revision.info.number, "in_flight": d.revision.info.in_flight.load(Relaxed)})).collect()));
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
            let errors = slot
                .failed
                .clone()
                .unwrap_or_else(|| slot.last_errors.clone());
            m.insert(
                "LastErrors".into(),
                serde_json::to_value(errors).unwrap_or_default(),
            );
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
            let units = engine.units.lock().await;
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
            let units = engine.units.lock().await;
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
            let units = engine.units.lock().await;
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
            let units = engine.units.lock().await;
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
    }
    Ok(m)
}

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
    let old = server.engine.hot_deploy.swap(on, Relaxed);
    server
        .events
        .emit(crate::events::EventKind::HotDeploy { enabled: on });
    Ok(old.into())
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
            _ => crate::mgmt::restart(server)
                .await
                .map(Value::String)
                .map_err(failed),
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
                "deploy" => {
                    Ok(deploy(unit()?, Source::Content(arg_str(args, 1, "content")?)).await)
                }
                "validate" => Ok(validate(server, unit()?, Source::Disk).await),
                "validateContent" => Ok(validate(
                    server,
                    unit()?,
                    Source::Content(arg_str(args, 1, "content")?),
                )
                .await),
                "diff" => Ok(diff(server, unit()?, Source::Disk).await),
                "diffContent" => Ok(diff(
                    server,
                    unit()?,
                    Source::Content(arg_str(args, 1, "content")?),
                )
                .await),
                "history" => history(server, &unit()?).await.map_err(failed),
                "rollback" => Ok(deploy(unit()?, Source::Revision(None)).await),
                "rollbackTo" => Ok(deploy(
                    unit()?,
                    Source::Revision(Some(arg_u64(args, 1, "revision")?)),
                )
                .await),
                _ => {
                    let on = as_bool(&args[0]).ok_or_else(|| {
                        ManagementError::BadRequest("argument 1 (enabled) must be a boolean".into())
                    })?;
                    engine.hot_deploy.store(on, Relaxed);
                    server
                        .events
                        .emit(crate::events::EventKind::HotDeploy { enabled: on });
                    Ok(Value::Null)
                }
            }
        }
        Bean::Transport(t) => {
            let t = server
                .transport(t)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            match op {
                "pause" => t.pause().map_err(failed)?,
                "resume" => t.resume().map_err(failed)?,
                "stop" => t.stop().await,
                _ => t.start().await.map_err(failed)?,
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
                _ => {
                    let units = engine.units.lock().await;
                    let slot = units
                        .get(&u)
                        .ok_or_else(|| ManagementError::instance_not_found(&name))?;
                    let c = &slot.control;
                    match op {
                        "pause" | "pauseHold" => {
                            let hold = if op == "pauseHold" {
                                arg_u64(args, 0, "holdMillis")?
                            } else {
                                0
                            };
                            c.hold_ms.store(hold, Relaxed);
                            c.paused.store(true, Relaxed);
                            state(oname, "Paused");
                        }
                        _ => {
                            c.paused.store(false, Relaxed);
                            c.resumed.notify_waiters();
                            state(oname, "Active");
                        }
                    }
                    Ok(Value::Null)
                }
            }
        }
        Bean::Proxy(u, p) => {
            let units = engine.units.lock().await;
            let slot = units
                .get(u)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            let st = slot.control.proxy_state(p);
            let (from_ok, to): (&[ProxyState], ProxyState) = match op {
                "pause" => (
                    &[ProxyState::Active, ProxyState::Paused],
                    ProxyState::Paused,
                ),
                "resume" => (
                    &[ProxyState::Paused, ProxyState::Active],
                    ProxyState::Active,
                ),
                "stop" => (
                    &[ProxyState::Active, ProxyState::Paused, ProxyState::Stopped],
                    ProxyState::Stopped,
                ),
                _ => (
                    &[ProxyState::Stopped, ProxyState::Active],
                    ProxyState::Active,
                ),
            };
            let cur = ProxyState::from_u8(st.load(Relaxed));
            if !from_ok.contains(&cur) {
                let hint = if cur == ProxyState::Stopped {
                    "start it"
                } else {
                    "resume it"
                };
                return Err(failed(format!(
                    "proxy \"{p}\" is {}; {hint} instead",
                    cur.as_str()
                )));
            }
            st.store(to as u8, Relaxed);
            state(oname, to.as_str());
            Ok(Value::Null)
        }
        Bean::Sequence(..) => Err(ManagementError::no_such_operation(
            &name,
            op,
            std::iter::empty(),
        )),
        Bean::Endpoint(u, e) => {
            let units = engine.units.lock().await;
            let rev = units
                .get(u)
                .and_then(|s| s.current.clone())
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            let ep = rev
                .endpoints
                .get(e)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            match op {
                "pause" => {
                    ep.maintenance.store(true, Relaxed);
                    state(oname, "Maintenance");
                }
                "resume" => {
                    ep.maintenance.store(false, Relaxed);
                    state(oname, "Active");
                }
                _ => {
                    let url = arg_str(args, 0, "url")?;
                    match op {
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
                            ep.add_address(&url, 1).map_err(failed)?
                        }
                        "removeAddress" => ep.remove_address(&url).map_err(failed)?,
                        "suspendAddress" => ep.address(&url).map_err(failed)?.suspend(),
                        _ => ep.address(&url).map_err(failed)?.activate(),
                    }
                    state(format!("{oname} address {url}"), op);
                }
            }
            Ok(Value::Null)
        }
        Bean::Task(u, k) => {
            let units = engine.units.lock().await;
            let slot = units
                .get(u)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            let t = slot
                .tasks
                .iter()
                .find(|t| t.name == *k)
                .ok_or_else(|| ManagementError::instance_not_found(&name))?;
            match op {
                "pause" => t.paused.store(true, Relaxed),
                "resume" => t.paused.store(false, Relaxed),
                _ => t.run_now(),
            }
            state(oname, t.state_name());
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
            let d = deployments::diff::diff_units(
                &deployments::Unit {
                    name: unit.clone(),
                    ..Default::default()
                },
                &parsed.unit,
            );
            json!({"unit": unit, "diff": d, "text": d.to_string(), "new": true})
        }
        Err(errors) => json!({"unit": unit, "errors": errors}),
    }
}

async fn history(server: &Server, unit: &str) -> Result<Value, String> {
    let units = server.engine.units.lock().await;
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
                    "revision": r.info.number, "hash": r.hash, "label": r.label,
                    "deployed_at": r.deployed_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
                    "deploy_ms": r.deploy_time.as_secs_f64() * 1000.0,
                    "active": Some(r.info.number) == current, "degraded": r.degraded,
                })
            })
            .collect(),
    ))
}

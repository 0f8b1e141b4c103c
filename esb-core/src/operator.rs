//! Operator state that outlives restarts: paused/stopped/maintenance of the server, units,
//! proxies, endpoints, addresses, tasks and transports, addresses added or removed at
//! runtime, runtime flags an operator set, and paused or stopped consumers. After every management operation that succeeds, a snapshot of the live objects
//! is written to `state_dir/operator.json` (atomically, 0600); at start-up — a process
//! start or a warm restart — it is applied before anything is served. An unloaded unit's
//! state is not in the snapshot (an unload clears it); objects that no longer exist are
//! skipped when it is applied.

use crate::endpoint::AddressState;
use crate::engine::{AddressAction, Command, Run, TaskAction};
use crate::proxy::ProxyState;
use crate::server::Server;
use crate::transport::TransportState;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

pub const FILE: &str = "operator.json";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    #[serde(default)]
    pub maintenance: bool,
    /// Transports not `Started`: name → `Paused` | `Stopped`.
    #[serde(default)]
    pub transports: BTreeMap<String, String>,
    #[serde(default)]
    pub units: BTreeMap<String, UnitState>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub hold_ms: u64,
    /// Proxies not `Active`: name → `Paused` | `Stopped`.
    #[serde(default)]
    pub proxies: BTreeMap<String, String>,
    #[serde(default)]
    pub paused_tasks: BTreeSet<String>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointState>,
    /// Flags an operator set: name → value.
    #[serde(default)]
    pub flags: BTreeMap<String, bool>,
    /// Consumers an operator paused or stopped.
    #[serde(default)]
    pub paused_consumers: BTreeSet<String>,
    #[serde(default)]
    pub stopped_consumers: BTreeSet<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    #[serde(default)]
    pub maintenance: bool,
    /// Addresses added at runtime (not in the unit's definition).
    #[serde(default)]
    pub added: Vec<String>,
    /// Addresses of the definition removed at runtime.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Addresses an operator suspended (maintenance).
    #[serde(default)]
    pub suspended: Vec<String>,
}

impl UnitState {
    fn is_default(&self) -> bool {
        *self == UnitState::default()
    }
}

fn path(server: &Server) -> PathBuf {
    server.engine.root.state_dir().join(FILE)
}

/// The operator state of the live objects.
pub async fn snapshot(server: &Server) -> OperatorState {
    let mut s = OperatorState {
        maintenance: server.maintenance.load(Relaxed),
        ..OperatorState::default()
    };
    for t in &server.transports {
        let st = t.state();
        if st != TransportState::Started {
            s.transports.insert(t.name.clone(), st.as_str().to_owned());
        }
    }
    let units = server.engine.snapshot();
    for (name, slot) in units.iter() {
        let c = &slot.control;
        let mut u = UnitState {
            paused: c.paused.load(Relaxed),
            hold_ms: c.hold_ms.load(Relaxed),
            ..UnitState::default()
        };
        if !u.paused {
            u.hold_ms = 0;
        }
        for (p, st) in c.proxies.lock().expect("proxy states").iter() {
            let st = ProxyState::from_u8(st.load(Relaxed));
            if st != ProxyState::Active {
                u.proxies.insert(p.clone(), st.as_str().to_owned());
            }
        }
        for (t, paused) in c.paused_tasks.lock().expect("task states").iter() {
            if paused.load(Relaxed) {
                u.paused_tasks.insert(t.clone());
            }
        }
        for (f, flag) in c.flags.lock().expect("flags").iter() {
            if flag.is_pinned() {
                u.flags.insert(f.clone(), flag.value(false));
            }
        }
        for (name, consumer) in &slot.consumers {
            let (paused, stopped) = consumer.operator_state();
            if paused {
                u.paused_consumers.insert(name.clone());
            }
            if stopped {
                u.stopped_consumers.insert(name.clone());
            }
        }
        if let Some(rev) = &slot.current {
            for def in &rev.parsed.unit.endpoints {
                let Some(ep) = rev.endpoints.get(def.name.get_ref()) else {
                    continue;
                };
                let defined: Vec<&str> = def.addresses.iter().map(|a| a.get_ref().url()).collect();
                let live = ep.addresses();
                let e = EndpointState {
                    maintenance: ep.maintenance.load(Relaxed),
                    added: live
                        .iter()
                        .filter(|a| !defined.contains(&a.url.as_str()))
                        .map(|a| a.url.clone())
                        .collect(),
                    removed: defined
                        .iter()
                        .filter(|d| !live.iter().any(|a| a.url == **d))
                        .map(|d| d.to_string())
                        .collect(),
                    suspended: live
                        .iter()
                        .filter(|a| a.state() == AddressState::Maintenance)
                        .map(|a| a.url.clone())
                        .collect(),
                };
                if e != EndpointState::default() {
                    u.endpoints.insert(def.name.get_ref().clone(), e);
                }
            }
        }
        if !u.is_default() {
            s.units.insert(name.clone(), u);
        }
    }
    s
}

/// Writes the snapshot of the live objects (logged, never fatal: the change itself stands).
pub async fn save(server: &Server) {
    let s = snapshot(server).await;
    let bytes = serde_json::to_vec_pretty(&s).expect("operator state serializes");
    if let Err(e) = crate::fsx::write_private_atomic(&path(server), &bytes) {
        tracing::error!(
            path = %path(server).display(),
            "cannot persist operator state (it will not survive a restart): {e}"
        );
    }
}

/// The saved operator state; a damaged file is set aside and ignored.
pub fn load(server: &Server) -> OperatorState {
    let p = path(server);
    let Ok(bytes) = std::fs::read(&p) else {
        return OperatorState::default();
    };
    match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            let aside =
                p.with_extension(format!("json.damaged-{}", crate::events::epoch_ms() / 1000));
            let _ = std::fs::rename(&p, &aside);
            tracing::error!(path = %p.display(), moved_to = %aside.display(), "operator state is damaged and was set aside: {e}");
            OperatorState::default()
        }
    }
}

/// Applies saved operator state to the live objects (start-up, before serving).
pub async fn apply(server: &Server, s: &OperatorState) {
    server.maintenance.store(s.maintenance, Relaxed);
    for t in &server.transports {
        match s.transports.get(&t.name).map(String::as_str) {
            Some("Paused") => {
                let _ = t.pause();
            }
            Some("Stopped") => t.stop().await,
            _ => {}
        }
    }
    for (name, u) in &s.units {
        for command in commands(name, u) {
            // Objects that no longer exist are skipped.
            let _ = server.engine.control(command).await;
        }
    }
    tracing::info!(
        units = s.units.len(),
        transports = s.transports.len(),
        maintenance = s.maintenance,
        "operator state restored"
    );
}

/// The engine commands that bring one unit back to its saved operator state.
fn commands(unit: &str, u: &UnitState) -> Vec<Command> {
    let unit = || unit.to_owned();
    let mut out = Vec::new();
    if u.paused {
        out.push(Command::PauseUnit {
            unit: unit(),
            hold_ms: u.hold_ms,
        });
    }
    for (proxy, st) in &u.proxies {
        let run = match st.as_str() {
            "Paused" => Run::Pause,
            "Stopped" => Run::Stop,
            _ => continue,
        };
        out.push(Command::Proxy {
            unit: unit(),
            proxy: proxy.clone(),
            run,
        });
    }
    out.extend(u.paused_tasks.iter().map(|t| Command::Task {
        unit: unit(),
        task: t.clone(),
        action: TaskAction::Pause,
    }));
    out.extend(u.flags.iter().map(|(f, on)| Command::Flag {
        unit: unit(),
        flag: f.clone(),
        on: *on,
    }));
    for (consumers, run) in [
        (&u.paused_consumers, Run::Pause),
        (&u.stopped_consumers, Run::Stop),
    ] {
        out.extend(consumers.iter().map(|c| Command::Consumer {
            unit: unit(),
            consumer: c.clone(),
            run,
        }));
    }
    for (e, st) in &u.endpoints {
        out.push(Command::Maintenance {
            unit: unit(),
            endpoint: e.clone(),
            on: st.maintenance,
        });
        for (urls, action) in [
            (&st.added, AddressAction::Add),
            (&st.removed, AddressAction::Remove),
            (&st.suspended, AddressAction::Suspend),
        ] {
            out.extend(urls.iter().map(|url| Command::Address {
                unit: unit(),
                endpoint: e.clone(),
                url: url.clone(),
                action,
            }));
        }
    }
    out
}

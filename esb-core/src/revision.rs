//! One deployed revision of a unit: its sources, parsed model and runtime objects
//! (compiled sequences, endpoints with their pools, proxies). Built from a validated unit
//! before the swap; elements whose definition did not change are carried over from the
//! previous revision with their runtime state. Operator state lives in [`UnitControl`],
//! which outlives revisions until the unit is unloaded.

use crate::client::Clients;
use crate::endpoint::EndpointRuntime;
use crate::mediation::{compile_all, CompiledSequence};
use crate::metrics::Stats;
use crate::proxy::{ProxyRuntime, ProxyState};
use crate::template::UnitVars;
use deployments::{ParsedUnit, UnitSources};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// A runtime flag: its value, and whether an operator set it (then a new revision's
/// default does not override it).
#[derive(Debug, Default)]
pub struct Flag {
    value: AtomicBool,
    pinned: AtomicBool,
}

impl Flag {
    /// The value: the operator's if one set it, else the revision's default.
    pub fn value(&self, default: bool) -> bool {
        if self.is_pinned() {
            self.value.load(Relaxed)
        } else {
            default
        }
    }

    /// An operator's flip: kept across reloads and restarts.
    pub fn set(&self, on: bool) {
        self.value.store(on, Relaxed);
        self.pinned.store(true, Relaxed);
    }

    pub fn is_pinned(&self) -> bool {
        self.pinned.load(Relaxed)
    }
}

/// Operator state of a unit: survives reloads, cleared by an unload.
#[derive(Default)]
pub struct UnitControl {
    pub paused: AtomicBool,
    /// While paused, new requests wait up to this long (ms) for a resume; 0 rejects at once.
    pub hold_ms: AtomicU64,
    pub resumed: tokio::sync::Notify,
    pub proxies: Mutex<HashMap<String, Arc<AtomicU8>>>,
    pub paused_tasks: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// One lock per task name, held for the length of a run: runs of a task never overlap,
    /// whichever revision they belong to.
    pub task_runs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set while a deploy of the unit is in progress: its tasks start no new run.
    pub tasks_held: Arc<AtomicBool>,
    pub flags: Mutex<HashMap<String, Arc<Flag>>>,
}

impl UnitControl {
    pub fn proxy_state(&self, name: &str) -> Arc<AtomicU8> {
        self.proxies
            .lock()
            .expect("proxy states")
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(AtomicU8::new(ProxyState::Active as u8)))
            .clone()
    }

    /// The flag `name` (shared by every revision of the unit).
    pub fn flag(&self, name: &str) -> Arc<Flag> {
        self.flags
            .lock()
            .expect("flags")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn task_run_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.task_runs
            .lock()
            .expect("task locks")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn task_paused(&self, name: &str) -> Arc<AtomicBool> {
        self.paused_tasks
            .lock()
            .expect("task states")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }
}

/// What a request needs of its revision; held by proxies.
pub struct RevisionInfo {
    pub unit: String,
    pub number: u64,
    pub vars: UnitVars,
    /// Requests running on this revision; only changed through [`InFlight`] guards.
    pub in_flight: AtomicU64,
    pub control: Arc<UnitControl>,
    pub max_body: u64,
    /// Set once when a drain ends the revision's leftover requests.
    drain_end: tokio::sync::watch::Sender<Option<DrainEnd>>,
}

/// Why a draining revision's leftover requests were ended (answered 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// `[server] drain_timeout` passed.
    Timeout(Duration),
    /// An operator cancelled the drain (`cancelDrain`, `uterm drain cancel`).
    Cancelled,
}

impl DrainEnd {
    /// The value of the `reason` field of `revision_drained`.
    pub fn reason(self) -> &'static str {
        match self {
            DrainEnd::Timeout(_) => "timeout",
            DrainEnd::Cancelled => "cancelled",
        }
    }
}

/// One request in flight on a revision: counted from creation until dropped, however the
/// request ends (answered, failed, or abandoned by a client that went away).
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl RevisionInfo {
    pub fn new(
        unit: String,
        number: u64,
        vars: UnitVars,
        control: Arc<UnitControl>,
        max_body: u64,
    ) -> RevisionInfo {
        RevisionInfo {
            unit,
            number,
            vars,
            in_flight: AtomicU64::new(0),
            control,
            max_body,
            drain_end: tokio::sync::watch::channel(None).0,
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// Ends every request still running on this revision (each answers 503 naming the
    /// drain); returns how many there were. Requests that start later end at once.
    pub fn end_requests(&self, why: DrainEnd) -> u64 {
        let left = self.in_flight.load(Relaxed);
        self.drain_end.send_if_modified(|v| {
            let first = v.is_none();
            if first {
                *v = Some(why);
            }
            first
        });
        left
    }

    /// Resolves when the revision's leftover requests are ended (never, for a revision
    /// that drains on its own or is still current).
    pub fn drain_ended(&self) -> impl std::future::Future<Output = DrainEnd> + Send + 'static {
        let mut rx = self.drain_end.subscribe();
        async move {
            let ended = rx.wait_for(Option::is_some).await.map(|v| *v);
            match ended {
                Ok(why) => why.expect("waited for Some"),
                // The revision is gone: nothing can end it any more.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

pub struct Revision {
    pub info: Arc<RevisionInfo>,
    pub hash: String,
    pub label: Option<String>,
    pub sources: UnitSources,
    pub parsed: ParsedUnit,
    pub proxies: Vec<Arc<ProxyRuntime>>,
    pub endpoints: BTreeMap<String, Arc<EndpointRuntime>>,
    pub sequences: HashMap<String, Arc<CompiledSequence>>,
    pub deployed_at: SystemTime,
    /// Set once by the engine when the transaction commits: the one duration reported.
    pub deploy_time: OnceLock<Duration>,
    /// Activated from the last-good copy because the files on disk are invalid.
    pub degraded: bool,
}

/// What history keeps of a revision: enough to list it and to roll back to it (rollback
/// validates and builds the sources again), not its runtime objects — so kept revisions
/// of big units do not hold their proxies, pools and compiled sequences in memory.
#[derive(Clone)]
pub struct Kept {
    pub number: u64,
    pub hash: String,
    pub label: Option<String>,
    pub deployed_at: SystemTime,
    pub deploy_time: Duration,
    pub degraded: bool,
    pub sources: UnitSources,
}

impl Kept {
    pub fn of(rev: &Revision) -> Kept {
        Kept {
            number: rev.info.number,
            hash: rev.hash.clone(),
            label: rev.label.clone(),
            deployed_at: rev.deployed_at,
            deploy_time: rev.deploy_time.get().copied().unwrap_or_default(),
            degraded: rev.degraded,
            sources: rev.sources.clone(),
        }
    }
}

/// A duration as milliseconds rounded to 0.1 ms: the one way deploy durations are shown
/// (outcome, event, `DeployMillis`, history), so they are equal everywhere.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn same<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

pub struct BuildInput<'a> {
    pub parsed: ParsedUnit,
    pub sources: UnitSources,
    pub number: u64,
    pub control: Arc<UnitControl>,
    pub previous: Option<&'a Revision>,
    pub clients: &'a Clients,
    pub links: &'a crate::amqp::AmqpLinks,
    pub max_body: u64,
    pub degraded: bool,
}

/// Builds every runtime object of a revision. Fails without side effects.
pub fn build(input: BuildInput<'_>) -> Result<Revision, String> {
    let unit = &input.parsed.unit;
    let hash = input.sources.content_hash();
    let info = Arc::new(RevisionInfo::new(
        unit.name.clone(),
        input.number,
        UnitVars {
            name: unit.name.clone(),
            version: unit.label.clone().unwrap_or_default(),
            revision: input.number.to_string(),
            flags: unit
                .flags
                .iter()
                .map(|(n, d)| (n.clone(), (input.control.flag(n), *d)))
                .collect(),
        },
        input.control.clone(),
        input.max_body,
    ));
    let prev = input.previous;
    // The previous revision's elements by name: lookups stay constant-time in big units.
    let old_endpoints: HashMap<&str, &deployments::model::Endpoint> = prev
        .map(|p| {
            p.parsed
                .unit
                .endpoints
                .iter()
                .map(|e| (e.name.get_ref().as_str(), e))
                .collect()
        })
        .unwrap_or_default();
    let old_proxies: HashMap<&str, (&deployments::model::Proxy, &Arc<ProxyRuntime>)> = prev
        .map(|p| {
            p.parsed
                .unit
                .proxies
                .iter()
                .zip(p.proxies.iter())
                .map(|(d, r)| (d.name.get_ref().as_str(), (d, r)))
                .collect()
        })
        .unwrap_or_default();
    let mut endpoints = BTreeMap::new();
    for def in &unit.endpoints {
        let name = def.name.get_ref();
        let reused = prev.and_then(|p| {
            let old_def = old_endpoints.get(name.as_str())?;
            same(*old_def, def)
                .then(|| p.endpoints.get(name).cloned())
                .flatten()
        });
        let ep = match reused {
            Some(ep) => ep,
            None => {
                let ca = def.ca_file.as_ref().map(|f| match &input.sources.origin {
                    Some(dir) => dir.join(f.get_ref()),
                    None => f.get_ref().into(),
                });
                let client = input
                    .clients
                    .get(def.connect_timeout, ca)
                    .map_err(|e| format!("endpoint \"{name}\": {e}"))?;
                let ep = EndpointRuntime::build(def, client)?;
                if let Some(old) = prev.and_then(|p| p.endpoints.get(name)) {
                    ep.maintenance.store(old.maintenance.load(Relaxed), Relaxed);
                }
                Arc::new(ep)
            }
        };
        endpoints.insert(name.clone(), ep);
    }
    let ep_map: HashMap<String, Arc<EndpointRuntime>> = endpoints
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let sequences = compile_all(unit, &ep_map, input.links)?;
    let seq = |r: &Option<deployments::Spanned<String>>| {
        r.as_ref().and_then(|n| sequences.get(n.get_ref()).cloned())
    };
    let mut proxies = Vec::new();
    for def in &unit.proxies {
        let name = def.name.get_ref();
        let stats = old_proxies
            .get(name.as_str())
            .filter(|(old, _)| same(*old, def))
            .map(|(_, rt)| rt.stats.clone())
            .unwrap_or_else(|| Arc::new(Stats::default()));
        proxies.push(Arc::new(ProxyRuntime {
            name: name.clone(),
            path: deployments::validate::normalize_path(def.path.get_ref()),
            methods: def
                .methods
                .iter()
                .filter_map(|m| m.get_ref().to_ascii_uppercase().parse().ok())
                .collect(),
            transports: def.transports.iter().map(|t| t.get_ref().clone()).collect(),
            info: info.clone(),
            in_seq: seq(&def.sequence),
            out_seq: seq(&def.out_sequence),
            fault_seq: seq(&def.fault_sequence),
            endpoint: def
                .endpoint
                .as_ref()
                .and_then(|e| ep_map.get(e.get_ref()).cloned()),
            state: input.control.proxy_state(name),
            stats,
            canary: Default::default(),
        }));
    }
    Ok(Revision {
        info,
        hash,
        label: unit.label.clone(),
        sources: input.sources,
        parsed: input.parsed,
        proxies,
        endpoints,
        sequences,
        deployed_at: SystemTime::now(),
        deploy_time: OnceLock::new(),
        degraded: input.degraded,
    })
}

//! One deployed revision of a unit: its sources, parsed model and runtime objects
//! (compiled sequences, endpoints with their pools, proxies). Built from a validated unit
//! before the swap; elements whose definition did not change are carried over from the
//! previous revision with their runtime state. Operator state lives in [`UnitControl`],
//! which outlives revisions until the unit is unloaded.

use crate::client::Clients;
pub use crate::control::{DrainEnd, InFlight, ProxyState, RevisionInfo, UnitControl};
use crate::endpoint::EndpointRuntime;
use crate::mediation::{compile_all, CompiledSequence};
use crate::metrics::Stats;
use crate::proxy::ProxyRuntime;
pub use crate::template::Flag;
use crate::template::UnitVars;
use deployments::diff::UnitDiff;
use deployments::{ParsedUnit, UnitSources};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

pub struct Revision {
    pub info: Arc<RevisionInfo>,
    pub hash: String,
    pub label: Option<String>,
    pub sources: Arc<UnitSources>,
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
    pub sources: Arc<UnitSources>,
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

pub struct BuildInput<'a> {
    pub parsed: ParsedUnit,
    pub sources: UnitSources,
    pub number: u64,
    pub control: Arc<UnitControl>,
    /// The running revision and the diff from it to this one: elements the diff leaves
    /// alone are carried over with their runtime state (pools, suspension, counters).
    pub previous: Option<(&'a Revision, &'a UnitDiff)>,
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
    let prev = input.previous.map(|(p, _)| p);
    // What the diff touched, and the previous proxies by name: lookups stay constant-time
    // in big units.
    let touched = |kind: &'static str| -> HashSet<&str> {
        input
            .previous
            .map(|(_, d)| d.touched(kind).collect())
            .unwrap_or_default()
    };
    let (changed_endpoints, changed_proxies) = (touched("endpoint"), touched("proxy"));
    let old_proxies: HashMap<&str, &Arc<ProxyRuntime>> = prev
        .map(|p| p.proxies.iter().map(|r| (r.name.as_str(), r)).collect())
        .unwrap_or_default();
    let endpoints = build_endpoints(&input, &changed_endpoints)?;
    let ep_map: HashMap<String, Arc<EndpointRuntime>> = endpoints
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let sequences = compile_all(unit, &ep_map, input.links)?;
    let seq = |r: &Option<deployments::Spanned<String>>| {
        r.as_ref().and_then(|n| sequences.get(n.get_ref()).cloned())
    };
    // Most proxies of a unit name the same transports and methods: one shared list each.
    let mut methods = Shared::default();
    let mut transports = Shared::default();
    let mut proxies = Vec::with_capacity(unit.proxies.len());
    for def in &unit.proxies {
        let name = def.name.get_ref();
        let stats = old_proxies
            .get(name.as_str())
            .filter(|_| !changed_proxies.contains(name.as_str()))
            .map(|rt| rt.stats.clone())
            .unwrap_or_else(|| Arc::new(Stats::default()));
        proxies.push(Arc::new(ProxyRuntime {
            name: name.clone(),
            path: deployments::validate::normalize_path(def.path.get_ref()),
            methods: methods.get(
                def.methods
                    .iter()
                    .filter_map(|m| m.get_ref().to_ascii_uppercase().parse().ok())
                    .collect(),
            ),
            transports: transports
                .get(def.transports.iter().map(|t| t.get_ref().clone()).collect()),
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
        sources: Arc::new(input.sources),
        parsed: input.parsed,
        proxies,
        endpoints,
        sequences,
        deployed_at: SystemTime::now(),
        deploy_time: OnceLock::new(),
        degraded: input.degraded,
    })
}

/// Equal lists built for many proxies, kept once.
struct Shared<T>(HashMap<Vec<T>, Arc<[T]>>);

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared(HashMap::new())
    }
}

impl<T: Clone + Eq + std::hash::Hash> Shared<T> {
    fn get(&mut self, list: Vec<T>) -> Arc<[T]> {
        if let Some(shared) = self.0.get(&list) {
            return shared.clone();
        }
        let shared: Arc<[T]> = list.as_slice().into();
        self.0.insert(list, shared.clone());
        shared
    }
}

/// The endpoints of a revision: those the diff leaves alone are the running revision's
/// (pools, suspension, counters and all); the others are built, keeping maintenance.
fn build_endpoints(
    input: &BuildInput<'_>,
    changed: &HashSet<&str>,
) -> Result<BTreeMap<String, Arc<EndpointRuntime>>, String> {
    let prev = input.previous.map(|(p, _)| p);
    let mut endpoints = BTreeMap::new();
    for def in &input.parsed.unit.endpoints {
        let name = def.name.get_ref();
        let reused = prev
            .filter(|_| !changed.contains(name.as_str()))
            .and_then(|p| p.endpoints.get(name).cloned());
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
    Ok(endpoints)
}

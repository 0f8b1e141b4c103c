//! Attribute values of the beans, read from the running server into the protocol's typed
//! attribute structs (one per bean kind).

use super::Bean;
use crate::metrics::StatsSnapshot;
use crate::server::Server;
use deployments::protocol::attrs::{
    AddressInfo, AmqpLinkAttrs, Attrs, CanaryInfo, ConsumerAttrs, Counters, Draining,
    EndpointAttrs, Latency, ManagerAttrs, ProxyAttrs, Rate, SequenceAttrs, ServerAttrs, TaskAttrs,
    TransportAttrs, UnitAttrs,
};
use deployments::protocol::ManagementError;
use serde_json::{Map, Value};
use std::sync::atomic::Ordering::Relaxed;

fn counters(s: &StatsSnapshot) -> Counters {
    Counters {
        requests: Some(s.requests),
        requests_per_second: Some(Rate(s.rate as f64)),
        errors: Some(s.errors),
        in_flight: Some(s.in_flight),
    }
}

fn latency(s: &StatsSnapshot) -> Latency {
    Latency {
        p50_micros: Some(s.p50_us),
        p99_micros: Some(s.p99_us),
    }
}

/// The sum of several counters (latency is not summed).
fn total(snapshots: impl IntoIterator<Item = StatsSnapshot>) -> StatsSnapshot {
    let mut total = StatsSnapshot::default();
    for s in snapshots {
        total.requests += s.requests;
        total.rate += s.rate;
        total.errors += s.errors;
        total.in_flight += s.in_flight;
    }
    total
}

fn names<'a>(it: impl Iterator<Item = &'a deployments::Spanned<String>>) -> Vec<String> {
    it.map(|n| n.get_ref().clone()).collect()
}

/// The `State` of an AMQP link.
pub(super) fn amqp_state(l: &crate::amqp::AmqpLink) -> String {
    if l.stopped.load(Relaxed) {
        "Stopped"
    } else if l.paused.load(Relaxed) {
        "Paused"
    } else {
        "Started"
    }
    .into()
}

/// Every attribute of a bean, as a read answers them.
pub async fn read_all(server: &Server, bean: &Bean) -> Result<Map<String, Value>, ManagementError> {
    read(server, bean).await.map(|a| a.to_map())
}

/// Every attribute of a bean.
pub async fn read(server: &Server, bean: &Bean) -> Result<Attrs, ManagementError> {
    let attrs = match bean {
        Bean::Server => server_attrs(server),
        Bean::Manager => manager(server),
        Bean::Transport(name) => transport(server, name),
        Bean::Unit(name) => unit(server, name).map(|u| Attrs::Unit(Box::new(u))),
        Bean::Proxy(unit, name) => proxy(server, unit, name),
        Bean::Sequence(unit, name) => sequence(server, unit, name),
        Bean::Endpoint(unit, name) => endpoint(server, unit, name),
        Bean::Task(unit, name) => task(server, unit, name),
        Bean::Consumer(unit, name) => consumer(server, unit, name),
        Bean::Cluster => super::cluster::attrs(server),
    };
    attrs.ok_or_else(|| ManagementError::instance_not_found(&bean.object_name()))
}

/// The server bean.
fn server_attrs(server: &Server) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let proxies = units
        .values()
        .filter_map(|s| s.current.as_ref())
        .map(|r| r.proxies.len())
        .sum();
    let state = if server.maintenance.load(Relaxed) {
        "Maintenance"
    } else {
        "Running"
    };
    Some(Attrs::Server(ServerAttrs {
        name: engine.root.server.name.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        state: state.into(),
        uptime_seconds: server.started.elapsed().as_secs(),
        units: units.len(),
        proxies,
        hot_deploy: engine.hot_deploy.load(Relaxed),
        counters: counters(&total(server.transports.iter().map(|t| t.stats.snapshot()))),
    }))
}

/// The deployment manager.
fn manager(server: &Server) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let draining = engine
        .draining()
        .into_iter()
        .chain(engine.orphans_draining())
        .map(|d| Draining {
            unit: Some(d.unit),
            revision: d.revision,
            in_flight: d.in_flight,
        })
        .collect();
    Some(Attrs::Manager(ManagerAttrs {
        units: units.keys().cloned().collect(),
        units_on_disk: engine.units_on_disk(),
        hot_deploy: engine.hot_deploy.load(Relaxed),
        deployments_dir: engine.root.deployments_dir().display().to_string(),
        draining,
    }))
}

/// An HTTP(S) listener or an AMQP link.
fn transport(server: &Server, name: &str) -> Option<Attrs> {
    let Some(t) = server.transport(name) else {
        let l = server.engine.amqp.get(name)?;
        return Some(Attrs::AmqpLink(AmqpLinkAttrs {
            state: amqp_state(l),
            kind: "amqp".into(),
            url: l.url.clone(),
            published: l.published.load(Relaxed),
            publish_failures: l.publish_failures.load(Relaxed),
        }));
    };
    Some(Attrs::Transport(TransportAttrs {
        state: t.state().as_str().into(),
        kind: format!("{:?}", t.kind).to_lowercase(),
        bind: t.bind.to_string(),
        connections: t.gate.open(),
        max_connections: t.gate.max(),
        counters: counters(&t.stats.snapshot()),
    }))
}

/// A proxy of a unit's running revision.
fn proxy(server: &Server, unit: &str, name: &str) -> Option<Attrs> {
    let units = server.engine.snapshot();
    let rev = units.get(unit)?.current.clone()?;
    let p = rev.proxies.iter().find(|p| p.name == *name)?;
    let stats = p.stats.snapshot();
    Some(Attrs::Proxy(ProxyAttrs {
        state: p.proxy_state().as_str().into(),
        path: p.path.clone(),
        methods: p.methods.iter().map(|m| m.as_str().to_owned()).collect(),
        transports: p.transports.to_vec(),
        endpoint: p.endpoint.as_ref().map(|e| e.name.clone()),
        revision: rev.info.number,
        counters: counters(&stats),
        latency: latency(&stats),
    }))
}

/// A sequence of a unit's running revision.
fn sequence(server: &Server, unit: &str, name: &str) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let rev = units.get(unit).and_then(|s| s.current.clone())?;
    let s = rev.parsed.unit.sequence(name)?;
    let kinds = s
        .steps
        .iter()
        .map(|st| {
            serde_json::to_value(st.get_ref())
                .ok()
                .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap_or_default()
        })
        .collect();
    Some(Attrs::Sequence(SequenceAttrs {
        steps: s.steps.len(),
        step_kinds: kinds,
    }))
}

/// An endpoint of a unit's running revision, with its addresses.
fn endpoint(server: &Server, unit: &str, name: &str) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let rev = units.get(unit).and_then(|s| s.current.clone())?;
    let e = rev.endpoints.get(name)?;
    let now = crate::endpoint::now_ms();
    let addresses = e
        .addresses()
        .iter()
        .map(|a| {
            let s = a.stats.snapshot();
            AddressInfo {
                url: a.url.clone(),
                state: format!("{:?}", a.state()),
                weight: a.weight,
                failures: a.consecutive_failures(),
                suspended_for_ms: a.suspended_until_ms().map(|u| u.saturating_sub(now)),
                requests: s.requests,
                errors: s.errors,
            }
        })
        .collect();
    let state = if e.maintenance.load(Relaxed) {
        "Maintenance"
    } else {
        "Active"
    };
    let stats = e.stats.snapshot();
    Some(Attrs::Endpoint(EndpointAttrs {
        state: state.into(),
        strategy: e.strategy,
        timeout_millis: e.timeout.as_millis() as u64,
        addresses,
        counters: counters(&stats),
        latency: latency(&stats),
    }))
}

/// A scheduled task of a unit.
fn task(server: &Server, unit: &str, name: &str) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let slot = units.get(unit)?;
    let t = slot.tasks.iter().find(|t| t.name == *name)?;
    let last = t.last_run_ms.load(Relaxed);
    let last_error = t.last_error.lock().expect("task error").clone();
    Some(Attrs::Task(TaskAttrs {
        state: t.state_name().into(),
        every_millis: t.every.as_millis() as u64,
        sequence: t.sequence.clone(),
        runs: t.runs.load(Relaxed),
        failures: t.failures.load(Relaxed),
        last_run: (last != 0).then_some(last),
        last_error,
    }))
}

/// A consumer of a unit.
fn consumer(server: &Server, unit: &str, name: &str) -> Option<Attrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let slot = units.get(unit)?;
    let c = slot.consumers.get(name)?;
    let (state, reason) = c.state();
    let b = c.binding();
    let def = slot
        .current
        .as_ref()
        .and_then(|r| r.parsed.unit.consumer(name).cloned());
    let k = c.counters();
    Some(Attrs::Consumer(ConsumerAttrs {
        state: state.into(),
        reason,
        kind: b.kind().into(),
        source: b.source(),
        sequence: def
            .as_ref()
            .and_then(|d| d.sequence.as_ref().map(|s| s.get_ref().clone())),
        endpoint: def
            .as_ref()
            .and_then(|d| d.endpoint.as_ref().map(|s| s.get_ref().clone())),
        received: k.received,
        acked: k.acked,
        retried: k.retried,
        dead_lettered: k.dead_lettered,
        redelivered: k.redelivered,
        in_flight: k.in_flight,
        reconnects: k.reconnects,
        queue_depth: u64::try_from(k.queue_depth).ok(),
    }))
}

/// The attributes of unit `name`, if it is loaded.
fn unit(server: &Server, name: &str) -> Option<UnitAttrs> {
    let engine = &server.engine;
    let units = engine.snapshot();
    let slot = units.get(name)?;
    let state = if slot.current.is_none() {
        "Failed"
    } else if slot.control.paused.load(Relaxed) {
        "Paused"
    } else {
        "Active"
    };
    let rev = slot.current.as_ref();
    // A pushed unit's disk files (if any) are not its source: never "modified".
    let modified = slot.origin == deployments::source::Origin::Disk
        && match (rev, engine.disk_hash(name)) {
            (Some(r), Some(h)) => r.hash != h,
            (Some(_), None) => true,
            (None, _) => false,
        };
    let empty = deployments::Unit::default();
    let u = rev.map(|r| &r.parsed.unit).unwrap_or(&empty);
    let canary = slot.canary.as_ref().map(|c| {
        let stats: Vec<_> = c
            .revision
            .proxies
            .iter()
            .map(|p| p.stats.snapshot())
            .collect();
        let p99 = c
            .revision
            .proxies
            .iter()
            .map(|p| p.stats.latency.quantile(0.99))
            .max()
            .unwrap_or(0);
        let t = total(stats);
        CanaryInfo {
            revision: c.revision.info.number,
            percent: c.split.percent(),
            header: c
                .split
                .header
                .as_ref()
                .map(|(n, v)| format!("{n}={}", v.to_str().unwrap_or(""))),
            requests: t.requests,
            errors: t.errors,
            rate: t.rate,
            p99_us: p99,
            running_ms: c.started.elapsed().as_millis() as u64,
        }
    });
    let flags = rev
        .map(|r| {
            r.info
                .vars
                .flags
                .iter()
                .map(|(n, (f, d))| (n.clone(), f.value(*d)))
                .collect()
        })
        .unwrap_or_default();
    let proxies = rev.map(|r| r.proxies.as_slice()).unwrap_or(&[]);
    Some(UnitAttrs {
        state: state.into(),
        revision: rev.map(|r| r.info.number),
        label: rev.and_then(|r| r.label.clone()),
        hash: rev.map(|r| r.hash.clone()),
        deployed_at: rev.map(|r| epoch_ms(r.deployed_at)),
        deploy_millis: rev
            .map(|r| crate::revision::millis(r.deploy_time.get().copied().unwrap_or_default())),
        degraded: rev.map(|r| r.degraded).unwrap_or(false),
        modified_on_disk: modified,
        origin: slot.origin.as_str().into(),
        draining: engine
            .draining_of(name)
            .into_iter()
            .map(|d| Draining {
                unit: None,
                revision: d.revision,
                in_flight: d.in_flight,
            })
            .collect(),
        proxies: names(u.proxies.iter().map(|p| &p.name)),
        sequences: names(u.sequences.iter().map(|p| &p.name)),
        endpoints: names(u.endpoints.iter().map(|p| &p.name)),
        tasks: names(u.tasks.iter().map(|p| &p.name)),
        consumers: names(u.consumers.iter().map(|p| &p.name)),
        last_errors: slot
            .failed
            .clone()
            .unwrap_or_else(|| slot.last_errors.clone()),
        flags,
        canary,
        guard_tripped: slot.guard_trip.clone(),
        counters: counters(&total(proxies.iter().map(|p| p.stats.snapshot()))),
    })
}

/// Milliseconds since the epoch (0 before it).
pub(super) fn epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

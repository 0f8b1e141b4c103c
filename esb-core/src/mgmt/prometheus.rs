//! `/metrics`: the same counters as the beans, in Prometheus text exposition format 0.0.4,
//! plus deployment outcomes and durations (fed from the typed events), unit health gauges,
//! task runs and connections per transport. Names follow the conventions: `_total` for
//! counters, `_seconds` for durations, one HELP and TYPE line per family.

use crate::engine::UnitView;
use crate::metrics::Stats;
use crate::server::Server;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    lines: Vec<String>,
}

fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        lines: Vec::new(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Adds requests/errors/in-flight/latency samples for one object.
fn stats(fams: &mut [Family; 4], prefix_labels: &str, s: &Stats) {
    let snap = s.snapshot();
    fams[0].lines.push(format!(
        "{}{} {}",
        fams[0].name, prefix_labels, snap.requests
    ));
    fams[1]
        .lines
        .push(format!("{}{} {}", fams[1].name, prefix_labels, snap.errors));
    fams[2].lines.push(format!(
        "{}{} {}",
        fams[2].name, prefix_labels, snap.in_flight
    ));
    let base = prefix_labels.trim_end_matches('}');
    let sep = if base.len() > 1 { "," } else { "" };
    for (q, v) in [("0.5", snap.p50_us), ("0.99", snap.p99_us)] {
        fams[3].lines.push(format!(
            "{}{base}{sep}quantile=\"{q}\"}} {}",
            fams[3].name,
            v as f64 / 1e6
        ));
    }
    fams[3].lines.push(format!(
        "{}_sum{} {}",
        fams[3].name,
        prefix_labels,
        s.latency_sum_us.load(Relaxed) as f64 / 1e6
    ));
    fams[3].lines.push(format!(
        "{}_count{} {}",
        fams[3].name, prefix_labels, snap.requests
    ));
}

fn quartet(kind: &'static str) -> [Family; 4] {
    let (r, e, i, l) = match kind {
        "proxy" => (
            "esb_proxy_requests_total",
            "esb_proxy_errors_total",
            "esb_proxy_in_flight",
            "esb_proxy_latency_seconds",
        ),
        "endpoint" => (
            "esb_endpoint_requests_total",
            "esb_endpoint_errors_total",
            "esb_endpoint_in_flight",
            "esb_endpoint_latency_seconds",
        ),
        _ => (
            "esb_transport_requests_total",
            "esb_transport_errors_total",
            "esb_transport_in_flight",
            "esb_transport_latency_seconds",
        ),
    };
    [
        family(r, "counter", "Requests handled."),
        family(e, "counter", "Requests answered with a 5xx status."),
        family(i, "gauge", "Requests in progress."),
        family(l, "summary", "Latency in seconds."),
    ]
}

pub async fn render(server: &Server) -> String {
    let units = UnitFamilies::of(server);
    let all = server_families(server)
        .into_iter()
        .chain(transport_families(server))
        .chain(worker_families())
        .chain(units.proxies)
        .chain(units.endpoints)
        .chain([units.revision, units.paused, units.addr_up])
        .chain(units.health)
        .chain(units.tasks)
        .chain(deploy_families(&server.events.deploys.snapshot()))
        .chain(units.consumers);
    let mut out = String::new();
    for f in all {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            f.name, f.help, f.name, f.kind
        );
        for l in f.lines {
            let _ = writeln!(out, "{l}");
        }
    }
    if let Some(node) = &server.cluster {
        out.push_str(&node.metrics());
    }
    out
}

fn server_families(server: &Server) -> Vec<Family> {
    let mut server_fams = vec![
        family("esb_up", "gauge", "1 while the server runs."),
        family("esb_maintenance", "gauge", "1 in server maintenance."),
        family("esb_uptime_seconds", "gauge", "Seconds since start."),
        family(
            "esb_backend_connections_opened_total",
            "counter",
            "Connections opened to backends.",
        ),
        family(
            "esb_backend_connections_adopted_total",
            "counter",
            "Idle backend connections taken over from the process a binary upgrade replaced.",
        ),
    ];
    server_fams[0].lines.push("esb_up 1".into());
    server_fams[1].lines.push(format!(
        "esb_maintenance {}",
        server.maintenance.load(Relaxed) as u8
    ));
    server_fams[2].lines.push(format!(
        "esb_uptime_seconds {}",
        server.started.elapsed().as_secs()
    ));
    let (opened, adopted) = server.engine.clients().connections();
    server_fams[3]
        .lines
        .push(format!("esb_backend_connections_opened_total {opened}"));
    server_fams[4]
        .lines
        .push(format!("esb_backend_connections_adopted_total {adopted}"));
    server_fams
}

/// Requests and connections of every transport.
fn transport_families(server: &Server) -> Vec<Family> {
    let mut transports = quartet("transport");
    for t in &server.transports {
        stats(
            &mut transports,
            &labels(&[("transport", &t.name)]),
            &t.stats,
        );
    }
    let mut conns = vec![
        family(
            "esb_transport_connections_total",
            "counter",
            "Connections accepted.",
        ),
        family(
            "esb_transport_connections_open",
            "gauge",
            "Connections accepted and not yet closed.",
        ),
        family(
            "esb_transport_connections_refused_total",
            "counter",
            "Connections closed without being served (accept errors, failed TLS handshakes).",
        ),
        family(
            "esb_transport_connections_adopted_total",
            "counter",
            "Client connections taken over, open, from the process a binary upgrade replaced.",
        ),
    ];
    for t in &server.transports {
        let l = labels(&[("transport", &t.name)]);
        let c = &t.conns;
        for (f, v) in conns.iter_mut().zip([
            c.accepted.load(Relaxed),
            c.open(),
            c.refused.load(Relaxed),
            c.adopted.load(Relaxed),
        ]) {
            f.lines.push(format!("{}{l} {v}", f.name));
        }
    }
    transports.into_iter().chain(conns).collect()
}

/// Client connections per data-plane worker thread.
fn worker_families() -> Vec<Family> {
    let mut fams = vec![
        family(
            "esb_worker_connections_open",
            "gauge",
            "Client connections a data-plane worker thread serves.",
        ),
        family(
            "esb_worker_connections_total",
            "counter",
            "Client connections handed to a data-plane worker thread.",
        ),
    ];
    for (i, (open, served)) in crate::workers::connections().into_iter().enumerate() {
        let l = labels(&[("worker", &i.to_string())]);
        for (f, v) in fams.iter_mut().zip([open as u64, served]) {
            f.lines.push(format!("{}{l} {v}", f.name));
        }
    }
    fams
}

/// The families of what runs in units, read from the engine's published view.
struct UnitFamilies {
    proxies: [Family; 4],
    endpoints: [Family; 4],
    revision: Family,
    paused: Family,
    addr_up: Family,
    consumers: [Family; 8],
    health: [Family; 3],
    tasks: [Family; 3],
}

impl UnitFamilies {
    fn of(server: &Server) -> UnitFamilies {
        let mut f = UnitFamilies::new();
        for (name, slot) in server.engine.snapshot().iter() {
            f.consumers(name, slot);
            f.health(name, slot, server.engine.draining_of(name).len());
            f.tasks(name, slot);
            f.unit(name, slot);
            if let Some(rev) = &slot.current {
                f.objects(name, rev);
            }
        }
        f
    }

    fn new() -> UnitFamilies {
        UnitFamilies {
            proxies: quartet("proxy"),
            endpoints: quartet("endpoint"),
            revision: family(
                "esb_unit_revision",
                "gauge",
                "Active revision of each unit (0: failed).",
            ),
            paused: family("esb_unit_paused", "gauge", "1 when the unit is paused."),
            addr_up: family(
                "esb_address_up",
                "gauge",
                "1 when the address is in rotation.",
            ),
            consumers: [
                family(
                    "esb_consumer_received_total",
                    "counter",
                    "Messages (files) taken by a consumer.",
                ),
                family(
                    "esb_consumer_acked_total",
                    "counter",
                    "Messages acknowledged (files moved to done).",
                ),
                family(
                    "esb_consumer_retried_total",
                    "counter",
                    "Failed attempts tried again.",
                ),
                family(
                    "esb_consumer_dead_lettered_total",
                    "counter",
                    "Messages dead-lettered (files moved to failed).",
                ),
                family(
                    "esb_consumer_redelivered_total",
                    "counter",
                    "Messages received with the redelivered flag (files resumed).",
                ),
                family(
                    "esb_consumer_in_flight",
                    "gauge",
                    "Messages being processed.",
                ),
                family(
                    "esb_consumer_queue_depth",
                    "gauge",
                    "Messages (files) waiting, when known.",
                ),
                family(
                    "esb_consumer_connected",
                    "gauge",
                    "1 while the consumer is consuming.",
                ),
            ],
            health: [
                family(
                    "esb_unit_failed",
                    "gauge",
                    "1 when the unit could not start at all (no valid files, no last-good copy).",
                ),
                family(
                    "esb_unit_degraded",
                    "gauge",
                    "1 when the unit runs its last-good copy because its files are invalid.",
                ),
                family(
                    "esb_unit_draining_revisions",
                    "gauge",
                    "Replaced revisions of the unit still finishing in-flight requests.",
                ),
            ],
            tasks: [
                family("esb_task_runs_total", "counter", "Task runs finished."),
                family(
                    "esb_task_failures_total",
                    "counter",
                    "Task runs that failed.",
                ),
                family(
                    "esb_task_run_duration_seconds",
                    "summary",
                    "Time spent in task runs.",
                ),
            ],
        }
    }

    fn consumers(&mut self, name: &str, slot: &UnitView) {
        for (cname, c) in &slot.consumers {
            let l = labels(&[("unit", name), ("consumer", cname)]);
            let k = c.counters();
            let running = matches!(c.state().0, "Connected" | "Running") as u8;
            let values = [
                k.received as i64,
                k.acked as i64,
                k.retried as i64,
                k.dead_lettered as i64,
                k.redelivered as i64,
                k.in_flight as i64,
                k.queue_depth,
                running as i64,
            ];
            for (f, v) in self.consumers.iter_mut().zip(values) {
                if v >= 0 {
                    f.lines.push(format!("{}{l} {v}", f.name));
                }
            }
        }
    }

    fn health(&mut self, name: &str, slot: &UnitView, draining: usize) {
        let l = labels(&[("unit", name)]);
        let rev = slot.current.as_ref();
        for (f, v) in self.health.iter_mut().zip([
            slot.failed.is_some() as usize,
            rev.is_some_and(|r| r.degraded) as usize,
            draining,
        ]) {
            f.lines.push(format!("{}{l} {v}", f.name));
        }
    }

    fn tasks(&mut self, name: &str, slot: &UnitView) {
        let tasks = &mut self.tasks;
        for t in &slot.tasks {
            let l = labels(&[("unit", name), ("task", &t.name)]);
            let runs = t.runs.load(Relaxed);
            tasks[0]
                .lines
                .push(format!("esb_task_runs_total{l} {runs}"));
            tasks[1].lines.push(format!(
                "esb_task_failures_total{l} {}",
                t.failures.load(Relaxed)
            ));
            tasks[2].lines.push(format!(
                "esb_task_run_duration_seconds_sum{l} {}",
                t.run_micros.load(Relaxed) as f64 / 1e6
            ));
            tasks[2]
                .lines
                .push(format!("esb_task_run_duration_seconds_count{l} {runs}"));
        }
    }

    fn unit(&mut self, name: &str, slot: &UnitView) {
        self.revision.lines.push(format!(
            "esb_unit_revision{} {}",
            labels(&[("unit", name)]),
            slot.revision().unwrap_or(0)
        ));
        self.paused.lines.push(format!(
            "esb_unit_paused{} {}",
            labels(&[("unit", name)]),
            slot.control.paused.load(Relaxed) as u8
        ));
    }

    /// Proxies, endpoints and addresses of the unit's running revision.
    fn objects(&mut self, name: &str, rev: &crate::revision::Revision) {
        for p in &rev.proxies {
            stats(
                &mut self.proxies,
                &labels(&[("unit", name), ("proxy", &p.name)]),
                &p.stats,
            );
        }
        for (ename, e) in &rev.endpoints {
            stats(
                &mut self.endpoints,
                &labels(&[("unit", name), ("endpoint", ename)]),
                &e.stats,
            );
            for a in e.addresses().iter() {
                let up = a.state() == crate::endpoint::AddressState::Active;
                self.addr_up.lines.push(format!(
                    "esb_address_up{} {}",
                    labels(&[("unit", name), ("endpoint", ename), ("address", &a.url)]),
                    up as u8
                ));
            }
        }
    }
}

/// Deployment outcomes per unit and the activation duration histogram.
fn deploy_families(d: &crate::metrics::DeployInner) -> Vec<Family> {
    let mut outcomes = family(
        "esb_deploys_total",
        "counter",
        "Deployment outcomes per unit: activated, unchanged, rejected, failed, unloaded.",
    );
    for ((unit, outcome), n) in &d.outcomes {
        outcomes.lines.push(format!(
            "esb_deploys_total{} {n}",
            labels(&[("unit", unit), ("outcome", outcome)])
        ));
    }
    let mut duration = family(
        "esb_deploy_duration_seconds",
        "histogram",
        "Time from the start of a deployment transaction until its commit begins, per unit activated.",
    );
    let mut cumulative = 0;
    for (i, bound) in crate::metrics::DEPLOY_BUCKETS.iter().enumerate() {
        cumulative += d.buckets[i];
        duration.lines.push(format!(
            "esb_deploy_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        ));
    }
    duration.lines.push(format!(
        "esb_deploy_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        d.count
    ));
    duration
        .lines
        .push(format!("esb_deploy_duration_seconds_sum {}", d.sum_seconds));
    duration
        .lines
        .push(format!("esb_deploy_duration_seconds_count {}", d.count));
    vec![outcomes, duration]
}

//! `/metrics`: the same counters as the beans, in Prometheus text exposition format 0.0.4.

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
    let mut transports = quartet("transport");
    for t in &server.transports {
        stats(
            &mut transports,
            &labels(&[("transport", &t.name)]),
            &t.stats,
        );
    }
    let mut proxies = quartet("proxy");
    let mut endpoints = quartet("endpoint");
    let mut revision = family(
        "esb_unit_revision",
        "gauge",
        "Active revision of each unit (0: failed).",
    );
    let mut paused = family("esb_unit_paused", "gauge", "1 when the unit is paused.");
    let mut addr_up = family(
        "esb_address_up",
        "gauge",
        "1 when the address is in rotation.",
    );
    let mut consumer_fams = [
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
    ];
    {
        let units = server.engine.units.lock().await;
        for (name, slot) in units.iter() {
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
                for (f, v) in consumer_fams.iter_mut().zip(values) {
                    if v >= 0 {
                        f.lines.push(format!("{}{l} {v}", f.name));
                    }
                }
            }
            let rev = slot.current.as_ref();
            revision.lines.push(format!(
                "esb_unit_revision{} {}",
                labels(&[("unit", name)]),
                rev.map(|r| r.info.number).unwrap_or(0)
            ));
            paused.lines.push(format!(
                "esb_unit_paused{} {}",
                labels(&[("unit", name)]),
                slot.control.paused.load(Relaxed) as u8
            ));
            let Some(rev) = rev else { continue };
            for p in &rev.proxies {
                stats(
                    &mut proxies,
                    &labels(&[("unit", name), ("proxy", &p.name)]),
                    &p.stats,
                );
            }
            for (ename, e) in &rev.endpoints {
                stats(
                    &mut endpoints,
                    &labels(&[("unit", name), ("endpoint", ename)]),
                    &e.stats,
                );
                for a in e.addresses().iter() {
                    let up = a.state() == crate::endpoint::AddressState::Active;
                    addr_up.lines.push(format!(
                        "esb_address_up{} {}",
                        labels(&[("unit", name), ("endpoint", ename), ("address", &a.url)]),
                        up as u8
                    ));
                }
            }
        }
    }
    let mut server_fams = vec![
        family("esb_up", "gauge", "1 while the server runs."),
        family("esb_maintenance", "gauge", "1 in server maintenance."),
        family("esb_uptime_seconds", "gauge", "Seconds since start."),
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
    let mut out = String::new();
    let all = server_fams
        .into_iter()
        .chain(transports)
        .chain(proxies)
        .chain(endpoints)
        .chain([revision, paused, addr_up])
        .chain(consumer_fams);
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
    out
}

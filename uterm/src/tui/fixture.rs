//! Test data: the sample configuration's server as one snapshot would read it (three units,
//! one of them with a draining revision, a unit on disk that is not loaded, traffic on a few
//! proxies, three consumers), a few events, and an [`App`] that has seen them, at a fixed time.

use std::time::Duration;

use deployments::protocol::Response;
use serde_json::{json, Value};

use crate::conn::sse::Event;
use crate::tui::action::Action;
use crate::tui::app::{App, Options};
use crate::tui::model::{snapshot, Snapshot};

/// The fixed clock of the fixture (2024-05-01 12:13:04 UTC).
pub const NOW: u64 = 1_714_565_584_000;

fn ok(v: Value) -> Response {
    Response::ok_at(Value::Null, v, NOW / 1000)
}

/// A snapshot; `rate` scales the request rates (to make rate history) and grows the
/// consumers' counters.
pub fn snap(rate: f64) -> Snapshot {
    let r = |x: f64| json!(x * rate);
    // Counters that grow faster as `rate` rises from 0 to 1 over the fixture's ten
    // refreshes, a second apart: `k·i²` after refresh `i`.
    let c = |k: f64, base: f64| json!((base + k * (rate * 9.0).powi(2)).round());
    let rs = vec![
        ok(
            json!({"Name": "esb-local", "Version": "0.1.0", "State": "Running",
            "UptimeSeconds": 7_380, "Units": 3, "Proxies": 5, "Requests": 12_345,
            "Errors": 7, "InFlight": 2, "HotDeploy": true, "RequestsPerSecond": r(42.0)}),
        ),
        ok(
            json!({"Units": ["default", "external-services", "internal-services"],
            "UnitsOnDisk": ["billing", "default", "external-services", "internal-services"],
            "HotDeploy": true, "Draining": []}),
        ),
        ok(json!({
            "esb:name=default,type=Unit": {"State": "Active", "Revision": 3, "Label": "1.0.0",
                "Hash": "c13fae86db0b74c83709b2b6", "DeployedAt": NOW - 7_200_000,
                "DeployMillis": 0.4, "Degraded": false, "ModifiedOnDisk": false, "Draining": [],
                "Proxies": ["echo", "health"], "Endpoints": [], "Tasks": ["heartbeat"],
                "Sequences": ["echo-back"], "Requests": 1200, "Errors": 0, "InFlight": 0,
                "LastErrors": [], "RequestsPerSecond": r(12.0)},
            "esb:name=external-services,type=Unit": {"State": "Paused", "Revision": 1,
                "Label": "2.3.1", "Hash": "521e3ec4b5438f7f", "DeployedAt": NOW - 300_000,
                "DeployMillis": 28.7, "Degraded": false, "ModifiedOnDisk": true, "Draining": [],
                "Proxies": ["quotes"], "Endpoints": ["partner-quotes"], "Tasks": [],
                "Requests": 0, "Errors": 0, "InFlight": 0, "LastErrors": [],
                "RequestsPerSecond": 0},
            "esb:name=internal-services,type=Unit": {"State": "Active", "Revision": 4,
                "Label": "1.0.0", "Hash": "a09a1fbcf2e26eaa", "DeployedAt": NOW - 60_000,
                "DeployMillis": 3.1, "Degraded": false, "ModifiedOnDisk": false,
                "Draining": [{"revision": 3, "in_flight": 2}], "Proxies": ["orders"],
                "Endpoints": ["orders-backend"], "Tasks": [], "Requests": 11_145, "Errors": 7,
                "InFlight": 2, "LastErrors": [], "RequestsPerSecond": r(30.0)}
        })),
        ok(json!({
            "esb:name=echo,type=Proxy,unit=default": {"State": "Active", "Path": "/echo",
                "Methods": [], "Transports": ["http-8280"], "Endpoint": null, "Revision": 3,
                "Requests": 200, "Errors": 0, "InFlight": 0, "P50Micros": 120, "P99Micros": 850,
                "RequestsPerSecond": r(2.0)},
            "esb:name=health,type=Proxy,unit=default": {"State": "Active",
                "Path": "/health-check", "Methods": ["GET"], "Transports": [], "Endpoint": null,
                "Revision": 3, "Requests": 1000, "Errors": 0, "InFlight": 0, "P50Micros": 90,
                "P99Micros": 400, "RequestsPerSecond": r(10.0)},
            "esb:name=quotes,type=Proxy,unit=external-services": {"State": "Stopped",
                "Path": "/partners/quote", "Methods": ["POST"], "Transports": ["http-8281"],
                "Endpoint": "partner-quotes", "Revision": 1, "Requests": 0, "Errors": 0,
                "InFlight": 0, "P50Micros": 0, "P99Micros": 0, "RequestsPerSecond": 0},
            "esb:name=orders,type=Proxy,unit=internal-services": {"State": "Active",
                "Path": "/orders", "Methods": ["GET", "POST"], "Transports": ["http-8280"],
                "Endpoint": "orders-backend", "Revision": 4, "Requests": 11_145, "Errors": 7,
                "InFlight": 2, "P50Micros": 2_100, "P99Micros": 31_500,
                "RequestsPerSecond": r(30.0)}
        })),
        ok(json!({
            "esb:name=partner-quotes,type=Endpoint,unit=external-services": {
                "State": "Maintenance", "Strategy": "failover", "TimeoutMillis": 3000,
                "Addresses": [
                    {"url": "http://127.0.0.1:9101", "state": "Active", "weight": 1,
                     "failures": 0, "suspended_for_ms": null, "requests": 0, "errors": 0},
                    {"url": "http://127.0.0.1:9102", "state": "Suspended", "weight": 1,
                     "failures": 3, "suspended_for_ms": 4000, "requests": 3, "errors": 3}],
                "Requests": 3, "Errors": 3, "InFlight": 0, "P50Micros": 0, "P99Micros": 0,
                "RequestsPerSecond": 0},
            "esb:name=orders-backend,type=Endpoint,unit=internal-services": {
                "State": "Active", "Strategy": "round-robin", "TimeoutMillis": 5000,
                "Addresses": [{"url": "http://127.0.0.1:9000", "state": "Active", "weight": 1,
                    "failures": 0, "suspended_for_ms": null, "requests": 11_145, "errors": 7}],
                "Requests": 11_145, "Errors": 7, "InFlight": 2, "P50Micros": 1_900,
                "P99Micros": 30_000, "RequestsPerSecond": r(30.0)}
        })),
        ok(json!({
            "esb:name=http-8280,type=Transport": {"State": "Started", "Kind": "http",
                "Bind": "127.0.0.1:8280", "Requests": 12_345, "Errors": 7, "InFlight": 2,
                "RequestsPerSecond": r(42.0)},
            "esb:name=http-8281,type=Transport": {"State": "Paused", "Kind": "http",
                "Bind": "127.0.0.1:8281", "Requests": 0, "Errors": 0, "InFlight": 0,
                "RequestsPerSecond": 0}
        })),
        ok(json!({
            "esb:name=heartbeat,type=Task,unit=default": {"State": "Scheduled",
                "EveryMillis": 60000, "Sequence": "heartbeat-log", "Runs": 120, "Failures": 0,
                "LastRun": NOW - 20_000, "LastError": null}
        })),
        ok(json!({
            "esb:name=echo-back,type=Sequence,unit=default": {"Steps": 2,
                "StepKinds": ["set_header", "respond"]}
        })),
        ok(json!({
            "esb:name=drop-in,type=Consumer,unit=default": {"State": "Paused", "Reason": "",
                "Kind": "file", "Source": "/var/esb/inbox/drop", "Sequence": "echo-back",
                "Endpoint": null, "Received": 40, "Acked": 38, "Retried": 1,
                "DeadLettered": 1, "Redelivered": 0, "InFlight": 0, "Reconnects": 0,
                "QueueDepth": 12},
            "esb:name=quotes-in,type=Consumer,unit=external-services": {
                "State": "Disconnected", "Reason": "cannot connect to amqp://127.0.0.1:5672",
                "Kind": "amqp", "Source": "rabbit/quotes.in", "Sequence": null,
                "Endpoint": "partner-quotes", "Received": 0, "Acked": 0, "Retried": 0,
                "DeadLettered": 0, "Redelivered": 0, "InFlight": 0, "Reconnects": 4,
                "QueueDepth": null},
            "esb:name=orders-in,type=Consumer,unit=internal-services": {"State": "Connected",
                "Reason": "", "Kind": "amqp", "Source": "rabbit/orders.in", "Sequence": null,
                "Endpoint": "orders-backend", "Received": c(5.0, 2_000.0),
                "Acked": c(4.5, 1_900.0), "Retried": 42, "DeadLettered": 3, "Redelivered": 45,
                "InFlight": 4, "Reconnects": 1, "QueueDepth": 130}
        })),
    ];
    snapshot(&rs, NOW).expect("fixture snapshot")
}

pub fn event(id: u64, data: Value) -> Event {
    Event {
        id: Some(id.to_string()),
        kind: data["type"].as_str().unwrap_or("message").to_string(),
        data,
    }
}

/// An app that has seen ten refreshes of rising traffic and a few events.
pub fn app(width: u16, height: u16) -> App {
    let mut a = App::new(
        Options {
            url: "http://127.0.0.1:9900".into(),
            read_only: false,
            refresh: Duration::from_secs(1),
        },
        NOW,
    );
    a.update(Action::Resize { width, height });
    for i in 0..10 {
        let mut s = snap(i as f64 / 9.0);
        s.taken_ms = NOW - (9 - i) * 1000;
        a.update(Action::Snapshot(Box::new(s)));
    }
    a.update(Action::EventsLive);
    let t = NOW - 90_000;
    for (i, e) in [
        json!({"type": "server_started", "name": "esb-local", "time": t}),
        json!({"type": "unit_activated", "unit": "internal-services", "revision": 4,
            "label": "1.0.0", "duration_ms": 3.1, "changes": "+0 ~1 -0", "time": t + 30_000}),
        json!({"type": "unit_rejected", "unit": "default", "time": t + 40_000, "errors": [
            {"file": "conf/deployments/default/unit.toml", "line": 15, "col": 12,
             "element": "proxy \"echo\"", "message": "sequence \"echo-bak\" not found"}]}),
        json!({"type": "state_changed", "object": "esb:name=quotes,type=Proxy,unit=external-services",
            "state": "Stopped", "time": t + 60_000}),
    ]
    .into_iter()
    .enumerate()
    {
        a.update(Action::Event(Box::new(event(i as u64 + 1, e))));
    }
    a.update(Action::Tick { now_ms: NOW });
    a
}

/// A cluster of three nodes and two cluster units as `status` answers it: `esb-a` synced,
/// `esb-b` failed to apply `orders` revision 3 (it serves revision 2) and still applies
/// `quotes`, `esb-c` down (its lease expired).
pub fn cluster_status() -> deployments::protocol::cluster::ClusterStatus {
    use deployments::protocol::cluster::{ClusterStatus, UnitReport, UnitStatus};
    use deployments::protocol::cluster::{StoreHealth, StoreState};
    use std::collections::BTreeMap;
    let unit = |name: &str, revision: u64, hash: &str, label: Option<&str>| UnitStatus {
        unit: name.into(),
        revision,
        hash: hash.into(),
        label: label.map(str::to_owned),
        by: "esb-a".into(),
        at_ms: NOW - 60_000,
        paused: false,
    };
    let units = vec![
        unit("orders", 3, "5f2c9a71be04d3e8", Some("1.3.0")),
        unit("quotes", 7, "0b9e44d1c2a7f613", None),
    ];
    let report = |revision: u64, hash: &str, error: Option<&str>| UnitReport {
        revision,
        hash: hash.into(),
        error: error.map(str::to_owned),
        paused: false,
        applied_at_ms: NOW - 59_000,
    };
    let both = BTreeMap::from([
        ("orders".to_string(), report(3, "5f2c9a71be04d3e8", None)),
        ("quotes".to_string(), report(7, "0b9e44d1c2a7f613", None)),
    ]);
    let failed = BTreeMap::from([
        (
            "orders".to_string(),
            report(
                3,
                "5f2c9a71be04d3e8",
                Some("proxy \"orders\": transport \"jms\" is not configured on this node"),
            ),
        ),
        ("quotes".to_string(), report(6, "77aa01c3d9e2b450", None)),
    ]);
    let reports = BTreeMap::from([
        ("esb-a".to_string(), (true, 118, both.clone())),
        ("esb-b".to_string(), (true, 117, failed)),
        ("esb-c".to_string(), (false, 112, both)),
    ]);
    ClusterStatus {
        cluster: "shop".into(),
        node: "esb-a".into(),
        store: StoreHealth {
            state: StoreState::Up,
            endpoints: vec!["127.0.0.1:2379".into()],
            detail: None,
            applied_revision: 118,
        },
        nodes: ClusterStatus::matrix(&units, &reports),
        units,
    }
}

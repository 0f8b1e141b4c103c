use super::*;
use crate::present::output::Style;
use serde_json::json;

const NOW: u64 = 1_714_565_584_000;

fn attrs(v: Value) -> Attrs {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn row(name: &str, v: Value) -> Row {
    (ObjectName::parse(name).unwrap(), attrs(v))
}

fn plain(o: &Output) -> String {
    o.render(Style::PLAIN)
}

#[test]
fn status_page() {
    let server = attrs(json!({
        "Name": "esb-local", "Version": "0.1.0", "State": "Running", "UptimeSeconds": 7384,
        "Units": 2, "Proxies": 3, "Requests": 1234, "Errors": 2, "InFlight": 0, "HotDeploy": true
    }));
    let dm = attrs(json!({
        "Units": ["default", "orders"], "UnitsOnDisk": ["default", "orders", "billing"],
        "Draining": [{"unit": "orders", "revision": 3, "in_flight": 2}]
    }));
    let units = vec![
        row(
            "esb:name=default,type=Unit",
            json!({
                "State": "Active", "Revision": 1, "Label": "1.0.0", "Hash": "sha256:e58a950ba650ffff",
                "DeployedAt": NOW - 120_000, "Proxies": ["health", "echo"], "Endpoints": [], "Tasks": ["heartbeat"],
                "Requests": 12, "Errors": 0, "InFlight": 0, "Degraded": false, "ModifiedOnDisk": false
            }),
        ),
        row(
            "esb:name=orders,type=Unit",
            json!({
                "State": "Paused", "Revision": 4, "Label": null, "Hash": "abc",
                "DeployedAt": NOW - 7_200_000, "Proxies": ["list"], "Endpoints": ["backend"], "Tasks": [],
                "Requests": 1222, "Errors": 2, "InFlight": 0, "Degraded": true, "ModifiedOnDisk": true,
                "Draining": [{"revision": 3, "in_flight": 2}]
            }),
        ),
    ];
    let out = status(&server, &dm, &units, NOW);
    let text = plain(&out);
    let expected = "\
esb-local  Running  up 2h 03m  version 0.1.0  hot deploy on
units 2  proxies 3  requests 1234  errors 2  in flight 0

UNIT     STATE   REV  LABEL  HASH          DEPLOYED  PROXIES  ENDPOINTS  TASKS  REQUESTS  ERRORS  IN-FLIGHT  NOTES
default  Active    1  1.0.0  e58a950ba650  2m ago          2          0      1        12       0          0
orders   Paused    4         abc           2h ago          1          1      0      1222       2          0  degraded (last-good), modified on disk, draining r3 (2 in flight)

on disk, not loaded: billing  (load UNIT)
draining: orders revision 3 (2 in flight)
";
    assert_eq!(text, expected);
    assert_eq!(out.json["units"][1]["name"], "orders");
    assert_eq!(out.json["server"]["Name"], "esb-local");
    // Colour only marks states; alignment is unchanged.
    let c = out.render(Style::COLOR);
    assert!(c.contains("\x1b[33mPaused\x1b[0m"));
}

#[test]
fn proxy_endpoint_transport_and_task_tables() {
    let proxies = vec![row(
        "esb:type=Proxy,unit=orders,name=list",
        json!({"State": "Stopped", "Path": "/orders", "Methods": [], "Transports": ["http-8280"],
               "Endpoint": "backend", "Requests": 5, "Errors": 0, "P50Micros": 850, "P99Micros": 3100.0}),
    )];
    let t = plain(&list(Kind::Proxy, &proxies, None, NOW));
    assert!(t.starts_with("UNIT    PROXY  STATE    PATH     METHODS  TRANSPORTS  ENDPOINT  REQUESTS  ERRORS    P50    P99\n"), "{t}");
    assert!(t.contains("orders  list   Stopped  /orders  any      http-8280   backend          5       0  850µs  3.1ms"), "{t}");

    let idle = vec![row(
        "esb:type=Proxy,unit=o,name=p",
        json!({"State": "Active", "Transports": [], "Requests": 0, "P50Micros": 0, "P99Micros": 0}),
    )];
    let t = plain(&list(Kind::Proxy, &idle, None, NOW));
    assert!(
        t.ends_with("o     p      Active        any      all                          0\n"),
        "{t:?}"
    );

    let eps = vec![row(
        "esb:type=Endpoint,unit=orders,name=backend",
        json!({"State": "Active", "Strategy": "failover", "Addresses": [
            {"url": "http://a", "state": "Active"}, {"url": "http://b", "state": "Suspended"}]}),
    )];
    assert!(plain(&list(Kind::Endpoint, &eps, None, NOW)).contains("1/2 active"));

    let tr = vec![row(
        "esb:type=Transport,name=http-8280",
        json!({"State": "Started", "Kind": "http", "Bind": "127.0.0.1:8280", "Requests": 1}),
    )];
    assert!(plain(&list(Kind::Transport, &tr, None, NOW))
        .contains("http-8280  Started  http  127.0.0.1:8280"));

    let tasks = vec![row(
        "esb:type=Task,unit=default,name=heartbeat",
        json!({"State": "Scheduled", "EveryMillis": 10000, "Sequence": "ping", "Runs": 3,
               "Failures": 1, "LastRun": NOW - 5000, "LastError": "timeout"}),
    )];
    let t = plain(&list(Kind::Task, &tasks, None, NOW));
    assert!(
        t.contains("default  heartbeat  Scheduled  10s    ping"),
        "{t}"
    );
    assert!(t.contains("5s ago    timeout"), "{t}");

    assert_eq!(
        plain(&list(Kind::Proxy, &[], Some("orders"), NOW)),
        "no proxies in unit orders\n"
    );
    let j = list(Kind::Proxy, &proxies, None, NOW).json;
    assert_eq!(j[0]["unit"], "orders");
    assert_eq!(j[0]["name"], "list");
    assert_eq!(j[0]["mbean"], "esb:type=Proxy,unit=orders,name=list");
    assert_eq!(j[0]["Path"], "/orders");
}

#[test]
fn sheets_show_state_first_tables_and_diagnostics() {
    let a = attrs(json!({
        "Strategy": "failover", "State": "Maintenance", "TimeoutMillis": 5000,
        "Addresses": [{"url":"http://a","state":"Active","failures":0},{"url":"http://b","state":"Suspended","failures":3}],
        "LastErrors": [{"file":"f","line":1,"col":1,"message":"m"}],
        "DeployedAt": NOW - 60_000, "P99Micros": 2500, "Tags": []
    }));
    let blocks = sheet(Some("endpoint orders/backend"), &a, NOW);
    let out = blocks
        .into_iter()
        .fold(Output::new(Value::Null), Output::with);
    assert_eq!(
        plain(&out),
        "\
endpoint orders/backend

State          Maintenance
DeployedAt     2024-05-01 12:12:04 UTC (1m ago)
P99Micros      2.5ms
Strategy       failover
Tags           (none)
TimeoutMillis  5000 (5s)

Addresses

URL       STATE      FAILURES
http://a  Active     0
http://b  Suspended  3

LastErrors
  f:1:1: m
"
    );
}

#[test]
fn generic_values_and_help() {
    assert_eq!(plain(&value(&json!(null), NOW)), "ok\n");
    assert_eq!(plain(&value(&json!(42), NOW)), "42\n");
    assert_eq!(plain(&value(&json!(["a", "b"]), NOW)), "a\nb\n");
    assert_eq!(
        plain(&value(&json!({"State": "Active", "B": 1}), NOW)),
        "State  Active\nB      1\n"
    );
    assert_eq!(
        plain(&value(&json!([1, [2]]), NOW)),
        "[\n  1,\n  [\n    2\n  ]\n]\n"
    );
}

#[test]
fn a_proxy_without_transports_listens_on_all() {
    let a = attrs(json!({"State": "Active", "Transports": [], "Sequences": []}));
    let mut out = crate::present::output::Output::new(json!({}));
    for b in sheet(None, &a, NOW) {
        out = out.with(b);
    }
    let text = out.render(Style::PLAIN);
    assert!(text.contains("Transports  all"), "{text}");
    assert!(text.contains("Sequences   (none)"), "{text}");
}

//! The data plane as a client and a backend see it: a real `esb` process on loopback, real
//! HTTP(S) backends, one test per behaviour — each mediation step, routing, every endpoint
//! strategy, failover, suspension and recovery, the default faults and fault sequences,
//! streaming of large bodies, body limits, scheduled tasks, graceful shutdown, forwarded
//! headers and TLS on both sides.

use e2e::client::is_pattern;
use e2e::{wait_for, wait_until, Backend, Client, ClosedPort, Esb, Response, TempConf};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `template` with each `{KEY}` replaced (TOML and `${...}` placeholders keep their braces).
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// One http transport "web" and one unit "t".
fn serve(unit: &str) -> (TempConf, Esb) {
    serve_conf(TempConf::new().http("web"), unit)
}

/// A unit with proxy `name` on `path` forwarding to endpoint `be` with one address.
fn proxy_to(name: &str, path: &str, backend: &str) -> String {
    fill(
        r#"
[[proxy]]
name = "{NAME}"
path = "{PATH}"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
        &[("NAME", name), ("PATH", path), ("BE", backend)],
    )
}

/// As [`serve`] on one data-plane worker thread: idle backend connections are kept per
/// worker, so connection counts are exact only with one.
fn serve_one_worker(unit: &str) -> (TempConf, Esb) {
    let conf = TempConf::new().http("web").unit("t", unit);
    let esb = Esb::start_with(
        &conf,
        e2e::EsbOptions {
            args: vec!["--workers".into(), "1".into()],
            ..Default::default()
        },
    );
    (conf, esb)
}

fn serve_conf(conf: TempConf, unit: &str) -> (TempConf, Esb) {
    let conf = conf.unit("t", unit);
    let esb = Esb::start(&conf);
    (conf, esb)
}

fn backend_of(r: &Response) -> String {
    r.header("x-backend").unwrap_or("<none>").to_owned()
}

fn assert_status(r: &Response, status: u16, esb: &Esb) {
    assert_eq!(
        r.status,
        status,
        "unexpected status; body: {}\n--- esb log ---\n{}",
        r.text(),
        esb.log()
    );
}

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- mediation steps

#[test]
fn log_step_writes_the_templated_line_to_stderr() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "logged"
path = "/log"
sequence = "log-it"

[[sequence]]
name = "log-it"
steps = [
  { log = "order ${json./id} from ${header.x-client} via ${method} ${path}" },
  { respond = { status = 200, body = "logged" } },
]
"#,
    );
    let r = Client::new()
        .request("POST", &conf.url("web", "/log"))
        .header("x-client", "acme")
        .json(&json!({ "id": 42 }))
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(r.text(), "logged");
    let line = esb.wait_log("order 42 from acme via POST /log", WAIT);
    assert!(line.contains("INFO"), "log line not at info level: {line}");
    assert!(
        line.contains("log-it"),
        "log line does not name the sequence: {line}"
    );
}

#[test]
fn set_header_and_remove_header_are_seen_by_the_backend() {
    let be = Backend::echo().start();
    let (conf, esb) = serve(&fill(
        r#"
version = "1.2.0"

[[proxy]]
name = "hdr"
path = "/hdr"
sequence = "headers"
endpoint = "be"

[[sequence]]
name = "headers"
steps = [
  { set_header = { name = "x-unit-version", value = "${unit.version}" } },
  { set_header = { name = "x-client", value = "rewritten-${header.x-client}" } },
  { remove_header = "x-secret" },
]

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
        &[("BE", &be.url())],
    ));
    let r = Client::new()
        .request("GET", &conf.url("web", "/hdr/x?q=1"))
        .header("x-client", "acme")
        .header("x-secret", "s3cr3t")
        .header("x-other", "kept")
        .send();
    assert_status(&r, 200, &esb);
    let seen = be.last_seen().expect("backend got the request");
    assert_eq!(seen.uri, "/hdr/x?q=1");
    assert_eq!(seen.header("x-unit-version"), Some("1.2.0"));
    assert_eq!(seen.header("x-client"), Some("rewritten-acme"));
    assert_eq!(seen.header("x-secret"), None);
    assert_eq!(seen.header("x-other"), Some("kept"));
}

#[test]
fn set_property_is_usable_in_a_later_template() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "prop"
path = "/prop"
sequence = "greet"

[[sequence]]
name = "greet"
steps = [
  { set_property = { name = "greeting", value = "hello ${query.name}" } },
  { respond = { status = 200, body = "${prop.greeting} from ${unit.name} r${unit.revision}" } },
]
"#,
    );
    let r = Client::new().get(&conf.url("web", "/prop?name=bob"));
    assert_status(&r, 200, &esb);
    assert_eq!(r.text(), "hello bob from t r1");
}

#[test]
fn filter_runs_then_or_else_branch() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "tier"
path = "/tier"
sequence = "lanes"

[[sequence]]
name = "lanes"
steps = [
  { filter = { on = "${query.mode}", equals = "stop", then = [{ respond = { status = 418, body = "stopped in filter" } }] } },
  { filter = { on = "${header.x-tier}", equals = "gold", then = [{ set_property = { name = "lane", value = "fast" } }], else = [{ set_property = { name = "lane", value = "slow" } }] } },
  { respond = { status = 200, body = "${prop.lane}" } },
]
"#,
    );
    let c = Client::new();
    let url = conf.url("web", "/tier");
    let gold = c.request("GET", &url).header("x-tier", "gold").send();
    assert_status(&gold, 200, &esb);
    assert_eq!(gold.text(), "fast");
    let silver = c.request("GET", &url).header("x-tier", "silver").send();
    assert_eq!(silver.text(), "slow");
    let none = c.get(&url);
    assert_eq!(none.text(), "slow");
    let stopped = c.get(&conf.url("web", "/tier?mode=stop"));
    assert_status(&stopped, 418, &esb);
    assert_eq!(stopped.text(), "stopped in filter");
}

/// Five proxies, one per kind of switch; sequences `say-*` answer their name.
fn switch_unit(eu: &Backend, us: &Backend) -> String {
    let mut unit = fill(
        r#"
[[proxy]]
name = "by-header"
path = "/sw/header"
sequence = "route-header"

[[proxy]]
name = "by-query"
path = "/sw/query"
sequence = "route-query"

[[proxy]]
name = "by-path"
path = "/sw/path"
sequence = "route-path"

[[proxy]]
name = "by-method"
path = "/sw/method"
sequence = "route-method"

[[proxy]]
name = "by-json"
path = "/sw/json"
methods = ["POST"]
sequence = "route-json"

[[sequence]]
name = "route-header"
steps = [{ switch = { on = "${header.x-region}", cases = { eu = "eu" }, default = "us" } }]

[[sequence]]
name = "route-query"
steps = [{ switch = { on = "${query.format}", cases = { xml = "say-xml", csv = "say-csv" }, default = "say-default" } }]

[[sequence]]
name = "route-path"
steps = [{ switch = { on = "${path}", cases = { "/sw/path/a" = "say-a", "/sw/path/b" = "say-b" }, default = "say-default" } }]

[[sequence]]
name = "route-method"
steps = [{ switch = { on = "${method}", cases = { GET = "say-get", DELETE = "say-delete" }, default = "say-default" } }]

[[sequence]]
name = "route-json"
steps = [{ switch = { on = "${json./order/type}", cases = { express = "say-express", standard = "say-standard" }, default = "say-default" } }]

[[endpoint]]
name = "eu"
addresses = ["{EU}"]

[[endpoint]]
name = "us"
addresses = ["{US}"]
"#,
        &[("EU", &eu.url()), ("US", &us.url())],
    );
    for name in [
        "xml", "csv", "a", "b", "get", "delete", "express", "standard", "default",
    ] {
        unit.push_str(&format!(
            "\n[[sequence]]\nname = \"say-{name}\"\nsteps = [{{ respond = {{ status = 200, body = \"{name}\" }} }}]\n"
        ));
    }
    unit
}

fn switch_env() -> (Backend, Backend, TempConf, Esb) {
    let eu = Backend::fixed(200, "eu").name("eu").start();
    let us = Backend::fixed(200, "us").name("us").start();
    let (conf, esb) = serve(&switch_unit(&eu, &us));
    (eu, us, conf, esb)
}

#[test]
fn switch_on_header_chooses_the_endpoint() {
    let (eu, us, conf, esb) = switch_env();
    let c = Client::new();
    let url = conf.url("web", "/sw/header");
    let r = c.request("GET", &url).header("x-region", "eu").send();
    assert_status(&r, 200, &esb);
    assert_eq!(backend_of(&r), "eu");
    let r = c.request("GET", &url).header("x-region", "us").send();
    assert_eq!(backend_of(&r), "us");
    let r = c.get(&url);
    assert_eq!(backend_of(&r), "us");
    assert_eq!((eu.hits(), us.hits()), (1, 2));
}

#[test]
fn switch_on_query_runs_the_matching_sequence() {
    let (_eu, _us, conf, esb) = switch_env();
    let c = Client::new();
    for (q, want) in [
        ("?format=xml", "xml"),
        ("?format=csv&x=1", "csv"),
        ("?format=json", "default"),
        ("", "default"),
    ] {
        let r = c.get(&conf.url("web", &format!("/sw/query{q}")));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), want, "query {q:?}");
    }
}

#[test]
fn switch_on_path_runs_the_matching_sequence() {
    let (_eu, _us, conf, esb) = switch_env();
    let c = Client::new();
    for (p, want) in [
        ("/sw/path/a", "a"),
        ("/sw/path/b", "b"),
        ("/sw/path/c", "default"),
    ] {
        let r = c.get(&conf.url("web", p));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), want, "path {p}");
    }
}

#[test]
fn switch_on_method_runs_the_matching_sequence() {
    let (_eu, _us, conf, esb) = switch_env();
    let c = Client::new();
    let url = conf.url("web", "/sw/method");
    for (m, want) in [("GET", "get"), ("DELETE", "delete"), ("PUT", "default")] {
        let r = c.request(m, &url).send();
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), want, "method {m}");
    }
}

#[test]
fn switch_on_json_pointer_runs_the_matching_sequence() {
    let (_eu, _us, conf, esb) = switch_env();
    let c = Client::new();
    let url = conf.url("web", "/sw/json");
    for (body, want) in [
        (json!({ "order": { "type": "express" } }), "express"),
        (
            json!({ "order": { "type": "standard", "n": 1 } }),
            "standard",
        ),
        (json!({ "order": {} }), "default"),
    ] {
        let r = c.request("POST", &url).json(&body).send();
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), want, "body {body}");
    }
    let r = c.request("POST", &url).body("not json").send();
    assert_eq!(
        r.text(),
        "default",
        "a body that is not JSON takes the default"
    );
}

#[test]
fn transform_builds_json_with_typed_values() {
    let be = Backend::echo().start();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "shape"
path = "/shape"
sequence = "reshape"
endpoint = "be"

[[sequence]]
name = "reshape"
steps = [
  { transform = { body = { sku = "${json./item/sku}", quantity = "${json./item/qty}", tags = "${json./tags}", express = "${json./express}", missing = "${json./nope}", channel = "esb", requested_by = "client ${header.x-client}", fixed = 7, ratio = 0.5, enabled = true, list = [1, "${json./item/qty}"], nested = { unit = "${unit.name}" } } } },
]

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
        &[("BE", &be.url())],
    ));
    let r = Client::new()
        .request("POST", &conf.url("web", "/shape"))
        .header("x-client", "acme")
        .json(&json!({ "item": { "sku": "A-1", "qty": 3 }, "tags": ["x", "y"], "express": false }))
        .send();
    assert_status(&r, 200, &esb);
    let echo = r.json();
    let sent: Value = serde_json::from_str(echo["body"].as_str().unwrap()).expect("JSON body");
    assert_eq!(
        sent,
        json!({
            "sku": "A-1",
            "quantity": 3,
            "tags": ["x", "y"],
            "express": false,
            "missing": null,
            "channel": "esb",
            "requested_by": "client acme",
            "fixed": 7,
            "ratio": 0.5,
            "enabled": true,
            "list": [1, 3],
            "nested": { "unit": "t" },
        })
    );
    assert_eq!(echo["headers"]["content-type"], "application/json");
    let len = echo["body"].as_str().unwrap().len().to_string();
    assert_eq!(echo["headers"]["content-length"], Value::String(len));
}

#[test]
fn respond_answers_with_json_and_headers() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "mock"
path = "/items"
sequence = "mock"

[[sequence]]
name = "mock"
steps = [
  { respond = { status = 201, json = { id = "${query.id}", ok = true, count = 2, unit = "${unit.name}", revision = "${unit.revision}" }, headers = { "x-mock" = "yes", location = "/items/${query.id}", "x-empty" = "${header.x-absent}" } } },
]
"#,
    );
    let r = Client::new()
        .request("PUT", &conf.url("web", "/items?id=9"))
        .send();
    assert_status(&r, 201, &esb);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-mock"), Some("yes"));
    assert_eq!(r.header("location"), Some("/items/9"));
    assert_eq!(
        r.header("x-empty"),
        None,
        "an empty templated header is left out"
    );
    assert_eq!(
        r.json(),
        json!({ "id": "9", "ok": true, "count": 2, "unit": "t", "revision": "1" })
    );
}

#[test]
fn call_invokes_an_endpoint_and_continues_with_its_response() {
    let prices = Backend::fixed(200, r#"{"price": 12, "currency": "EUR"}"#)
        .header("content-type", "application/json")
        .name("prices")
        .start();
    let main = Backend::echo().name("main").start();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "quote"
path = "/quote"
sequence = "enrich"
endpoint = "main"

[[sequence]]
name = "enrich"
steps = [
  { call = { endpoint = "prices" } },
  { set_header = { name = "x-price", value = "${json./price}" } },
  { set_header = { name = "x-call-status", value = "${prop.call.status}" } },
]

[[endpoint]]
name = "prices"
addresses = ["{PRICES}"]

[[endpoint]]
name = "main"
addresses = ["{MAIN}"]
"#,
        &[("PRICES", &prices.url()), ("MAIN", &main.url())],
    ));
    let r = Client::new()
        .request("POST", &conf.url("web", "/quote"))
        .json(&json!({ "sku": "A-1" }))
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(backend_of(&r), "main");
    let asked = prices.last_seen().expect("the call reached its endpoint");
    assert_eq!(
        (asked.method.as_str(), asked.uri.as_str()),
        ("POST", "/quote")
    );
    let echo = r.json();
    assert_eq!(echo["headers"]["x-price"], "12");
    assert_eq!(echo["headers"]["x-call-status"], "200");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    let body: Value = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({ "price": 12, "currency": "EUR" }));
}

// ---------------------------------------------------------------- routing

#[test]
fn longest_prefix_wins() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "a"
path = "/a"
sequence = "say-a"

[[proxy]]
name = "ab"
path = "/a/b"
sequence = "say-ab"

[[sequence]]
name = "say-a"
steps = [{ respond = { status = 200, body = "a" } }]

[[sequence]]
name = "say-ab"
steps = [{ respond = { status = 200, body = "ab" } }]
"#,
    );
    let c = Client::new();
    for (p, want) in [
        ("/a", "a"),
        ("/a/", "a"),
        ("/a/x", "a"),
        ("/a/bc", "a"),
        ("/a/b", "ab"),
        ("/a/b/c/d?q=1", "ab"),
    ] {
        let r = c.get(&conf.url("web", p));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), want, "path {p}");
    }
    let r = c.get(&conf.url("web", "/ab"));
    assert_eq!(r.status, 404, "/ab is not under /a: {}", r.text());
}

#[test]
fn wrong_method_is_405_with_allow() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "orders"
path = "/orders"
methods = ["GET", "POST"]
sequence = "ok"

[[sequence]]
name = "ok"
steps = [{ respond = { status = 200, body = "ok" } }]
"#,
    );
    let c = Client::new();
    assert_eq!(c.get(&conf.url("web", "/orders/1")).status, 200);
    let r = c.request("DELETE", &conf.url("web", "/orders/1")).send();
    assert_status(&r, 405, &esb);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let body = r.json();
    assert_eq!(body["status"], 405);
    assert_eq!(body["method"], "DELETE");
    assert_eq!(body["path"], "/orders/1");
    assert_eq!(body["allow"], json!(["GET", "POST"]));
}

#[test]
fn unknown_path_is_404_with_json_body() {
    let (conf, esb) = serve(
        r#"
[[proxy]]
name = "orders"
path = "/orders"
sequence = "ok"

[[sequence]]
name = "ok"
steps = [{ respond = { status = 200, body = "ok" } }]
"#,
    );
    let r = Client::new().get(&conf.url("web", "/nothing/here?x=1"));
    assert_status(&r, 404, &esb);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["error"], "no proxy service matches");
    assert_eq!(body["status"], 404);
    assert_eq!(body["path"], "/nothing/here");
    assert_eq!(body["transport"], "web");
}

// ---------------------------------------------------------------- endpoints

fn two_address_unit(strategy: &str, addresses: &str, extra: &str) -> String {
    format!(
        r#"
[[proxy]]
name = "lb"
path = "/lb"
endpoint = "be"

[[endpoint]]
name = "be"
strategy = "{strategy}"
addresses = {addresses}
{extra}
"#
    )
}

fn pair() -> (Backend, Backend) {
    (
        Backend::fixed(200, "a").name("a").start(),
        Backend::fixed(200, "b").name("b").start(),
    )
}

#[test]
fn failover_strategy_uses_the_first_address() {
    let (a, b) = pair();
    let addrs = format!("[\"{}\", \"{}\"]", a.url(), b.url());
    let (conf, esb) = serve(&two_address_unit("failover", &addrs, ""));
    let c = Client::new();
    for _ in 0..10 {
        let r = c.get(&conf.url("web", "/lb"));
        assert_status(&r, 200, &esb);
        assert_eq!(backend_of(&r), "a");
    }
    assert_eq!((a.hits(), b.hits()), (10, 0));
}

#[test]
fn round_robin_alternates() {
    let (a, b) = pair();
    let addrs = format!("[\"{}\", \"{}\"]", a.url(), b.url());
    let (conf, esb) = serve(&two_address_unit("round-robin", &addrs, ""));
    let c = Client::new();
    let order: Vec<String> = (0..10)
        .map(|_| {
            let r = c.get(&conf.url("web", "/lb"));
            assert_status(&r, 200, &esb);
            backend_of(&r)
        })
        .collect();
    for w in order.windows(2) {
        assert_ne!(w[0], w[1], "round-robin repeated an address: {order:?}");
    }
    assert_eq!((a.hits(), b.hits()), (5, 5));
}

#[test]
fn weighted_strategy_follows_the_weights() {
    let (a, b) = pair();
    let addrs = format!(
        "[{{ url = \"{}\", weight = 3 }}, {{ url = \"{}\", weight = 1 }}]",
        a.url(),
        b.url()
    );
    let (conf, esb) = serve(&two_address_unit("weighted", &addrs, ""));
    let c = Client::new();
    for _ in 0..40 {
        assert_status(&c.get(&conf.url("web", "/lb")), 200, &esb);
    }
    assert_eq!((a.hits(), b.hits()), (30, 10), "3:1 over 40 requests");
}

#[test]
fn failover_when_an_address_dies_is_invisible_to_clients() {
    let (mut a, b) = pair();
    let addrs = format!("[\"{}\", \"{}\"]", a.url(), b.url());
    let (conf, esb) = serve(&two_address_unit("failover", &addrs, ""));
    let c = Client::new();
    for _ in 0..3 {
        assert_eq!(backend_of(&c.get(&conf.url("web", "/lb"))), "a");
    }
    a.stop();
    for i in 0..10 {
        let r = c.get(&conf.url("web", "/lb"));
        assert_status(&r, 200, &esb);
        assert_eq!(backend_of(&r), "b", "request {i} after a died");
    }
    let r = c
        .request("POST", &conf.url("web", "/lb"))
        .body("small body")
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(backend_of(&r), "b");
}

#[test]
fn suspended_address_is_skipped_and_returns_after_the_back_off() {
    let (mut a, b) = pair();
    let addrs = format!("[\"{}\", \"{}\"]", a.url(), b.url());
    let backoff = Duration::from_secs(2);
    let (conf, esb) = serve(&two_address_unit(
        "failover",
        &addrs,
        "suspend = { after_failures = 2, initial = \"2s\", factor = 2.0, max = \"10s\" }",
    ));
    let c = Client::new();
    let url = conf.url("web", "/lb");
    assert_eq!(backend_of(&c.get(&url)), "a");
    a.stop();
    // Two failures suspend a; the suspension starts after this instant.
    let failing_from = Instant::now();
    for _ in 0..2 {
        let r = c.get(&url);
        assert_status(&r, 200, &esb);
        assert_eq!(backend_of(&r), "b");
    }
    let hits_a = a.hits();
    a.restart();
    // a is alive again but suspended: every request that ends within the back-off goes to b.
    let mut checked = 0;
    while failing_from.elapsed() < backoff.mul_f32(0.75) {
        let r = c.get(&url);
        if failing_from.elapsed() < backoff {
            assert_status(&r, 200, &esb);
            assert_eq!(backend_of(&r), "b", "a was used while suspended");
            checked += 1;
        }
    }
    assert!(checked > 0, "no request completed within the back-off");
    assert_eq!(a.hits(), hits_a);
    // After the back-off a trial request goes to a, succeeds, and a is active again.
    wait_for(
        "the restarted address to be used again",
        WAIT,
        || (backend_of(&c.get(&url)) == "a").then_some(()),
        || esb.log(),
    );
    assert!(
        failing_from.elapsed() >= backoff,
        "a returned before its back-off"
    );
    for _ in 0..3 {
        assert_eq!(backend_of(&c.get(&url)), "a");
    }
}

#[test]
fn slow_backend_is_504_naming_unit_and_proxy() {
    let be = Backend::fixed(200, "late")
        .delay(Duration::from_secs(3))
        .start();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "slow"
path = "/slow"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{BE}"]
timeout = "300ms"
"#,
        &[("BE", &be.url())],
    ));
    let r = Client::new().get(&conf.url("web", "/slow"));
    assert_status(&r, 504, &esb);
    let body = r.json();
    assert_eq!(body["error"], "gateway timeout");
    assert_eq!(body["status"], 504);
    assert_eq!(body["unit"], "t");
    assert_eq!(body["proxy"], "slow");
    let cause = body["cause"].as_str().unwrap();
    assert!(
        cause.contains("endpoint \"be\"") && cause.contains("300ms"),
        "{cause}"
    );
}

/// Connection refused is a connect failure: `SendError::Unavailable` → 503 + Retry-After.
#[test]
fn refused_connection_is_502_then_503_once_suspended() {
    let closed = ClosedPort::new();
    let dead = closed.url();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "gone"
path = "/gone"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{DEAD}"]
suspend = { after_failures = 3, initial = "30s" }
"#,
        &[("DEAD", &dead)],
    ));
    let c = Client::new();
    // A refused connection is the backend's failure: 502 naming unit, proxy and cause.
    let r = c.get(&conf.url("web", "/gone"));
    assert_status(&r, 502, &esb);
    let body = r.json();
    assert_eq!(body["error"], "bad gateway");
    assert_eq!(
        (body["unit"].as_str(), body["proxy"].as_str()),
        (Some("t"), Some("gone"))
    );
    let cause = body["cause"].as_str().unwrap();
    assert!(
        cause.contains(&format!("cannot connect to {dead}")),
        "{cause}"
    );
    assert_status(&c.get(&conf.url("web", "/gone")), 502, &esb);
    // The third failure suspends the only address: from then on 503 with Retry-After.
    let third = c.get(&conf.url("web", "/gone"));
    assert_status(&third, 503, &esb);
    let mut last = third;
    for _ in 0..3 {
        last = c.get(&conf.url("web", "/gone"));
        assert_status(&last, 503, &esb);
    }
    let retry: u64 = last
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let body = last.json();
    assert_eq!(body["error"], "service unavailable");
    let cause = body["cause"].as_str().unwrap().to_owned();
    assert!(cause.contains("suspended"), "{cause}");
}

/// A backend that drops the connection without answering: `SendError::Backend` → 502.
#[test]
fn backend_closing_without_answer_is_502() {
    let be = Backend::abort().start();
    let (conf, esb) = serve(&proxy_to("broken", "/broken", &be.url()));
    let r = Client::new().get(&conf.url("web", "/broken"));
    assert_status(&r, 502, &esb);
    let body = r.json();
    assert_eq!(body["error"], "bad gateway");
    assert_eq!(body["proxy"], "broken");
    assert!(
        body["cause"].as_str().unwrap().contains(&be.url()),
        "{body}"
    );
}

#[test]
fn fault_sequence_answers_instead_of_the_default_fault() {
    let closed = ClosedPort::new();
    let dead = closed.url();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"
fault_sequence = "sorry"

[[sequence]]
name = "sorry"
steps = [
  { log = "fault ${prop.error.status} on ${path}" },
  { respond = { status = 503, json = { error = "orders unavailable", upstream = "${prop.error.status}", cause = "${prop.error.message}" }, headers = { "retry-after" = "7" } } },
]

[[endpoint]]
name = "be"
addresses = ["{DEAD}"]
"#,
        &[("DEAD", &dead)],
    ));
    let r = Client::new().get(&conf.url("web", "/orders/1"));
    assert_status(&r, 503, &esb);
    assert_eq!(r.header("retry-after"), Some("7"));
    let body = r.json();
    assert_eq!(body["error"], "orders unavailable");
    assert_eq!(body["upstream"], "502");
    assert!(
        body["cause"].as_str().unwrap().contains("cannot connect"),
        "{body}"
    );
    esb.wait_log("fault 502 on /orders/1", WAIT);
}

// ---------------------------------------------------------------- bodies

#[test]
fn ten_megabyte_body_streams_through_without_buffering() {
    const SIZE: u64 = 10_000_000;
    let counter = Backend::count_bytes().start();
    let echo = Backend::stream_echo().start();
    let (conf, esb) = serve(&fill(
        r#"
[[proxy]]
name = "upload"
path = "/upload"
sequence = "tag"
endpoint = "count"

[[proxy]]
name = "mirror"
path = "/mirror"
endpoint = "echo"

[[sequence]]
name = "tag"
steps = [{ set_header = { name = "x-through", value = "esb" } }]

[[endpoint]]
name = "count"
addresses = ["{COUNT}"]

[[endpoint]]
name = "echo"
addresses = ["{ECHO}"]
"#,
        &[("COUNT", &counter.url()), ("ECHO", &echo.url())],
    ));
    let c = Client::new();
    // Warm up both paths (pools, buffers, worker threads) before the baseline.
    for _ in 0..3 {
        let r = c
            .request("POST", &conf.url("web", "/upload"))
            .pattern_body(256 * 1024)
            .send();
        assert_status(&r, 200, &esb);
        let r = c
            .request("POST", &conf.url("web", "/mirror"))
            .pattern_body(256 * 1024)
            .send();
        assert_status(&r, 200, &esb);
    }
    let baseline = esb.proc_status_kb("VmHWM");

    let r = c
        .request("POST", &conf.url("web", "/upload"))
        .pattern_body(SIZE)
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(r.json()["bytes"], SIZE);
    assert_eq!(
        counter.last_seen().unwrap().header("x-through"),
        Some("esb")
    );

    let r = c
        .request("POST", &conf.url("web", "/mirror"))
        .pattern_body(SIZE)
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(r.body.len() as u64, SIZE);
    assert!(
        is_pattern(&r.body),
        "echoed body differs from what was sent"
    );

    let peak = esb.proc_status_kb("VmHWM");
    let grew_kb = peak.saturating_sub(baseline);
    eprintln!("esb VmHWM: baseline {baseline} kB, after 2 x 10 MB {peak} kB");
    assert!(
        grew_kb < 4 * 1024,
        "esb's peak RSS grew by {grew_kb} kB (baseline {baseline} kB) while streaming 10 MB: the body was buffered"
    );
}

/// A backend that closes each connection right after its answer without saying so: the
/// pooled connection is found closed (or fails as the request goes out) and the request is
/// sent on a new one; no client sees an error.
#[test]
fn a_backend_closing_kept_alive_connections_unannounced_costs_no_request() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut head = Vec::new();
            let mut b = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            // Closed here, with no `Connection: close`.
        }
    });
    let (conf, esb) = serve(&proxy_to(
        "flaky",
        "/flaky",
        &format!("http://127.0.0.1:{port}"),
    ));
    let c = Client::new();
    for i in 0..30 {
        let r = c.get(&conf.url("web", &format!("/flaky/{i}")));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), "ok");
    }
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 30,
        "each request had a connection of its own"
    );
}

/// A backend that answers before it has read a streamed request body (an early 413): the
/// answer reaches a client that reads while it sends, and the next request is served.
#[test]
fn a_backend_answering_before_the_streamed_body_ended_is_relayed() {
    use std::io::{Read, Write};
    let be = Backend::fixed(413, "too large for me").start();
    let (conf, esb) = serve(&proxy_to("early", "/early", &be.url()));
    const SIZE: usize = 8 * 1024 * 1024;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", conf.port("web"))).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .expect("head");
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let chunk = [b'x'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            if w.write_all(&chunk).is_err() {
                break; // esb closed the connection once it had answered
            }
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("too large for me") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 413") && text.contains("too large for me"),
        "{text:?}\n{}",
        esb.log()
    );
    drop(s);
    writer.join().expect("writer");
    let r = Client::new().get(&conf.url("web", "/early"));
    assert_status(&r, 413, &esb);
    assert_eq!(be.hits(), 2);
}

#[test]
fn body_over_max_body_on_a_reading_step_is_413() {
    let be = Backend::count_bytes().start();
    let (conf, esb) = serve_conf(
        TempConf::new().http("web").server("max_body = 65536"),
        &fill(
            r#"
[[proxy]]
name = "read"
path = "/read"
sequence = "reads"
endpoint = "be"

[[proxy]]
name = "pass"
path = "/pass"
endpoint = "be"

[[sequence]]
name = "reads"
steps = [{ log = "id ${json./id}" }]

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
            &[("BE", &be.url())],
        ),
    );
    let c = Client::new();
    let small = c
        .request("POST", &conf.url("web", "/read"))
        .json(&json!({ "id": 1 }))
        .send();
    assert_status(&small, 200, &esb);

    let big = c
        .request("POST", &conf.url("web", "/read"))
        .pattern_body(100_000)
        .send();
    assert_status(&big, 413, &esb);
    let body = big.json();
    assert_eq!(body["error"], "payload too large");
    assert_eq!(body["proxy"], "read");
    assert!(body["cause"].as_str().unwrap().contains("65536"), "{body}");
    assert_eq!(be.hits(), 1, "the oversized request reached the backend");

    // Without a step that reads it, the same body streams through.
    let r = c
        .request("POST", &conf.url("web", "/pass"))
        .pattern_body(100_000)
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(r.json()["bytes"], 100_000);
}

// ---------------------------------------------------------------- tasks

fn task_unit(every: &str, be: &Backend) -> String {
    fill(
        r#"
[[task]]
name = "tick"
every = "{EVERY}"
sequence = "ping"

[[sequence]]
name = "ping"
steps = [{ call = { endpoint = "be" } }]

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
        &[("EVERY", every), ("BE", &be.url())],
    )
}

#[test]
fn task_fires_once_per_period() {
    let be = Backend::fixed(200, "pong").start();
    let (_conf, esb) = serve(&task_unit("300ms", &be));
    wait_until("the first task run", WAIT, || be.hits() >= 1);
    let (start, first) = (Instant::now(), be.hits());
    // It keeps firing, one run after the other, and never more often than its period.
    wait_until("four more task runs", WAIT, || be.hits() >= first + 4);
    let runs = be.hits() - first;
    let periods = start.elapsed().as_millis() as u64 / 300;
    assert!(
        runs <= periods + 2,
        "{runs} runs within {periods} periods of 300ms: more than one run per period\n{}",
        esb.log()
    );
    assert_eq!(be.max_in_flight(), 1);
    let seen = be.last_seen().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("GET", "/tasks/tick")
    );
}

#[test]
fn task_runs_never_overlap() {
    // Each run takes longer than the period: runs must queue, not overlap.
    let be = Backend::fixed(200, "pong")
        .delay(Duration::from_millis(250))
        .start();
    let (_conf, _esb) = serve(&task_unit("50ms", &be));
    wait_until("four task runs", WAIT, || be.hits() >= 4);
    assert_eq!(be.max_in_flight(), 1, "two runs of one task overlapped");
}

// ---------------------------------------------------------------- lifecycle, headers, TLS

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let be = Backend::fixed(200, "finished")
        .delay(Duration::from_secs(1))
        .start();
    let (conf, mut esb) = serve_conf(
        TempConf::new().http("web").drain_timeout("10s"),
        &proxy_to("slow", "/slow", &be.url()),
    );
    let url = conf.url("web", "/slow");
    let client = std::thread::spawn(move || Client::new().request("GET", &url).try_send());
    wait_until("the request to reach the backend", WAIT, || {
        be.in_flight() == 1
    });
    esb.sigterm();
    let r = client.join().expect("client thread");
    let status = esb.wait(Duration::from_secs(15));
    let r = r.unwrap_or_else(|e| {
        panic!(
            "in-flight request failed during shutdown: {e}\n--- esb log ---\n{}",
            esb.log()
        )
    });
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "finished");
    assert_eq!(status.code(), Some(0), "esb exit status\n{}", esb.log());
}

/// "Stop accepting" must release the port: a connection that the kernel still completes
/// would wait in the backlog until the process exits and then be reset, instead of being
/// refused at once so the client (or load balancer) goes elsewhere.
#[test]
fn sigterm_refuses_new_connections_while_draining() {
    let be = Backend::fixed(200, "finished")
        .delay(Duration::from_secs(2))
        .start();
    let (conf, mut esb) = serve_conf(
        TempConf::new().http("web").drain_timeout("10s"),
        &proxy_to("slow", "/slow", &be.url()),
    );
    let url = conf.url("web", "/slow");
    let client = std::thread::spawn(move || {
        let r = Client::new().request("GET", &url).try_send();
        (Instant::now(), r)
    });
    wait_until("the request to reach the backend", WAIT, || {
        be.in_flight() == 1
    });
    esb.sigterm();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], conf.port("web")));
    let refused_at = wait_for(
        "the transport port to refuse connections",
        WAIT,
        || match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(Instant::now()),
            _ => None,
        },
        || esb.log(),
    );
    let (answered_at, r) = client.join().expect("client thread");
    let r = r.unwrap_or_else(|e| panic!("in-flight request failed during shutdown: {e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        refused_at < answered_at,
        "the port kept accepting connections until the drain was over"
    );
    assert_eq!(esb.wait(Duration::from_secs(15)).code(), Some(0));
}

#[test]
fn forwarded_headers_are_added_and_hop_by_hop_headers_removed() {
    let be = Backend::echo()
        .header("x-resp-private", "1")
        .header("connection", "x-resp-private")
        .header("proxy-authenticate", "Basic realm=\"be\"")
        .header("x-resp-keep", "1")
        .start();
    let (conf, esb) = serve(&proxy_to("fwd", "/fwd", &be.url()));
    let r = Client::new()
        .request("GET", &conf.url("web", "/fwd"))
        .header("x-forwarded-for", "10.1.2.3")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-keep", "yes")
        .send();
    assert_status(&r, 200, &esb);
    let seen = be.last_seen().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("10.1.2.3, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(format!("127.0.0.1:{}", conf.port("web")).as_str())
    );
    assert_eq!(seen.header("x-keep"), Some("yes"));
    for h in ["x-private", "keep-alive", "te", "proxy-authorization"] {
        assert_eq!(seen.header(h), None, "hop-by-hop header {h} was forwarded");
    }
    assert!(
        !seen
            .header("connection")
            .unwrap_or("")
            .contains("x-private"),
        "{:?}",
        seen.header("connection")
    );
    // And on the way back.
    assert_eq!(r.header("x-resp-keep"), Some("1"));
    assert_eq!(r.header("x-resp-private"), None);
    assert_eq!(r.header("proxy-authenticate"), None);
}

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a leaf for `localhost` and `127.0.0.1` signed by it.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "esb e2e CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[test]
fn https_transport_serves_a_client_trusting_its_certificate() {
    let pki = pki();
    let be = Backend::echo().start();
    let (conf, esb) = serve_conf(
        TempConf::new().https("secure", &pki.cert_pem, &pki.key_pem),
        &fill(
            r#"
[[proxy]]
name = "hello"
path = "/hello"
sequence = "hello"

[[proxy]]
name = "fwd"
path = "/fwd"
endpoint = "be"

[[sequence]]
name = "hello"
steps = [{ respond = { status = 200, body = "hello over ${header.x-via}" } }]

[[endpoint]]
name = "be"
addresses = ["{BE}"]
"#,
            &[("BE", &be.url())],
        ),
    );
    let c = Client::with_ca(&pki.ca_pem);
    let r = c
        .request("GET", &conf.url("secure", "/hello"))
        .header("x-via", "tls")
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(r.text(), "hello over tls");
    let r = c.get(&conf.url("secure", "/fwd"));
    assert_status(&r, 200, &esb);
    assert_eq!(
        be.last_seen().unwrap().header("x-forwarded-proto"),
        Some("https")
    );
    // A client that does not trust the certificate is refused at the handshake.
    let other = self::pki();
    let err = Client::with_ca(&other.ca_pem)
        .request("GET", &conf.url("secure", "/hello"))
        .try_send()
        .expect_err("an untrusted certificate was accepted");
    assert!(err.contains("TLS handshake"), "{err}");
}

#[test]
fn https_endpoint_with_ca_file_reaches_a_tls_backend() {
    let pki = pki();
    let be = Backend::echo()
        .tls(&pki.cert_pem, &pki.key_pem)
        .name("tls-be")
        .start();
    assert!(be.url().starts_with("https://127.0.0.1:"));
    let (conf, esb) = serve_conf(
        TempConf::new()
            .http("web")
            .unit_file("t", "certs/ca.pem", &pki.ca_pem),
        &fill(
            r#"
[[proxy]]
name = "secure"
path = "/secure"
endpoint = "trusted"

[[proxy]]
name = "untrusted"
path = "/untrusted"
endpoint = "untrusted"

[[endpoint]]
name = "trusted"
addresses = ["{BE}"]
ca_file = "certs/ca.pem"

[[endpoint]]
name = "untrusted"
addresses = ["{BE}"]
"#,
            &[("BE", &be.url())],
        ),
    );
    let c = Client::new();
    let r = c
        .request("POST", &conf.url("web", "/secure/x"))
        .body("over tls")
        .send();
    assert_status(&r, 200, &esb);
    assert_eq!(backend_of(&r), "tls-be");
    let echo = r.json();
    assert_eq!(echo["path"], "/secure/x");
    assert_eq!(echo["body"], "over tls");
    // Without the CA the backend's certificate is not trusted: the request fails in esb.
    let hits = be.hits();
    // The handshake is part of connecting: the backend cannot be reached, so 502.
    let r = c.get(&conf.url("web", "/untrusted"));
    assert_status(&r, 502, &esb);
    let cause = r.json()["cause"].as_str().unwrap().to_owned();
    assert!(
        cause.contains("cannot connect") && cause.contains("certificate"),
        "{cause}"
    );
    assert_eq!(be.hits(), hits);
}

#[test]
fn backend_connections_are_kept_alive_and_reused() {
    let be = Backend::fixed(200, "ok").start();
    let (conf, esb) = serve_one_worker(&proxy_to("p", "/p", &be.url()));
    let c = Client::new();
    for i in 0..20 {
        let r = c.get(&conf.url("web", "/p"));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), "ok", "request {i}");
    }
    let r = c.post(&conf.url("web", "/p"), "a body");
    assert_status(&r, 200, &esb);
    assert_eq!(
        be.connections(),
        1,
        "21 requests one after another share one backend connection"
    );
}

#[test]
fn backend_closing_its_idle_connection_costs_no_request() {
    let mut be = Backend::fixed(200, "ok").start();
    let (conf, esb) = serve_one_worker(&proxy_to("p", "/p", &be.url()));
    let c = Client::new();
    assert_status(&c.get(&conf.url("web", "/p")), 200, &esb);
    // The backend goes away and comes back: the connection esb kept idle is closed.
    be.stop();
    be.restart();
    for i in 0..3 {
        let r = c.get(&conf.url("web", "/p"));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), "ok", "request {i} after the backend closed");
    }
    assert_eq!(be.connections(), 2, "one new connection after the close");
}

#[test]
fn backend_answering_connection_close_gets_a_new_connection_each_time() {
    let be = Backend::fixed(200, "ok")
        .header("connection", "close")
        .start();
    let (conf, esb) = serve(&proxy_to("p", "/p", &be.url()));
    let c = Client::new();
    for i in 0..5 {
        let r = c.get(&conf.url("web", "/p"));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), "ok", "request {i}");
        assert_eq!(r.header("connection"), None, "hop-by-hop: not forwarded");
    }
    assert_eq!(be.connections(), 5);
}

#[test]
fn client_going_away_mid_request_keeps_the_backend_connection() {
    use std::io::Write;
    let be = Backend::fixed(200, "ok").start();
    let (conf, esb) = serve_one_worker(&proxy_to("p", "/p", &be.url()));
    let c = Client::new();
    assert_status(&c.get(&conf.url("web", "/p")), 200, &esb);
    be.set_delay(Duration::from_millis(300));
    // A client that sends a request and leaves before the answer.
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", conf.port("web"))).expect("connect to esb");
    s.write_all(b"GET /p HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    wait_until(
        "the request to reach the backend",
        Duration::from_secs(10),
        || be.in_flight() == 1,
    );
    drop(s);
    wait_until("the backend to answer", Duration::from_secs(10), || {
        be.in_flight() == 0
    });
    be.set_delay(Duration::ZERO);
    for i in 0..3 {
        let r = c.get(&conf.url("web", "/p"));
        assert_status(&r, 200, &esb);
        assert_eq!(r.text(), "ok", "request {i}");
    }
    assert_eq!(
        be.connections(),
        1,
        "the abandoned response was read and its connection reused"
    );
}

// ---------------------------------------------------------------- worker threads

/// `esb_worker_connections_open` of each worker, from `/metrics`.
fn worker_connections(mgmt: &e2e::mgmt_client::Mgmt) -> Vec<(String, f64)> {
    let text = mgmt.monitor("GET", "/metrics").send().text();
    text.lines()
        .filter_map(|l| l.strip_prefix("esb_worker_connections_open{worker=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(w, v)| (w.to_owned(), v.parse().expect("a number")))
        .collect()
}

#[test]
fn two_workers_each_serve_client_connections() {
    use std::io::{BufReader, Write};
    let be = Backend::fixed(200, "ok").start();
    let conf = TempConf::new()
        .http("web")
        .unit("t", &proxy_to("p", "/p", &be.url()));
    let esb = Esb::start_with(
        &conf,
        e2e::EsbOptions {
            args: vec!["--workers".into(), "2".into()],
            ..Default::default()
        },
    );
    let mgmt = e2e::mgmt_client::Mgmt::of(&conf);
    // The start-up probes' connections have closed.
    wait_until("no open client connection", WAIT, || {
        worker_connections(&mgmt).iter().all(|(_, v)| *v == 0.0)
    });
    // Two keep-alive connections, each answered once and held open: a new connection goes
    // to the worker serving the fewest.
    let mut held = Vec::new();
    for i in 0..2 {
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", conf.port("web"))).expect("connect to esb");
        s.write_all(b"GET /p HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let (resp, _) = e2e::http1::read_response(&mut r, false).expect("an answer");
        assert_eq!(resp.status, 200, "connection {i}\n{}", esb.log());
        assert_eq!(resp.text(), "ok");
        held.push(r);
    }
    let per_worker = worker_connections(&mgmt);
    assert_eq!(
        per_worker,
        vec![("0".to_owned(), 1.0), ("1".to_owned(), 1.0)],
        "one connection on each worker thread"
    );
    drop(held);
    wait_until("both connections to close", WAIT, || {
        worker_connections(&mgmt).iter().all(|(_, v)| *v == 0.0)
    });
}

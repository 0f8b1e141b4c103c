//! `uterm -c "tap PROXY"` against a real esb: one record per finished request of the
//! tapped proxy (and of no other), with method, path, status, revision, the steps that ran
//! with the switch's decision, the address that answered, and the fault of a failed request.
//! Requests are sent until the tap has shown them (the tap starts recording only once it is
//! open); each assertion is on what uterm printed.

use e2e::mgmt_client::Mgmt;
use e2e::uterm::Uterm;
use e2e::{Backend, Client, ClosedPort, Esb, TempConf};
use serde_json::Value;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

fn shop(be: &str, down: &str) -> String {
    format!(
        r#"version = "1.0"

[[proxy]]
name = "orders"
path = "/orders"
sequence = "route"
endpoint = "be"

[[proxy]]
name = "other"
path = "/other"
endpoint = "be"

[[sequence]]
name = "route"
steps = [
  {{ set_header = {{ name = "x-tapped", value = "yes" }} }},
  {{ switch = {{ on = "${{header.x-region}}", cases = {{ down = "down" }}, default = "be" }} }},
]

[[endpoint]]
name = "be"
addresses = ["{be}"]

[[endpoint]]
name = "down"
addresses = ["{down}"]
"#
    )
}

#[test]
fn tap_streams_one_record_per_request_with_steps_address_and_fault() {
    let backend = Backend::fixed(200, "ok").start();
    let closed = ClosedPort::new();
    let conf = TempConf::new()
        .http("web")
        .unit("shop", &shop(&backend.url(), &closed.url()));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    let http = Client::new().timeout(Duration::from_secs(10));
    let mut tap = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .args(["--json", "-c", "tap shop/orders"])
        .spawn();
    // Traffic to another proxy first (never shown), then an ok and a failing request to
    // the tapped one, until the tap shows them.
    let deadline = Instant::now() + LIMIT;
    let mut records: Vec<Value> = Vec::new();
    while records.len() < 2 {
        assert!(Instant::now() < deadline, "the tap showed {records:?}");
        assert_eq!(http.get(&conf.url("web", "/other")).status, 200);
        let path = if records.is_empty() {
            "/orders/7?x=1"
        } else {
            "/orders/8"
        };
        let region = if records.is_empty() { "eu" } else { "down" };
        http.request("GET", &conf.url("web", path))
            .header("x-region", region)
            .send();
        while let Some(line) = tap.try_line(Duration::from_millis(100), |_| true) {
            let v: Value = serde_json::from_str(&line).expect("one JSON record a line");
            assert_eq!(v["proxy"], "orders", "only the tapped proxy: {v}");
            // Until the tap was open, a request may have gone unrecorded; keep the pairs
            // in order.
            let want = if records.is_empty() {
                "/orders/7"
            } else {
                "/orders/8"
            };
            if v["path"] == want {
                records.push(v);
            }
        }
    }
    let ok = &records[0];
    assert_eq!(ok["unit"], "shop");
    assert_eq!(ok["proxy"], "orders");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["revision"], 1);
    let steps: Vec<(String, String)> = ok["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["decision"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("set_header x-tapped".to_string(), String::new()),
            (
                "switch".to_string(),
                "default (\"eu\") → endpoint be".to_string()
            )
        ]
    );
    assert_eq!(ok["answered"]["endpoint"], "be");
    assert_eq!(ok["answered"]["address"], backend.url());
    assert!(ok.get("fault").is_none(), "{ok}");

    let failed = &records[1];
    assert_eq!(failed["status"], 502);
    assert_eq!(
        failed["steps"][1]["decision"],
        "case \"down\" → endpoint down"
    );
    assert!(failed.get("answered").is_none(), "{failed}");
    assert!(
        failed["fault"].as_str().unwrap().contains("cannot connect"),
        "{failed}"
    );
}

#[test]
fn tap_without_json_prints_one_readable_line_and_refuses_bad_input() {
    let backend = Backend::fixed(200, "ok").start();
    let closed = ClosedPort::new();
    let conf = TempConf::new()
        .http("web")
        .unit("shop", &shop(&backend.url(), &closed.url()));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    let http = Client::new().timeout(Duration::from_secs(10));
    let mut tap = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("tap orders --unit shop --limit 1")
        .spawn();
    let deadline = Instant::now() + LIMIT;
    let line = loop {
        assert!(Instant::now() < deadline, "no tap line");
        http.get(&conf.url("web", "/orders/1"));
        if let Some(l) = tap.try_line(Duration::from_millis(100), |_| true) {
            break l;
        }
    };
    assert!(
        line.contains("shop/orders  r1  GET /orders/1 200"),
        "{line}"
    );
    assert!(line.contains(&format!("→ be {}", backend.url())), "{line}");
    // --limit 1: uterm ends by itself after one request, with success.
    let deadline = Instant::now() + LIMIT;
    let code = loop {
        if let Some(c) = tap.exited() {
            break c;
        }
        assert!(Instant::now() < deadline, "uterm tap did not stop after 1");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, 0, "stderr: {}", tap.stderr());
    // A proxy name is required; a usage error exits 2 without contacting the server.
    let r = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("tap")
        .run();
    assert_eq!(r.code, 2, "{r}");
    // A proxy that does not exist: exit 1, and the message lists the proxies there are.
    let r = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("tap nope")
        .run();
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("no unit has a proxy \"nope\"; proxies: shop/orders, shop/other"),
        "{r}"
    );
    let r = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("tap other/orders")
        .run();
    assert!(
        r.stderr.contains("unit \"other\" has no proxy \"orders\""),
        "{r}"
    );
    // The endpoint itself insists on a proxy.
    let r = http
        .request("GET", &conf.mgmt_url("/tap"))
        .header("Authorization", &format!("Bearer {}", m.control))
        .send();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("name the proxy"), "{}", r.text());
}

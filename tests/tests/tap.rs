//! `uterm -c "tap PROXY"` against a real esb: one record per finished request of the
//! tapped proxy (and of no other), with method, path, status, revision, the steps that ran
//! with the switch's decision, the address that answered, and the fault of a failed request.
//! Requests are sent until the tap has shown them (the tap starts recording only once it is
//! open); each assertion is on what uterm printed. `tap consumer UNIT/C` the same way with
//! a file-inbox consumer: one record per file, with its outcome.

use e2e::mgmt_client::Mgmt;
use e2e::uterm::Uterm;
use e2e::{wait_for, Backend, Client, ClosedPort, Esb, TempConf};
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

/// A file-inbox consumer (no broker): a sequence that refuses `{"bad": "yes"}` with 422,
/// else the sink endpoint; one attempt per file.
fn files(dir: &std::path::Path, sink: &str) -> String {
    format!(
        r#"version = "1.0"

[[endpoint]]
name = "sink"
addresses = ["{sink}"]

[[sequence]]
name = "take"
steps = [
  {{ set_header = {{ name = "x-file", value = "${{prop.file.name}}" }} }},
  {{ filter = {{ on = "${{json./bad}}", equals = "yes", then = [{{ respond = {{ status = 422, body = "bad" }} }}] }} }},
]

[[consumer]]
name = "inbox"
dir = "{dir}"
pattern = "*.json"
poll = "100ms"
sequence = "take"
endpoint = "sink"
on_failure = {{ max_attempts = 1 }}
"#,
        dir = dir.display()
    )
}

#[test]
fn tap_consumer_streams_one_record_per_file_with_its_outcome() {
    let sink = Backend::fixed(200, "ok").start();
    let data = tempfile::tempdir().expect("data dir");
    let inbox = data.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let conf = TempConf::new()
        .http("web")
        .unit("files", &files(&inbox, &sink.url()));
    let _esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    let mut tap = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .args(["--json", "-c", "tap consumer files/inbox"])
        .spawn();
    // Files dropped before the tap is open are not recorded: probe files until one is.
    let deadline = Instant::now() + LIMIT;
    let mut probe = 0;
    'open: loop {
        assert!(Instant::now() < deadline, "the tap showed no probe file");
        probe += 1;
        std::fs::write(inbox.join(format!("probe-{probe}.json")), "{}").unwrap();
        while let Some(line) = tap.try_line(Duration::from_millis(300), |_| true) {
            let v: Value = serde_json::from_str(&line).expect("one JSON record a line");
            if v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("probe-"))
            {
                break 'open;
            }
        }
    }
    std::fs::write(inbox.join("good.json"), r#"{"id": 1}"#).unwrap();
    std::fs::write(inbox.join("bad.json"), r#"{"bad": "yes"}"#).unwrap();
    let mut by_file: std::collections::BTreeMap<String, Value> = Default::default();
    let deadline = Instant::now() + LIMIT;
    while !(by_file.contains_key("good.json") && by_file.contains_key("bad.json")) {
        assert!(Instant::now() < deadline, "the tap showed {by_file:?}");
        if let Some(line) = tap.try_line(Duration::from_millis(200), |_| true) {
            let v: Value = serde_json::from_str(&line).expect("one JSON record a line");
            assert_eq!(v["consumer"], "inbox", "only the tapped consumer: {v}");
            assert!(v.get("proxy").is_none(), "{v}");
            let name = v["message"].as_str().unwrap_or("").to_string();
            by_file.insert(name, v);
        }
    }
    let good = &by_file["good.json"];
    assert_eq!(good["unit"], "files");
    assert_eq!(good["outcome"], "ack");
    assert_eq!(good["attempt"], 1);
    assert_eq!(good["revision"], 1);
    assert_eq!(good["source"], inbox.display().to_string());
    assert_eq!(good["steps"][0]["step"], "set_header x-file");
    assert_eq!(good["answered"]["endpoint"], "sink");
    assert_eq!(good["answered"]["address"], sink.url());
    assert!(good.get("fault").is_none(), "{good}");
    let bad = &by_file["bad.json"];
    assert_eq!(bad["outcome"], "dead-letter");
    assert!(bad.get("answered").is_none(), "{bad}");
    assert!(
        bad["fault"].as_str().unwrap().contains("responded 422"),
        "{bad}"
    );
    // The files ended where the outcomes say.
    wait_for(
        "good.json in done/, bad.json in failed/",
        LIMIT,
        || {
            (inbox.join("done/good.json").exists() && inbox.join("failed/bad.json").exists())
                .then_some(())
        },
        String::new,
    );
    // A consumer that does not exist: exit 1, naming the consumers there are.
    let r = Uterm::connected(&conf.mgmt_url(""), &m.control)
        .c("tap consumer files/nope")
        .run();
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr
            .contains("unit \"files\" has no consumer \"nope\"; consumers: files/inbox"),
        "{r}"
    );
}

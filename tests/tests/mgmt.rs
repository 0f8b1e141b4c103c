//! The management endpoint end to end: a real `esb` with real backends on loopback, driven
//! over HTTP exactly as an operator's tools drive it. Every runtime operation is checked by
//! its effect on traffic (not only by the attribute it flips); every deployment operation
//! goes through Jolokia `exec`; the protocol is checked against the Jolokia reference
//! (envelopes, GET path form with `!` escaping, bulk, errors); a stock Jolokia client
//! (`jolokia.js`, tests/jolokia-js) drives it unchanged; and the security rules, the audit
//! log, `/events` and `/metrics` are checked from the outside.

use e2e::mgmt_client::{Mgmt, RawRequest};
use e2e::units::answer_unit;
use e2e::{wait_until, Backend, Client, Esb, EsbOptions, TempConf};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long any expected change may take to show.
const LIMIT: Duration = Duration::from_secs(10);

const PROXY: &str = "esb:type=Proxy,unit=shop,name=orders";
const PROXY_CANONICAL: &str = "esb:name=orders,type=Proxy,unit=shop";
const UNIT: &str = "esb:type=Unit,name=shop";
const ENDPOINT: &str = "esb:type=Endpoint,unit=shop,name=be";
const SERVER: &str = "esb:type=Server";
const MANAGER: &str = "esb:type=DeploymentManager";

/// A running esb with its configuration, management endpoint and a data-plane client.
/// Field order matters: esb stops before its configuration directory is removed.
struct Env {
    esb: Esb,
    conf: TempConf,
    m: Mgmt,
    http: Client,
}

impl Env {
    fn start(conf: TempConf) -> Env {
        Self::start_with(conf, EsbOptions::default())
    }

    fn start_with(conf: TempConf, opts: EsbOptions) -> Env {
        let esb = Esb::start_with(&conf, opts);
        let m = Mgmt::of(&conf);
        Env {
            esb,
            conf,
            m,
            http: Client::new().timeout(Duration::from_secs(15)),
        }
    }

    /// `GET http://127.0.0.1:<web>{path}`.
    fn get(&self, path: &str) -> e2e::Response {
        self.http.get(&self.conf.url("web", path))
    }

    /// GET that must answer `status`; the response.
    fn expect(&self, path: &str, status: u16) -> e2e::Response {
        let r = self.get(path);
        assert_eq!(
            r.status,
            status,
            "GET {path}: body {}\n--- esb log ---\n{}",
            r.text(),
            self.esb.log()
        );
        r
    }

    fn unit_file(&self, unit: &str) -> std::path::PathBuf {
        self.conf.unit_dir(unit).join("unit.toml")
    }

    /// Writes `deployments/<unit>/unit.toml` of the running server.
    fn write_unit(&self, unit: &str, toml: &str) {
        let path = self.unit_file(unit);
        std::fs::create_dir_all(path.parent().expect("unit dir")).expect("mkdir unit");
        std::fs::write(&path, toml).expect("write unit.toml");
    }
}

/// A unit `shop` with proxy `orders` on `/orders` forwarding to endpoint `be` (one address).
fn shop_unit(backend: &str) -> String {
    format!(
        r#"version = "1.0"

[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{backend}"]
"#
    )
}

/// Rewrites the generated `esb.toml` (for `[management]` settings the harness does not write).
fn patch_root(conf: &TempConf, edit: impl FnOnce(String) -> String) {
    let path = conf.dir().join("esb.toml");
    let text = std::fs::read_to_string(&path).expect("read esb.toml");
    let patched = edit(text.clone());
    assert_ne!(patched, text, "the esb.toml patch changed nothing");
    std::fs::write(&path, patched).expect("write esb.toml");
}

fn assert_ok(env: &Value) -> &Value {
    assert_eq!(
        env["status"], 200,
        "expected a successful envelope: {env:#}"
    );
    &env["value"]
}

/// Checks the Jolokia error envelope: status, error_type, `error` = "<type> : <message>",
/// the request echo, no value. Returns the message.
fn assert_error(env: &Value, status: u16, error_type: &str) -> String {
    assert_eq!(env["status"], status, "envelope: {env:#}");
    assert_eq!(env["error_type"], error_type, "envelope: {env:#}");
    let error = env["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text: {env:#}"));
    let prefix = format!("{error_type} : ");
    assert!(
        error.starts_with(&prefix),
        "error must read \"{prefix}<message>\": {error}"
    );
    assert!(
        env.get("value").is_none(),
        "an error carries no value: {env:#}"
    );
    error[prefix.len()..].to_owned()
}

// ---------------------------------------------------------------------------------------
// Runtime operations, judged by their effect on traffic
// ---------------------------------------------------------------------------------------

#[test]
fn proxy_pause_resume_stop_start_change_traffic() {
    let be = Backend::fixed(200, "from backend").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    assert_eq!(env.expect("/orders", 200).text(), "from backend");
    let hits = be.hits();

    env.m.exec_ok(PROXY, "pause", json!([]));
    assert_eq!(env.m.read(PROXY, "State"), "Paused");
    let r = env.expect("/orders", 503);
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("a paused proxy answers with Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(be.hits(), hits, "a paused proxy must not forward");

    env.m.exec_ok(PROXY, "resume", json!([]));
    assert_eq!(env.m.read(PROXY, "State"), "Active");
    assert_eq!(env.expect("/orders/1", 200).text(), "from backend");

    env.m.exec_ok(PROXY, "stop", json!([]));
    assert_eq!(env.m.read(PROXY, "State"), "Stopped");
    env.expect("/orders", 404);
    let hits = be.hits();
    // A stopped proxy is resumed with start, not resume: the refusal says so.
    let msg = assert_error(
        &env.m.exec(PROXY, "resume", json!([])),
        500,
        "javax.management.RuntimeMBeanException",
    );
    assert!(msg.contains("start it"), "{msg}");
    env.expect("/orders", 404);
    assert_eq!(be.hits(), hits, "a stopped proxy must not forward");

    env.m.exec_ok(PROXY, "start", json!([]));
    assert_eq!(env.m.read(PROXY, "State"), "Active");
    assert_eq!(env.expect("/orders", 200).text(), "from backend");
}

#[test]
fn unit_pause_rejects_and_pause_hold_releases_on_resume_or_times_out() {
    let be = Backend::fixed(200, "ok").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    env.expect("/orders", 200);

    // pause: 503 at once.
    env.m.exec_ok(UNIT, "pause", json!([]));
    assert_eq!(env.m.read(UNIT, "State"), "Paused");
    let r = env.expect("/orders", 503);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    env.m.exec_ok(UNIT, "resume", json!([]));
    assert_eq!(env.m.read(UNIT, "State"), "Active");
    env.expect("/orders", 200);

    // pauseHold: a request sent while paused waits, and resume releases it with 200.
    env.m.exec_ok(UNIT, "pauseHold", json!([2000]));
    assert_eq!(env.m.read(UNIT, "State"), "Paused");
    let url = env.conf.url("web", "/orders");
    let http = env.http.clone();
    let held = std::thread::spawn(move || http.get(&url).status);
    wait_until("the held request to be in flight", LIMIT, || {
        env.m.read(PROXY, "InFlight") == 1
    });
    assert!(!held.is_finished(), "a held request must wait for resume");
    let hits = be.hits();
    env.m.exec_ok(UNIT, "resume", json!([]));
    let status = held.join().expect("held request thread");
    // A hold that runs out answers 503: a 200 was released by the resume.
    assert_eq!(status, 200, "a held request is served after resume");
    assert_eq!(be.hits(), hits + 1);

    // pauseHold without resume: the request waits (in flight, unanswered), then gets 503
    // once the hold has passed.
    env.m.exec_ok(UNIT, "pauseHold", json!([2000]));
    let url = env.conf.url("web", "/orders");
    let http = env.http.clone();
    let held = std::thread::spawn(move || http.get(&url));
    wait_until("the held request to be in flight", LIMIT, || {
        env.m.read(PROXY, "InFlight") == 1
    });
    assert!(!held.is_finished(), "the request must wait for the hold");
    let r = held.join().expect("held request thread");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        be.hits(),
        hits + 1,
        "a request whose hold ran out never reaches the backend"
    );
    env.m.exec_ok(UNIT, "resume", json!([]));
    env.expect("/orders", 200);
}

#[test]
fn endpoint_maintenance_fails_fast_into_the_fault_sequence_and_resume_restores() {
    let be = Backend::fixed(200, "backend").start();
    let unit = format!(
        r#"[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[proxy]]
name = "guarded"
path = "/guarded"
endpoint = "be"
fault_sequence = "sorry"

[[sequence]]
name = "sorry"
steps = [{{ respond = {{ status = 503, body = "maintenance page (${{prop.error.status}})", headers = {{ "x-fault" = "sorry" }} }} }}]

[[endpoint]]
name = "be"
addresses = ["{}"]
"#,
        be.url()
    );
    let env = Env::start(TempConf::new().http("web").unit("shop", &unit));
    env.expect("/orders", 200);
    env.expect("/guarded", 200);
    let hits = be.hits();

    env.m.exec_ok(ENDPOINT, "pause", json!([]));
    assert_eq!(env.m.read(ENDPOINT, "State"), "Maintenance");
    // Without a fault sequence: the default JSON error, 503.
    let r = env.expect("/orders", 503);
    let body = r.json();
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["proxy"], "orders", "{body}");
    assert!(body["error"].is_string(), "{body}");
    // With one: its answer.
    let r = env.expect("/guarded", 503);
    assert_eq!(r.header("x-fault"), Some("sorry"));
    assert_eq!(r.text(), "maintenance page (503)");
    assert_eq!(be.hits(), hits, "maintenance must not reach the backend");

    env.m.exec_ok(ENDPOINT, "resume", json!([]));
    assert_eq!(env.m.read(ENDPOINT, "State"), "Active");
    assert_eq!(env.expect("/orders", 200).text(), "backend");
    assert_eq!(env.expect("/guarded", 200).text(), "backend");
    assert_eq!(be.hits(), hits + 2);
}

fn address_states(m: &Mgmt) -> Vec<(String, String)> {
    m.read(ENDPOINT, "Addresses")
        .as_array()
        .expect("Addresses is an array")
        .iter()
        .map(|a| {
            (
                a["url"].as_str().expect("url").to_owned(),
                a["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

#[test]
fn address_suspend_activate_add_remove_on_a_round_robin_endpoint() {
    let a = Backend::fixed(200, "a").name("a").start();
    let b = Backend::fixed(200, "b").name("b").start();
    let c = Backend::fixed(200, "c").name("c").start();
    let unit = format!(
        r#"[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[endpoint]]
name = "be"
strategy = "round-robin"
addresses = ["{}", "{}"]
"#,
        a.url(),
        b.url()
    );
    let env = Env::start(TempConf::new().http("web").unit("shop", &unit));
    let send = |n: usize| {
        for _ in 0..n {
            env.expect("/orders", 200);
        }
    };
    send(4);
    assert_eq!(
        (a.hits(), b.hits()),
        (2, 2),
        "round-robin over two addresses"
    );

    // A suspended address gets no traffic.
    env.m.exec_ok(ENDPOINT, "suspendAddress", json!([a.url()]));
    let states = address_states(&env.m);
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].0, a.url());
    assert_ne!(states[0].1, "Active", "{states:?}");
    assert_eq!(states[1].1, "Active", "{states:?}");
    send(4);
    assert_eq!(
        (a.hits(), b.hits()),
        (2, 6),
        "the suspended address got traffic"
    );

    // Activated, it is back in rotation.
    env.m.exec_ok(ENDPOINT, "activateAddress", json!([a.url()]));
    assert!(address_states(&env.m).iter().all(|(_, s)| s == "Active"));
    send(4);
    assert_eq!((a.hits(), b.hits()), (4, 8));

    // An added address receives traffic.
    env.m.exec_ok(ENDPOINT, "addAddress", json!([c.url()]));
    let states = address_states(&env.m);
    assert_eq!(states.len(), 3, "{states:?}");
    assert_eq!(states[2], (c.url(), "Active".to_owned()));
    send(6);
    assert_eq!(c.hits(), 2, "the added address gets its turn");
    assert_eq!((a.hits(), b.hits()), (6, 10));
    // Adding it twice, or something that is not an http(s) URL, is refused.
    let dup = env.m.exec(ENDPOINT, "addAddress", json!([c.url()]));
    assert!(dup["status"].as_u64().unwrap_or(0) >= 400, "{dup:#}");
    let bad = env
        .m
        .exec(ENDPOINT, "addAddress", json!(["ftp://127.0.0.1:21"]));
    assert_error(&bad, 400, "java.lang.IllegalArgumentException");

    // Removing addresses: traffic moves; the last one cannot go.
    env.m.exec_ok(ENDPOINT, "removeAddress", json!([a.url()]));
    env.m.exec_ok(ENDPOINT, "removeAddress", json!([b.url()]));
    assert_eq!(address_states(&env.m), vec![(c.url(), "Active".to_owned())]);
    send(3);
    assert_eq!((a.hits(), b.hits(), c.hits()), (6, 10, 5));
    let last = env.m.exec(ENDPOINT, "removeAddress", json!([c.url()]));
    let msg = assert_error(&last, 500, "javax.management.RuntimeMBeanException");
    assert!(
        msg.contains("last address") && msg.contains("\"be\""),
        "the refusal must say why: {msg}"
    );
    assert_eq!(address_states(&env.m).len(), 1);
    env.expect("/orders", 200);
    // An address that is not there is named in the refusal.
    let unknown = env
        .m
        .exec(ENDPOINT, "suspendAddress", json!(["http://127.0.0.1:9"]));
    let msg = assert_error(&unknown, 500, "javax.management.RuntimeMBeanException");
    assert!(msg.contains("http://127.0.0.1:9"), "{msg}");
}

/// docs/configuration.md §2.5: "Endpoint maintenance survives reloads; address state survives
/// reloads that leave the endpoint's definition unchanged."
#[test]
fn endpoint_maintenance_and_address_state_survive_a_reload() {
    let a = Backend::fixed(200, "a").start();
    let b = Backend::fixed(200, "b").start();
    let unit = |path: &str| {
        format!(
            r#"[[proxy]]
name = "orders"
path = "{path}"
endpoint = "be"

[[endpoint]]
name = "be"
strategy = "round-robin"
addresses = ["{}", "{}"]
"#,
            a.url(),
            b.url()
        )
    };
    let env = Env::start(TempConf::new().http("web").unit("shop", &unit("/orders")));
    env.m.exec_ok(ENDPOINT, "suspendAddress", json!([a.url()]));
    env.m.exec_ok(ENDPOINT, "pause", json!([]));
    env.expect("/orders", 503);

    // Reload with the endpoint unchanged (only the proxy's path changes).
    env.write_unit("shop", &unit("/v2/orders"));
    let o = env.m.exec_ok(MANAGER, "reload", json!(["shop"]));
    assert_eq!(o["outcome"], "activated", "{o:#}");
    assert_eq!(env.m.read(ENDPOINT, "State"), "Maintenance");
    env.expect("/v2/orders", 503);
    assert_eq!((a.hits(), b.hits()), (0, 0));

    env.m.exec_ok(ENDPOINT, "resume", json!([]));
    let states = address_states(&env.m);
    assert_ne!(
        states[0].1, "Active",
        "the suspended address came back: {states:?}"
    );
    for _ in 0..4 {
        env.expect("/v2/orders", 200);
    }
    assert_eq!(
        (a.hits(), b.hits()),
        (0, 4),
        "the suspended address got traffic"
    );
}

#[test]
fn transport_pause_holds_new_connections_stop_releases_the_port_start_serves() {
    let be = Backend::fixed(200, "ok").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    const T: &str = "esb:type=Transport,name=web";
    env.expect("/orders", 200);
    assert_eq!(env.m.read(T, "State"), "Started");

    // Paused: a new connection's request waits, and is served after resume.
    env.m.exec_ok(T, "pause", json!([]));
    assert_eq!(env.m.read(T, "State"), "Paused");
    let url = env.conf.url("web", "/orders");
    let http = env.http.clone();
    let waiting = std::thread::spawn(move || http.get(&url).status);
    // Give it time to connect and send; it must still be waiting (nothing accepted it).
    let deadline = Instant::now() + Duration::from_millis(400);
    while Instant::now() < deadline {
        assert!(
            !waiting.is_finished(),
            "a paused transport served a request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(be.hits(), 1);
    env.m.exec_ok(T, "resume", json!([]));
    assert_eq!(waiting.join().expect("waiting request"), 200);
    assert_eq!(be.hits(), 2);

    // Stopped: connections are refused and the port is free.
    env.m.exec_ok(T, "stop", json!([]));
    assert_eq!(env.m.read(T, "State"), "Stopped");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], env.conf.port("web")));
    wait_until("the stopped transport to refuse connections", LIMIT, || {
        matches!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    });
    {
        let probe = tokio::net::TcpSocket::new_v4().expect("socket");
        probe.set_reuseaddr(true).expect("SO_REUSEADDR");
        probe
            .bind(addr)
            .unwrap_or_else(|e| panic!("the stopped transport still holds {addr}: {e}"));
    }
    // Pause/resume of a stopped transport is refused with a reason.
    let msg = assert_error(
        &env.m.exec(T, "resume", json!([])),
        500,
        "javax.management.RuntimeMBeanException",
    );
    assert!(msg.contains("start"), "{msg}");

    // Started again: it serves.
    env.m.exec_ok(T, "start", json!([]));
    assert_eq!(env.m.read(T, "State"), "Started");
    env.expect("/orders", 200);
}

#[test]
fn task_pause_resume_and_run_now() {
    let once = Backend::fixed(200, "once").start();
    let tick = Backend::fixed(200, "tick").start();
    let unit = format!(
        r#"[[task]]
name = "nightly"
every = "1h"
sequence = "call-once"

[[task]]
name = "tick"
every = "50ms"
sequence = "call-tick"

[[sequence]]
name = "call-once"
steps = [{{ call = {{ endpoint = "once" }} }}]

[[sequence]]
name = "call-tick"
steps = [{{ call = {{ endpoint = "tick" }} }}]

[[endpoint]]
name = "once"
addresses = ["{}"]

[[endpoint]]
name = "tick"
addresses = ["{}"]
"#,
        once.url(),
        tick.url()
    );
    let env = Env::start(TempConf::new().unit("jobs", &unit));
    const NIGHTLY: &str = "esb:type=Task,unit=jobs,name=nightly";
    const TICK: &str = "esb:type=Task,unit=jobs,name=tick";

    // runNow on a task with a long period: its backend is hit exactly once.
    assert_eq!(env.m.read(NIGHTLY, "Runs"), 0);
    assert_eq!(env.m.read(NIGHTLY, "LastRun"), Value::Null);
    env.m.exec_ok(NIGHTLY, "runNow", json!([]));
    wait_until("the nightly task to run once", LIMIT, || {
        env.m.read(NIGHTLY, "Runs") == 1
    });
    assert_eq!(once.hits(), 1);
    assert!(env.m.read(NIGHTLY, "LastRun").as_u64().is_some());
    assert_eq!(env.m.read(NIGHTLY, "Failures"), 0);

    // pause stops the scheduled runs; resume starts them again.
    wait_until("the ticking task to run", LIMIT, || tick.hits() >= 2);
    env.m.exec_ok(TICK, "pause", json!([]));
    assert_eq!(env.m.read(TICK, "State"), "Paused");
    let paused_at = tick.hits();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        // One run may have been under way when the pause arrived.
        assert!(
            tick.hits() <= paused_at + 1,
            "a paused task keeps running ({} → {})",
            paused_at,
            tick.hits()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    env.m.exec_ok(TICK, "resume", json!([]));
    assert_ne!(env.m.read(TICK, "State"), "Paused");
    let resumed_at = tick.hits();
    wait_until("the resumed task to run again", LIMIT, || {
        tick.hits() >= resumed_at + 2
    });
    assert_eq!(once.hits(), 1, "the nightly task ran again on its own");
}

#[test]
fn server_maintenance_switches_health() {
    let env = Env::start(TempConf::new());
    let h = env.m.health();
    assert_eq!((h.status, h.json()), (200, json!({"status": "up"})));

    env.m.exec_ok(SERVER, "maintenance", json!([true]));
    assert_eq!(env.m.read(SERVER, "State"), "Maintenance");
    let h = env.m.health();
    assert_eq!(
        (h.status, h.json()),
        (503, json!({"status": "maintenance"}))
    );

    env.m.exec_ok(SERVER, "maintenance", json!([false]));
    assert_eq!(env.m.read(SERVER, "State"), "Running");
    assert_eq!(env.m.health().status, 200);
}

#[test]
fn hot_deploy_write_switches_the_file_watcher() {
    // Started with --no-watch: the watcher runs but does not deploy.
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1")),
    );
    assert_eq!(env.m.read(SERVER, "HotDeploy"), false);
    assert_eq!(env.m.read(MANAGER, "HotDeploy"), false);
    assert_eq!(env.expect("/hello", 200).text(), "v1");

    // write returns the previous value; with hot deploy on, a saved file is deployed.
    let w = env.m.jolokia(&json!({
        "type": "write", "mbean": SERVER, "attribute": "HotDeploy", "value": true,
    }));
    assert_eq!(*assert_ok(&w), json!(false), "{w:#}");
    assert_eq!(env.m.read(MANAGER, "HotDeploy"), true);
    env.write_unit("app", &answer_unit("/hello", "v2", "2"));
    wait_until("the saved unit to be hot-deployed", LIMIT, || {
        env.get("/hello").text() == "v2"
    });

    // Switched off again (through the manager's operation), a saved file stays on disk only.
    env.m.exec_ok(MANAGER, "setHotDeploy", json!([false]));
    assert_eq!(env.m.read(SERVER, "HotDeploy"), false);
    env.write_unit("app", &answer_unit("/hello", "v3", "3"));
    wait_until("ModifiedOnDisk", LIMIT, || {
        env.m.read("esb:type=Unit,name=app", "ModifiedOnDisk") == true
    });
    // Well past the 100 ms debounce: still the old revision.
    let deadline = Instant::now() + Duration::from_millis(800);
    while Instant::now() < deadline {
        assert_eq!(
            env.get("/hello").text(),
            "v2",
            "deployed with hot deploy off"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(env.m.read("esb:type=Unit,name=app", "Revision"), 2);
}

// ---------------------------------------------------------------------------------------
// Deployment operations through Jolokia exec
// ---------------------------------------------------------------------------------------

fn outcome<'a>(v: &'a Value, expected: &str) -> &'a Value {
    assert_eq!(v["outcome"], expected, "outcome: {v:#}");
    v
}

#[test]
fn deployment_operations_through_exec() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0"))
            .unit("other", &answer_unit("/other", "o1", "1.0")),
    );
    let m = &env.m;
    let ex = |op: &str, args: Value| m.exec_ok(MANAGER, op, args);
    assert_eq!(env.expect("/hello", 200).text(), "v1");
    assert_eq!(m.read(MANAGER, "Units"), json!(["app", "other"]));

    // validate: the files on disk.
    assert_eq!(
        ex("validate", json!(["app"])),
        json!({"unit": "app", "valid": true})
    );

    // diff: running vs disk, field by field.
    env.write_unit("app", &answer_unit("/hi", "v2", "2.0"));
    let d = ex("diff", json!(["app"]));
    assert_eq!(d["unit"], "app");
    let changes = d["diff"]["changes"].as_array().expect("changes");
    let proxy = changes
        .iter()
        .find(|c| c["kind"] == "proxy" && c["name"] == "hello")
        .unwrap_or_else(|| panic!("no proxy change in {d:#}"));
    assert_eq!(proxy["change"], "changed");
    let path = proxy["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["field"] == "path")
        .unwrap_or_else(|| panic!("no path field in {proxy:#}"));
    assert_eq!(
        (&path["old"], &path["new"]),
        (&json!("/hello"), &json!("/hi"))
    );
    assert!(d["text"].as_str().is_some_and(|t| !t.is_empty()), "{d:#}");
    assert_eq!(
        env.expect("/hello", 200).text(),
        "v1",
        "diff must not deploy"
    );

    // reload: disk → running.
    let o = ex("reload", json!(["app"]));
    outcome(&o, "activated");
    assert_eq!(o["revision"], 2);
    assert_eq!(o["label"], "2.0");
    assert_eq!(env.expect("/hi", 200).text(), "v2");
    env.expect("/hello", 404);
    outcome(&ex("reload", json!(["app"])), "unchanged");

    // history: newest first, the active one marked.
    let h = ex("history", json!(["app"]));
    let revs: Vec<(u64, bool)> = h
        .as_array()
        .expect("history array")
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().expect("revision"),
                r["active"] == true,
            )
        })
        .collect();
    assert_eq!(revs, vec![(2, true), (1, false)], "{h:#}");
    for r in h.as_array().into_iter().flatten() {
        assert!(r["hash"].is_string() && r["deployed_at"].is_u64(), "{r:#}");
    }

    // rollback: the previous revision serves again; rollbackTo: a chosen one.
    let o = ex("rollback", json!(["app"]));
    outcome(&o, "activated");
    assert_eq!(env.expect("/hello", 200).text(), "v1");
    env.expect("/hi", 404);
    outcome(&ex("rollbackTo", json!(["app", 2])), "activated");
    assert_eq!(env.expect("/hi", 200).text(), "v2");
    let bad = m.exec(MANAGER, "rollbackTo", json!(["app", 99]));
    let v = assert_ok(&bad);
    assert_eq!(v["outcome"], "rejected", "{bad:#}");
    assert_eq!(env.expect("/hi", 200).text(), "v2");

    // validateContent / deploy of invalid content: errors with the line; nothing changes.
    let invalid =
        "version = \"9\"\n\n[[proxy]]\nname = \"hello\"\npath = \"/x\"\nendpiont = \"nope\"\n";
    let v = ex("validateContent", json!(["app", invalid]));
    assert_eq!(v["valid"], false, "{v:#}");
    let errors = v["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["line"] == 6 && e["message"].is_string()),
        "an error on line 6 (the misspelt key): {v:#}"
    );
    let o = ex("deploy", json!(["app", invalid]));
    outcome(&o, "rejected");
    assert!(
        o["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["line"] == 6)),
        "{o:#}"
    );
    assert_eq!(
        env.expect("/hi", 200).text(),
        "v2",
        "a rejected deploy changed traffic"
    );
    assert_eq!(
        ex(
            "validateContent",
            json!(["app", answer_unit("/x", "x", "x")])
        ),
        json!({"unit": "app", "valid": true})
    );

    // diffContent: what deploying content would change.
    let d = ex(
        "diffContent",
        json!(["app", answer_unit("/hi", "v3", "3.0")]),
    );
    let changes = d["diff"]["changes"].as_array().expect("changes");
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "sequence" && c["name"] == "say"),
        "{d:#}"
    );
    let d = ex("diffContent", json!(["app", invalid]));
    assert!(
        d["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{d:#}"
    );

    // deploy: content → running.
    let o = ex(
        "deploy",
        json!(["app", answer_unit("/deployed", "v3", "3.0")]),
    );
    outcome(&o, "activated");
    assert_eq!(o["label"], "3.0");
    assert_eq!(env.expect("/deployed", 200).text(), "v3");

    // unload, then load from disk.
    let o = ex("unload", json!(["app"]));
    outcome(&o, "unloaded");
    env.expect("/deployed", 404);
    assert_eq!(m.read(MANAGER, "Units"), json!(["other"]));
    outcome(&ex("load", json!(["app"])), "activated");
    assert_eq!(
        env.expect("/hi", 200).text(),
        "v2",
        "load reads the files on disk"
    );

    // load of a unit that only now appeared on disk.
    env.write_unit("fresh", &answer_unit("/fresh", "new", "1"));
    assert!(m
        .read(MANAGER, "UnitsOnDisk")
        .as_array()
        .is_some_and(|u| u.contains(&json!("fresh"))));
    outcome(&ex("load", json!(["fresh"])), "activated");
    assert_eq!(env.expect("/fresh", 200).text(), "new");

    // reloadAll: every changed unit.
    env.write_unit("app", &answer_unit("/hi", "v4", "4"));
    env.write_unit("other", &answer_unit("/other", "o2", "2"));
    let all = ex("reloadAll", json!([]));
    let all = all.as_array().expect("reloadAll returns an array");
    for unit in ["app", "other"] {
        let o = all
            .iter()
            .find(|o| o["unit"] == unit)
            .unwrap_or_else(|| panic!("no outcome for {unit} in {all:#?}"));
        outcome(o, "activated");
    }
    assert_eq!(env.expect("/hi", 200).text(), "v4");
    assert_eq!(env.expect("/other", 200).text(), "o2");

    // batch: several units in one swap; all-or-nothing.
    env.write_unit("app", &answer_unit("/hi", "v5", "5"));
    env.write_unit("other", &answer_unit("/other", "o3", "3"));
    let b = ex("batch", json!([["app", "other"]]));
    let b = b.as_array().expect("batch returns an array");
    assert_eq!(b.len(), 2, "{b:#?}");
    assert!(b.iter().all(|o| o["outcome"] == "activated"), "{b:#?}");
    assert_eq!(env.expect("/hi", 200).text(), "v5");
    assert_eq!(env.expect("/other", 200).text(), "o3");
    env.write_unit("app", &answer_unit("/hi", "v6", "6"));
    env.write_unit("other", "[[proxy]]\nname = \"broken\"\n");
    let b = ex("batch", json!([["app", "other"]]));
    let b = b.as_array().expect("batch returns an array");
    assert!(
        b.iter().all(|o| o["outcome"] != "activated"),
        "one invalid unit must sink the batch: {b:#?}"
    );
    assert!(b.iter().any(|o| o["outcome"] == "rejected"), "{b:#?}");
    assert_eq!(
        env.expect("/hi", 200).text(),
        "v5",
        "a failed batch changed a unit"
    );

    // setHotDeploy through exec.
    ex("setHotDeploy", json!([true]));
    assert_eq!(m.read(MANAGER, "HotDeploy"), true);
    ex("setHotDeploy", json!([false]));
    assert_eq!(m.read(MANAGER, "HotDeploy"), false);
}

// ---------------------------------------------------------------------------------------
// Jolokia protocol conformance
// ---------------------------------------------------------------------------------------

/// Unit `shop` with two proxies (`orders`, `refunds`) on one endpoint.
fn two_proxy_env() -> (Env, Backend) {
    let be = Backend::fixed(200, "ok").start();
    let unit = format!(
        r#"[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[proxy]]
name = "refunds"
path = "/refunds"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{}"]
"#,
        be.url()
    );
    (
        Env::start(TempConf::new().http("web").unit("shop", &unit)),
        be,
    )
}

#[test]
fn jolokia_read_write_exec_search_list_version() {
    let (env, be) = two_proxy_env();
    let m = &env.m;

    // read: one attribute, with the request echoed.
    let r = m.jolokia(&json!({"type": "read", "mbean": PROXY, "attribute": "Path"}));
    assert_eq!(*assert_ok(&r), json!("/orders"));
    assert_eq!(
        r["request"],
        json!({"type": "read", "mbean": PROXY, "attribute": "Path"})
    );
    assert!(r["timestamp"].as_u64().is_some(), "{r:#}");

    // several attributes: an object with exactly those.
    let r = m.jolokia(&json!({"type": "read", "mbean": PROXY, "attribute": ["State", "Path"]}));
    assert_eq!(
        *assert_ok(&r),
        json!({"State": "Active", "Path": "/orders"})
    );

    // all attributes.
    let r = m.jolokia(&json!({"type": "read", "mbean": PROXY}));
    let all = assert_ok(&r).as_object().expect("object").clone();
    for a in [
        "State",
        "Path",
        "Methods",
        "Transports",
        "Endpoint",
        "Revision",
        "Requests",
        "Errors",
        "InFlight",
        "P50Micros",
        "P99Micros",
    ] {
        assert!(all.contains_key(a), "{a} missing from {all:?}");
    }

    // pattern name: a map keyed by the matching beans' names.
    let r = m.jolokia(&json!({"type": "read", "mbean": "esb:type=Proxy,*", "attribute": "State"}));
    assert_eq!(
        *assert_ok(&r),
        json!({
            "esb:name=orders,type=Proxy,unit=shop": {"State": "Active"},
            "esb:name=refunds,type=Proxy,unit=shop": {"State": "Active"},
        })
    );
    let r = m.jolokia(&json!({"type": "read", "mbean": "esb:type=Proxy,name=refunds,*"}));
    let v = assert_ok(&r);
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v:#}");
    assert_eq!(
        v["esb:name=refunds,type=Proxy,unit=shop"]["Path"],
        "/refunds"
    );
    let r =
        m.jolokia(&json!({"type": "read", "mbean": "esb:type=Nothing,*", "attribute": "State"}));
    assert_error(&r, 404, "javax.management.InstanceNotFoundException");

    // inner path.
    let r = m.jolokia(&json!({
        "type": "read", "mbean": ENDPOINT, "attribute": "Addresses", "path": "0/url",
    }));
    assert_eq!(*assert_ok(&r), json!(be.url()));

    // write: the writable attribute (old value back), then read-only and unknown ones.
    let r = m.jolokia(
        &json!({"type": "write", "mbean": MANAGER, "attribute": "HotDeploy", "value": true}),
    );
    assert_eq!(*assert_ok(&r), json!(false));
    assert_eq!(m.read(MANAGER, "HotDeploy"), true);
    let r = m.jolokia(
        &json!({"type": "write", "mbean": MANAGER, "attribute": "HotDeploy", "value": false}),
    );
    assert_eq!(*assert_ok(&r), json!(true));
    let r = m.jolokia(
        &json!({"type": "write", "mbean": PROXY, "attribute": "State", "value": "Paused"}),
    );
    let msg = assert_error(&r, 400, "java.lang.IllegalArgumentException");
    assert!(msg.contains("read-only"), "{msg}");
    assert_eq!(m.read(PROXY, "State"), "Active");
    let r = m.jolokia(&json!({"type": "write", "mbean": PROXY, "attribute": "Colour", "value": 1}));
    assert_error(&r, 404, "javax.management.AttributeNotFoundException");

    // exec with arguments, by name and by signature.
    m.exec_ok(UNIT, "pauseHold", json!([250]));
    assert_eq!(m.read(UNIT, "State"), "Paused");
    m.exec_ok(UNIT, "resume()", json!([]));
    m.exec_ok(UNIT, "pauseHold(long)", json!(["250"]));
    assert_eq!(m.read(UNIT, "State"), "Paused");
    m.exec_ok(UNIT, "resume", json!([]));
    assert_eq!(m.read(UNIT, "State"), "Active");

    // search with patterns.
    let search = |pattern: &str| {
        let r = m.jolokia(&json!({"type": "search", "mbean": pattern}));
        let mut names: Vec<String> = assert_ok(&r)
            .as_array()
            .unwrap_or_else(|| panic!("search value is an array: {r:#}"))
            .iter()
            .map(|n| n.as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        search("esb:type=Proxy,*"),
        vec![PROXY_CANONICAL, "esb:name=refunds,type=Proxy,unit=shop"]
    );
    let everything = search("esb:*");
    for n in [
        "esb:type=Server",
        "esb:type=DeploymentManager",
        "esb:name=web,type=Transport",
        "esb:name=shop,type=Unit",
        "esb:name=be,type=Endpoint,unit=shop",
        PROXY_CANONICAL,
    ] {
        assert!(
            everything.iter().any(|e| e == n),
            "{n} not in {everything:?}"
        );
    }
    assert_eq!(search("esb:type=Unit,*"), vec!["esb:name=shop,type=Unit"]);
    assert_eq!(
        search("esb:type=Proxy,name=ref*,*"),
        vec!["esb:name=refunds,type=Proxy,unit=shop"]
    );
    assert!(search("other:*").is_empty());

    // list: whole tree, a path, maxDepth.
    let r = m.jolokia(&json!({"type": "list"}));
    let tree = assert_ok(&r);
    let orders = &tree["esb"]["name=orders,type=Proxy,unit=shop"];
    assert!(orders["attr"]["State"].is_object(), "{orders:#}");
    assert!(orders["op"]["pause"].is_object(), "{orders:#}");
    assert!(orders["desc"].is_string(), "{orders:#}");
    let r = m.jolokia(&json!({"type": "list", "path": "esb/type=Proxy,unit=shop,name=orders/op"}));
    let ops = assert_ok(&r);
    for op in ["pause", "resume", "stop", "start"] {
        assert!(ops[op].is_object(), "{op} missing from {ops:#}");
    }
    let r = m.jolokia(&json!({"type": "list", "path": "esb/name=shop,type=Unit/op/pauseHold"}));
    let args = &assert_ok(&r)["args"];
    assert_eq!(args.as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(args[0]["type"], "long", "{r:#}");
    let r = m.jolokia(&json!({"type": "list", "config": {"maxDepth": 1}}));
    assert_eq!(*assert_ok(&r), json!({"esb": 1}));
    let r = m.jolokia(&json!({"type": "list", "path": "esb", "config": {"maxDepth": 1}}));
    let beans = assert_ok(&r).as_object().expect("object").clone();
    assert_eq!(
        beans.get("name=orders,type=Proxy,unit=shop"),
        Some(&json!(1))
    );
    let r = m.jolokia(&json!({"type": "list", "path": "nosuchdomain"}));
    assert_error(&r, 404, "javax.management.InstanceNotFoundException");

    // version.
    let r = m.jolokia(&json!({"type": "version"}));
    let v = assert_ok(&r);
    assert!(v["protocol"].is_string(), "{v:#}");
    assert!(v["agent"].is_string(), "{v:#}");
    assert_eq!(v["info"]["product"], "esb", "{v:#}");
}

#[test]
fn jolokia_bulk_mixes_successes_and_errors() {
    let (env, _be) = two_proxy_env();
    let body = json!([
        {"type": "read", "mbean": PROXY, "attribute": "State"},
        {"type": "read", "mbean": "esb:type=Unit,name=nope", "attribute": "State"},
        {"type": "frobnicate"},
        {"type": "exec", "mbean": SERVER, "operation": "maintenance", "arguments": [false]},
        {"type": "exec", "mbean": UNIT, "operation": "pauseHold", "arguments": []},
        {"type": "search", "mbean": "esb:type=Unit,*"},
    ]);
    let reply = env.m.post(&body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let items = reply.json();
    let items = items
        .as_array()
        .expect("a bulk request is answered with an array");
    assert_eq!(items.len(), 6, "{items:#?}");
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| i["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, vec![200, 404, 400, 200, 400, 200], "{items:#?}");
    assert_eq!(items[0]["value"], "Active");
    assert_eq!(items[0]["request"]["mbean"], PROXY);
    assert_eq!(
        items[1]["error_type"],
        "javax.management.InstanceNotFoundException"
    );
    assert_eq!(items[1]["request"]["mbean"], "esb:type=Unit,name=nope");
    assert_eq!(items[2]["error_type"], "java.lang.IllegalArgumentException");
    assert_eq!(
        items[2]["request"],
        json!({"type": "frobnicate"}),
        "the raw item is echoed"
    );
    assert_eq!(items[4]["error_type"], "java.lang.IllegalArgumentException");
    assert_eq!(items[5]["value"], json!(["esb:name=shop,type=Unit"]));
    // The unit was not paused by the bad pauseHold item.
    assert_eq!(env.m.read(UNIT, "State"), "Active");
}

#[test]
fn jolokia_error_envelopes() {
    let (env, _be) = two_proxy_env();
    let m = &env.m;

    let r = m.jolokia(
        &json!({"type": "read", "mbean": "esb:type=Unit,name=ghost", "attribute": "State"}),
    );
    let msg = assert_error(&r, 404, "javax.management.InstanceNotFoundException");
    assert!(msg.contains("esb:type=Unit,name=ghost"), "{msg}");
    assert_eq!(r["request"]["mbean"], "esb:type=Unit,name=ghost");

    let r = m.jolokia(&json!({"type": "read", "mbean": PROXY, "attribute": "Stat"}));
    let msg = assert_error(&r, 404, "javax.management.AttributeNotFoundException");
    assert!(
        msg.contains("Stat") && msg.contains("\"State\""),
        "did you mean: {msg}"
    );

    let r = m.exec(PROXY, "pasue", json!([]));
    let msg = assert_error(&r, 400, "java.lang.IllegalArgumentException");
    assert!(
        msg.contains("pasue") && msg.contains("\"pause\""),
        "did you mean: {msg}"
    );

    let r = m.exec(UNIT, "pauseHold", json!([1, 2]));
    let msg = assert_error(&r, 400, "java.lang.IllegalArgumentException");
    assert!(msg.contains("requires 1 parameters, not 2"), "{msg}");

    let r = m.exec(SERVER, "maintenance", json!(["perhaps"]));
    assert_error(&r, 400, "java.lang.IllegalArgumentException");
    assert_eq!(m.health().status, 200);

    let r = m.exec("esb:type=Unit,name=ghost", "pause", json!([]));
    assert_error(&r, 404, "javax.management.InstanceNotFoundException");

    // Malformed JSON, a non-request body and an empty body: 400 in the envelope.
    for body in ["{\"type\": \"read\",", "42", "", "[]"] {
        let reply = m
            .control("POST", "/jolokia")
            .header("Content-Type", "application/json")
            .body(body)
            .send();
        assert!(
            reply.status == 200 || reply.status == 400,
            "body {body:?}: HTTP {}",
            reply.status
        );
        let env = reply.json();
        let msg = assert_error(&env, 400, "java.lang.IllegalArgumentException");
        assert!(!msg.is_empty(), "body {body:?}");
    }
    let reply = m
        .control("POST", "/jolokia")
        .body("{\"type\": \"read\",")
        .send();
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("line 1"),
        "{}",
        reply.text()
    );

    // A request without a required field.
    let r = m.jolokia(&json!({"type": "read"}));
    assert_error(&r, 400, "java.lang.IllegalArgumentException");
}

#[test]
fn jolokia_get_path_form_with_escaping() {
    let (env, be) = two_proxy_env();
    let m = &env.m;
    let get = |path: &str| m.control("GET", path).send();

    let r = get("/jolokia/read/esb:type=Proxy,unit=shop,name=orders/Path");
    assert_eq!(r.status, 200);
    assert_eq!(*assert_ok(&r.json()), json!("/orders"));

    // Inner path in the URL; the value read contains '/'.
    let r = get("/jolokia/read/esb:type=Endpoint,unit=shop,name=be/Addresses/0/url");
    assert_eq!(*assert_ok(&r.json()), json!(be.url()));

    // Attribute name omitted: all attributes.
    let r = get("/jolokia/read/esb:type=Proxy,unit=shop,name=orders");
    assert_eq!(assert_ok(&r.json())["Path"], "/orders");

    // `!/` is a literal '/' inside a segment, `!!` a literal '!'; %XX is decoded.
    let r = get("/jolokia/read/esb:type=Unit,name=a!/b/State").json();
    assert_error(&r, 404, "javax.management.InstanceNotFoundException");
    assert_eq!(r["request"]["mbean"], "esb:type=Unit,name=a/b", "{r:#}");
    let r = get("/jolokia/read/esb:type=Unit,name=a!!b/State").json();
    assert_eq!(r["request"]["mbean"], "esb:type=Unit,name=a!b", "{r:#}");
    let r = get("/jolokia/read/esb:type%3DUnit,name%3Dshop/State").json();
    assert_eq!(*assert_ok(&r), json!("Active"));

    // A state change over GET is refused: 403 inside a 200 envelope (the escaped argument
    // is decoded in the echo).
    let r = get(
        "/jolokia/exec/esb:type=Endpoint,unit=shop,name=be/suspendAddress/http:!/!/127.0.0.1:9",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = r.json();
    assert_error(&refused, 403, "java.lang.SecurityException");
    assert_eq!(
        refused["request"]["arguments"],
        json!(["http://127.0.0.1:9"])
    );
    let r = get("/jolokia/exec/esb:type=Proxy,unit=shop,name=orders/pause");
    assert_eq!(r.json()["status"], 403);
    assert_eq!(m.read(PROXY, "State"), "Active", "GET exec must not act");
    env.expect("/orders", 200);
    let r = get("/jolokia/write/esb:type=Server/HotDeploy/true");
    assert_eq!(r.json()["status"], 403);
    assert_eq!(m.read(SERVER, "HotDeploy"), false, "GET write must not act");

    // search, list (with a query parameter) and version.
    let r = get("/jolokia/search/esb:type=Proxy,*").json();
    assert_eq!(assert_ok(&r).as_array().map(Vec::len), Some(2));
    let r = get("/jolokia/list/esb/type=Proxy,unit=shop,name=orders/attr/Path").json();
    assert_eq!(assert_ok(&r)["rw"], false, "{r:#}");
    let r = get("/jolokia/list?maxDepth=1").json();
    assert_eq!(*assert_ok(&r), json!({"esb": 1}));
    let r = get("/jolokia/version").json();
    assert_eq!(assert_ok(&r)["info"]["product"], "esb");
}

/// Jolokia's GET form reads several attributes given as a comma-separated list
/// (JolokiaRequestFactory: "If the attribute name contains ',' it is interpreted as a list
/// of attributes"), and `*` as the attribute means all of them (EscapeUtil replaces a `*`
/// path element with null; jolokia.js sends `/read/<mbean>/*` for every read without an
/// attribute over GET).
#[test]
fn jolokia_get_read_attribute_lists_and_star() {
    let (env, _be) = two_proxy_env();
    let get = |path: &str| env.m.control("GET", path).send().json();

    let r = get("/jolokia/read/esb:type=Proxy,unit=shop,name=orders/State,Path");
    assert_eq!(
        *assert_ok(&r),
        json!({"State": "Active", "Path": "/orders"}),
        "GET read with a comma-separated attribute list"
    );
    let r = get("/jolokia/read/esb:type=Proxy,unit=shop,name=orders/*");
    let v = assert_ok(&r);
    assert_eq!(
        v["Path"], "/orders",
        "GET read with `*` reads every attribute: {v:#}"
    );
}

/// A GET of the agent URL itself is a version request in Jolokia
/// (JolokiaRequestFactory: "Use version by default if no type is given").
#[test]
fn jolokia_get_without_a_type_is_version() {
    let env = Env::start(TempConf::new());
    for path in ["/jolokia", "/jolokia/"] {
        let r = env.m.control("GET", path).send();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(assert_ok(&v)["info"]["product"], "esb", "{path}: {v:#}");
    }
}

// ---------------------------------------------------------------------------------------
// A stock Jolokia client: jolokia.js from npm
// ---------------------------------------------------------------------------------------

fn node_available() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/jolokia.js/package.json").is_file() {
        return;
    }
    let run = |args: &[&str]| {
        std::process::Command::new("npm")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run npm (needed for tests/jolokia-js): {e}"))
    };
    let out = run(&["ci", "--no-audit", "--no-fund"]);
    if !out.status.success() {
        let again = run(&["install", "--no-audit", "--no-fund"]);
        assert!(
            again.status.success(),
            "npm ci / npm install in {} failed:\n{}\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&again.stderr)
        );
    }
}

#[test]
fn jolokia_js_client_works() {
    if !node_available() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(!ci, "CI is set but `node` is missing: run scripts/ci-deps");
        eprintln!("SKIPPED jolokia_js_client_works: `node` is not installed (scripts/ci-deps installs it)");
        return;
    }
    let dir = e2e::esb::workspace().join("tests/jolokia-js");
    ensure_node_modules(&dir);
    let (env, _be) = two_proxy_env();
    let url = format!("http://127.0.0.1:{}/jolokia", env.conf.mgmt_port());
    let out = std::process::Command::new("node")
        .arg("check.mjs")
        .arg(&url)
        .arg(&env.m.control)
        .arg(PROXY)
        .current_dir(&dir)
        .output()
        .expect("run node check.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node check.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check.mjs printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let ok = |step: &str| -> Value {
        let s = &r[step];
        assert_eq!(s["status"], 200, "jolokia.js step {step}: {s:#}");
        s["value"].clone()
    };
    assert!(ok("version")["protocol"].is_string());
    assert_eq!(ok("readOne"), "Active");
    assert_eq!(ok("readAllPost")["Path"], "/orders");
    assert_eq!(
        ok("readMany"),
        json!({"State": "Active", "Path": "/orders"})
    );
    let found = ok("search");
    assert!(
        found
            .as_array()
            .is_some_and(|a| a.contains(&json!(PROXY_CANONICAL))),
        "{found:#}"
    );
    assert!(ok("list")["pause"].is_object());
    assert_eq!(ok("listDepth"), json!({"esb": 1}));
    ok("pause");
    assert_eq!(ok("stateAfterPause"), "Paused");
    ok("resume");
    assert_eq!(env.m.read(PROXY, "State"), "Active");
    // exec over GET is refused inside the envelope, which jolokia.js hands over.
    assert_eq!(
        r["execGet"]["status"], 403,
        "exec over GET: {:#}",
        r["execGet"]
    );
    assert_eq!(r["execGet"]["error_type"], "java.lang.SecurityException");
    let bulk: Vec<u64> = r["bulk"]
        .as_array()
        .unwrap_or_else(|| panic!("bulk: {:#}", r["bulk"]))
        .iter()
        .map(|i| i["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(bulk, vec![200, 404, 200], "{:#}", r["bulk"]);
    assert_eq!(
        r["bulk"][1]["error_type"],
        "javax.management.InstanceNotFoundException"
    );
    // What jolokia.js sends for a read without an attribute: GET /read/<mbean>/*.
    assert_eq!(ok("readAll")["Path"], "/orders");
}

// ---------------------------------------------------------------------------------------
// Security
// ---------------------------------------------------------------------------------------

#[test]
fn authentication_roles_origin_host_and_body_limit() {
    let conf = TempConf::new().http("web");
    patch_root(&conf, |s| {
        s.replace("[management]\n", "[management]\nmax_body = 4096\n")
    });
    let env = Env::start(conf);
    let m = &env.m;
    let version = json!({"type": "version"});

    // No credentials / wrong credentials: 401 with a challenge.
    for req in [
        m.request("GET", "/jolokia/version"),
        m.request("POST", "/jolokia").json(&version),
        m.request("GET", "/metrics"),
        m.request("GET", "/events"),
        m.request("GET", "/jolokia/version").bearer("not-the-token"),
        m.request("GET", "/jolokia/version")
            .basic("control", "wrong"),
        m.request("GET", "/jolokia/version")
            .basic("control", &m.monitor),
        m.request("GET", "/jolokia/version")
            .header("Authorization", &m.control),
    ] {
        let r = req.send();
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "401 without WWW-Authenticate: {:?}",
            r.headers
        );
    }
    // /health needs nothing.
    assert_eq!(m.request("GET", "/health").send().status, 200);

    // Bearer and Basic both work, for both roles.
    for req in [
        m.request("GET", "/jolokia/version").bearer(&m.control),
        m.request("GET", "/jolokia/version").bearer(&m.monitor),
        m.request("GET", "/jolokia/version")
            .basic("control", &m.control),
        m.request("GET", "/jolokia/version")
            .basic("monitor", &m.monitor),
    ] {
        assert_eq!(req.send().status, 200);
    }

    // Monitor reads, lists, searches, streams and scrapes — but may not exec or write.
    for body in [
        json!({"type": "read", "mbean": SERVER, "attribute": "State"}),
        json!({"type": "list", "config": {"maxDepth": 1}}),
        json!({"type": "search", "mbean": "esb:*"}),
        version.clone(),
    ] {
        let r = m.monitor("POST", "/jolokia").json(&body).send();
        assert_eq!(r.status, 200);
        assert_ok(&r.json());
    }
    assert_eq!(m.monitor("GET", "/metrics").send().status, 200);
    assert_eq!(m.events(None).status, 200);
    for body in [
        json!({"type": "exec", "mbean": SERVER, "operation": "maintenance", "arguments": [true]}),
        json!({"type": "write", "mbean": SERVER, "attribute": "HotDeploy", "value": true}),
    ] {
        let r = m.monitor("POST", "/jolokia").json(&body).send();
        assert_eq!(r.status, 403, "{}", r.text());
        let msg = assert_error(&r.json(), 403, "java.lang.SecurityException");
        assert!(msg.contains("control"), "{msg}");
        let r = m
            .request("POST", "/jolokia")
            .basic("monitor", &m.monitor)
            .json(&body)
            .send();
        assert_eq!(r.status, 403);
    }
    assert_eq!(m.health().status, 200, "a refused exec acted");
    assert_eq!(m.read(SERVER, "HotDeploy"), false, "a refused write acted");
    // The control token under the monitor user name only gets the monitor role.
    let r = m
        .request("POST", "/jolokia")
        .basic("monitor", &m.control)
        .json(&json!({"type": "exec", "mbean": SERVER, "operation": "maintenance", "arguments": [true]}))
        .send();
    assert_eq!(r.status, 403, "{}", r.text());

    // State changes only by POST.
    let r = m
        .control("GET", "/jolokia/exec/esb:type=Server/maintenance/true")
        .send();
    assert_eq!(r.status, 200);
    assert_error(&r.json(), 403, "java.lang.SecurityException");
    assert_eq!(m.health().status, 200);
    for method in ["PUT", "DELETE"] {
        let r = m.control(method, "/jolokia").json(&version).send();
        assert_eq!(r.status, 405, "{method} /jolokia");
    }

    // Foreign Origin and Host are refused, even with a valid token; own ones pass.
    let port = env.conf.mgmt_port();
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", "http://evil.example")
        .json(&version)
        .send();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("evil.example"), "{}", r.text());
    let r = m
        .control("GET", "/jolokia/version")
        .header("Origin", "null")
        .send();
    assert_eq!(r.status, 403, "Origin: null");
    let own = format!("http://127.0.0.1:{port}");
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", &own)
        .json(&version)
        .send();
    assert_eq!(r.status, 200, "own origin {own}: {}", r.text());
    let r = m
        .control("GET", "/jolokia/version")
        .header("Host", &format!("evil.example:{port}"))
        .send();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = m
        .control("GET", "/jolokia/version")
        .header("Host", "127.0.0.1:1")
        .send();
    assert_eq!(r.status, 403, "another port is another host");
    let r = m
        .control("GET", "/jolokia/version")
        .header("Host", &format!("localhost:{port}"))
        .send();
    assert_eq!(r.status, 200);

    // Bodies over [management] max_body: 413, with or without a Content-Length.
    let big = json!({"type": "version", "pad": "x".repeat(8192)});
    let r = m.control("POST", "/jolokia").json(&big).send();
    assert_eq!(r.status, 413, "{}", r.text());
    let payload = serde_json::to_vec(&big).expect("json");
    let mut chunked = format!("{:x}\r\n", payload.len()).into_bytes();
    chunked.extend_from_slice(&payload);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = m
        .control("POST", "/jolokia")
        .header("Content-Type", "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(chunked)
        .send();
    assert_eq!(r.status, 413, "chunked body: {}", r.text());
    // A body just under the limit is fine.
    let r = m
        .control("POST", "/jolokia")
        .json(&json!({"type": "version", "pad": "x".repeat(2000)}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn token_files_are_created_with_mode_0600_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start(TempConf::new());
    let mut tokens = Vec::new();
    for name in ["control.token", "monitor.token"] {
        let path = env.conf.state_dir().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} has mode {:o}",
            path.display(),
            mode & 0o777
        );
        tokens.push(
            std::fs::read_to_string(&path)
                .expect("token")
                .trim()
                .to_owned(),
        );
    }
    assert_ne!(
        tokens[0], tokens[1],
        "control and monitor tokens must differ"
    );
    assert!(
        tokens.iter().all(|t| t.len() >= 32),
        "tokens too short: {tokens:?}"
    );
    assert_eq!(tokens, [env.m.control.clone(), env.m.monitor.clone()]);

    // Restarted on the same state_dir: the same tokens.
    let Env { esb, conf, .. } = env;
    drop(esb);
    let env = Env::start(conf);
    assert_eq!(env.m.control, tokens[0]);
    assert_eq!(env.m.monitor, tokens[1]);
}

#[test]
fn non_loopback_management_bind_is_refused_without_allow_remote() {
    let conf = TempConf::new();
    let port = conf.mgmt_port();
    patch_root(&conf, |s| {
        s.replace(
            &format!("bind = \"127.0.0.1:{port}\""),
            &format!("bind = \"0.0.0.0:{port}\""),
        )
    });
    let mut esb = Esb::spawn(&conf, &EsbOptions::default());
    let status = esb.wait(LIMIT);
    assert!(
        !status.success(),
        "esb started with a remote management bind"
    );
    let log = esb.log();
    assert!(
        log.contains("0.0.0.0") && log.contains("allow_remote"),
        "the refusal must name the bind and the way out:\n{log}"
    );
}

#[test]
fn non_loopback_management_bind_is_accepted_with_allow_remote() {
    let conf = TempConf::new();
    let port = conf.mgmt_port();
    patch_root(&conf, |s| {
        s.replace(
            &format!("bind = \"127.0.0.1:{port}\""),
            &format!("bind = \"0.0.0.0:{port}\"\nallow_remote = true"),
        )
    });
    let env = Env::start(conf);
    env.esb.wait_log(&format!("0.0.0.0:{port}"), LIMIT);
    let r = env.m.control("GET", "/jolokia/version").send();
    assert_eq!(r.status, 200, "{}", r.text());
    // Reachable on a non-loopback address of this machine too, when it has one.
    if let Some(ip) = local_non_loopback_ip() {
        let addr = std::net::SocketAddr::new(ip, port);
        let r = RawRequest::new(addr, "GET", "/jolokia/version")
            .bearer(&env.m.control)
            .timeout(Duration::from_secs(5))
            .send();
        assert_eq!(r.status, 200, "via {addr}: {}", r.text());
    }
    // Still authenticated, and foreign origins still refused.
    assert_eq!(env.m.request("GET", "/jolokia/version").send().status, 401);
    let r = env
        .m
        .control("GET", "/jolokia/version")
        .header("Origin", "http://evil.example")
        .send();
    assert_eq!(r.status, 403);
}

/// A local IPv4 address that is not loopback (the source address toward a public address;
/// no packet is sent).
fn local_non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn audit_log_records_every_state_change_with_its_result() {
    let be = Backend::fixed(200, "ok").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    let m = &env.m;
    // Reads are not audited.
    m.read(PROXY, "State");
    m.jolokia(&json!({"type": "list", "config": {"maxDepth": 1}}));
    assert!(m.audit().is_empty(), "reads were audited: {:#?}", m.audit());

    // 1. an exec that succeeded.
    m.exec_ok(PROXY, "pause", json!([]));
    // 2. a deployment that was rejected.
    let o = m.exec_ok(MANAGER, "deploy", json!(["shop", "[[proxy]]\nname = 1\n"]));
    assert_eq!(o["outcome"], "rejected");
    // 3. a deployment that was activated (revision 1 → 2).
    let o = m.exec_ok(
        MANAGER,
        "deploy",
        json!(["shop", shop_unit(&be.url()).replace("1.0", "1.1")]),
    );
    assert_eq!(o["outcome"], "activated");
    // 4. an exec refused for the monitor role.
    let r = m
        .monitor("POST", "/jolokia")
        .json(&json!({"type": "exec", "mbean": UNIT, "operation": "pause", "arguments": []}))
        .send();
    assert_eq!(r.status, 403);
    // 5. a write.
    let w = m.jolokia(
        &json!({"type": "write", "mbean": SERVER, "attribute": "HotDeploy", "value": false}),
    );
    assert_ok(&w);
    // 6. an exec that failed (unknown operation).
    assert_eq!(m.exec(PROXY, "explode", json!([]))["status"], 400);

    let lines = m.audit();
    assert_eq!(
        lines.len(),
        6,
        "one record per state-changing request: {lines:#?}"
    );
    for l in &lines {
        for field in [
            "time",
            "who",
            "from",
            "what",
            "result",
            "revision_before",
            "revision_after",
        ] {
            assert!(
                l.get(field).is_some(),
                "audit record without {field}: {l:#}"
            );
        }
        assert!(
            l["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000),
            "time in ms: {l:#}"
        );
        assert!(
            l["from"]
                .as_str()
                .is_some_and(|f| f.starts_with("127.0.0.1:")),
            "from is the peer address: {l:#}"
        );
    }
    let pause = &lines[0];
    assert_eq!(pause["who"], "control");
    assert_eq!(pause["result"], "ok");
    assert_eq!(pause["what"]["type"], "exec");
    assert_eq!(pause["what"]["mbean"], PROXY);
    assert_eq!(pause["what"]["operation"], "pause");
    assert_eq!(
        (&pause["revision_before"], &pause["revision_after"]),
        (&json!(1), &json!(1))
    );

    let rejected = &lines[1];
    assert_eq!(rejected["result"], "rejected", "{rejected:#}");
    assert_eq!(rejected["what"]["operation"], "deploy");
    assert_eq!(
        (&rejected["revision_before"], &rejected["revision_after"]),
        (&json!(1), &json!(1))
    );

    let deployed = &lines[2];
    assert_eq!(deployed["result"], "ok");
    assert_eq!(
        (&deployed["revision_before"], &deployed["revision_after"]),
        (&json!(1), &json!(2))
    );

    let refused = &lines[3];
    assert_eq!(refused["who"], "monitor", "{refused:#}");
    assert_eq!(refused["result"], "error", "{refused:#}");
    assert_eq!(refused["what"]["mbean"], UNIT);

    assert_eq!(lines[4]["what"]["type"], "write");
    assert_eq!(lines[4]["result"], "ok");
    assert_eq!(lines[5]["result"], "error");
}

/// A deployment operation answering with several outcomes (batch, reloadAll) is audited as
/// rejected when a unit was rejected, like a single deploy is.
#[test]
fn audit_log_marks_rejected_batches_as_rejected() {
    let be = Backend::fixed(200, "ok").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    env.write_unit("shop", "[[proxy]]\nname = \"broken\"\n");
    let b = env.m.exec_ok(MANAGER, "batch", json!([["shop"]]));
    assert_eq!(b[0]["outcome"], "rejected", "{b:#}");
    let all = env.m.exec_ok(MANAGER, "reloadAll", json!([]));
    assert!(
        all.as_array()
            .is_some_and(|a| a.iter().any(|o| o["outcome"] == "rejected")),
        "{all:#}"
    );
    let lines = env.m.audit();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for l in &lines {
        assert_eq!(
            l["result"], "rejected",
            "a batch whose unit was rejected is audited as {}: {l:#}",
            l["result"]
        );
    }
}

// ---------------------------------------------------------------------------------------
// /events and /metrics
// ---------------------------------------------------------------------------------------

#[test]
fn events_stream_deployments_and_resume_after_last_event_id() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1")),
    );
    let m = &env.m;
    let live = m.events(None);
    assert_eq!(live.status, 200);
    assert!(
        live.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{:?}",
        live.headers
    );

    env.write_unit("app", &answer_unit("/hello", "v2", "2"));
    outcome(&m.exec_ok(MANAGER, "reload", json!(["app"])), "activated");
    let activated = live.wait_for("unit_activated for app", LIMIT, |e| {
        e.event.as_deref() == Some("unit_activated")
    });
    let id = activated.id.expect("events carry an id");
    let data = activated.json();
    assert_eq!(data["type"], "unit_activated");
    assert_eq!(data["id"], id);
    assert_eq!(data["unit"], "app");
    assert_eq!(data["revision"], 2);
    assert_eq!(data["label"], "2");
    assert!(
        data["hash"].is_string() && data["time"].is_u64(),
        "{data:#}"
    );

    // Something after it.
    m.exec_ok("esb:type=Proxy,unit=app,name=hello", "pause", json!([]));
    let changed = live.wait_for("state_changed", LIMIT, |e| {
        e.event.as_deref() == Some("state_changed")
    });
    let later = changed.id.expect("id");
    assert!(later > id, "ids increase: {id} then {later}");
    assert_eq!(changed.json()["state"], "Paused");

    // Reconnecting with Last-Event-ID replays only what came after that id (other events,
    // e.g. the old revision's revision_drained, may sit in between).
    let resumed = m.events(Some(id));
    let mut replayed = Vec::new();
    resumed.wait_for("the replayed state_changed", LIMIT, |e| {
        replayed.push(e.clone());
        e.id == Some(later)
    });
    replayed.extend(resumed.drain(Duration::from_millis(300)));
    assert!(
        replayed.iter().all(|e| e.id.is_some_and(|i| i > id)),
        "replayed events at or before {id}: {replayed:#?}"
    );
    assert!(
        !replayed
            .iter()
            .any(|e| e.event.as_deref() == Some("unit_activated")),
        "the unit_activated event {id} itself was replayed: {replayed:#?}"
    );
    let ids: Vec<u64> = replayed.iter().filter_map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "replayed out of order: {ids:?}"
    );
    // And it goes on live.
    m.exec_ok("esb:type=Proxy,unit=app,name=hello", "resume", json!([]));
    let next = resumed.wait_for("the live state_changed after resuming", LIMIT, |e| {
        e.event.as_deref() == Some("state_changed")
    });
    assert!(next.id.is_some_and(|i| i > later));
    assert_eq!(next.json()["state"], "Active");
}

/// Checks Prometheus text exposition 0.0.4 the way `promtool check metrics` does: every line
/// is a comment, a HELP/TYPE line or a well-formed sample; one TYPE per family, before its
/// samples; the samples of a family together.
#[test]
fn metrics_parse_as_prometheus_text_and_count_proxy_requests() {
    let be = Backend::fixed(200, "ok").start();
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("shop", &shop_unit(&be.url())),
    );
    for _ in 0..3 {
        env.expect("/orders", 200);
    }
    let r = env.m.monitor("GET", "/metrics").send();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let text = r.text();
    e2e::prom::check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n--- /metrics ---\n{text}"));

    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("prometheus-parse: {e}\n{text}"));
    let sample = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let requests = sample(
        "esb_proxy_requests_total",
        &[("unit", "shop"), ("proxy", "orders")],
    );
    match requests.value {
        prometheus_parse::Value::Counter(v) => assert_eq!(v, 3.0, "esb_proxy_requests_total"),
        ref other => panic!("esb_proxy_requests_total is not a counter: {other:?}"),
    }
    let errors = sample(
        "esb_proxy_errors_total",
        &[("unit", "shop"), ("proxy", "orders")],
    );
    assert!(matches!(errors.value, prometheus_parse::Value::Counter(v) if v == 0.0));
    assert!(matches!(
        sample("esb_up", &[]).value,
        prometheus_parse::Value::Gauge(v) if v == 1.0
    ));
    assert!(matches!(
        sample("esb_unit_revision", &[("unit", "shop")]).value,
        prometheus_parse::Value::Gauge(v) if v == 1.0
    ));
    // The bean and the metric agree.
    assert_eq!(env.m.read(PROXY, "Requests"), 3);
}

/// Counters of a proxy that saw no request read as zeros (its latency histogram does not
/// exist until the first request), beside a proxy of the same unit that counts its own.
#[test]
fn proxy_without_traffic_reads_zeros_and_one_with_traffic_its_counts() {
    let (env, _be) = two_proxy_env();
    const REFUNDS: &str = "esb:type=Proxy,unit=shop,name=refunds";
    let counters = ["Requests", "Errors", "InFlight", "P50Micros", "P99Micros"];
    for p in [PROXY, REFUNDS] {
        for a in counters {
            assert_eq!(env.m.read(p, a), 0, "{p} {a} before any request");
        }
    }
    for _ in 0..4 {
        env.expect("/orders", 200);
    }
    assert_eq!(env.m.read(PROXY, "Requests"), 4);
    assert_eq!(env.m.read(PROXY, "Errors"), 0);
    assert_eq!(env.m.read(PROXY, "InFlight"), 0);
    let p50 = env.m.read(PROXY, "P50Micros").as_u64().expect("P50Micros");
    let p99 = env.m.read(PROXY, "P99Micros").as_u64().expect("P99Micros");
    assert!(p50 > 0 && p99 >= p50, "p50 {p50} p99 {p99}");
    for a in counters {
        assert_eq!(
            env.m.read(REFUNDS, a),
            0,
            "refunds {a} after requests to orders"
        );
    }

    let text = env.m.monitor("GET", "/metrics").send().text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("prometheus-parse: {e}\n{text}"));
    let value = |name: &str, proxy: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.get("unit") == Some("shop")
                    && s.labels.get("proxy") == Some(proxy)
            })
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {name} for {proxy} in\n{text}"))
    };
    use prometheus_parse::Value as V;
    assert!(matches!(value("esb_proxy_requests_total", "orders"), V::Counter(v) if v == 4.0));
    assert!(matches!(value("esb_proxy_requests_total", "refunds"), V::Counter(v) if v == 0.0));
    assert!(matches!(value("esb_proxy_errors_total", "refunds"), V::Counter(v) if v == 0.0));
    let quantiles = |proxy: &str| match value("esb_proxy_latency_seconds", proxy) {
        V::Summary(q) => q.iter().map(|c| c.count).collect::<Vec<f64>>(),
        other => panic!("esb_proxy_latency_seconds of {proxy} is not a summary: {other:?}"),
    };
    assert_eq!(quantiles("refunds"), vec![0.0, 0.0]);
    assert!(quantiles("orders").iter().all(|v| *v > 0.0), "{text}");
}

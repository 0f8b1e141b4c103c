//! Building blocks of deployment scenarios shared by the end-to-end test files: unit texts,
//! requests on the `web` transport, bean reads, DeploymentManager operations with their
//! outcomes, events, and a clean-load assertion. Every wait polls with a deadline.

use crate::load::LoadReport;
use crate::mgmt_client::Mgmt;
use crate::{wait_for, Client, EsbOptions, TempConf};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub const MANAGER: &str = "esb:type=DeploymentManager";
pub const WAIT: Duration = Duration::from_secs(10);

pub fn unit_bean(unit: &str) -> String {
    format!("esb:type=Unit,name={unit}")
}

/// A unit with one proxy at `path` whose sequence answers `body` itself.
pub fn answering(path: &str, body: &str) -> String {
    format!(
        r#"version = "{body}"

[[proxy]]
name = "p"
path = "{path}"
sequence = "answer"

[[sequence]]
name = "answer"
steps = [{{ respond = {{ status = 200, body = "{body}" }} }}]
"#
    )
}

/// A unit whose `unit.toml` has a TOML syntax error at line 4, column 8.
pub const BROKEN: &str = "version = \"broken\"\n\n[[proxy]]\nname = = \"p\"\npath = \"/x\"\n";

/// The content hash the server reports for a unit made of one `unit.toml`.
pub fn hash_of(unit: &str, text: &str) -> String {
    deployments::UnitSources::from_content(unit, text).content_hash()
}

pub fn conf() -> TempConf {
    TempConf::new().http("web")
}

pub fn watched() -> EsbOptions {
    EsbOptions {
        no_watch: false,
        ..EsbOptions::default()
    }
}

pub fn client() -> Client {
    Client::new().timeout(Duration::from_secs(10))
}

/// `GET` on the `web` transport: status and body text.
pub fn get(conf: &TempConf, path: &str) -> (u16, String) {
    let r = client().get(&conf.url("web", path));
    (r.status, r.text())
}

/// Waits until `GET path` answers 200 with exactly `body`.
pub fn wait_body(conf: &TempConf, path: &str, body: &str) {
    let last = RefCell::new((0, String::new()));
    wait_for(
        &format!("GET {path} to answer 200 {body:?}"),
        WAIT,
        || {
            *last.borrow_mut() = get(conf, path);
            (*last.borrow() == (200, body.to_owned())).then_some(())
        },
        || format!("last answer: {:?}", last.borrow()),
    );
}

pub fn wait_status(conf: &TempConf, path: &str, status: u16) {
    let last = RefCell::new((0, String::new()));
    wait_for(
        &format!("GET {path} to answer {status}"),
        WAIT,
        || {
            *last.borrow_mut() = get(conf, path);
            (last.borrow().0 == status).then_some(())
        },
        || format!("last answer: {:?}", last.borrow()),
    );
}

/// Every attribute of a bean, or `None` when it does not exist.
pub fn bean(mgmt: &Mgmt, mbean: &str) -> Option<Value> {
    let env = mgmt.jolokia(&json!({"type": "read", "mbean": mbean}));
    match env["status"].as_u64() {
        Some(200) => Some(env["value"].clone()),
        Some(404) => None,
        _ => panic!("read {mbean}: {env:#}"),
    }
}

pub fn unit_attr(mgmt: &Mgmt, unit: &str, attr: &str) -> Value {
    mgmt.read(&unit_bean(unit), attr)
}

pub fn revision(mgmt: &Mgmt, unit: &str) -> u64 {
    unit_attr(mgmt, unit, "Revision")
        .as_u64()
        .unwrap_or_else(|| panic!("unit {unit} has no active revision"))
}

pub fn wait_revision(mgmt: &Mgmt, unit: &str, want: u64) {
    let last = RefCell::new(Value::Null);
    wait_for(
        &format!("unit {unit} to reach revision {want}"),
        WAIT,
        || {
            *last.borrow_mut() = unit_attr(mgmt, unit, "Revision");
            (*last.borrow() == want).then_some(())
        },
        || format!("last Revision: {}", last.borrow()),
    );
}

/// A deployment operation on the DeploymentManager; its outcome (or array of outcomes).
pub fn manager(mgmt: &Mgmt, op: &str, args: Value) -> Value {
    mgmt.exec_ok(MANAGER, op, args)
}

/// Asserts a single outcome is `kind` and returns it.
pub fn expect_outcome(outcome: Value, kind: &str) -> Value {
    assert_eq!(outcome["outcome"], kind, "unexpected outcome: {outcome:#}");
    outcome
}

/// The events still in the server's ring, oldest first.
pub fn events(mgmt: &Mgmt) -> Vec<Value> {
    let r = mgmt.monitor("GET", "/events?recent=1024").send();
    assert_eq!(r.status, 200, "GET /events?recent: {}", r.text());
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("event data is JSON"))
        .collect()
}

pub fn last_event_id(mgmt: &Mgmt) -> u64 {
    events(mgmt)
        .last()
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0)
}

/// Events of `kind` about `unit` with an id above `after`.
pub fn unit_events(mgmt: &Mgmt, kind: &str, unit: &str, after: u64) -> Vec<Value> {
    events(mgmt)
        .into_iter()
        .filter(|e| e["id"].as_u64().unwrap_or(0) > after)
        .filter(|e| e["type"] == kind && e["unit"] == unit)
        .collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn addr(conf: &TempConf) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], conf.port("web")))
}

pub fn assert_clean(what: &str, r: &LoadReport, clients: u64) {
    assert_eq!(
        (r.socket_errors, r.non_2xx()),
        (0, 0),
        "{what}: {} socket errors, {} non-2xx in {} responses; statuses {:?}; samples:\n{}",
        r.socket_errors,
        r.non_2xx(),
        r.responses,
        r.statuses,
        r.samples.join("\n")
    );
    assert_eq!(
        r.connections, clients,
        "{what}: the server closed keep-alive connections (clients had to reconnect)"
    );
}

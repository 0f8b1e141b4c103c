//! Restarts keep what operators set: paused/stopped/maintenance state of units, proxies,
//! endpoints, addresses, tasks, transports and the server, and addresses changed at
//! runtime, across a warm restart and a process restart.

use e2e::mgmt_client::Mgmt;
use e2e::scenario::*;
use e2e::{wait_until, Esb, TempConf};
use serde_json::{json, Value};

const UNIT: &str = r#"version = "1"

[[proxy]]
name = "p"
path = "/p"
sequence = "answer"

[[proxy]]
name = "q"
path = "/q"
endpoint = "be"

[[sequence]]
name = "answer"
steps = [{ respond = { status = 200, body = "p" } }]

[[endpoint]]
name = "be"
addresses = ["http://127.0.0.1:9", "http://127.0.0.1:10"]

[[task]]
name = "tick"
every = "1h"
sequence = "answer"
"#;

fn read(mgmt: &Mgmt, mbean: &str, attr: &str) -> Value {
    mgmt.read(mbean, attr)
}

fn check_kept(conf: &TempConf, mgmt: &Mgmt, esb: &Esb) {
    let ctx = esb.log();
    assert_eq!(
        read(mgmt, "esb:type=Unit,name=paused", "State"),
        "Paused",
        "{ctx}"
    );
    assert_eq!(
        read(mgmt, "esb:type=Proxy,unit=u,name=p", "State"),
        "Stopped",
        "{ctx}"
    );
    assert_eq!(get(conf, "/p").0, 404);
    assert_eq!(
        read(mgmt, "esb:type=Endpoint,unit=u,name=be", "State"),
        "Maintenance"
    );
    let addrs = read(mgmt, "esb:type=Endpoint,unit=u,name=be", "Addresses");
    let urls: Vec<&str> = addrs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9", "http://127.0.0.1:11"],
        "{addrs:#}"
    );
    let a11 = addrs
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["url"] == "http://127.0.0.1:11");
    assert_eq!(a11.unwrap()["state"], "Maintenance", "{addrs:#}");
    assert_eq!(
        read(mgmt, "esb:type=Task,unit=u,name=tick", "State"),
        "Paused"
    );
    assert_eq!(
        read(mgmt, "esb:type=Transport,name=side", "State"),
        "Stopped"
    );
    assert_eq!(read(mgmt, "esb:type=Server", "State"), "Maintenance");
}

#[test]
fn operator_state_survives_warm_and_process_restarts() {
    let conf = conf()
        .http("side")
        .unit("u", UNIT)
        .unit("paused", &answering("/paused", "x"));
    let mut esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let ops = [
        ("esb:type=Unit,name=paused", "pause", json!([])),
        ("esb:type=Proxy,unit=u,name=p", "stop", json!([])),
        ("esb:type=Endpoint,unit=u,name=be", "pause", json!([])),
        (
            "esb:type=Endpoint,unit=u,name=be",
            "addAddress",
            json!(["http://127.0.0.1:11"]),
        ),
        (
            "esb:type=Endpoint,unit=u,name=be",
            "removeAddress",
            json!(["http://127.0.0.1:10"]),
        ),
        (
            "esb:type=Endpoint,unit=u,name=be",
            "suspendAddress",
            json!(["http://127.0.0.1:11"]),
        ),
        ("esb:type=Task,unit=u,name=tick", "pause", json!([])),
        ("esb:type=Transport,name=side", "stop", json!([])),
        ("esb:type=Server", "maintenance", json!([true])),
    ];
    for (mbean, op, args) in ops {
        mgmt.exec_ok(mbean, op, args);
    }
    check_kept(&conf, &mgmt, &esb);

    // Warm restart: the server is rebuilt in the same process from the re-read config.
    mgmt.exec_ok("esb:type=Server", "restart", json!([]));
    wait_until("the warm restart to complete", WAIT, || {
        esb.log().matches("operator state restored").count() >= 2
    });
    let mgmt = Mgmt::of(&conf);
    check_kept(&conf, &mgmt, &esb);

    // Process restart.
    esb.sigterm();
    assert!(esb.wait(WAIT).success());
    drop(esb);
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    check_kept(&conf, &mgmt, &esb);

    // Undone state is undone for good; an unload clears the unit's state.
    mgmt.exec_ok("esb:type=Unit,name=paused", "resume", json!([]));
    mgmt.exec_ok("esb:type=Unit,name=u", "unload", json!([]));
    let saved: Value =
        serde_json::from_slice(&std::fs::read(conf.state_dir().join("operator.json")).unwrap())
            .unwrap();
    assert_eq!(saved["units"], json!({}), "{saved:#}");
    assert_eq!(saved["transports"]["side"], "Stopped");
}

//! Hostile units and a damaged state directory, end to end: nothing a unit holds, no unit
//! name and no stray file in state_dir may crash the server, reach outside the deployments
//! directory, freeze the engine or keep valid disk units from serving. Each defect is
//! answered with a precise error while what was running keeps running.

use e2e::mgmt_client::Mgmt;
use e2e::scenario::*;
use e2e::{Esb, TempConf};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// `n` sequences where sequence i switches to i+1; with `dag`, also to i+2, so the number
/// of paths through them grows like Fibonacci's numbers. Proxy `/deep` enters at s0.
fn switch_graph(n: usize, dag: bool) -> String {
    let mut t = String::from("[[proxy]]\nname = \"deep\"\npath = \"/deep\"\nsequence = \"s0\"\n\n");
    for i in 0..n {
        t.push_str(&format!("[[sequence]]\nname = \"s{i}\"\nsteps = [\n"));
        if i + 1 < n {
            let second = if dag && i + 2 < n { i + 2 } else { i + 1 };
            t.push_str(&format!(
                "  {{ switch = {{ on = \"${{header.x}}\", cases = {{ a = \"s{}\", b = \"s{second}\" }}, default = \"s{}\" }} }},\n",
                i + 1,
                i + 1
            ));
        }
        t.push_str("  { respond = { status = 200, body = \"bottom\" } },\n]\n\n");
    }
    t
}

fn first_error(outcome: &Value) -> String {
    outcome["errors"][0].to_string()
}

fn run_validate(conf: &TempConf) -> (bool, String) {
    let out = Command::new(e2e::esb::esb_bin())
        .arg("validate")
        .arg("--conf")
        .arg(conf.dir())
        .output()
        .expect("run esb validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn deep_unit_is_refused_and_the_server_keeps_serving() {
    let conf = conf().unit("ok", &answering("/ok", "ok"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    for n in [800, 1000] {
        let o = expect_outcome(
            manager(&mgmt, "deploy", json!(["deep", switch_graph(n, false)])),
            "rejected",
        );
        let e = first_error(&o);
        assert!(
            e.contains("sequence \\\"s0\\\"")
                && e.contains(&format!("nests {} levels deep", n - 1))
                && e.contains("the limit is 64")
                && o["errors"][0]["line"].as_u64().unwrap_or(0) > 0,
            "{o:#}"
        );
        assert_eq!(get(&conf, "/ok"), (200, "ok".into()), "{}", esb.log());
    }
    // Within the limit it deploys and the request runs down the whole chain.
    expect_outcome(
        manager(&mgmt, "deploy", json!(["deep", switch_graph(60, false)])),
        "activated",
    );
    assert_eq!(get(&conf, "/deep"), (200, "bottom".into()));

    // Offline validation refuses the same unit with the same error.
    let offline = TempConf::new()
        .http("web")
        .unit("deep", &switch_graph(1000, false));
    let (ok, report) = run_validate(&offline);
    assert!(!ok, "{report}");
    assert!(
        report.contains("deep/unit.toml:") && report.contains("nests 999 levels deep"),
        "{report}"
    );
}

#[test]
fn switch_dag_validates_in_linear_time_and_management_stays_responsive() {
    let conf = conf().unit("ok", &answering("/ok", "ok"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    // 50 sequences have ~2e10 paths: a walk per path would never finish.
    let o = expect_outcome(
        manager(&mgmt, "deploy", json!(["dag", switch_graph(50, true)])),
        "activated",
    );
    assert_eq!(o["revision"], 1);
    assert_eq!(get(&conf, "/deep"), (200, "bottom".into()));
    let offline = TempConf::new()
        .http("web")
        .unit("dag", &switch_graph(50, true));
    let (ok, report) = run_validate(&offline);
    assert!(ok, "{report}");
}

#[test]
fn unit_names_never_reach_outside_the_deployments_directory() {
    let conf = conf().unit("default", &answering("/default", "mine"));
    // A directory outside deployments, and one shaped like a unit named `default`.
    let outside = conf.root().join("outside");
    for (dir, body) in [
        (outside.join("x"), "outside"),
        (outside.join("default"), "attacker"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("unit.toml"), answering("/evil", body)).unwrap();
    }
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let manifest_before = std::fs::read(conf.state_dir().join("deployments.json")).unwrap();
    let abs = outside.join("default").display().to_string();
    let names = [
        "../outside/x",
        "./../x",
        "/etc",
        abs.as_str(),
        "..",
        "a/b",
        "Default",
    ];
    for name in names {
        for (op, args) in [
            ("load", json!([name])),
            ("reload", json!([name])),
            ("unload", json!([name])),
            ("deployFromDisk", json!([name])),
            ("deploy", json!([name, answering("/evil", "pushed")])),
            ("batch", json!([[name, "default"]])),
        ] {
            let v = manager(&mgmt, op, args);
            let one = if v.is_array() { v[0].clone() } else { v };
            assert_eq!(one["outcome"], "rejected", "{op} {name}: {one:#}");
            assert!(
                first_error(&one).contains("invalid unit name"),
                "{op} {name}: {one:#}"
            );
        }
        for op in ["validate", "diff"] {
            let v = manager(&mgmt, op, json!([name]));
            assert!(
                v.to_string().contains("invalid unit name"),
                "{op} {name}: {v:#}"
            );
        }
    }
    // Nothing outside was activated, no phantom unit appeared, default's state is its own.
    assert_eq!(get(&conf, "/evil").0, 404);
    assert_eq!(get(&conf, "/default"), (200, "mine".into()));
    let units = mgmt.read("esb:type=DeploymentManager", "Units");
    assert_eq!(units, json!(["default"]), "{units:#}\n{}", esb.log());
    let manifest_after = std::fs::read(conf.state_dir().join("deployments.json")).unwrap();
    assert_eq!(manifest_before, manifest_after);
    assert!(!conf.state_dir().join("revisions/x").exists());
}

#[test]
fn only_regular_files_inside_a_unit_are_read() {
    let conf = conf().unit("u", &answering("/u", "v1"));
    let secret = conf.root().join("secret.toml");
    std::fs::write(&secret, "version = \"stolen\"\n").unwrap();
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let dir = conf.unit_dir("u");
    let include =
        |extra: &str| format!("include = [\"inc.toml\"]\n{}{extra}", answering("/u", "v2"));

    // A symbolic link to a file outside the unit is refused, never followed.
    std::os::unix::fs::symlink(&secret, dir.join("inc.toml")).unwrap();
    write(&dir.join("unit.toml"), &include(""));
    let o = expect_outcome(manager(&mgmt, "reload", json!(["u"])), "rejected");
    assert!(first_error(&o).contains("a symbolic link"), "{o:#}");
    std::fs::remove_file(dir.join("inc.toml")).unwrap();

    // A FIFO (directly, or behind a symlink) never blocks the engine.
    let fifo = conf.root().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(&fifo, dir.join("inc.toml")).unwrap();
    let o = expect_outcome(manager(&mgmt, "reload", json!(["u"])), "rejected");
    assert!(first_error(&o).contains("a symbolic link"), "{o:#}");
    std::fs::remove_file(dir.join("inc.toml")).unwrap();
    let c = std::ffi::CString::new(dir.join("inc.toml").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let o = expect_outcome(manager(&mgmt, "reload", json!(["u"])), "rejected");
    assert!(first_error(&o).contains("a FIFO"), "{o:#}");
    // The engine answers reads and serves the old revision meanwhile.
    assert_eq!(mgmt.read("esb:type=Server", "State"), "Running");
    assert_eq!(get(&conf, "/u"), (200, "v1".into()), "{}", esb.log());
}

/// Starts esb on `conf`, checks that `/ok` serves and a deploy gets `revision`.
fn serves_and_deploys(conf: &TempConf, revision: u64) -> Esb {
    let esb = Esb::start(conf);
    let mgmt = Mgmt::of(conf);
    assert_eq!(get(conf, "/ok"), (200, "ok".into()), "{}", esb.log());
    write(
        &conf.unit_dir("ok").join("unit.toml"),
        &answering("/ok", "ok2"),
    );
    let o = expect_outcome(manager(&mgmt, "reload", json!(["ok"])), "activated");
    assert_eq!(o["revision"], revision, "{o:#}\n{}", esb.log());
    esb
}

fn stop(mut esb: Esb) {
    esb.sigterm();
    assert!(esb.wait(WAIT).success(), "esb did not stop cleanly");
}

fn set_aside(state: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".damaged-"))
        .collect();
    names.sort();
    names
}

#[test]
fn damaged_state_dir_is_set_aside_and_never_blocks_valid_units() {
    let conf = conf().unit("ok", &answering("/ok", "ok"));
    let state = conf.state_dir();

    // A stray regular file where the revision copies belong.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("revisions"), "junk").unwrap();
    let esb = serves_and_deploys(&conf, 2);
    assert!(esb.log().contains("damaged deployment state set aside"));
    stop(esb);
    assert!(set_aside(&state)
        .iter()
        .any(|n| n.starts_with("revisions.damaged-")));

    // A manifest whose numbers are absurd (u64::MAX) is not trusted: numbering continues
    // from the revision copies.
    write(
        &conf.unit_dir("ok").join("unit.toml"),
        &answering("/ok", "ok"),
    );
    let path = state.join("deployments.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["units"]["ok"]["next_revision"] = json!(u64::MAX);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let esb = serves_and_deploys(&conf, 3);
    stop(esb);

    // A manifest that is not JSON at all is set aside the same way.
    write(
        &conf.unit_dir("ok").join("unit.toml"),
        &answering("/ok", "ok"),
    );
    std::fs::write(&path, "{ torn").unwrap();
    let esb = serves_and_deploys(&conf, 4);
    stop(esb);
    assert!(set_aside(&state)
        .iter()
        .any(|n| n.starts_with("deployments.json.damaged-")));
}

#[test]
fn empty_unit_file_is_an_error_with_a_hint() {
    let conf = conf().unit("e", &answering("/e", "v1"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    write(&conf.unit_dir("e").join("unit.toml"), "");
    let o = expect_outcome(manager(&mgmt, "reload", json!(["e"])), "rejected");
    let e = first_error(&o);
    assert!(
        e.contains("unit.toml is empty") && e.contains("unload"),
        "{o:#}"
    );
    assert_eq!(get(&conf, "/e"), (200, "v1".into()));
    let o = expect_outcome(manager(&mgmt, "deploy", json!(["f", "  \n"])), "rejected");
    assert!(first_error(&o).contains("unit.toml is empty"), "{o:#}");
}

#[test]
fn oversized_unit_files_are_refused_before_reading() {
    let conf = conf().unit("big", &answering("/big", "v1"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let f = std::fs::File::create(conf.unit_dir("big").join("huge.toml")).unwrap();
    f.set_len(64 << 20).unwrap();
    let o = expect_outcome(manager(&mgmt, "reload", json!(["big"])), "rejected");
    assert!(first_error(&o).contains("exceeds the limit"), "{o:#}");
    assert_eq!(get(&conf, "/big"), (200, "v1".into()));
    assert_eq!(mgmt.read("esb:type=Server", "State"), "Running");
}

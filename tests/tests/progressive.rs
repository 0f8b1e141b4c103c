//! Progressive delivery: checks run against a new revision's own pipeline before it takes
//! traffic, and runtime flags flip behaviour without a deploy.

use e2e::load::{Load, RawResponse};
use e2e::mgmt_client::Mgmt;
use e2e::scenario::*;
use e2e::uterm::Uterm;
use e2e::{Backend, Esb};
use serde_json::json;

/// A unit whose proxy `/app` forwards to `backend`, labelled `version`, with `checks`.
fn app_unit(version: &str, backend: &str, checks: &str) -> String {
    format!(
        r#"version = "{version}"

[[proxy]]
name = "app"
path = "/app"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{backend}"]

{checks}
"#
    )
}

#[test]
fn a_failing_check_rejects_the_deploy_under_load_with_no_client_error() {
    let good = Backend::fixed(200, r#"{"status":"up"}"#).start();
    let broken = Backend::fixed(500, "database unreachable").start();
    let conf = conf().unit("a", &app_unit("1", &good.url(), ""));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let classify = |_: &str, r: &RawResponse| r.status.to_string();
    let load = Load::start(8, addr(&conf), &["/app"], classify);
    load.wait_more(200, WAIT);
    let check = "[[check]]\nname = \"health\"\npath = \"/app/health\"\nexpect = { status = 200, json = { \"/status\" = \"up\" } }\n";
    let o = expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["a", app_unit("2", &broken.url(), check)]),
        ),
        "rejected",
    );
    let e = o["errors"][0].to_string();
    assert!(
        e.contains("check \\\"health\\\"")
            && e.contains("expected status 200, got 500")
            && e.contains("database unreachable"),
        "{o:#}"
    );
    assert!(
        broken.hits() >= 1,
        "the check reached the new revision's backend"
    );
    assert_eq!(mgmt.read("esb:type=Unit,name=a", "Label"), "1");
    load.wait_more(200, WAIT);
    let report = load.stop();
    assert_clean("failing check under load", &report, 8);

    // The same check against a backend that answers as expected activates the revision.
    let o = expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["a", app_unit("3", &good.url(), check)]),
        ),
        "activated",
    );
    assert_eq!(o["revision"], 2, "{o:#}\n{}", esb.log());
    // A latency bound and a body expectation fail with what came back.
    let slow = Backend::fixed(200, "late")
        .delay(std::time::Duration::from_millis(300))
        .start();
    let bounded = "[[check]]\nname = \"fast\"\npath = \"/app\"\nexpect = { body_contains = \"late\", max_latency = \"50ms\" }\n";
    let o = expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["a", app_unit("4", &slow.url(), bounded)]),
        ),
        "rejected",
    );
    assert!(
        o["errors"][0]
            .to_string()
            .contains("expected an answer within 50ms"),
        "{o:#}"
    );
}

#[test]
fn validate_with_checks_runs_them_without_deploying() {
    let broken = Backend::fixed(503, "down").start();
    let conf = conf().unit(
        "a",
        &app_unit(
            "1",
            &broken.url(),
            "[[check]]\nname = \"up\"\npath = \"/app\"\n",
        ),
    );
    // Start-up restores what is on disk without running checks; validate --checks runs them.
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let r = Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
        .c("validate a --checks")
        .run();
    assert_eq!(r.code, 1, "{r}");
    r.stdout_has(&["check \"up\"", "expected a 2xx status, got 503"]);
    let plain = Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
        .c("validate a")
        .run();
    assert_eq!(plain.code, 0, "{plain}");
}

#[test]
fn a_flag_flip_changes_routing_at_once_survives_reloads_and_restarts_and_is_audited() {
    let unit = |version: &str| {
        format!(
            r#"version = "{version}"

[flags]
beta = false

[[proxy]]
name = "p"
path = "/p"
sequence = "route"

[[sequence]]
name = "route"
steps = [
  {{ filter = {{ on = "${{flag.beta}}", equals = "true", then = [{{ respond = {{ status = 200, body = "beta" }} }}] }} }},
  {{ respond = {{ status = 200, body = "stable" }} }},
]
"#
        )
    };
    let conf = conf().unit("f", &unit("1"));
    let mut esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(get(&conf, "/p"), (200, "stable".into()));
    Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
        .c("flag f beta on")
        .run()
        .expect(0)
        .stdout_has(&["unit f: flag beta on"]);
    assert_eq!(get(&conf, "/p"), (200, "beta".into()));
    assert_eq!(
        mgmt.read("esb:type=Unit,name=f", "Flags"),
        json!({"beta": true})
    );
    // A reload keeps the operator's value.
    write(&conf.unit_dir("f").join("unit.toml"), &unit("2"));
    expect_outcome(manager(&mgmt, "reload", json!(["f"])), "activated");
    assert_eq!(get(&conf, "/p"), (200, "beta".into()));
    // Audited as a change.
    let audited = mgmt
        .audit()
        .into_iter()
        .any(|r| r.to_string().contains("setFlag"));
    assert!(audited, "{:#?}", mgmt.audit());
    // A process restart keeps it too.
    esb.sigterm();
    assert!(esb.wait(WAIT).success());
    drop(esb);
    let _esb = Esb::start(&conf);
    assert_eq!(get(&conf, "/p"), (200, "beta".into()));
    let mgmt = Mgmt::of(&conf);
    mgmt.exec_ok("esb:type=Unit,name=f", "setFlag", json!(["beta", false]));
    assert_eq!(get(&conf, "/p"), (200, "stable".into()));
    let env = mgmt.exec("esb:type=Unit,name=f", "setFlag", json!(["gamma", true]));
    assert!(
        env.to_string().contains("declares no flag \\\"gamma\\\""),
        "{env:#}"
    );
}

#[test]
fn a_guard_rolls_back_a_revision_whose_backend_fails_by_itself() {
    let good = Backend::fixed(200, "good").start();
    let bad = Backend::fixed(500, "bad").start();
    let guard = "[guard]\nmax_error_rate = 10.0\nwindow = \"60s\"\nmin_requests = 20\n";
    let conf = conf().unit("g", &app_unit("1", &good.url(), guard));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let before = mgmt.audit().len();
    let o = expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["g", app_unit("2", &bad.url(), guard)]),
        ),
        "activated",
    );
    assert_eq!(o["revision"], 2);
    // Clients meet the bad revision until the guard has seen enough of it.
    e2e::wait_until("the guard to roll revision 2 back", WAIT, || {
        let _ = get(&conf, "/app");
        mgmt.read("esb:type=Unit,name=g", "Revision") == 1
    });
    assert_eq!(get(&conf, "/app"), (200, "good".into()), "{}", esb.log());
    let why = mgmt.read("esb:type=Unit,name=g", "GuardTripped");
    assert!(
        why.as_str().is_some_and(
            |w| w.contains("revision 2 rolled back to 1") && w.contains("answered 5xx")
        ),
        "{why}"
    );
    let events = events(&mgmt);
    let trip = events
        .iter()
        .find(|e| e["type"] == "guard_tripped")
        .unwrap_or_else(|| panic!("no guard_tripped event: {events:#?}"));
    assert_eq!(
        (trip["revision"].clone(), trip["rolled_back_to"].clone()),
        (json!(2), json!(1))
    );
    let audit = mgmt.audit();
    assert!(
        audit[before..].iter().any(|r| r["by"] == "guard"),
        "{:#?}",
        &audit[before..]
    );
    // A good new revision is watched and stays.
    let o = expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["g", app_unit("3", &good.url(), guard)]),
        ),
        "activated",
    );
    for _ in 0..40 {
        assert_eq!(get(&conf, "/app").0, 200);
    }
    assert_eq!(mgmt.read("esb:type=Unit,name=g", "Revision"), o["revision"]);
    assert_eq!(
        mgmt.read("esb:type=Unit,name=g", "GuardTripped"),
        serde_json::Value::Null
    );
}

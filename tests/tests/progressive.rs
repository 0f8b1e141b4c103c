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

/// Responses of a load phase by the revision that answered (x-esb-revision; "-" without).
fn phase(conf: &e2e::TempConf, clients: usize, responses: u64) -> e2e::load::LoadReport {
    let classify = |_: &str, r: &RawResponse| r.header("x-esb-revision").unwrap_or("-").to_owned();
    let load = Load::start(clients, addr(conf), &["/app"], classify);
    load.wait_more(responses, WAIT);
    load.stop()
}

fn share(r: &e2e::load::LoadReport, class: &str) -> f64 {
    *r.classes.get(class).unwrap_or(&0) as f64 * 100.0 / r.responses as f64
}

fn clean(what: &str, r: &e2e::load::LoadReport) {
    assert_eq!(
        (r.socket_errors, r.non_2xx()),
        (0, 0),
        "{what}: {:?}\n{}",
        r.statuses,
        r.samples.join("\n")
    );
}

#[test]
fn a_ten_percent_canary_takes_its_share_and_promote_and_abort_drop_nothing() {
    let a = Backend::fixed(200, "a").start();
    let b = Backend::fixed(200, "b").start();
    let conf = conf().unit("u", &app_unit("1", &a.url(), ""));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let ut = || Uterm::connected(&conf.mgmt_url(""), &mgmt.control);
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("unit.toml");
    std::fs::write(&v2, app_unit("2", &b.url(), "")).unwrap();
    ut().c(&format!("deploy u --canary 10% --file {}", v2.display()))
        .run()
        .expect(0)
        .stdout_has(&["canary u: revision 2 beside revision 1 for 10% of requests"]);
    let r = phase(&conf, 50, 5000);
    clean("10% canary", &r);
    let s = share(&r, "2");
    assert!(
        (8.0..=12.0).contains(&s),
        "canary share {s:.1} %: {:?}",
        r.classes
    );
    assert_eq!(share(&r, "1") + s, 100.0, "{:?}", r.classes);
    let canary = mgmt.read("esb:type=Unit,name=u", "Canary");
    assert_eq!(canary["revision"], 2, "{canary:#}");
    assert!(canary["requests"].as_u64().unwrap_or(0) > 0, "{canary:#}");

    ut().c("canary u 50%").run().expect(0);
    let r = phase(&conf, 50, 2000);
    clean("50% canary", &r);
    let s = share(&r, "2");
    assert!(
        (45.0..=55.0).contains(&s),
        "canary share {s:.1} %: {:?}",
        r.classes
    );

    // Abort: the running revision serves alone, without the header.
    ut().c("abort u")
        .run()
        .expect(0)
        .stdout_has(&["canary revision 2 aborted"]);
    let r = phase(&conf, 20, 500);
    clean("after abort", &r);
    assert_eq!(
        r.classes.keys().collect::<Vec<_>>(),
        ["-"],
        "{:?}",
        r.classes
    );
    assert_eq!(
        mgmt.read("esb:type=Unit,name=u", "Canary"),
        serde_json::Value::Null
    );

    // A header canary, promoted under load.
    std::fs::write(&v2, app_unit("3", &b.url(), "")).unwrap();
    ut().c(&format!(
        "deploy u --canary-header x-canary=1 --file {}",
        v2.display()
    ))
    .run()
    .expect(0)
    .stdout_has(&["requests with x-canary: 1"]);
    let with = e2e::Client::new()
        .request("GET", &conf.url("web", "/app"))
        .header("x-canary", "1")
        .send();
    assert_eq!((with.status, with.text()), (200, "b".into()));
    assert_eq!(get(&conf, "/app"), (200, "a".into()));
    let classify = |_: &str, r: &RawResponse| r.text();
    let load = Load::start(20, addr(&conf), &["/app"], classify);
    load.wait_more(300, WAIT);
    ut().c("promote u")
        .run()
        .expect(0)
        .stdout_has(&["activated u: revision 3"]);
    load.wait_more(300, WAIT);
    let r = load.stop();
    clean("promote under load", &r);
    assert_eq!(get(&conf, "/app"), (200, "b".into()));
    assert_eq!(mgmt.read("esb:type=Unit,name=u", "Revision"), 3);
}

#[test]
fn a_canary_whose_backend_fails_is_aborted_by_its_guard() {
    let good = Backend::fixed(200, "good").start();
    let bad = Backend::fixed(500, "bad").start();
    let guard = "[guard]\nmax_error_rate = 5.0\nwindow = \"10s\"\nmin_requests = 20\n";
    let conf = conf().unit("g", &app_unit("1", &good.url(), guard));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let o = manager(
        &mgmt,
        "canaryContent",
        json!(["g", app_unit("2", &bad.url(), guard), 50, "", ""]),
    );
    assert_eq!(o["outcome"], "canary", "{o:#}");
    e2e::wait_until("the guard to abort the canary", WAIT, || {
        let _ = get(&conf, "/app");
        mgmt.read("esb:type=Unit,name=g", "Canary").is_null()
    });
    let why = mgmt.read("esb:type=Unit,name=g", "GuardTripped");
    assert!(
        why.as_str()
            .is_some_and(|w| w.contains("canary revision 2 aborted")),
        "{why}"
    );
    for _ in 0..20 {
        assert_eq!(get(&conf, "/app"), (200, "good".into()));
    }
    assert_eq!(mgmt.read("esb:type=Unit,name=g", "Revision"), 1);
}

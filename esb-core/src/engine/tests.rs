//! In-process tests of the engine: a transaction, its view, the routing table it swaps
//! in, operator commands and the mediation of the revisions it builds — on a temporary
//! state directory, with units from strings, without sockets.

use super::*;
use crate::body::Payload;
use crate::mediation::{Ctx, Flow};
use crate::message::Message;
use crate::router::Lookup;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;

const ROOT: &str = r#"
[server]
state_dir = "state"
history = 3
[management]
enabled = false
[hot_deploy]
watch = false
[[transport]]
name = "web"
kind = "http"
bind = "127.0.0.1:0"
"#;

struct Env {
    engine: Engine,
    dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env {
        engine: engine_in(dir.path()),
        dir,
    }
}

fn engine_in(dir: &std::path::Path) -> Engine {
    let root = RootConfig::parse(ROOT, "esb.toml", dir).unwrap();
    Engine::new(Arc::new(root), Arc::new(EventBus::default()))
}

/// A unit answering `body` on `path`, with an endpoint it never calls.
fn answering(label: &str, path: &str, body: &str) -> String {
    format!(
        r#"version = "{label}"

[[proxy]]
name = "p"
path = "{path}"
sequence = "answer"

[[sequence]]
name = "answer"
steps = [
  {{ respond = {{ status = 200, body = "{body} from ${{unit.name}} ${{unit.version}} r${{unit.revision}}" }} }},
]

[[endpoint]]
name = "spare"
addresses = ["http://127.0.0.1:9"]
"#
    )
}

async fn deploy(engine: &Engine, unit: &str, text: String) -> Outcome {
    let change = Change::Deploy {
        unit: unit.into(),
        source: Source::unit_toml(text),
    };
    engine.apply(vec![change]).await.remove(0)
}

fn revision(engine: &Engine, unit: &str) -> Option<u64> {
    engine.snapshot().get(unit).and_then(UnitView::revision)
}

fn routed(engine: &Engine, path: &str) -> Option<(String, u64)> {
    match engine.table.load().lookup("web", &Method::GET, path) {
        Lookup::Found(p) => Some((p.info.unit.clone(), p.info.number)),
        _ => None,
    }
}

/// Runs sequence `name` of `unit`'s current revision on a GET of `path`; the answer's
/// status and body.
async fn mediate(engine: &Engine, unit: &str, name: &str, path: &str) -> (u16, String) {
    let rev = engine.snapshot()[unit].current.clone().unwrap();
    let seq = rev.sequences[name].clone();
    let mut msg = Message::new(
        Method::GET,
        path.parse().unwrap(),
        HeaderMap::new(),
        Payload::Full(Default::default()),
    );
    let mut ctx = Ctx {
        unit: &rev.info.vars,
        max_body: rev.info.max_body,
        client_addr: None,
        scheme: "http",
        route: None,
        trace: None,
    };
    let Ok(Flow::Respond(resp)) = seq.run(&mut msg, &mut ctx).await else {
        panic!("sequence {name} did not respond");
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn kinds(engine: &Engine) -> Vec<&'static str> {
    engine
        .events
        .recent(100)
        .iter()
        .map(|e| e.kind.name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_publishes_its_view_routes_and_answers_with_the_new_revision() {
    let Env { engine, .. } = env();
    let o = deploy(&engine, "shop", answering("1.0", "/orders", "hello")).await;
    let Outcome::Activated { revision, diff, .. } = o else {
        panic!("{o:?}");
    };
    assert_eq!(revision, 1);
    assert_eq!(diff.summary(), "+4 ~0 -0", "{diff}");
    assert_eq!(revision_of(&engine, "shop"), (Some(1), "Pushed"));
    assert_eq!(routed(&engine, "/orders/42"), Some(("shop".into(), 1)));
    assert_eq!(routed(&engine, "/other"), None);
    assert_eq!(
        mediate(&engine, "shop", "answer", "/orders/42").await,
        (200, "hello from shop 1.0 r1".into())
    );
    assert_eq!(kinds(&engine), ["unit_activated"]);
}

fn revision_of(engine: &Engine, unit: &str) -> (Option<u64>, &'static str) {
    let view = engine.snapshot();
    let u = &view[unit];
    (
        u.revision(),
        match u.origin {
            Origin::Disk => "Disk",
            Origin::Pushed => "Pushed",
            Origin::Cluster => "Cluster",
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_is_rejected_and_the_old_revision_keeps_serving() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1.0", "/orders", "v1")).await;
    let bad = answering("2.0", "/orders", "v2").replace("path =", "pathh =");
    let o = deploy(&engine, "shop", bad).await;
    let Outcome::Rejected { errors, .. } = &o else {
        panic!("{o:?}");
    };
    assert!(
        errors[0].to_string().contains("pathh"),
        "the error names the bad key: {errors:?}"
    );
    let view = engine.snapshot();
    assert_eq!(view["shop"].revision(), Some(1));
    assert_eq!(view["shop"].last_errors.len(), errors.len());
    assert_eq!(routed(&engine, "/orders"), Some(("shop".into(), 1)));
    assert_eq!(
        mediate(&engine, "shop", "answer", "/orders").await.1,
        "v1 from shop 1.0 r1"
    );
    assert_eq!(kinds(&engine), ["unit_activated", "unit_rejected"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_again_is_unchanged_and_builds_nothing() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1.0", "/orders", "v1")).await;
    let before = engine.snapshot()["shop"].current.clone().unwrap();
    let o = deploy(&engine, "shop", answering("1.0", "/orders", "v1")).await;
    assert!(matches!(o, Outcome::Unchanged { revision: 1, .. }), "{o:?}");
    let after = engine.snapshot()["shop"].current.clone().unwrap();
    assert!(Arc::ptr_eq(&before, &after), "the running revision stays");
    assert_eq!(engine.snapshot()["shop"].history.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_decides_what_is_rebuilt_and_what_is_reported() {
    let Env { engine, .. } = env();
    let two = |body: &str| {
        format!(
            "{}\n[[proxy]]\nname = \"q\"\npath = \"/q\"\nendpoint = \"spare\"\n",
            answering("1.0", "/orders", body)
        )
    };
    deploy(&engine, "shop", two("v1")).await;
    let old = engine.snapshot()["shop"].current.clone().unwrap();
    let o = deploy(&engine, "shop", two("v2")).await;
    let Outcome::Activated { revision, diff, .. } = o else {
        panic!("{o:?}");
    };
    assert_eq!(revision, 2);
    let changed: Vec<(&str, &str)> = diff
        .changes
        .iter()
        .map(|c| (c.kind.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(changed, [("sequence", "answer")], "{diff}");
    let new = engine.snapshot()["shop"].current.clone().unwrap();
    assert!(
        Arc::ptr_eq(&old.endpoints["spare"], &new.endpoints["spare"]),
        "an endpoint the diff leaves alone keeps its runtime (pools, suspension)"
    );
    for (o, n) in old.proxies.iter().zip(&new.proxies) {
        assert!(
            Arc::ptr_eq(&o.stats, &n.stats),
            "proxy {} keeps its counters",
            n.name
        );
    }
    assert_eq!(
        mediate(&engine, "shop", "answer", "/orders").await.1,
        "v2 from shop 1.0 r2"
    );
    // Replaced: revision 1 drains (nothing in flight: the reaper drops it).
    assert_eq!(engine.draining_of("shop").len(), 1);
    engine.reap_drained().await;
    assert!(engine.draining_of("shop").is_empty());
    assert!(kinds(&engine).contains(&"revision_drained"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reactivates_the_previous_revision_with_its_number() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1.0", "/orders", "v1")).await;
    deploy(&engine, "shop", answering("2.0", "/orders", "v2")).await;
    let change = Change::Deploy {
        unit: "shop".into(),
        source: Source::Revision(None),
    };
    let o = engine.apply(vec![change]).await.remove(0);
    assert!(matches!(o, Outcome::Activated { revision: 1, .. }), "{o:?}");
    assert_eq!(routed(&engine, "/orders"), Some(("shop".into(), 1)));
    assert_eq!(
        mediate(&engine, "shop", "answer", "/").await.1,
        "v1 from shop 1.0 r1"
    );
    let numbers: Vec<u64> = engine.snapshot()["shop"]
        .history
        .iter()
        .map(|k| k.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
    let s = engine.source_of("shop", Some(2)).await.unwrap();
    assert!(!s.active && s.files["unit.toml"].contains("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_unit_changes_nothing_and_names_the_culprit() {
    let Env { engine, .. } = env();
    let changes = vec![
        Change::Deploy {
            unit: "a".into(),
            source: Source::unit_toml(answering("1", "/a", "a")),
        },
        Change::Deploy {
            unit: "b".into(),
            source: Source::unit_toml("[[proxy]]\nname = 3\n".into()),
        },
    ];
    let outcomes = engine.apply(changes).await;
    assert!(outcomes.iter().all(Outcome::is_rejected), "{outcomes:?}");
    let Outcome::Rejected { errors, .. } = &outcomes[0] else {
        unreachable!()
    };
    assert!(errors[0].to_string().contains("errors in b"), "{errors:?}");
    assert!(engine.snapshot().is_empty());
    assert_eq!(routed(&engine, "/a"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_claimed_by_another_unit_is_rejected_naming_the_owner() {
    let Env { engine, .. } = env();
    deploy(&engine, "a", answering("1", "/same", "a")).await;
    let o = deploy(&engine, "b", answering("1", "/same", "b")).await;
    let Outcome::Rejected { errors, .. } = &o else {
        panic!("{o:?}");
    };
    assert!(errors[0].to_string().contains("\"a\""), "{errors:?}");
    assert_eq!(routed(&engine, "/same"), Some(("a".into(), 1)));
    assert!(!engine.snapshot().contains_key("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unload_clears_the_unit_and_its_revision_drains_as_an_orphan() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1", "/orders", "v1")).await;
    let o = engine
        .apply(vec![Change::Unload {
            unit: "shop".into(),
        }])
        .await
        .remove(0);
    assert!(matches!(o, Outcome::Unloaded { revision: 1, .. }), "{o:?}");
    assert!(engine.snapshot().is_empty());
    assert_eq!(routed(&engine, "/orders"), None);
    assert_eq!(engine.orphans_draining().len(), 1);
    assert!(engine.draining().is_empty());
    let o = engine
        .apply(vec![Change::Unload {
            unit: "shop".into(),
        }])
        .await
        .remove(0);
    assert!(o.is_rejected(), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_change_operator_state_that_survives_a_reload() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1", "/orders", "v1")).await;
    let proxy = |run| Command::Proxy {
        unit: "shop".into(),
        proxy: "p".into(),
        run,
    };
    assert_eq!(engine.control(proxy(Run::Stop)).await.unwrap(), "Stopped");
    assert_eq!(
        routed(&engine, "/orders"),
        None,
        "a stopped proxy is not routed"
    );
    assert_eq!(
        engine.control(proxy(Run::Resume)).await,
        Err(CommandError::Refused(
            "proxy \"p\" is Stopped; start it instead".into()
        ))
    );
    let paused = Command::PauseUnit {
        unit: "shop".into(),
        hold_ms: 0,
    };
    assert_eq!(engine.control(paused).await.unwrap(), "Paused");
    let maintenance = Command::Maintenance {
        unit: "shop".into(),
        endpoint: "spare".into(),
        on: true,
    };
    assert_eq!(engine.control(maintenance).await.unwrap(), "Maintenance");

    deploy(&engine, "shop", answering("2", "/orders", "v2")).await;
    let view = engine.snapshot();
    let rev = view["shop"].current.as_ref().unwrap();
    assert_eq!(rev.info.number, 2);
    assert!(view["shop"].control.paused.load(Relaxed));
    assert_eq!(
        rev.proxies[0].proxy_state(),
        crate::proxy::ProxyState::Stopped
    );
    assert!(rev.endpoints["spare"].maintenance.load(Relaxed));
    assert_eq!(engine.control(proxy(Run::Start)).await.unwrap(), "Active");
    assert_eq!(routed(&engine, "/orders"), Some(("shop".into(), 2)));

    let unknown = Command::ResumeUnit {
        unit: "nope".into(),
    };
    assert_eq!(engine.control(unknown).await, Err(CommandError::NotFound));
    let flag = Command::Flag {
        unit: "shop".into(),
        flag: "beta".into(),
        on: true,
    };
    let Err(CommandError::Refused(why)) = engine.control(flag).await else {
        panic!("an undeclared flag is refused");
    };
    assert!(why.contains("declares no flag \"beta\""), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_engine_on_the_same_state_restores_pushed_units_and_their_numbering() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine_in(dir.path());
        engine.start(false).await.unwrap();
        deploy(&engine, "shop", answering("1", "/orders", "v1")).await;
        deploy(&engine, "shop", answering("2", "/orders", "v2")).await;
    }
    let engine = engine_in(dir.path());
    engine.start(true).await.unwrap();
    assert_eq!(revision_of(&engine, "shop"), (Some(2), "Pushed"));
    assert_eq!(routed(&engine, "/orders"), Some(("shop".into(), 2)));
    let o = deploy(&engine, "shop", answering("3", "/orders", "v3")).await;
    assert!(matches!(o, Outcome::Activated { revision: 3, .. }), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_directory_with_invalid_files_is_failed_while_the_others_serve() {
    let Env { engine, dir } = env();
    for (unit, text) in [
        ("good", answering("1", "/good", "ok")),
        ("bad", "[[proxy]]\nname = \"x\"\n".to_owned()),
    ] {
        let d = dir.path().join("deployments").join(unit);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("unit.toml"), text).unwrap();
    }
    engine.start(false).await.unwrap();
    let view = engine.snapshot();
    assert_eq!(view["good"].revision(), Some(1));
    assert_eq!(view["bad"].revision(), None);
    assert!(view["bad"].failed.is_some());
    assert_eq!(routed(&engine, "/good"), Some(("good".into(), 1)));
    assert!(kinds(&engine).contains(&"unit_failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_the_view_do_not_wait_while_a_change_holds_the_units() {
    let Env { engine, .. } = env();
    deploy(&engine, "shop", answering("1", "/orders", "v1")).await;
    let held = engine.lock().await;
    // A deploy holds the slots this way for its whole transaction.
    assert_eq!(revision(&engine, "shop"), Some(1));
    assert!(engine.draining().is_empty());
    engine.reap_drained().await;
    drop(held);
}

/// A unit whose `route` sequence switches on `${query.k}` over `n` cases, each a sequence
/// answering its own case; anything else falls to the default.
fn switching(n: usize) -> String {
    let cases: Vec<String> = (0..n).map(|i| format!("c{i} = \"s{i}\"")).collect();
    let mut text = format!(
        r#"version = "1"

[[proxy]]
name = "p"
path = "/s{n}"
sequence = "route"

[[sequence]]
name = "route"
steps = [
  {{ switch = {{ on = "${{query.k}}", cases = {{ {} }}, default = "other" }} }},
]

[[sequence]]
name = "other"
steps = [{{ respond = {{ status = 404, body = "no case" }} }}]
"#,
        cases.join(", ")
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[sequence]]\nname = \"s{i}\"\nsteps = [{{ respond = {{ status = 200, body = \"case {i}\" }} }}]\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_finds_its_case_among_few_and_among_many() {
    let Env { engine, .. } = env();
    // Up to eight cases are compared in turn, more are looked up in a map: both the same.
    for n in [2, 8, 9, 40] {
        let unit = format!("u{n}");
        let o = deploy(&engine, &unit, switching(n)).await;
        assert!(matches!(o, Outcome::Activated { .. }), "{n} cases: {o:?}");
        for i in [0, n / 2, n - 1] {
            let path = format!("/s{n}?k=c{i}");
            let want = (200, format!("case {i}"));
            assert_eq!(
                mediate(&engine, &unit, "route", &path).await,
                want,
                "{n} cases"
            );
        }
        for miss in ["?k=c", "?k=C0", "", &format!("?k=c{n}")] {
            let got = mediate(&engine, &unit, "route", &format!("/s{n}{miss}")).await;
            assert_eq!(got, (404, "no case".into()), "{n} cases, {miss}");
        }
    }
}

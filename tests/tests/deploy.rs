//! Deployment semantics end to end (DESIGN §4–6): a real `esb` on loopback, real backends,
//! driven through the management endpoint, the hot deployer, signals and restarts. Every
//! wait polls an observable state (a response body, a bean attribute, an event) with a
//! deadline; the only fixed pauses are the ones a scenario is made of (an editor pausing
//! between two writes, a random moment to SIGKILL, a window to measure a task's rate).

use e2e::load::{Load, RawResponse};
use e2e::mgmt_client::Mgmt;
use e2e::{wait_for, wait_until, Backend, Esb, EsbOptions};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use e2e::scenario::*;

#[test]
fn reload_under_load_drops_nothing() {
    const CLIENTS: usize = 50;
    const RELOADS: usize = 200;
    let backend = Backend::echo().name("echo").start();
    let url = backend.url();
    // Both proxies answer with the revision: `fixed` by itself, `echo` through the backend
    // (the in-sequence tags the request, the out-sequence the response: one request must
    // see both tags from the same revision).
    let unit_a = move |rev: &str| {
        format!(
            r#"version = "{rev}"

[[proxy]]
name = "fixed"
path = "/a/fixed"
sequence = "answer"

[[proxy]]
name = "echo"
path = "/a/echo"
sequence = "tag-in"
endpoint = "backend"
out_sequence = "tag-out"

[[sequence]]
name = "answer"
steps = [{{ respond = {{ status = 200, body = "rev-{rev}" }} }}]

[[sequence]]
name = "tag-in"
steps = [{{ set_header = {{ name = "x-rev", value = "{rev}" }} }}]

[[sequence]]
name = "tag-out"
steps = [{{ set_header = {{ name = "x-rev-out", value = "{rev}" }} }}]

[[endpoint]]
name = "backend"
addresses = ["{url}"]
"#
        )
    };
    let conf = conf()
        .unit("a", &unit_a("a"))
        .unit("b", &answering("/b", "unit-b"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/a/fixed", "rev-a");

    let classify_a = |path: &str, r: &RawResponse| -> String {
        if r.status != 200 {
            return format!("status {}", r.status);
        }
        if path == "/a/fixed" {
            return match r.text().as_str() {
                "rev-a" => "a".into(),
                "rev-b" => "b".into(),
                other => format!("unexpected body {other:?}"),
            };
        }
        let body: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) => return format!("not JSON: {}", r.text()),
        };
        let tag_in = body["headers"]["x-rev"]
            .as_str()
            .unwrap_or("none")
            .to_owned();
        let tag_out = r.header("x-rev-out").unwrap_or("none");
        if tag_in == tag_out {
            tag_in
        } else {
            format!("mixed: in-sequence {tag_in}, out-sequence {tag_out}")
        }
    };
    let classify_b = |_: &str, r: &RawResponse| format!("{} {}", r.status, r.text());
    let load_a = Load::start(CLIENTS, addr(&conf), &["/a/fixed", "/a/echo"], classify_a);
    let load_b = Load::start(4, addr(&conf), &["/b"], classify_b);
    load_a.wait_more(500, WAIT);
    load_b.wait_more(50, WAIT);

    let file = conf.unit_dir("a").join("unit.toml");
    for i in 0..RELOADS {
        let rev = if i % 2 == 0 { "b" } else { "a" };
        let text = unit_a(rev);
        // Two ways in: files on disk + reload, and content over the management endpoint.
        // (After a content deploy the unit is pushed: only an explicit deploy from disk
        // takes its files back.)
        let outcome = if i % 3 == 2 {
            manager(&mgmt, "deploy", json!(["a", text]))
        } else {
            write(&file, &text);
            let op = if i % 3 == 0 && i > 0 {
                "deployFromDisk"
            } else {
                "reload"
            };
            manager(&mgmt, op, json!(["a"]))
        };
        let outcome = expect_outcome(outcome, "activated");
        assert_eq!(outcome["revision"], i as u64 + 2, "{outcome:#}");
        // Let traffic flow on this revision before the next swap.
        load_a.wait_more(20, WAIT);
    }
    load_a.wait_more(200, WAIT);
    let a = load_a.stop();
    let b = load_b.stop();
    eprintln!(
        "unit a: {} responses over {} connections, by revision {:?}; unit b: {} responses",
        a.responses, a.connections, a.classes, b.responses
    );

    assert_clean("unit a", &a, CLIENTS as u64);
    let classes: Vec<&String> = a.classes.keys().collect();
    assert_eq!(
        classes,
        ["a", "b"],
        "every response must come from exactly one revision of unit a; saw {:?}",
        a.classes
    );
    assert_clean("unit b", &b, 4);
    assert_eq!(
        b.classes.keys().collect::<Vec<_>>(),
        ["200 unit-b"],
        "unit b's answers changed: {:?}",
        b.classes
    );
    assert_eq!(revision(&mgmt, "b"), 1, "unit b must not have been touched");
    assert_eq!(revision(&mgmt, "a"), RELOADS as u64 + 1);
    let draining = RefCell::new(Value::Null);
    wait_for(
        "every replaced revision of unit a to drain",
        WAIT,
        || {
            *draining.borrow_mut() = unit_attr(&mgmt, "a", "Draining");
            (*draining.borrow() == json!([])).then_some(())
        },
        || format!("Draining: {}", draining.borrow()),
    );
}

#[test]
fn in_flight_request_finishes_on_old_revision() {
    let slow = Backend::fixed(200, "old-backend")
        .delay(Duration::from_secs(1))
        .start();
    let fast = Backend::fixed(200, "new-backend").start();
    let unit = |label: &str, url: &str| {
        format!(
            r#"version = "{label}"

[[proxy]]
name = "work"
path = "/work"
endpoint = "backend"

[[endpoint]]
name = "backend"
addresses = ["{url}"]
"#
        )
    };
    let conf = conf().unit("w", &unit("1", &slow.url()));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);

    let url = conf.url("web", "/work");
    let in_flight = std::thread::spawn(move || client().get(&url));
    wait_until("the request to reach the slow backend", WAIT, || {
        slow.in_flight() == 1
    });

    write(
        &conf.unit_dir("w").join("unit.toml"),
        &unit("2", &fast.url()),
    );
    let outcome = expect_outcome(manager(&mgmt, "reload", json!(["w"])), "activated");
    assert_eq!(outcome["revision"], 2);
    assert!(
        slow.in_flight() == 1,
        "the reload must not have cut the in-flight request"
    );
    let draining = unit_attr(&mgmt, "w", "Draining");
    assert_eq!(
        draining,
        json!([{"revision": 1, "in_flight": 1}]),
        "revision 1 must be shown draining with the request in flight"
    );
    assert_eq!(
        get(&conf, "/work"),
        (200, "new-backend".into()),
        "a new request must run on revision 2"
    );

    let old = in_flight.join().expect("request thread");
    assert_eq!(
        (old.status, old.text()),
        (200, "old-backend".into()),
        "the in-flight request must finish on revision 1"
    );
    assert_eq!(fast.hits(), 1);
    wait_until("revision 1 to be drained", WAIT, || {
        unit_attr(&mgmt, "w", "Draining") == json!([])
    });
    let drained = unit_events(&mgmt, "revision_drained", "w", 0);
    assert!(
        drained
            .iter()
            .any(|e| e["revision"] == 1 && e["in_flight_left"] == 0),
        "expected revision_drained for revision 1 with nothing left: {drained:#?}"
    );
}

#[test]
fn invalid_edit_keeps_old_revision_serving() {
    let conf = conf().unit("u", &answering("/u", "v1"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/u", "v1");
    let before = last_event_id(&mgmt);
    let file = conf.unit_dir("u").join("unit.toml");

    write(&file, BROKEN);
    let errors = wait_for(
        "LastErrors of unit u after the broken save",
        WAIT,
        || {
            let e = unit_attr(&mgmt, "u", "LastErrors");
            e.as_array().is_some_and(|a| !a.is_empty()).then_some(e)
        },
        String::new,
    );
    let first = &errors[0];
    assert!(
        first["file"]
            .as_str()
            .unwrap_or("")
            .ends_with("u/unit.toml")
            && first["line"] == 4
            && first["col"] == 8,
        "LastErrors must locate the error at unit.toml:4:8: {errors:#}"
    );
    assert_eq!(get(&conf, "/u"), (200, "v1".into()));
    assert_eq!(revision(&mgmt, "u"), 1);
    assert_eq!(unit_attr(&mgmt, "u", "ModifiedOnDisk"), true);
    let rejected = unit_events(&mgmt, "unit_rejected", "u", before);
    assert!(
        rejected
            .iter()
            .any(|e| e["errors"][0]["line"] == 4 && e["errors"][0]["col"] == 8),
        "expected a unit_rejected event locating the error: {rejected:#?}"
    );
    assert!(unit_events(&mgmt, "unit_activated", "u", before).is_empty());

    write(&file, &answering("/u", "v2"));
    wait_revision(&mgmt, "u", 2);
    assert_eq!(get(&conf, "/u"), (200, "v2".into()));
    assert_eq!(unit_attr(&mgmt, "u", "LastErrors"), json!([]));
    assert_eq!(unit_attr(&mgmt, "u", "ModifiedOnDisk"), false);
}

/// Saves a new version of a watched unit the way `save` does, then (as a barrier) plainly
/// writes a third one, and checks exactly two activations happened: the saved version,
/// complete, then the third — never a half-written or duplicated one.
fn editor_save_activates_once(save: impl FnOnce(&Path, &str)) {
    let v1 = answering("/ed", "v1");
    // Padding makes the file a few KiB, so partial writes are plausible.
    let pad = format!("# {}\n", "padding ".repeat(8)).repeat(60);
    let v2 = format!("{}{pad}", answering("/ed", "v2"));
    let v3 = answering("/ed", "v3");
    let conf = conf().unit("ed", &v1);
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/ed", "v1");
    let before = last_event_id(&mgmt);
    let file = conf.unit_dir("ed").join("unit.toml");

    save(&file, &v2);
    wait_body(&conf, "/ed", "v2");
    write(&file, &v3);
    wait_body(&conf, "/ed", "v3");

    let activated: Vec<Value> = unit_events(&mgmt, "unit_activated", "ed", before)
        .iter()
        .map(|e| json!([e["revision"], e["hash"]]))
        .collect();
    assert_eq!(
        activated,
        [
            json!([2, hash_of("ed", &v2)]),
            json!([3, hash_of("ed", &v3)])
        ],
        "expected exactly: revision 2 = the complete saved file, revision 3 = the barrier"
    );
    assert_eq!(unit_attr(&mgmt, "ed", "LastErrors"), json!([]));
}

#[test]
fn hot_deploy_chunked_write_activates_the_complete_file() {
    editor_save_activates_once(|file, text| {
        // Cut inside the body string: the first half alone is not valid TOML.
        let cut = text.find("body = \"v").expect("body") + 8;
        let mut f = std::fs::File::create(file).expect("truncate unit.toml");
        f.write_all(&text.as_bytes()[..cut]).expect("first half");
        f.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(20));
        f.write_all(&text.as_bytes()[cut..]).expect("second half");
    });
}

#[test]
fn hot_deploy_write_temp_and_rename() {
    editor_save_activates_once(|file, text| {
        let tmp = file.with_file_name("unit.toml.tmp");
        write(&tmp, text);
        std::fs::rename(&tmp, file).expect("rename over unit.toml");
    });
}

#[test]
fn hot_deploy_vim_style_backup_rename() {
    editor_save_activates_once(|file, text| {
        let backup = file.with_file_name("unit.toml~");
        std::fs::rename(file, &backup).expect("rename to unit.toml~");
        write(file, text);
        std::fs::remove_file(&backup).expect("remove the backup");
    });
}

#[test]
fn hot_deploy_delete_then_create() {
    editor_save_activates_once(|file, text| {
        std::fs::remove_file(file).expect("delete unit.toml");
        write(file, text);
    });
}

#[test]
fn hot_deploy_touch_is_not_a_reload() {
    let conf = conf().unit("t", &answering("/t", "v1"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/t", "v1");
    let before = last_event_id(&mgmt);
    let file = conf.unit_dir("t").join("unit.toml");

    std::fs::File::options()
        .append(true)
        .open(&file)
        .and_then(|f| f.set_modified(SystemTime::now() + Duration::from_secs(5)))
        .expect("touch unit.toml");
    // The barrier: a real change made after the touch has been deployed, so the hot
    // deployer has looked at the touched unit too, and found nothing to do.
    let marker = conf.unit_dir("marker");
    std::fs::create_dir(&marker).expect("mkdir marker");
    write(&marker.join("unit.toml"), &answering("/marker", "m"));
    wait_body(&conf, "/marker", "m");
    assert_eq!(revision(&mgmt, "t"), 1);
    assert!(unit_events(&mgmt, "unit_activated", "t", before).is_empty());

    write(&file, &answering("/t", "v2"));
    wait_body(&conf, "/t", "v2");
    assert_eq!(revision(&mgmt, "t"), 2, "one change, one revision");
    assert_eq!(unit_events(&mgmt, "unit_activated", "t", before).len(), 1);
}

#[test]
fn hot_deploy_new_directory_loads() {
    let conf = conf().unit("base", &answering("/base", "base"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/base", "base");
    assert_eq!(get(&conf, "/fresh").0, 404);

    let dir = conf.unit_dir("fresh");
    std::fs::create_dir(&dir).expect("mkdir");
    write(&dir.join("unit.toml"), &answering("/fresh", "fresh"));
    wait_body(&conf, "/fresh", "fresh");
    assert_eq!(revision(&mgmt, "fresh"), 1);
    assert_eq!(unit_attr(&mgmt, "fresh", "State"), "Active");
    assert_eq!(revision(&mgmt, "base"), 1);
}

#[test]
fn hot_deploy_removed_directory_unloads() {
    let conf = conf()
        .unit("keep", &answering("/keep", "keep"))
        .unit("gone", &answering("/gone", "gone"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/gone", "gone");
    let before = last_event_id(&mgmt);

    std::fs::remove_dir_all(conf.unit_dir("gone")).expect("rm -r the unit directory");
    wait_status(&conf, "/gone", 404);
    assert!(
        bean(&mgmt, &unit_bean("gone")).is_none(),
        "the Unit bean of an unloaded unit must be gone"
    );
    assert_eq!(unit_events(&mgmt, "unit_unloaded", "gone", before).len(), 1);
    assert_eq!(get(&conf, "/keep"), (200, "keep".into()));
    assert_eq!(revision(&mgmt, "keep"), 1);
}

#[test]
fn batch_is_all_or_nothing() {
    let conf = conf()
        .unit("x", &answering("/x", "x-v1"))
        .unit("y", &answering("/y", "y-v1"));
    let mut esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let write_unit = |unit: &str, text: &str| write(&conf.unit_dir(unit).join("unit.toml"), text);

    // Both valid: both activated, in one batch.
    write_unit("x", &answering("/x", "x-v2"));
    write_unit("y", &answering("/y", "y-v2"));
    let outcomes = manager(&mgmt, "batch", json!([["x", "y"]]));
    let kinds: Vec<(&str, &str)> = outcomes
        .as_array()
        .expect("batch returns an array")
        .iter()
        .map(|o| {
            (
                o["unit"].as_str().unwrap_or(""),
                o["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("x", "activated"), ("y", "activated")],
        "{outcomes:#}"
    );
    assert_eq!(get(&conf, "/x"), (200, "x-v2".into()));
    assert_eq!(get(&conf, "/y"), (200, "y-v2".into()));

    // One invalid: nothing applied, both old revisions keep serving.
    write_unit("x", &answering("/x", "x-v3"));
    write_unit("y", BROKEN);
    let outcomes = manager(&mgmt, "batch", json!([["x", "y"]]));
    let list = outcomes.as_array().expect("batch returns an array");
    assert_eq!(list.len(), 2, "{outcomes:#}");
    for o in list {
        assert_eq!(o["outcome"], "rejected", "{outcomes:#}");
    }
    let x_errors = list
        .iter()
        .find(|o| o["unit"] == "x")
        .map(|o| o["errors"].to_string())
        .unwrap_or_default();
    assert!(
        x_errors.contains("\\\"y\\\"") || x_errors.contains(" y"),
        "x's rejection must say that y held the batch back: {x_errors}"
    );
    assert_eq!(get(&conf, "/x"), (200, "x-v2".into()));
    assert_eq!(get(&conf, "/y"), (200, "y-v2".into()));
    assert_eq!((revision(&mgmt, "x"), revision(&mgmt, "y")), (2, 2));
    assert_eq!(
        unit_attr(&mgmt, "x", "Hash"),
        hash_of("x", &answering("/x", "x-v2"))
    );

    // Nothing of the rejected batch may have been persisted either: with x's files
    // broken, a restart falls back to x's last active revision (v2), not the rejected v3.
    esb.sigterm();
    assert!(esb.wait(WAIT).success(), "esb did not stop cleanly");
    write_unit("x", BROKEN);
    write_unit("y", &answering("/y", "y-v2"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(unit_attr(&mgmt, "x", "Degraded"), true);
    assert_eq!(
        get(&conf, "/x"),
        (200, "x-v2".into()),
        "last-good of x must be the revision that was active, not one from a rejected batch"
    );
}

#[test]
fn rollback_reactivates_previous_revision() {
    let r1 = answering("/r", "r1");
    let r2 = answering("/r", "r2");
    let r3 = answering("/r", "r3");
    let conf = conf().unit("r", &r1);
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let hash = |t: &str| hash_of("r", t);

    expect_outcome(manager(&mgmt, "deploy", json!(["r", r2])), "activated");
    assert_eq!(get(&conf, "/r"), (200, "r2".into()));

    expect_outcome(manager(&mgmt, "rollback", json!(["r"])), "activated");
    assert_eq!(get(&conf, "/r"), (200, "r1".into()));
    assert_eq!(unit_attr(&mgmt, "r", "Hash"), hash(&r1));

    let history = manager(&mgmt, "history", json!(["r"]));
    let entries = history.as_array().expect("history is an array");
    let mut revs: Vec<u64> = entries
        .iter()
        .filter_map(|e| e["revision"].as_u64())
        .collect();
    revs.sort();
    assert_eq!(revs, [1, 2], "history: {history:#}");
    let active: Vec<&Value> = entries.iter().filter(|e| e["active"] == true).collect();
    assert_eq!(active.len(), 1, "exactly one active revision: {history:#}");
    assert_eq!(active[0]["hash"], hash(&r1), "{history:#}");
    assert_eq!(active[0]["revision"], 1, "{history:#}");

    expect_outcome(manager(&mgmt, "rollbackTo", json!(["r", 2])), "activated");
    assert_eq!(get(&conf, "/r"), (200, "r2".into()));
    assert_eq!(unit_attr(&mgmt, "r", "Hash"), hash(&r2));

    let o = expect_outcome(manager(&mgmt, "deploy", json!(["r", r3])), "activated");
    assert_eq!(o["revision"], 3, "a new deploy gets the next number: {o:#}");
    assert_eq!(get(&conf, "/r"), (200, "r3".into()));
    // The Unit bean's own operation, to a named revision further back.
    mgmt.exec_ok(&unit_bean("r"), "rollbackTo", json!([1]));
    assert_eq!(get(&conf, "/r"), (200, "r1".into()));
    assert_eq!(unit_attr(&mgmt, "r", "Revision"), 1);

    let o = expect_outcome(manager(&mgmt, "rollbackTo", json!(["r", 99])), "rejected");
    assert!(
        o["errors"].to_string().contains("99"),
        "the error must name the missing revision: {o:#}"
    );
    assert_eq!(get(&conf, "/r"), (200, "r1".into()));
}

#[test]
fn corrupt_unit_falls_back_to_last_good_at_start() {
    let conf = conf()
        .unit("good", &answering("/good", "good-v1"))
        .unit("other", &answering("/other", "other"));
    let mut esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/good", "good-v1");
    esb.sigterm();
    assert!(esb.wait(WAIT).success(), "esb did not stop cleanly");
    drop(esb);

    write(&conf.unit_dir("good").join("unit.toml"), BROKEN);
    let conf = conf.unit("broken", BROKEN);
    let esb = Esb::start(&conf);
    let mgmt2 = Mgmt::of(&conf);
    drop(mgmt);

    assert_eq!(get(&conf, "/good"), (200, "good-v1".into()));
    let good = bean(&mgmt2, &unit_bean("good")).expect("unit good is loaded");
    assert_eq!(good["State"], "Active", "{good:#}");
    assert_eq!(good["Degraded"], true, "{good:#}");
    assert_eq!(good["Revision"], 1, "{good:#}");
    assert_eq!(
        (
            good["LastErrors"][0]["line"].clone(),
            good["LastErrors"][0]["col"].clone()
        ),
        (json!(4), json!(8)),
        "the reason for the fallback must be located: {good:#}"
    );
    assert!(
        esb.log().contains("unit.toml:4:8"),
        "the fallback must be logged with the error location:\n{}",
        esb.log()
    );

    assert_eq!(get(&conf, "/other"), (200, "other".into()));
    assert_eq!(unit_attr(&mgmt2, "other", "Degraded"), false);

    let broken = bean(&mgmt2, &unit_bean("broken")).expect("a failed unit still has a bean");
    assert_eq!(broken["State"], "Failed", "{broken:#}");
    assert_eq!(broken["LastErrors"][0]["line"], 4, "{broken:#}");
    assert_eq!(get(&conf, "/x").0, 404);

    // Fixing the files and reloading ends the degraded state.
    write(
        &conf.unit_dir("good").join("unit.toml"),
        &answering("/good", "good-v2"),
    );
    let o = expect_outcome(manager(&mgmt2, "reload", json!(["good"])), "activated");
    assert_eq!(o["revision"], 2, "{o:#}");
    assert_eq!(get(&conf, "/good"), (200, "good-v2".into()));
    assert_eq!(unit_attr(&mgmt2, "good", "Degraded"), false);
}

#[test]
fn strict_refuses_to_start() {
    let conf = conf()
        .unit("fine", &answering("/fine", "fine"))
        .unit("bad", BROKEN);
    let mut esb = Esb::spawn(
        &conf,
        &EsbOptions {
            strict: true,
            ..EsbOptions::default()
        },
    );
    let status = esb.wait(WAIT);
    let log = esb.log();
    assert!(
        !status.success(),
        "--strict with an invalid unit must fail; exited {status}\n{log}"
    );
    assert!(
        log.contains("bad/unit.toml:4:8"),
        "stderr must name the error as file:line:col:\n{log}"
    );
}

/// A unit of 150 proxies answering `big-{tag}-{i}`: a few tens of KiB.
fn big_unit(tag: &str) -> String {
    let mut s = format!("version = \"{tag}\"\n");
    for i in 0..150 {
        s.push_str(&format!(
            "\n[[proxy]]\nname = \"p{i}\"\npath = \"/k/{i}\"\nsequence = \"s{i}\"\n\n[[sequence]]\nname = \"s{i}\"\nsteps = [{{ log = \"proxy {i} of version {tag}\" }}, {{ respond = {{ status = 200, body = \"big-{tag}-{i}\" }} }}]\n"
        ));
    }
    s
}

#[test]
fn kill9_during_deploys_never_tears() {
    let versions: Vec<(String, String)> = ["0", "1", "2"]
        .iter()
        .map(|t| (t.to_string(), big_unit(t)))
        .collect();
    let by_hash = |h: &str| {
        versions
            .iter()
            .find(|(_, text)| hash_of("k", text) == h)
            .map(|(tag, _)| tag.clone())
    };
    let conf = conf().unit("k", &versions[0].1);
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("kill9_during_deploys_never_tears: seed {seed}");
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };

    for round in 0..5 {
        let mut esb = Esb::start(&conf);
        let mgmt = Mgmt::of(&conf);
        if round > 0 {
            // Files on disk are broken, but k is a pushed unit: what serves is its last
            // acknowledged content from state_dir, whole.
            let hash = unit_attr(&mgmt, "k", "Hash");
            let hash = hash.as_str().expect("unit k is active");
            let tag = by_hash(hash).unwrap_or_else(|| {
                panic!("round {round}: active hash {hash} is none of the complete versions")
            });
            assert_eq!(unit_attr(&mgmt, "k", "Origin"), "pushed");
            assert_eq!(get(&conf, "/k/149"), (200, format!("big-{tag}-149")));
            assert_eq!(get(&conf, "/k/0"), (200, format!("big-{tag}-0")));
        }

        let deployed = Arc::new(AtomicU64::new(0));
        let deployer = {
            let (mgmt, deployed) = (mgmt.clone(), deployed.clone());
            let texts = [versions[1].1.clone(), versions[2].1.clone()];
            std::thread::spawn(move || {
                for i in 0.. {
                    let req = json!({"type": "exec", "mbean": MANAGER, "operation": "deploy",
                        "arguments": ["k", texts[i % 2]]});
                    match mgmt.control("POST", "/jolokia").json(&req).try_send() {
                        Ok(r) if r.status == 200 => {
                            let v = r.json();
                            // The restored revision may already hold this text: unchanged.
                            let outcome = v["value"]["outcome"].as_str();
                            assert!(
                                matches!(outcome, Some("activated" | "unchanged")),
                                "{:#}",
                                v["value"]
                            );
                            deployed.fetch_add(1, SeqCst);
                        }
                        _ => return,
                    }
                }
            })
        };
        wait_until("a first deploy to complete", WAIT, || {
            deployed.load(SeqCst) >= 1
        });
        std::thread::sleep(Duration::from_millis(random(300)));
        esb.signal(libc::SIGKILL);
        esb.wait(WAIT);
        deployer.join().expect("deployer thread");
        if round == 0 {
            write(&conf.unit_dir("k").join("unit.toml"), BROKEN);
        }

        // The persisted state is whole: the manifest names a complete copy of one version.
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(conf.state_dir().join("deployments.json")).expect("manifest exists"),
        )
        .expect("manifest parses");
        let k = &manifest["units"]["k"];
        let current = k["current"].as_u64().expect("k has a current revision");
        let entry = k["history"]
            .as_array()
            .and_then(|h| h.iter().find(|e| e["number"] == current))
            .unwrap_or_else(|| panic!("round {round}: current {current} not in {k:#}"));
        let hash = entry["hash"].as_str().expect("entry names a hash");
        let tag = by_hash(hash)
            .unwrap_or_else(|| panic!("round {round}: {entry} is no complete version"));
        let copy_dir = conf
            .state_dir()
            .join("revisions/k")
            .join(current.to_string());
        let copy = std::fs::read_to_string(copy_dir.join("unit.toml"))
            .expect("the copy the manifest names exists");
        let (_, text) = versions.iter().find(|(t, _)| *t == tag).expect("tag");
        assert_eq!(&copy, text, "round {round}: the revision copy is torn");
        deployments::UnitSources::read_dir(&copy_dir).expect("the copy reads back");
    }
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let hash = unit_attr(&mgmt, "k", "Hash");
    assert!(by_hash(hash.as_str().unwrap_or("")).is_some(), "{hash}");
}

#[test]
fn hundred_reloads_never_duplicate_a_task() {
    let backend = Backend::fixed(200, "tick")
        .delay(Duration::from_millis(30))
        .start();
    let url = backend.url();
    let unit = move |n: usize| {
        format!(
            r#"version = "{n}"

[[task]]
name = "tick"
every = "50ms"
sequence = "tick"

[[sequence]]
name = "tick"
steps = [{{ log = "tick of {n}" }}, {{ call = {{ endpoint = "backend" }} }}]

[[endpoint]]
name = "backend"
addresses = ["{url}"]
"#
        )
    };
    let conf = conf().unit("t", &unit(0));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    wait_until("the task to call the backend", WAIT, || backend.hits() >= 2);

    for n in 1..=100 {
        // Reload while a task run is under way (its call takes 30 ms of every 50).
        let seen = backend.hits();
        wait_until("the task to run again", WAIT, || backend.hits() > seen);
        let o = expect_outcome(
            manager(&mgmt, "deploy", json!(["t", unit(n % 2 + 1)])),
            "activated",
        );
        assert_eq!(o["revision"], n as u64 + 1, "{o:#}");
        assert!(
            backend.max_in_flight() <= 1,
            "after reload {n}: two task runs called the backend at once"
        );
    }
    let tasks = bean(&mgmt, &unit_bean("t")).expect("unit t")["Tasks"].clone();
    assert_eq!(tasks, json!(["tick"]));

    // Exactly one copy keeps firing: one call per 50 ms period at most.
    let start_hits = backend.hits();
    let started = Instant::now();
    wait_until("five more task calls", WAIT, || {
        backend.hits() >= start_hits + 5
    });
    let hits = backend.hits() - start_hits;
    let elapsed = started.elapsed();
    let max = elapsed.as_millis() as u64 / 50 + 2;
    assert!(
        hits <= max,
        "{hits} task calls in {elapsed:?}: expected one per 50 ms period (at most {max})"
    );
    assert_eq!(
        backend.max_in_flight(),
        1,
        "the backend saw two task calls at the same time"
    );
    let runs = mgmt.read("esb:type=Task,unit=t,name=tick", "Runs");
    assert!(runs.as_u64().unwrap_or(0) >= 1, "Runs: {runs}");
}

/// Threads of process `pid` that belong to the file watcher (notify's, named `notify-rs ...`).
fn watcher_threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("notify-rs"))
        .count()
}

#[test]
fn hot_deploy_turned_on_at_runtime_starts_watching_and_no_watcher_runs_before() {
    let conf = conf().unit("h", &answering("/h", "h-v1"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(mgmt.read(MANAGER, "HotDeploy"), false);
    assert_eq!(
        watcher_threads(esb.pid()),
        0,
        "with --no-watch no file watcher runs"
    );
    mgmt.exec_ok(MANAGER, "setHotDeploy", json!([true]));
    assert!(
        watcher_threads(esb.pid()) > 0,
        "hot deploy on: a watcher runs"
    );
    write(
        &conf.unit_dir("h").join("unit.toml"),
        &answering("/h", "h-v2"),
    );
    wait_body(&conf, "/h", "h-v2");
    assert_eq!(revision(&mgmt, "h"), 2);
    // Off again: edits wait for a reload; the watcher stays for the next time it is on,
    // sees the edit and says it leaves it.
    mgmt.exec_ok(MANAGER, "setHotDeploy", json!([false]));
    write(
        &conf.unit_dir("h").join("unit.toml"),
        &answering("/h", "h-v3"),
    );
    wait_until("the watcher to leave the edit for a reload", WAIT, || {
        esb.log()
            .contains("hot deploy is off: changed units are not deployed")
    });
    assert_eq!(get(&conf, "/h"), (200, "h-v2".into()));
}

#[test]
fn sighup_reloads_changed_units() {
    let conf = conf()
        .unit("s1", &answering("/s1", "s1-v1"))
        .unit("s2", &answering("/s2", "s2-v1"))
        .unit("s3", &answering("/s3", "s3-v1"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(mgmt.read(MANAGER, "HotDeploy"), false);

    write(
        &conf.unit_dir("s1").join("unit.toml"),
        &answering("/s1", "s1-v2"),
    );
    std::fs::remove_dir_all(conf.unit_dir("s3")).expect("remove s3");
    let conf = conf.unit("s4", &answering("/s4", "s4-v1"));
    assert_eq!(
        get(&conf, "/s1"),
        (200, "s1-v1".into()),
        "with --no-watch nothing changes before SIGHUP"
    );
    assert_eq!(unit_attr(&mgmt, "s1", "ModifiedOnDisk"), true);

    esb.sighup();
    wait_body(&conf, "/s1", "s1-v2");
    assert_eq!(revision(&mgmt, "s1"), 2);
    assert_eq!(
        revision(&mgmt, "s2"),
        1,
        "an unchanged unit is not reloaded"
    );
    wait_body(&conf, "/s4", "s4-v1");
    wait_status(&conf, "/s3", 404);
    assert!(bean(&mgmt, &unit_bean("s3")).is_none());
    assert_eq!(get(&conf, "/s2"), (200, "s2-v1".into()));
}

#[test]
fn unload_clears_operator_state_and_reload_keeps_it() {
    let backend = Backend::fixed(200, "from-backend").start();
    let unit = |tag: &str, timeout: &str| {
        format!(
            r#"version = "{tag}"

[[proxy]]
name = "paused"
path = "/o/paused"
sequence = "answer"

[[proxy]]
name = "stopped"
path = "/o/stopped"
sequence = "answer"

[[proxy]]
name = "backend"
path = "/o/backend"
endpoint = "ep"

[[sequence]]
name = "answer"
steps = [{{ respond = {{ status = 200, body = "{tag}" }} }}]

[[endpoint]]
name = "ep"
addresses = ["{url}"]
timeout = "{timeout}"
"#,
            url = backend.url()
        )
    };
    let conf = conf().unit("o", &unit("v1", "5s"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let proxy = |p: &str| format!("esb:type=Proxy,unit=o,name={p}");
    let endpoint = "esb:type=Endpoint,unit=o,name=ep";
    let check_operator_state = |when: &str| {
        let r = client().get(&conf.url("web", "/o/paused"));
        assert_eq!(r.status, 503, "{when}: paused proxy answers 503");
        assert!(r.header("retry-after").is_some(), "{when}: Retry-After");
        assert_eq!(get(&conf, "/o/stopped").0, 404, "{when}: stopped proxy");
        assert_eq!(
            get(&conf, "/o/backend").0,
            503,
            "{when}: endpoint maintenance"
        );
        assert_eq!(mgmt.read(&proxy("paused"), "State"), "Paused", "{when}");
        assert_eq!(mgmt.read(&proxy("stopped"), "State"), "Stopped", "{when}");
        assert_eq!(mgmt.read(endpoint, "State"), "Maintenance", "{when}");
    };

    assert_eq!(get(&conf, "/o/backend"), (200, "from-backend".into()));
    mgmt.exec_ok(&proxy("paused"), "pause", json!([]));
    mgmt.exec_ok(&proxy("stopped"), "stop", json!([]));
    mgmt.exec_ok(endpoint, "pause", json!([]));
    check_operator_state("before the reload");

    // The endpoint's definition changes too (a new runtime object): maintenance survives.
    write(&conf.unit_dir("o").join("unit.toml"), &unit("v2", "7s"));
    let o = expect_outcome(manager(&mgmt, "reload", json!(["o"])), "activated");
    assert_eq!(o["revision"], 2);
    check_operator_state("after the reload");
    assert_eq!(backend.hits(), 1);

    expect_outcome(manager(&mgmt, "unload", json!(["o"])), "unloaded");
    wait_status(&conf, "/o/paused", 404);
    expect_outcome(manager(&mgmt, "load", json!(["o"])), "activated");
    assert_eq!(get(&conf, "/o/paused"), (200, "v2".into()));
    assert_eq!(get(&conf, "/o/stopped"), (200, "v2".into()));
    assert_eq!(get(&conf, "/o/backend"), (200, "from-backend".into()));
    assert_eq!(mgmt.read(&proxy("paused"), "State"), "Active");
    assert_eq!(mgmt.read(&proxy("stopped"), "State"), "Active");
    assert_eq!(mgmt.read(endpoint, "State"), "Active");
}

/// Renames the directory of a unit serving `/moved` while clients keep calling it; the
/// unit must end up loaded under its new name, with no failed request on the way.
fn renamed_directory_moves_the_unit(opts: EsbOptions, after_rename: impl FnOnce(&Esb)) {
    let conf = conf()
        .unit("zz-old", &answering("/moved", "moved"))
        .unit("other", &answering("/other", "other"));
    let esb = Esb::start_with(&conf, opts);
    let mgmt = Mgmt::of(&conf);
    wait_body(&conf, "/moved", "moved");
    let load = Load::start(4, addr(&conf), &["/moved"], |_: &str, r: &RawResponse| {
        format!("{} {}", r.status, r.text())
    });
    load.wait_more(50, WAIT);

    std::fs::rename(conf.unit_dir("zz-old"), conf.unit_dir("aa-new")).expect("mv");
    after_rename(&esb);
    let state = RefCell::new(None);
    wait_for(
        "unit aa-new to be active and zz-old to be gone",
        WAIT,
        || {
            let new = bean(&mgmt, &unit_bean("aa-new"));
            let old = bean(&mgmt, &unit_bean("zz-old"));
            let done = new.as_ref().is_some_and(|b| b["State"] == "Active") && old.is_none();
            *state.borrow_mut() = Some((new, old));
            done.then_some(())
        },
        || {
            format!(
                "(aa-new, zz-old) beans: {:#?}\nrejections of aa-new: {:#}",
                state.borrow(),
                json!(unit_events(&mgmt, "unit_rejected", "aa-new", 0))
            )
        },
    );
    load.wait_more(50, WAIT);
    let report = load.stop();
    assert_clean("clients of the renamed unit", &report, 4);
    assert_eq!(
        report.classes.keys().collect::<Vec<_>>(),
        ["200 moved"],
        "{:?}",
        report.classes
    );
    assert_eq!(get(&conf, "/other"), (200, "other".into()));
}

#[test]
fn hot_deploy_renamed_directory_moves_the_unit() {
    renamed_directory_moves_the_unit(watched(), |_| {});
}

#[test]
fn sighup_renamed_directory_moves_the_unit() {
    renamed_directory_moves_the_unit(EsbOptions::default(), |esb| esb.sighup());
}

/// A revision copy in state_dir that lost its files (a crash during cleanup, a stray
/// `rm`) is never served: the unit whose disk files are broken too is Failed, the other
/// units serve, and numbering continues past it.
#[test]
fn damaged_revision_copy_is_never_served() {
    let v1 = answering("/lg", "lg-v1");
    let v2 = answering("/lg", "lg-v2");
    let conf = conf()
        .unit("lg", &v1)
        .unit("other", &answering("/other", "other"));
    let stop = |mut esb: Esb| {
        esb.sigterm();
        assert!(esb.wait(WAIT).success(), "esb did not stop cleanly");
    };
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    write(&conf.unit_dir("lg").join("unit.toml"), &v2);
    expect_outcome(manager(&mgmt, "reload", json!(["lg"])), "activated");
    stop(esb);
    // Revision 2's copy loses its file but keeps its completion marker.
    let copy = conf.state_dir().join("revisions/lg/2");
    std::fs::remove_file(copy.join("unit.toml")).expect("remove the copy's file");
    write(&conf.unit_dir("lg").join("unit.toml"), BROKEN);

    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let state = bean(&mgmt, &unit_bean("lg")).expect("unit lg");
    assert_eq!(state["State"], "Failed", "{state:#}\n{}", esb.log());
    assert_eq!(get(&conf, "/lg").0, 404);
    assert_eq!(get(&conf, "/other"), (200, "other".into()));
    assert!(
        esb.log().contains("damaged deployment state set aside"),
        "{}",
        esb.log()
    );
    write(&conf.unit_dir("lg").join("unit.toml"), &v1);
    let o = expect_outcome(manager(&mgmt, "reload", json!(["lg"])), "activated");
    assert_eq!(o["revision"], 3, "numbering continues: {o:#}");
}

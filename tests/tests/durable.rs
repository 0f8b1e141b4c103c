//! Durable deployment state end to end: what esb acknowledged is still there after a kill -9,
//! a clean restart, `reload --all` and SIGHUP — pushed units, history, rollbacks, batches —
//! and the hot deployer acts only on real, settled changes of disk units.

use e2e::load::{Load, RawResponse};
use e2e::mgmt_client::Mgmt;
use e2e::scenario::*;
use e2e::uterm::Uterm;
use e2e::{wait_until, Backend, Esb, TempConf};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

fn uterm(conf: &TempConf, mgmt: &Mgmt) -> Uterm {
    Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
}

fn restart(conf: &TempConf, mut esb: Esb, kill: bool) -> (Esb, Mgmt) {
    if kill {
        esb.signal(libc::SIGKILL);
        esb.wait(WAIT);
    } else {
        esb.sigterm();
        assert!(esb.wait(WAIT).success(), "esb did not stop cleanly");
    }
    drop(esb);
    let esb = Esb::start(conf);
    let mgmt = Mgmt::of(conf);
    (esb, mgmt)
}

fn history(mgmt: &Mgmt, unit: &str) -> Vec<Value> {
    manager(mgmt, "history", json!([unit]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn revisions(h: &[Value]) -> Vec<u64> {
    h.iter().filter_map(|e| e["revision"].as_u64()).collect()
}

#[test]
fn pushed_unit_survives_kill9_clean_restart_reload_all_and_sighup() {
    let conf = conf().unit("disk", &answering("/disk", "disk"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let o = expect_outcome(
        manager(&mgmt, "deploy", json!(["cc", answering("/cc", "cc-1")])),
        "activated",
    );
    assert_eq!(o["revision"], 1);
    assert_eq!(unit_attr(&mgmt, "cc", "Origin"), "pushed");
    assert_eq!(unit_attr(&mgmt, "cc", "ModifiedOnDisk"), false);
    // A pushed revision of a disk unit takes it over until it is deployed from disk again.
    expect_outcome(
        manager(
            &mgmt,
            "deploy",
            json!(["disk", answering("/disk", "pushed")]),
        ),
        "activated",
    );

    let all = manager(&mgmt, "reloadAll", json!([]));
    assert!(
        !all.to_string().contains("unloaded"),
        "reload --all leaves pushed units alone: {all:#}"
    );
    esb.sighup();
    wait_until("SIGHUP handled", WAIT, || {
        esb.log().contains("SIGHUP") || esb.log().contains("signal")
    });
    assert_eq!(get(&conf, "/cc"), (200, "cc-1".into()));
    let o = expect_outcome(manager(&mgmt, "reload", json!(["cc"])), "unchanged");
    assert_eq!(
        o["revision"], 1,
        "a reload of a pushed unit changes nothing: {o:#}"
    );

    let mut esb = esb;
    for kill in [true, false] {
        let (next, mgmt) = restart(&conf, esb, kill);
        esb = next;
        assert_eq!(get(&conf, "/cc"), (200, "cc-1".into()), "{}", esb.log());
        assert_eq!(get(&conf, "/disk"), (200, "pushed".into()), "{}", esb.log());
        assert_eq!(unit_attr(&mgmt, "cc", "Origin"), "pushed");
        assert_eq!(unit_attr(&mgmt, "cc", "Revision"), 1);
    }
    // The explicit way back to disk.
    let mgmt = Mgmt::of(&conf);
    let o = expect_outcome(
        manager(&mgmt, "deployFromDisk", json!(["disk"])),
        "activated",
    );
    assert_eq!(o["revision"], 3, "{o:#}");
    assert_eq!(get(&conf, "/disk"), (200, "disk".into()));
    assert_eq!(unit_attr(&mgmt, "disk", "Origin"), "disk");
    // Only unload removes a pushed unit, and it stays gone after a restart.
    expect_outcome(manager(&mgmt, "unload", json!(["cc"])), "unloaded");
    let (_esb, _mgmt) = restart(&conf, esb, false);
    assert_eq!(get(&conf, "/cc").0, 404);
}

#[test]
fn pushed_content_carries_includes_and_show_source_reads_it_back() {
    let conf = conf();
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let local = tempfile::tempdir().unwrap();
    let main = "version = \"inc-1\"\ninclude = [\"more/routes.toml\"]\n";
    let routes = "[[proxy]]\nname = \"p\"\npath = \"/inc\"\nsequence = \"s\"\n\n[[sequence]]\nname = \"s\"\nsteps = [{ respond = { status = 200, body = \"included\" } }]\n";
    std::fs::create_dir_all(local.path().join("more")).unwrap();
    std::fs::write(local.path().join("unit.toml"), main).unwrap();
    std::fs::write(local.path().join("more/routes.toml"), routes).unwrap();
    std::fs::write(local.path().join("NOTES.md"), "not part of the unit").unwrap();

    let file = local.path().join("unit.toml");
    uterm(&conf, &mgmt)
        .c(&format!("deploy inc --file {}", file.display()))
        .run()
        .expect(0)
        .stdout_has(&["inc", "revision 1"]);
    assert_eq!(get(&conf, "/inc"), (200, "included".into()));
    // The whole directory: the stray file is not part of the revision, so nothing changed.
    uterm(&conf, &mgmt)
        .c(&format!("deploy inc --dir {}", local.path().display()))
        .run()
        .expect(0)
        .stdout_has(&["unchanged"]);

    // show source returns the exact files, and --out saves them.
    let r = uterm(&conf, &mgmt).c("show source inc").run().expect(0);
    r.stdout_has(&["inc revision 1", "── more/routes.toml", "included"]);
    let out = local.path().join("saved");
    uterm(&conf, &mgmt)
        .c(&format!("show source inc --rev 1 --out {}", out.display()))
        .run()
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(out.join("unit.toml")).unwrap(),
        main
    );
    assert_eq!(
        std::fs::read_to_string(out.join("more/routes.toml")).unwrap(),
        routes
    );
    assert!(!out.join("NOTES.md").exists());
    uterm(&conf, &mgmt)
        .c("show source inc --rev 7")
        .run()
        .expect(1)
        .stderr_has(&["revision 7", "not kept"]);
}

#[test]
fn history_and_rollback_survive_restarts() {
    let conf = conf().unit("h", &answering("/h", "v1"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    for v in ["v2", "v3"] {
        write(&conf.unit_dir("h").join("unit.toml"), &answering("/h", v));
        expect_outcome(manager(&mgmt, "reload", json!(["h"])), "activated");
    }
    let (esb, mgmt) = restart(&conf, esb, false);
    assert_eq!(revisions(&history(&mgmt, "h")), vec![3, 2, 1]);
    let o = expect_outcome(manager(&mgmt, "rollback", json!(["h"])), "activated");
    assert_eq!(o["revision"], 2);
    assert_eq!(get(&conf, "/h"), (200, "v2".into()));

    // A rollback survives a kill -9: the files on disk did not change since.
    let (esb, mgmt) = restart(&conf, esb, true);
    assert_eq!(get(&conf, "/h"), (200, "v2".into()), "{}", esb.log());
    assert_eq!(unit_attr(&mgmt, "h", "ModifiedOnDisk"), true);
    let o = expect_outcome(manager(&mgmt, "rollbackTo", json!(["h", 1])), "activated");
    assert_eq!(o["revision"], 1);
    // A new deploy continues the numbering.
    write(
        &conf.unit_dir("h").join("unit.toml"),
        &answering("/h", "v4"),
    );
    let o = expect_outcome(manager(&mgmt, "reload", json!(["h"])), "activated");
    assert_eq!(o["revision"], 4, "{o:#}");
    let (_esb, mgmt) = restart(&conf, esb, false);
    assert_eq!(revisions(&history(&mgmt, "h")), vec![4, 3, 2, 1]);
}

#[test]
fn identical_content_is_unchanged_and_history_holds_one_row_per_content() {
    let conf = conf().unit("d", &answering("/d", "a"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let file = conf.unit_dir("d").join("unit.toml");
    // A file no include names is not part of the unit.
    write(&conf.unit_dir("d").join("README.md"), "notes");
    expect_outcome(manager(&mgmt, "reload", json!(["d"])), "unchanged");
    write(&file, &answering("/d", "b"));
    expect_outcome(manager(&mgmt, "reload", json!(["d"])), "activated");
    write(&file, &answering("/d", "a"));
    let o = expect_outcome(manager(&mgmt, "reload", json!(["d"])), "activated");
    assert_eq!(o["revision"], 3);
    expect_outcome(manager(&mgmt, "reload", json!(["d"])), "unchanged");
    let h = history(&mgmt, "d");
    assert_eq!(
        revisions(&h),
        vec![3, 2],
        "revision 1 had revision 3's content: {h:?}"
    );
    let hashes: Vec<&Value> = h.iter().map(|e| &e["hash"]).collect();
    assert_ne!(hashes[0], hashes[1]);
}

#[test]
fn touch_after_rollback_changes_nothing() {
    let conf = conf().unit("t", &answering("/t", "v1"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    let file = conf.unit_dir("t").join("unit.toml");
    write(&file, &answering("/t", "v2"));
    wait_body(&conf, "/t", "v2");
    expect_outcome(manager(&mgmt, "rollback", json!(["t"])), "activated");
    assert_eq!(get(&conf, "/t"), (200, "v1".into()));
    std::fs::File::options()
        .append(true)
        .open(&file)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)))
        .expect("touch");
    // Barrier: a later real change in another unit has been deployed.
    let marker = conf.unit_dir("marker");
    std::fs::create_dir(&marker).unwrap();
    write(&marker.join("unit.toml"), &answering("/marker", "m"));
    wait_body(&conf, "/marker", "m");
    assert_eq!(get(&conf, "/t"), (200, "v1".into()));
    assert_eq!(unit_attr(&mgmt, "t", "Revision"), 1);
    assert_eq!(unit_attr(&mgmt, "t", "ModifiedOnDisk"), true);
}

#[test]
fn slow_writer_never_serves_an_empty_unit_under_load() {
    let conf = conf().unit("s", &answering("/s", "v1"));
    let _esb = Esb::start_with(&conf, watched());
    let mgmt = Mgmt::of(&conf);
    let classify = |_: &str, r: &RawResponse| format!("{} {}", r.status, r.text());
    let load = Load::start(8, addr(&conf), &["/s"], classify);
    load.wait_more(200, WAIT);
    let file = conf.unit_dir("s").join("unit.toml");
    // `> file` then a writer that takes 1.5 s to produce the content.
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    write(&file, &answering("/s", "v2"));
    wait_body(&conf, "/s", "v2");
    load.wait_more(200, WAIT);
    let report = load.stop();
    assert_clean("slow writer", &report, 8);
    let classes: Vec<&String> = report.classes.keys().collect();
    assert!(
        classes.iter().all(|c| c.starts_with("200 ")),
        "only 200s while the file was empty: {classes:?}"
    );
    assert_eq!(unit_attr(&mgmt, "s", "Revision"), 2);
}

#[test]
fn batch_commits_in_one_step_across_kill9() {
    let units = ["cs-a", "cs-b", "cs-c"];
    let mut conf = conf();
    for u in units {
        conf = conf.unit(u, &answering(&format!("/{u}"), &format!("{u}-0")));
    }
    let mut esb = Esb::start(&conf);
    for round in 0..4 {
        let mgmt = Mgmt::of(&conf);
        let stop = Arc::new(AtomicBool::new(false));
        let batcher = {
            let (mgmt, stop, dirs) = (mgmt.clone(), stop.clone(), units.map(|u| conf.unit_dir(u)));
            std::thread::spawn(move || {
                for n in (round * 1000 + 1).. {
                    if stop.load(SeqCst) {
                        return;
                    }
                    for (u, dir) in units.iter().zip(&dirs) {
                        let text = answering(&format!("/{u}"), &format!("{u}-{n}"));
                        let _ = std::fs::write(dir.join("unit.toml"), text);
                    }
                    let req = json!({"type": "exec", "mbean": MANAGER, "operation": "batch",
                        "arguments": [units]});
                    if mgmt
                        .control("POST", "/jolokia")
                        .json(&req)
                        .try_send()
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200 + 150 * round as u64));
        esb.signal(libc::SIGKILL);
        esb.wait(WAIT);
        stop.store(true, SeqCst);
        batcher.join().unwrap();
        for u in units {
            write(&conf.unit_dir(u).join("unit.toml"), BROKEN);
        }
        esb = Esb::start(&conf);
        let mgmt = Mgmt::of(&conf);
        let tags: Vec<String> = units
            .iter()
            .map(|u| {
                let (status, body) = get(&conf, &format!("/{u}"));
                assert_eq!(
                    status, 200,
                    "round {round}: {u} serves its last good revision"
                );
                body.rsplit('-').next().unwrap_or("").to_owned()
            })
            .collect();
        assert!(
            tags.iter().all(|t| *t == tags[0]),
            "round {round}: the three units are at different batches: {tags:?}"
        );
        let revs: Vec<Value> = units
            .iter()
            .map(|u| unit_attr(&mgmt, u, "Revision"))
            .collect();
        assert!(
            revs.iter().all(|r| *r == revs[0]),
            "round {round}: {revs:?}"
        );
        for u in units {
            write(
                &conf.unit_dir(u).join("unit.toml"),
                &answering(&format!("/{u}"), "x"),
            );
        }
    }
}

#[test]
fn a_fixed_edit_clears_the_rejection_note_and_one_duration_is_reported() {
    let conf = conf().unit("n", &answering("/n", "v1"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let file = conf.unit_dir("n").join("unit.toml");
    write(&file, BROKEN);
    expect_outcome(manager(&mgmt, "reload", json!(["n"])), "rejected");
    assert_ne!(unit_attr(&mgmt, "n", "LastErrors"), json!([]));
    write(&file, &answering("/n", "v1"));
    expect_outcome(manager(&mgmt, "reload", json!(["n"])), "unchanged");
    assert_eq!(unit_attr(&mgmt, "n", "LastErrors"), json!([]));

    write(&file, &answering("/n", "v2"));
    let o = expect_outcome(manager(&mgmt, "reload", json!(["n"])), "activated");
    let took = o["duration_ms"].as_f64().unwrap();
    assert!(took > 0.0, "{o:#}");
    assert_eq!(unit_attr(&mgmt, "n", "DeployMillis").as_f64(), Some(took));
    let h = history(&mgmt, "n");
    assert_eq!(h[0]["deploy_ms"].as_f64(), Some(took), "{h:?}");
}

#[test]
fn a_task_runs_single_flight_across_reloads() {
    let backend = Backend::fixed(200, "ran")
        .delay(Duration::from_millis(400))
        .start();
    let url = backend.url();
    let unit = move |n: usize| {
        format!(
            "version = \"{n}\"\n\n[[task]]\nname = \"slow\"\nevery = \"100ms\"\nsequence = \"call\"\n\n[[sequence]]\nname = \"call\"\nsteps = [{{ call = {{ endpoint = \"be\" }} }}]\n\n[[endpoint]]\nname = \"be\"\naddresses = [\"{url}\"]\ntimeout = \"5s\"\n"
        )
    };
    let conf = conf().unit("t", &unit(0)).drain_timeout("5s");
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    wait_until("the task to call the backend", WAIT, || backend.hits() >= 1);
    for n in 1..=100 {
        write(&conf.unit_dir("t").join("unit.toml"), &unit(n));
        expect_outcome(manager(&mgmt, "reload", json!(["t"])), "activated");
    }
    let seen = backend.hits();
    wait_until("the task to keep running", WAIT, || {
        backend.hits() >= seen + 2
    });
    assert_eq!(backend.max_in_flight(), 1, "two runs overlapped");
    let task = mgmt.jolokia(&json!({"type": "read", "mbean": "esb:type=Task,unit=t,name=slow"}));
    assert_eq!(task["value"]["Failures"], 0, "a run was cut off: {task:#}");
}

//! Cluster mode end to end: a real etcd (one per test, on free loopback ports), real esb
//! nodes in one cluster, cluster operations over the management endpoint of any node, typed
//! with `deployments::protocol::cluster`. Leases are short so DOWN shows quickly.

use deployments::protocol::cluster::{ChangeResult, ClusterStatus, StoreState, SyncState, BEAN};
use e2e::etcd::Etcd;
use e2e::load::{Load, RawResponse};
use e2e::mgmt_client::Mgmt;
use e2e::scenario::{answering, assert_clean, get, hash_of, wait_body, wait_status, WAIT};
use e2e::{wait_for, wait_until, Esb, TempConf};
use serde_json::{json, Value};
use std::time::Duration;

const LEASE_S: u64 = 2;

struct Node {
    name: String,
    conf: TempConf,
    esb: Option<Esb>,
}

impl Node {
    fn new(etcd: &Etcd, cluster: &str, name: &str, extra_transport: bool) -> Node {
        let mut conf = TempConf::new().http("web");
        if extra_transport {
            conf = conf.http("extra");
        }
        let conf = conf.table(&etcd.cluster_table(cluster, name, LEASE_S));
        let mut n = Node {
            name: name.into(),
            conf,
            esb: None,
        };
        n.start();
        n
    }

    fn start(&mut self) {
        self.esb = Some(Esb::start(&self.conf));
    }

    fn kill9(&mut self) {
        if let Some(mut e) = self.esb.take() {
            e.signal(libc::SIGKILL);
            e.wait(Duration::from_secs(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut e) = self.esb.take() {
            e.sigterm();
            e.wait(Duration::from_secs(15));
        }
    }

    fn mgmt(&self) -> Mgmt {
        Mgmt::of(&self.conf)
    }

    fn log(&self) -> String {
        self.esb.as_ref().map(|e| e.log()).unwrap_or_default()
    }
}

fn nodes(etcd: &Etcd, cluster: &str, names: &[&str]) -> Vec<Node> {
    names
        .iter()
        .map(|n| Node::new(etcd, cluster, n, false))
        .collect()
}

/// The envelope of a cluster operation.
fn cluster_op(m: &Mgmt, op: &str, args: Value) -> Value {
    m.exec(BEAN, op, json!([args]))
}

fn deploy(m: &Mgmt, unit: &str, text: &str, wait_ms: u64) -> Result<ChangeResult, String> {
    let env = cluster_op(
        m,
        "deploy",
        json!({"unit": unit, "files": {"unit.toml": text}, "wait_ms": wait_ms}),
    );
    result(env)
}

/// A cluster operation on one unit with a wait.
fn unit_op(m: &Mgmt, op: &str, unit: &str, wait_ms: u64) -> Result<ChangeResult, String> {
    result(cluster_op(m, op, json!({"unit": unit, "wait_ms": wait_ms})))
}

fn result(env: Value) -> Result<ChangeResult, String> {
    if env["status"] == 200 {
        Ok(serde_json::from_value(env["value"].clone()).expect("a ChangeResult"))
    } else {
        Err(env["error"].as_str().unwrap_or_default().to_owned())
    }
}

fn status(m: &Mgmt) -> ClusterStatus {
    let v = m.exec_ok(BEAN, "status", json!([]));
    serde_json::from_value(v).expect("a ClusterStatus")
}

fn state_of(s: &ClusterStatus, node: &str, unit: &str) -> Option<SyncState> {
    let n = s.nodes.iter().find(|n| n.node == node)?;
    Some(n.units.get(unit)?.state)
}

fn wait_state(m: &Mgmt, node: &str, unit: &str, want: SyncState) -> ClusterStatus {
    let last = std::cell::RefCell::new(None);
    wait_for(
        &format!("{node}/{unit} to be {want:?}"),
        WAIT,
        || {
            let s = status(m);
            let ok = state_of(&s, node, unit) == Some(want);
            *last.borrow_mut() = Some(s.clone());
            ok.then_some(s)
        },
        || format!("{:#?}", last.borrow()),
    )
}

fn serves(n: &Node, path: &str, body: &str) {
    wait_body(&n.conf, path, body);
}

#[test]
fn three_nodes_converge_on_a_cluster_deploy() {
    let etcd = Etcd::start();
    let ns = nodes(&etcd, "conv", &["a", "b", "c"]);
    let text = answering("/shop", "v1");
    let r = deploy(&ns[0].mgmt(), "shop", &text, 10_000).expect("deploy");
    assert_eq!((r.revision, r.accepted_by.as_str()), (1, "a"));
    let w = r.wait.expect("waited");
    assert!(w.all_synced(), "{w:?}");
    assert_eq!(w.synced, ["a", "b", "c"]);
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop"), (200, "v1".into()), "{}", n.name);
        // Origin cluster, the cluster revision is the local one.
        let m = n.mgmt();
        assert_eq!(m.read("esb:type=Unit,name=shop", "Origin"), "cluster");
        assert_eq!(m.read("esb:type=Unit,name=shop", "Revision"), 1);
    }
    // Any node accepts the next one; the status shows every node SYNCED with the hash.
    let r = deploy(&ns[2].mgmt(), "shop", &answering("/shop", "v2"), 10_000).unwrap();
    assert_eq!((r.revision, r.accepted_by.as_str()), (2, "c"));
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop").1, "v2");
    }
    let s = status(&ns[1].mgmt());
    assert_eq!(s.store.state, StoreState::Up);
    assert_eq!(s.units.len(), 1);
    assert_eq!(s.units[0].hash, hash_of("shop", &answering("/shop", "v2")));
    assert_eq!(s.units[0].by, "c");
    for n in ["a", "b", "c"] {
        assert_eq!(state_of(&s, n, "shop"), Some(SyncState::Synced), "{s:#?}");
    }
    // Events of the accepting node name it; the others audit what they applied.
    let events = e2e::scenario::events(&ns[2].mgmt());
    assert!(
        events.iter().any(|e| e["type"] == "cluster_change"
            && e["accepted_by"] == "c"
            && e["revision"] == 2),
        "{events:#?}"
    );
    let audit = ns[0].mgmt().audit();
    assert!(
        audit.iter().any(|r| r["by"] == "cluster"
            && r["what"]["accepted_by"] == "c"
            && r["what"]["cluster_revision"] == 2),
        "{audit:#?}"
    );
    // The accepting node audits the request without the unit's content (a digest).
    let audit = ns[2].mgmt().audit();
    let rec = audit
        .iter()
        .find(|r| r["what"]["mbean"] == BEAN && r["what"]["operation"] == "deploy")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    let files = &rec["what"]["arguments"][0]["files"]["unit.toml"];
    assert!(files["sha256"].is_string(), "{rec:#}");
    assert!(!rec.to_string().contains("respond"), "{rec:#}");
    // Metrics: the applied store revision and the unit's sync state.
    let metrics = ns[1].mgmt().control("GET", "/metrics").send().text();
    assert!(
        metrics.contains("esb_cluster_applied_revision "),
        "{metrics}"
    );
    assert!(
        metrics.contains("esb_cluster_unit_sync{unit=\"shop\",state=\"synced\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("esb_cluster_store_up 1"), "{metrics}");
}

#[test]
fn invalid_content_never_reaches_the_store_and_rollback_rolls_forward() {
    let etcd = Etcd::start();
    let ns = nodes(&etcd, "valid", &["a", "b"]);
    let m = ns[0].mgmt();
    let e = deploy(&m, "shop", e2e::scenario::BROKEN, 5_000).unwrap_err();
    assert!(
        e.contains("rejected shop") && e.contains("nothing changed"),
        "{e}"
    );
    assert!(etcd.keys("/esb/valid/units/").is_empty());
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    deploy(&m, "shop", &answering("/shop", "v2"), 10_000).unwrap();
    let r = unit_op(&ns[1].mgmt(), "rollback", "shop", 10_000).unwrap();
    assert_eq!(r.revision, 3, "a rollback is a new revision");
    assert_eq!(
        r.hash.as_deref(),
        Some(hash_of("shop", &answering("/shop", "v1")).as_str())
    );
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop").1, "v1");
    }
    let r = result(cluster_op(
        &m,
        "rollback",
        json!({"unit": "shop", "to": 2, "wait_ms": 10_000}),
    ))
    .unwrap();
    assert_eq!(r.revision, 4);
    assert_eq!(get(&ns[1].conf, "/shop").1, "v2");
    let e = result(cluster_op(
        &m,
        "rollback",
        json!({"unit": "shop", "to": 99}),
    ))
    .unwrap_err();
    assert!(
        e.contains("revision 99 of cluster unit \"shop\" is not kept"),
        "{e}"
    );
    // Local changes of a cluster unit are refused: they go through the store.
    let o = e2e::scenario::manager(&m, "deploy", json!(["shop", answering("/shop", "local")]));
    let o = e2e::scenario::expect_outcome(o, "rejected");
    assert!(o.to_string().contains("is a cluster unit"), "{o}");
    let o = e2e::scenario::manager(&m, "unload", json!(["shop"]));
    e2e::scenario::expect_outcome(o, "rejected");
    assert_eq!(get(&ns[0].conf, "/shop").1, "v2");
    // Unload on every node.
    let r = unit_op(&m, "unload", "shop", 10_000).unwrap();
    assert!(r.wait.unwrap().all_synced());
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop").0, 404);
    }
    let e = result(cluster_op(&m, "unload", json!({"unit": "shop"}))).unwrap_err();
    assert!(e.contains("is not a cluster unit"), "{e}");
}

#[test]
fn a_node_that_rejects_shows_failed_while_the_others_serve() {
    let etcd = Etcd::start();
    let a = Node::new(&etcd, "rej", "a", true);
    let b = Node::new(&etcd, "rej", "b", true);
    let c = Node::new(&etcd, "rej", "c", false);
    let text = "[[proxy]]\nname = \"p\"\npath = \"/x\"\ntransports = [\"extra\"]\nsequence = \"s\"\n\n[[sequence]]\nname = \"s\"\nsteps = [{ respond = { status = 200, body = \"x\" } }]\n";
    let r = deploy(&a.mgmt(), "xunit", text, 10_000).unwrap();
    let w = r.wait.unwrap();
    assert_eq!(w.synced, ["a", "b"]);
    assert_eq!(w.failed.len(), 1, "{w:?}");
    assert_eq!(w.failed[0].node, "c");
    assert!(w.failed[0].error.contains("extra"), "{w:?}");
    let s = wait_state(&a.mgmt(), "c", "xunit", SyncState::Failed);
    let err = s.nodes.iter().find(|n| n.node == "c").unwrap().units["xunit"]
        .error
        .clone()
        .unwrap();
    assert!(err.contains("transport"), "{err}");
    assert_eq!(state_of(&s, "a", "xunit"), Some(SyncState::Synced));
    assert_eq!(
        e2e::Client::new().get(&a.conf.url("extra", "/x")).status,
        200
    );
    drop((b, c));
}

#[test]
fn a_killed_node_catches_up_when_it_restarts_even_after_compaction() {
    let etcd = Etcd::start();
    let mut ns = nodes(&etcd, "catch", &["a", "b", "c"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    ns[2].kill9();
    deploy(&m, "shop", &answering("/shop", "v2"), 0).unwrap();
    deploy(&m, "shop", &answering("/shop", "v3"), 0).unwrap();
    deploy(&m, "other", &answering("/other", "o1"), 0).unwrap();
    ns[2].start();
    serves(&ns[2], "/shop", "v3");
    serves(&ns[2], "/other", "o1");
    wait_state(&m, "c", "shop", SyncState::Synced);
    // Down again; two more revisions, then the store forgets the history in between.
    ns[2].kill9();
    deploy(&m, "shop", &answering("/shop", "v4"), 0).unwrap();
    result(cluster_op(&m, "unload", json!({"unit": "other"}))).unwrap();
    etcd.compact();
    ns[2].start();
    serves(&ns[2], "/shop", "v4");
    wait_status(&ns[2].conf, "/other", 404);
    let log = ns[2].log();
    assert!(log.contains("full resync"), "{log}");
}

#[test]
fn store_outage_nodes_serve_refuse_clearly_and_recover() {
    let etcd = Etcd::start();
    let mut ns = nodes(&etcd, "outage", &["a", "b"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    etcd.kill();
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop"), (200, "v1".into()));
    }
    let e = deploy(&m, "shop", &answering("/shop", "v2"), 0).unwrap_err();
    assert!(
        e.contains("cluster store unreachable") && e.ends_with("nothing changed"),
        "{e}"
    );
    wait_until("the store shown down", WAIT, || {
        status(&m).store.state == StoreState::Down
    });
    // A node restarted meanwhile starts from its local copy.
    ns[1].stop();
    ns[1].start();
    assert_eq!(get(&ns[1].conf, "/shop"), (200, "v1".into()));
    etcd.boot();
    wait_until("the store shown up again", WAIT, || {
        status(&m).store.state == StoreState::Up
    });
    let r = deploy(&m, "shop", &answering("/shop", "v2"), 10_000).unwrap();
    assert!(r.wait.unwrap().all_synced());
    assert_eq!(get(&ns[1].conf, "/shop").1, "v2");
}

#[test]
fn of_two_concurrent_deploys_one_wins_and_the_other_is_told_to_retry() {
    let etcd = Etcd::start();
    let ns = nodes(&etcd, "cas", &["a", "b"]);
    let (ma, mb) = (ns[0].mgmt(), ns[1].mgmt());
    deploy(&ma, "shop", &answering("/shop", "v0"), 0).unwrap();
    let mut conflicts = 0;
    let mut wins = 1;
    for round in 0..30 {
        if conflicts > 0 {
            break;
        }
        let barrier = std::sync::Barrier::new(2);
        let go = |m: &Mgmt, body: String| {
            barrier.wait();
            deploy(m, "shop", &answering("/shop", &body), 0)
        };
        let (ma, mb, go) = (&ma, &mb, &go);
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(move || go(ma, format!("a{round}")));
            let tb = s.spawn(move || go(mb, format!("b{round}")));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        for r in [ra, rb] {
            match r {
                Ok(_) => wins += 1,
                Err(e) => {
                    assert!(e.ends_with(": concurrent deploy of shop, retry"), "{e}");
                    conflicts += 1;
                }
            }
        }
    }
    assert!(conflicts > 0, "no two deploys ever raced in 30 rounds");
    // Every win is one revision: numbers are never reused or skipped.
    let s = status(&ma);
    assert_eq!(s.units[0].revision, wins);
}

#[test]
fn an_expired_lease_shows_the_node_down() {
    let etcd = Etcd::start();
    let mut ns = nodes(&etcd, "lease", &["a", "b"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    ns[1].kill9();
    let s = wait_state(&m, "b", "shop", SyncState::Down);
    let b = s.nodes.iter().find(|n| n.node == "b").unwrap();
    assert!(!b.live);
    // A wait names the nodes that answer; a DOWN node is not waited for.
    let r = deploy(&m, "shop", &answering("/shop", "v2"), 5_000).unwrap();
    assert_eq!(r.wait.unwrap().synced, ["a"]);
}

#[test]
fn a_cluster_pause_survives_a_node_restart() {
    let etcd = Etcd::start();
    let mut ns = nodes(&etcd, "pause", &["a", "b"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    let r = unit_op(&m, "pause", "shop", 10_000).unwrap();
    assert!(r.wait.unwrap().all_synced());
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop").0, 503, "{}", n.name);
    }
    ns[1].stop();
    ns[1].start();
    assert_eq!(get(&ns[1].conf, "/shop").0, 503);
    unit_op(&m, "resume", "shop", 10_000).unwrap();
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop").0, 200, "{}", n.name);
    }
}

#[test]
fn a_wiped_prefix_raises_an_alarm_and_unloads_nothing() {
    let etcd = Etcd::start();
    let ns = nodes(&etcd, "wipe", &["a", "b"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v1"), 10_000).unwrap();
    etcd.wipe("/esb/wipe/");
    wait_until("the alarm", WAIT, || {
        status(&m).store.state == StoreState::Alarm
    });
    let detail = status(&m).store.detail.unwrap_or_default();
    assert!(detail.contains("nothing was unloaded"), "{detail}");
    for n in &ns {
        assert_eq!(get(&n.conf, "/shop"), (200, "v1".into()), "{}", n.name);
    }
    // Deploying again clears it.
    deploy(&m, "shop", &answering("/shop", "v2"), 10_000).unwrap();
    wait_until("the alarm cleared", WAIT, || {
        status(&m).store.state == StoreState::Up
    });
    // The other node converges on its own watch.
    wait_body(&ns[1].conf, "/shop", "v2");
}

#[test]
fn a_name_used_by_a_disk_unit_and_a_cluster_unit_is_refused() {
    let etcd = Etcd::start();
    let a = Node::new(&etcd, "clash", "a", false);
    let b = {
        let conf = TempConf::new()
            .http("web")
            .table(&etcd.cluster_table("clash", "b", LEASE_S))
            .unit("shop", &answering("/shop", "disk"));
        let esb = Esb::start(&conf);
        Node {
            name: "b".into(),
            conf,
            esb: Some(esb),
        }
    };
    let e = deploy(&b.mgmt(), "shop", &answering("/shop", "c1"), 0).unwrap_err();
    assert!(e.contains("is a disk unit on this node"), "{e}");
    let r = deploy(&a.mgmt(), "shop", &answering("/shop", "c1"), 10_000).unwrap();
    let w = r.wait.unwrap();
    assert_eq!(w.failed.len(), 1, "{w:?}");
    assert!(w.failed[0].error.contains("disk unit"), "{w:?}");
    assert_eq!(get(&b.conf, "/shop").1, "disk");
    // `publish` from b makes its disk unit the cluster unit.
    let r = unit_op(&b.mgmt(), "publish", "shop", 10_000).unwrap();
    assert!(r.wait.unwrap().all_synced());
    assert_eq!(get(&a.conf, "/shop").1, "disk");
    assert_eq!(
        b.mgmt().read("esb:type=Unit,name=shop", "Origin"),
        "cluster"
    );
}

#[test]
fn fifty_cluster_deploys_under_load_through_haproxy_lose_nothing() {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !haproxy.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "haproxy is not installed: run scripts/ci-deps"
        );
        eprintln!("haproxy not installed; skipped");
        return;
    }
    let etcd = Etcd::start();
    let ns = nodes(&etcd, "lb", &["a", "b", "c"]);
    let m = ns[0].mgmt();
    deploy(&m, "shop", &answering("/shop", "v0"), 10_000).unwrap();
    let port = e2e::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = format!(
        "global\n  nbthread 1\ndefaults\n  mode http\n  option http-keep-alive\n  http-reuse safe\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  retries 0\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  balance roundrobin\n"
    );
    for n in &ns {
        cfg.push_str(&format!(
            "  server {} 127.0.0.1:{}\n",
            n.name,
            n.conf.port("web")
        ));
    }
    std::fs::write(dir.path().join("haproxy.cfg"), cfg).unwrap();
    let mut lb = std::process::Command::new(haproxy)
        .arg("-f")
        .arg(dir.path().join("haproxy.cfg"))
        .arg("-db")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start haproxy");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_until("haproxy to answer", WAIT, || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    let load = Load::start(4, addr, &["/shop"], |_: &str, r: &RawResponse| {
        format!("{} {}", r.status, r.text())
    });
    load.wait_more(100, WAIT);
    for i in 1..=50 {
        let r = deploy(&m, "shop", &answering("/shop", &format!("v{i}")), 10_000).unwrap();
        assert!(r.wait.unwrap().all_synced(), "deploy {i}");
    }
    load.wait_more(100, WAIT);
    let report = load.stop();
    unsafe {
        libc::kill(lb.id() as i32, libc::SIGKILL);
    }
    let _ = lb.wait();
    assert_clean("cluster deploys through haproxy", &report, 4);
    assert!(
        report.classes.keys().any(|k| k == "200 v50"),
        "the last revision answered: {:?}",
        report.classes.keys().collect::<Vec<_>>()
    );
}

fn uterm(n: &Node) -> e2e::uterm::Uterm {
    e2e::uterm::Uterm::connected(&n.conf.mgmt_url(""), &n.mgmt().control)
}

#[test]
fn uterm_drives_the_cluster_and_names_the_nodes_that_failed() {
    let etcd = Etcd::start();
    let a = Node::new(&etcd, "ut", "a", true);
    let b = Node::new(&etcd, "ut", "b", false);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, answering("/shop", "v1")).unwrap();
    let run = uterm(&a)
        .c(&format!(
            "deploy shop --file {} --cluster --wait 10s",
            good.display()
        ))
        .run()
        .expect(0);
    run.stdout_has(&[
        "cluster deployed shop: revision 1",
        "accepted by a",
        "synced on a, b",
    ]);
    assert_eq!(get(&b.conf, "/shop").1, "v1");
    // A unit b cannot run (its root config lacks the transport): exit 1 naming b.
    let extra = dir.path().join("extra.toml");
    std::fs::write(
        &extra,
        "[[proxy]]\nname = \"p\"\npath = \"/x\"\ntransports = [\"extra\"]\nsequence = \"s\"\n\n[[sequence]]\nname = \"s\"\nsteps = [{ respond = { status = 200, body = \"x\" } }]\n",
    )
    .unwrap();
    let run = uterm(&a)
        .c(&format!(
            "deploy xunit --file {} --cluster",
            extra.display()
        ))
        .run()
        .expect(1);
    run.stdout_has(&["FAILED on b"]);
    run.stderr_has(&["not applied on b"]);
    let run = uterm(&b).c("cluster status").run().expect(0);
    run.stdout_has(&["cluster ut", "store up", "b/xunit revision 1:"]);
    let t = run.table("UNIT");
    assert_eq!(
        t.lookup("UNIT", "shop", "A").as_deref(),
        Some("SYNCED"),
        "{}",
        run.stdout
    );
    assert_eq!(
        t.lookup("UNIT", "shop", "B").as_deref(),
        Some("SYNCED"),
        "{}",
        run.stdout
    );
    assert_eq!(
        t.lookup("UNIT", "xunit", "B").as_deref(),
        Some("FAILED"),
        "{}",
        run.stdout
    );
    // JSON for machines: the typed status.
    let run = uterm(&a)
        .args(["--json"])
        .c("cluster status")
        .run()
        .expect(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let s: ClusterStatus = serde_json::from_value(doc["results"][0]["result"].clone())
        .or_else(|_| serde_json::from_value(doc["result"].clone()))
        .unwrap_or_else(|e| panic!("{e}: {doc:#}"));
    assert_eq!(s.nodes.len(), 2);
    uterm(&a)
        .c("pause shop --cluster; resume shop --cluster; rollback shop --cluster")
        .run()
        .expect(1)
        .stderr_has(&["has no previous revision"]);
    let run = uterm(&a)
        .c("unload shop --cluster --wait 5s")
        .run()
        .expect(0);
    run.stdout_has(&["cluster unloaded shop"]);
    let run = uterm(&a).c("deploy shop --cluster").run().expect(2);
    run.stderr_has(&["--file FILE"]);
    let run = uterm(&a).c("unload shop --wait 5s").run().expect(2);
    run.stderr_has(&["--wait belongs to cluster operations"]);
}

#[test]
fn cluster_operations_are_refused_within_seconds_when_the_store_is_down() {
    let etcd = Etcd::start();
    let a = Node::new(&etcd, "down", "a", false);
    deploy(&a.mgmt(), "shop", &answering("/shop", "v1"), 10_000).unwrap();
    etcd.kill();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("u.toml");
    std::fs::write(&f, answering("/shop", "v2")).unwrap();
    let run = uterm(&a)
        .c(&format!("deploy shop --file {} --cluster", f.display()))
        .run()
        .expect(1);
    run.stderr_has(&["cluster store unreachable", "nothing changed"]);
    let run = uterm(&a).c("cluster status").run().expect(0);
    run.stdout_has(&["store down"]);
    assert_eq!(get(&a.conf, "/shop").1, "v1");
}

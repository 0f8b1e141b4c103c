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

fn esb_toml(conf: &TempConf) -> std::path::PathBuf {
    conf.dir().join("esb.toml")
}

fn restart(mgmt: &Mgmt) -> Value {
    mgmt.exec_ok("esb:type=Server", "restart", json!([]))
}

#[test]
fn restart_with_a_taken_port_is_rejected_and_esb_keeps_serving() {
    let conf = conf().unit("a", &answering("/a", "a"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let text = std::fs::read_to_string(esb_toml(&conf)).unwrap();
    let moved = text.replace(
        &format!("127.0.0.1:{}", conf.port("web")),
        &format!("127.0.0.1:{taken}"),
    );
    std::fs::write(esb_toml(&conf), &moved).unwrap();
    let o = restart(&mgmt);
    assert_eq!(o["outcome"], "rejected", "{o:#}");
    let e = o["errors"][0].to_string();
    assert!(
        e.contains("transport \\\"web\\\"")
            && e.contains("cannot bind")
            && e.contains("nothing changed"),
        "{o:#}"
    );
    assert!(o["errors"][0]["line"].as_u64().unwrap_or(0) > 1, "{o:#}");
    // Still the old configuration, still serving, management still answers.
    assert_eq!(get(&conf, "/a"), (200, "a".into()), "{}", esb.log());
    assert_eq!(mgmt.read("esb:type=Server", "State"), "Running");
}

#[test]
fn restart_renaming_a_transport_a_unit_uses_is_rejected_naming_the_unit() {
    let unit = "[[proxy]]\nname = \"p\"\npath = \"/p\"\ntransports = [\"web\"]\nsequence = \"s\"\n\n[[sequence]]\nname = \"s\"\nsteps = [{ respond = { status = 200, body = \"p\" } }]\n";
    let conf = conf().unit("pinned", unit);
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let text = std::fs::read_to_string(esb_toml(&conf)).unwrap();
    std::fs::write(
        esb_toml(&conf),
        text.replace("name = \"web\"", "name = \"www\""),
    )
    .unwrap();
    let o = restart(&mgmt);
    assert_eq!(o["outcome"], "rejected", "{o:#}");
    let e = o["errors"].to_string();
    assert!(e.contains("pinned/unit.toml") && e.contains("web"), "{o:#}");
    assert_eq!(get(&conf, "/p"), (200, "p".into()));
    // uterm waits for the outcome and exits 1 on a rejection.
    let r = e2e::uterm::Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
        .c("restart")
        .run();
    assert_eq!(r.code, 1, "{r}");
    r.stdout_has(&["rejected restart", "pinned/unit.toml"]);
}

#[test]
fn warm_restarts_under_keep_alive_load_refuse_nothing() {
    let conf = conf().unit("a", &answering("/a", "a"));
    let esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let classify = |_: &str, r: &e2e::load::RawResponse| format!("{} {}", r.status, r.text());
    let load = e2e::load::Load::start(50, addr(&conf), &["/a"], classify);
    load.wait_more(500, WAIT);
    for i in 0..20 {
        // Every other restart changes a setting, so the generations really differ.
        let text = std::fs::read_to_string(esb_toml(&conf)).unwrap();
        let next = if i % 2 == 0 {
            text.replace("drain_timeout = \"5s\"", "drain_timeout = \"6s\"")
        } else {
            text.replace("drain_timeout = \"6s\"", "drain_timeout = \"5s\"")
        };
        std::fs::write(esb_toml(&conf), next).unwrap();
        let o = restart(&mgmt);
        assert_eq!(
            o["outcome"],
            "restarted",
            "restart {i}: {o:#}\n{}",
            esb.log()
        );
        load.wait_more(100, WAIT);
    }
    let report = load.stop();
    assert_eq!(
        (report.socket_errors, report.non_2xx()),
        (0, 0),
        "{} responses over {} connections; samples:\n{}",
        report.responses,
        report.connections,
        report.samples.join("\n")
    );
    eprintln!(
        "20 warm restarts: {} responses over {} connections, 0 errors",
        report.responses, report.connections
    );
    assert!(report.connections >= 50);
}

#[test]
fn a_transport_whose_port_changed_serves_on_the_new_port_at_once() {
    let conf = conf().unit("a", &answering("/a", "a"));
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    let old = conf.port("web");
    let new = e2e::free_port();
    let text = std::fs::read_to_string(esb_toml(&conf)).unwrap();
    std::fs::write(
        esb_toml(&conf),
        text.replace(&format!("127.0.0.1:{old}"), &format!("127.0.0.1:{new}")),
    )
    .unwrap();
    let o = restart(&mgmt);
    assert_eq!(o["outcome"], "restarted", "{o:#}");
    assert_eq!(o["diff"]["transports_changed"], json!(["web"]), "{o:#}");
    // The answer came once the new port served: no retry needed.
    let r = e2e::Client::new().get(&format!("http://127.0.0.1:{new}/a"));
    assert_eq!((r.status, r.text()), (200, "a".into()));
    wait_until("the old port to be released", WAIT, || {
        std::net::TcpStream::connect(("127.0.0.1", old)).is_err()
    });
}

/// A process started by an upgrade (not a child of the test): killed by PID on drop.
struct Upgraded(i32);

impl Drop for Upgraded {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a PID this test started (through esb).
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

/// How many of process `pid`'s descriptors refer to the socket listening on `port` of
/// 127.0.0.1 (found by its inode in /proc/net/tcp).
fn listener_fds(pid: i32, port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    let inode = tcp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
        .map(|f| f[9].to_owned())
        .unwrap_or_else(|| panic!("nothing listens on 127.0.0.1:{port}"));
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_str() == Some(wanted.as_str()))
        .count()
}

/// Each thread of process `pid` (the main thread first) with its scheduler slice, as /proc
/// reports it (`se.slice`; none without scheduler details in /proc).
fn thread_slices(pid: i32) -> Vec<(String, u64)> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_by_key(|&t| (t != pid, t));
    tids.iter()
        .filter_map(|t| {
            let dir = format!("/proc/{pid}/task/{t}");
            let name = std::fs::read_to_string(format!("{dir}/comm")).ok()?;
            let sched = std::fs::read_to_string(format!("{dir}/sched")).ok()?;
            let slice = sched
                .lines()
                .find(|l| l.starts_with("se.slice"))?
                .rsplit(' ')
                .next()?
                .trim()
                .parse()
                .ok()?;
            Some((name.trim().to_owned(), slice))
        })
        .collect()
}

/// A copy of the esb binary in a temporary directory, so a test can replace it.
fn binary_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esb");
    std::fs::copy(e2e::esb::esb_bin(), &path).unwrap();
    (dir, path)
}

/// esb started from a copy of its binary (which the test may replace), serving unit `a`.
fn started_from_a_copy() -> (tempfile::TempDir, std::path::PathBuf, TempConf, Esb, Mgmt) {
    started_from_a_copy_on(conf().unit("a", &answering("/a", "a")))
}

/// esb started from a copy of its binary on `conf`.
fn started_from_a_copy_on(
    conf: TempConf,
) -> (tempfile::TempDir, std::path::PathBuf, TempConf, Esb, Mgmt) {
    started_from_a_copy_with(conf, &[])
}

/// As [`started_from_a_copy_on`], with `args` for esb (the new binary of an upgrade gets
/// the same).
fn started_from_a_copy_with(
    conf: TempConf,
    args: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, TempConf, Esb, Mgmt) {
    let (dir, bin) = binary_copy();
    let esb = Esb::start_with(
        &conf,
        e2e::EsbOptions {
            bin: Some(bin.clone()),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..e2e::EsbOptions::default()
        },
    );
    let mgmt = Mgmt::of(&conf);
    (dir, bin, conf, esb, mgmt)
}

/// Replaces `path` the way a package manager does: a new file renamed over the old one.
fn replace_file(path: &std::path::Path, from: &std::path::Path) {
    let tmp = path.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn binary_upgrades_under_load_refuse_nothing() {
    let (_bin_dir, bin, conf, esb, mgmt) = started_from_a_copy();
    let classify = |_: &str, r: &e2e::load::RawResponse| format!("{} {}", r.status, r.text());
    let load = e2e::load::Load::start(50, addr(&conf), &["/a"], classify);
    load.wait_more(500, WAIT);
    let mut old = esb.pid();
    let mut guards = Vec::new();
    for i in 0..10 {
        replace_file(&bin, e2e::esb::esb_bin());
        let o = mgmt.exec_ok("esb:type=Server", "upgrade", json!([]));
        assert_eq!(
            o["outcome"],
            "upgraded",
            "upgrade {i}: {o:#}\n{}",
            esb.log()
        );
        let new = o["pid"].as_i64().unwrap() as i32;
        guards.push(Upgraded(new));
        assert_ne!(new, old);
        wait_until("the old process to drain and exit", WAIT, || !alive(old));
        assert!(
            alive(new),
            "upgrade {i}: the new process died\n{}",
            esb.log()
        );
        load.wait_more(100, WAIT);
        old = new;
    }
    let report = load.stop();
    eprintln!(
        "10 binary upgrades: {} responses over {} connections",
        report.responses, report.connections
    );
    // Each client connection was passed on from process to process, none closed.
    assert_eq!(report.connections, 50, "{}", esb.log());
    assert_eq!(
        (report.socket_errors, report.non_2xx()),
        (0, 0),
        "samples:\n{}",
        report.samples.join("\n")
    );
    // Each listener is held once by the last process: the sockets it received are not
    // passed on to the processes it starts (close-on-exec).
    for port in [conf.port("web"), conf.mgmt_port()] {
        assert_eq!(
            listener_fds(old, port),
            1,
            "descriptors of the socket listening on {port} in process {old} after 10 upgrades"
        );
    }
    // The last process, started by an upgrade, runs its data plane in the kernel's default
    // slice and every other thread in 100 µs ones (esb-core's `sched`), where the kernel has
    // per-task slices (Linux 6.12 and later: then the main thread's is 100 µs).
    let threads = thread_slices(old);
    if threads.first().is_some_and(|(_, slice)| *slice == 100_000) {
        let workers = threads.iter().filter(|(n, _)| n.starts_with("esb-worker-"));
        assert!(workers.clone().count() >= 1, "{threads:?}");
        for (name, slice) in &threads {
            let worker = name.starts_with("esb-worker-");
            assert_eq!(*slice != 100_000, worker, "thread {name}: {threads:?}");
        }
    }
    // The state carried over: the unit still at revision 1, the pid file names the last.
    assert_eq!(mgmt.read("esb:type=Unit,name=a", "Revision"), 1);
    let pid_file = std::fs::read_to_string(conf.state_dir().join("esb.pid")).unwrap();
    assert_eq!(pid_file.trim(), old.to_string());
}

/// One keep-alive exchange on `conn`.
fn exchange(
    conn: &mut std::io::BufReader<std::net::TcpStream>,
    path: &str,
) -> std::io::Result<e2e::http1::RawResponse> {
    use std::io::Write;
    write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: esb\r\n\r\n")?;
    e2e::http1::read_response(conn, false).map(|(r, _)| r)
}

fn keep_alive(conf: &TempConf) -> std::io::BufReader<std::net::TcpStream> {
    let s = std::net::TcpStream::connect(addr(conf)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    std::io::BufReader::new(s)
}

#[test]
fn a_binary_upgrade_passes_client_connections_on_open() {
    let slow = e2e::backend::Backend::fixed(200, "slow")
        .delay(std::time::Duration::from_millis(700))
        .start();
    let unit = format!(
        "version = \"1\"\n\n[[proxy]]\nname = \"s\"\npath = \"/slow\"\nendpoint = \"be\"\n\n\
         [[endpoint]]\nname = \"be\"\naddresses = [\"{}\"]\n",
        slow.url()
    );
    let (_bin_dir, bin, conf, esb, mgmt) =
        started_from_a_copy_on(conf().unit("a", &answering("/a", "a")).unit("s", &unit));
    // An idle keep-alive connection, and a busy one whose request waits on the backend
    // while the upgrade happens.
    let mut idle = keep_alive(&conf);
    let r = exchange(&mut idle, "/a").unwrap();
    assert_eq!((r.status, r.text(), r.closes()), (200, "a".into(), false));
    let mut busy = keep_alive(&conf);
    {
        use std::io::Write;
        write!(busy.get_mut(), "GET /slow HTTP/1.1\r\nHost: esb\r\n\r\n").unwrap();
    }
    wait_until("the slow request to reach its backend", WAIT, || {
        slow.in_flight() == 1
    });
    replace_file(&bin, e2e::esb::esb_bin());
    let old = esb.pid();
    let o = mgmt.exec_ok("esb:type=Server", "upgrade", json!([]));
    assert_eq!(o["outcome"], "upgraded", "{o:#}\n{}", esb.log());
    let new = o["pid"].as_i64().unwrap() as i32;
    let _guard = Upgraded(new);
    // The request in flight is answered by the old process, and the connection is not
    // closed: it goes on to the new one with the idle connection.
    let (r, _) = e2e::http1::read_response(&mut busy, false).unwrap();
    assert_eq!(
        (r.status, r.text(), r.closes()),
        (200, "slow".into(), false)
    );
    wait_until("the old process to exit", WAIT, || !alive(old));
    // Both connections are served by the new process now.
    for (name, conn) in [("idle", &mut idle), ("busy", &mut busy)] {
        let r = exchange(conn, "/a").unwrap_or_else(|e| {
            panic!(
                "the {name} connection after the upgrade: {e}\n{}",
                esb.log()
            )
        });
        assert_eq!(
            (r.status, r.text(), r.closes()),
            (200, "a".into(), false),
            "{name}"
        );
    }
    let metrics = mgmt.monitor("GET", "/metrics").send().text();
    assert!(
        metrics.contains("esb_transport_connections_adopted_total{transport=\"web\"} 2"),
        "{metrics}"
    );
}

#[test]
fn a_binary_upgrade_passes_the_backend_connections_on_open() {
    let fast = e2e::Backend::fixed(200, "fast").start();
    let slow = e2e::backend::Backend::fixed(200, "slow")
        .delay(std::time::Duration::from_millis(700))
        .start();
    let unit = format!(
        "version = \"1\"\n\n[[proxy]]\nname = \"f\"\npath = \"/fast\"\nendpoint = \"fast\"\n\n\
         [[proxy]]\nname = \"s\"\npath = \"/slow\"\nendpoint = \"slow\"\n\n\
         [[endpoint]]\nname = \"fast\"\naddresses = [\"{}\"]\n\n\
         [[endpoint]]\nname = \"slow\"\naddresses = [\"{}\"]\n",
        fast.url(),
        slow.url()
    );
    // Idle backend connections are kept per data-plane worker thread: with one, the count
    // is exact.
    let (_bin_dir, bin, conf, esb, mgmt) =
        started_from_a_copy_with(conf().unit("u", &unit), &["--workers", "1"]);
    let mut client = keep_alive(&conf);
    for _ in 0..3 {
        let r = exchange(&mut client, "/fast").unwrap();
        assert_eq!((r.status, r.text()), (200, "fast".into()));
    }
    // The fast backend's connection is idle when the upgrade comes; the slow one's carries
    // a request, and goes idle only after the new process serves.
    let mut busy = keep_alive(&conf);
    {
        use std::io::Write;
        write!(busy.get_mut(), "GET /slow HTTP/1.1\r\nHost: esb\r\n\r\n").unwrap();
    }
    wait_until("the slow request to reach its backend", WAIT, || {
        slow.in_flight() == 1
    });
    assert_eq!((fast.connections(), slow.connections()), (1, 1));
    replace_file(&bin, e2e::esb::esb_bin());
    let old = esb.pid();
    let o = mgmt.exec_ok("esb:type=Server", "upgrade", json!([]));
    assert_eq!(o["outcome"], "upgraded", "{o:#}\n{}", esb.log());
    let _guard = Upgraded(o["pid"].as_i64().unwrap() as i32);
    let (r, _) = e2e::http1::read_response(&mut busy, false).unwrap();
    assert_eq!((r.status, r.text()), (200, "slow".into()));
    wait_until("the old process to exit", WAIT, || !alive(old));
    // The new process serves both backends on the connections the old one opened.
    for _ in 0..3 {
        let r = exchange(&mut client, "/fast").unwrap();
        assert_eq!((r.status, r.text()), (200, "fast".into()), "{}", esb.log());
    }
    let r = exchange(&mut busy, "/slow").unwrap();
    assert_eq!((r.status, r.text()), (200, "slow".into()), "{}", esb.log());
    assert_eq!(
        (fast.connections(), slow.connections()),
        (1, 1),
        "backend connections opened across the upgrade (fast, slow)\n{}",
        esb.log()
    );
    let metrics = mgmt.monitor("GET", "/metrics").send().text();
    assert!(
        metrics.contains("esb_backend_connections_adopted_total 2"),
        "{metrics}"
    );
}

/// The priority (nice) of every thread of process `pid`.
fn thread_nices(pid: i32) -> Vec<i64> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.ok()?.path().join("stat")).ok()?;
            // After the command's closing parenthesis: state, then field 19 (nice) is the 17th.
            stat.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(16)?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether a thread of this process can go to the lowest priority and back (root, or
/// CAP_SYS_NICE, or an RLIMIT_NICE that allows it): what esb probes before an upgrade.
fn can_come_back_from_the_lowest_priority() -> bool {
    std::thread::spawn(|| {
        // SAFETY: setpriority on the calling thread, no memory arguments.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19) == 0
                && libc::setpriority(libc::PRIO_PROCESS, 0, 0) == 0
        }
    })
    .join()
    .unwrap()
}

/// Upgrades the copy `bin` that `esb` runs; the answer and the new process, with every
/// thread's priority checked once it serves.
fn upgrade_and_check_priorities(
    bin: &std::path::Path,
    conf: &TempConf,
    esb: &Esb,
    mgmt: &Mgmt,
) -> (Value, Upgraded) {
    replace_file(bin, e2e::esb::esb_bin());
    let old = esb.pid();
    let o = mgmt.exec_ok("esb:type=Server", "upgrade", json!([]));
    assert_eq!(o["outcome"], "upgraded", "{o:#}\n{}", esb.log());
    let new = Upgraded(o["pid"].as_i64().unwrap() as i32);
    wait_until("the old process to exit", WAIT, || !alive(old));
    assert_eq!(get(conf, "/a"), (200, "a".into()), "{}", esb.log());
    // Whatever it started at, the process that serves runs at the old one's priority.
    let nices = thread_nices(new.0);
    assert!(
        !nices.is_empty() && nices.iter().all(|&n| n == 0),
        "thread priorities of the new process: {nices:?}\n{}",
        esb.log()
    );
    (o, new)
}

#[test]
fn a_binary_upgrade_starts_the_new_process_in_the_background_and_it_serves_at_full_priority() {
    let (_bin_dir, bin, conf, esb, mgmt) = started_from_a_copy();
    let permitted = can_come_back_from_the_lowest_priority();
    let (o, _new) = upgrade_and_check_priorities(&bin, &conf, &esb, &mgmt);
    assert_eq!(o["background_start"], permitted, "{o:#}");
    // The new process says at what priority it found itself when it started.
    assert_eq!(
        esb.log()
            .contains("starting in the background (nice 19), back to nice 0 once ready"),
        permitted,
        "{}",
        esb.log()
    );
}

#[test]
fn without_the_right_to_come_back_the_new_process_starts_at_the_old_priority() {
    let (dir, bin) = binary_copy();
    let conf = conf().unit("a", &answering("/a", "a"));
    let esb = Esb::start_with(
        &conf,
        e2e::EsbOptions {
            bin: Some(bin.clone()),
            without_cap_sys_nice: true,
            ..e2e::EsbOptions::default()
        },
    );
    let mgmt = Mgmt::of(&conf);
    let (o, _new) = upgrade_and_check_priorities(&bin, &conf, &esb, &mgmt);
    assert_eq!(o["background_start"], false, "{o:#}");
    assert!(
        !esb.log().contains("starting in the background"),
        "{}",
        esb.log()
    );
    drop(dir);
}

#[test]
fn a_new_binary_that_fails_to_start_leaves_the_old_one_serving() {
    let (bin_dir, bin, conf, esb, mgmt) = started_from_a_copy();
    let broken = bin_dir.path().join("broken.sh");
    std::fs::write(&broken, "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    replace_file(&bin, &broken);
    let env = mgmt.exec("esb:type=Server", "upgrade", json!([]));
    let e = env.to_string();
    assert!(
        e.contains("exited") && e.contains("keeps serving"),
        "{env:#}\n{}",
        esb.log()
    );
    assert!(alive(esb.pid()));
    assert_eq!(get(&conf, "/a"), (200, "a".into()));
    // With a good binary in place the upgrade goes through, driven by uterm.
    replace_file(&bin, e2e::esb::esb_bin());
    let r = e2e::uterm::Uterm::connected(&conf.mgmt_url(""), &mgmt.control)
        .c("upgrade")
        .run()
        .expect(0);
    r.stdout_has(&["upgraded", "drains and exits"]);
    let pid: i32 = std::fs::read_to_string(conf.state_dir().join("esb.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _guard = Upgraded(pid);
    assert_ne!(pid, esb.pid());
    assert_eq!(get(&conf, "/a"), (200, "a".into()));
}

#[test]
fn warm_restarts_keep_the_backend_connections_open() {
    let backend = e2e::Backend::fixed(200, "be").start();
    let unit = format!(
        "[[proxy]]\nname = \"p\"\npath = \"/p\"\nendpoint = \"be\"\n\n[[endpoint]]\nname = \"be\"\naddresses = [\"{}\"]\n",
        backend.url()
    );
    let conf = conf().unit("u", &unit);
    // Idle backend connections are kept per data-plane worker thread: with one, the count
    // is exact.
    let _esb = Esb::start_with(
        &conf,
        e2e::EsbOptions {
            args: vec!["--workers".into(), "1".into()],
            ..Default::default()
        },
    );
    let mgmt = Mgmt::of(&conf);
    let client = e2e::Client::new();
    for _ in 0..5 {
        assert_eq!(client.get(&conf.url("web", "/p")).status, 200);
    }
    let before = backend.connections();
    for _ in 0..5 {
        assert_eq!(restart(&mgmt)["outcome"], "restarted");
        for _ in 0..5 {
            assert_eq!(client.get(&conf.url("web", "/p")).status, 200);
        }
    }
    assert_eq!(
        backend.connections(),
        before,
        "the restarted generations opened new backend connections"
    );
}

#[test]
fn consumers_an_operator_paused_or_stopped_stay_so_across_a_restart() {
    let conf = conf();
    let inbox = conf.root().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let unit = format!(
        "[[sequence]]\nname = \"take\"\nsteps = [{{ log = \"file\" }}]\n\n[[consumer]]\nname = \"a\"\ndir = \"{a}\"\nsequence = \"take\"\n\n[[consumer]]\nname = \"b\"\ndir = \"{b}\"\nsequence = \"take\"\n",
        a = inbox.join("a").display(),
        b = inbox.join("b").display()
    );
    for d in ["a", "b"] {
        std::fs::create_dir_all(inbox.join(d)).unwrap();
    }
    let conf = conf.unit("c", &unit);
    let mut esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    mgmt.exec_ok("esb:type=Consumer,unit=c,name=a", "pause", json!([]));
    mgmt.exec_ok("esb:type=Consumer,unit=c,name=b", "stop", json!([]));
    esb.sigterm();
    assert!(esb.wait(WAIT).success());
    drop(esb);
    let _esb = Esb::start(&conf);
    let mgmt = Mgmt::of(&conf);
    assert_eq!(
        read(&mgmt, "esb:type=Consumer,unit=c,name=a", "State"),
        "Paused"
    );
    assert_eq!(
        read(&mgmt, "esb:type=Consumer,unit=c,name=b", "State"),
        "Stopped"
    );
}

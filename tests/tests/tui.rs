//! The console (`uterm` on a terminal) end to end: the real `uterm` binary runs in a detached
//! tmux session (120×40, its own tmux server socket) against a real `esb` with a real backend.
//! Keys go in with `send-keys`; `capture-pane` is polled with a deadline until the expected
//! text shows; and every action is confirmed by the server's own state and by traffic.
//! Without tmux the tests are skipped with a message, unless `CI` is set (then they fail).

use e2e::mgmt_client::Mgmt;
use e2e::uterm::uterm_bin;
use e2e::{wait_until, Backend, Client, Esb, TempConf};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long any expected change may take to show on the screen or the server.
const LIMIT: Duration = Duration::from_secs(20);

const PROXY: &str = "esb:type=Proxy,unit=shop,name=orders";
const UNIT: &str = "esb:type=Unit,name=shop";

/// A tmux server of its own with one session running one command; killed on drop.
struct Tmux {
    socket: String,
    /// Where the command's exit status is written when it ends.
    status_file: std::path::PathBuf,
}

impl Tmux {
    /// True when tmux can be run. Without it the test is skipped, unless `CI` is set.
    fn available(test: &str) -> bool {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "tmux is not installed but CI is set: install it (scripts/ci-deps does)"
            );
            eprintln!("SKIPPED {test}: tmux is not installed (scripts/ci-deps installs it)");
        }
        ok
    }

    /// Starts `argv` in a detached 120×40 session, in `cwd`. A shell around it writes its
    /// exit status to a file (tmux's own `pane_dead_status` is not always filled in), and the
    /// pane stays after it ends so the screen it left behind can be read.
    fn start(argv: &[String], cwd: &Path) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "uterm-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let conf = cwd.join(format!("{socket}.conf"));
        std::fs::write(&conf, "set -g remain-on-exit on\n").expect("write tmux.conf");
        let status_file = cwd.join(format!("{socket}.status"));
        let t = Tmux {
            socket,
            status_file,
        };
        let mut args: Vec<String> = vec![
            "-f".into(),
            conf.display().to_string(),
            "new-session".into(),
            "-d".into(),
            "-x".into(),
            "120".into(),
            "-y".into(),
            "40".into(),
            "-s".into(),
            "console".into(),
            "-c".into(),
            cwd.display().to_string(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!("\"$0\" \"$@\"; echo $? > '{}'", t.status_file.display()),
        ];
        args.extend(argv.iter().cloned());
        let out = t.tmux(&args);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .expect("run tmux")
    }

    /// Sends keys by tmux name (`Enter`, `Escape`, `q`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success(), "send-keys {keys:?}");
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", "console", "-l", text]);
        assert!(out.status.success(), "send-keys -l {text:?}");
    }

    /// The visible screen.
    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "console"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until every fragment shows (and none of `absent`); returns it.
    fn wait_for(&self, fragments: &[&str], absent: &[&str]) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let s = self.screen();
            if fragments.iter().all(|f| s.contains(f)) && !absent.iter().any(|a| s.contains(a)) {
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {LIMIT:?} waiting for {fragments:?} (and none of \
                     {absent:?}) on the console; it shows:\n{s}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of the command (the shell around it execs nothing, so: its child).
    fn pid(&self) -> i32 {
        let out = self.tmux(&["display-message", "-p", "-t", "console", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("children of the pane's shell");
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the pane's shell runs uterm")
    }

    /// Waits for the command to exit; its exit status. The terminal must have been restored:
    /// the console (drawn on the alternate screen) is gone from the pane.
    fn wait_exit(&self) -> i32 {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(s) = std::fs::read_to_string(&self.status_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "uterm did not exit; the console shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let s = self.screen();
        assert!(
            !s.contains("● connected") && !s.contains("Units ("),
            "the console is still on the screen after uterm exited:\n{s}"
        );
        status
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- console at the failure ---\n{}", self.screen());
        }
        let _ = self.tmux(&["kill-server"]);
    }
}

fn unit_shop(backend: &str, label: &str) -> String {
    format!(
        r#"version = "{label}"

[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[proxy]]
name = "status"
path = "/status"
sequence = "ok"

[[sequence]]
name = "ok"
steps = [{{ respond = {{ status = 200, body = "ok" }} }}]

[[endpoint]]
name = "be"
addresses = ["{backend}"]
"#
    )
}

const UNIT_BILLING: &str = r#"version = "2.0.0"

[[proxy]]
name = "invoices"
path = "/invoices"
sequence = "paid"

[[sequence]]
name = "paid"
steps = [{ respond = { status = 200, body = "paid" } }]
"#;

/// A running esb with units `shop` and `billing`, its backend and management endpoint.
/// Field order matters: esb stops before its configuration directory is removed.
struct Env {
    esb: Esb,
    conf: TempConf,
    m: Mgmt,
    backend: Backend,
}

impl Env {
    fn start() -> Env {
        let backend = Backend::fixed(200, "orders").start();
        let conf = TempConf::new()
            .http("web")
            .unit("shop", &unit_shop(&backend.url(), "1.0.0"))
            .unit("billing", UNIT_BILLING);
        let esb = Esb::start(&conf);
        let m = Mgmt::of(&conf);
        Env {
            esb,
            conf,
            m,
            backend,
        }
    }

    /// `uterm --url … --token …` plus `extra`, as argv.
    fn uterm(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            uterm_bin().display().to_string(),
            "--url".into(),
            self.conf.mgmt_url(""),
            "--token".into(),
            self.m.control.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn get(&self, path: &str) -> u16 {
        Client::new()
            .timeout(Duration::from_secs(10))
            .get(&self.conf.url("web", path))
            .status
    }

    fn proxy_state(&self) -> String {
        self.m
            .read(PROXY, "State")
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

#[test]
fn console_switches_views_filters_reloads_a_unit_and_pauses_a_proxy() {
    if !Tmux::available("console_switches_views_filters_reloads_a_unit_and_pauses_a_proxy") {
        return;
    }
    let env = Env::start();
    assert_eq!(env.get("/orders"), 200);
    let t = Tmux::start(&env.uterm(&["--refresh", "500ms"]), env.conf.root());

    // The header names the server and the connection; Units lists both units.
    t.wait_for(
        &[
            "e2e",
            "Running",
            "● connected",
            "Units (2)",
            "billing",
            "shop",
        ],
        &[],
    );

    // 2: the Proxies view, every proxy.
    t.keys(&["2"]);
    t.wait_for(
        &[
            "Proxies (3)",
            "billing/invoices",
            "shop/orders",
            "shop/status",
        ],
        &[],
    );

    // /: the filter narrows the rows as it is typed; Enter keeps it.
    t.keys(&["/"]);
    t.type_text("ord");
    t.keys(&["Enter"]);
    t.wait_for(
        &["Proxies (1)", "/ord", "shop/orders"],
        &["billing/invoices"],
    );

    // p on the selected proxy asks first; y pauses it.
    t.keys(&["p"]);
    t.wait_for(&["Confirm: pause proxy shop/orders", "y yes"], &[]);
    t.keys(&["y"]);
    let s = t.wait_for(&["proxy shop/orders: Paused"], &["Confirm:"]);
    assert!(
        s.lines()
            .any(|l| l.contains("shop/orders") && l.contains("Paused")),
        "the row shows the new state:\n{s}"
    );
    assert_eq!(env.proxy_state(), "Paused");
    assert_eq!(env.get("/orders"), 503, "a paused proxy answers 503");
    assert_eq!(env.get("/status"), 200, "its neighbour still serves");

    // Esc clears the filter (keys after Esc wait for the screen: Esc+key reads as Alt-key).
    t.keys(&["Escape"]);
    t.wait_for(&["Proxies (3)", "billing/invoices"], &["Proxies (1)"]);

    // The unit changed on disk: d shows what a reload would change, r reloads it.
    std::fs::write(
        env.conf.unit_dir("shop").join("unit.toml"),
        unit_shop(&env.backend.url(), "1.1.0"),
    )
    .expect("edit shop/unit.toml");
    t.keys(&["1"]);
    t.wait_for(&["Units (2)"], &[]);
    t.keys(&["/"]);
    t.type_text("shop");
    t.keys(&["Enter"]);
    t.wait_for(&["Units (1)", "/shop"], &["billing"]);
    t.keys(&["d"]);
    t.wait_for(&["diff shop", "1.0.0", "1.1.0"], &[]);
    t.keys(&["Escape"]);
    t.wait_for(&["Units (1)"], &["diff shop"]);
    t.keys(&["r"]);
    t.wait_for(&["activated shop: revision 2", "r2 1.1.0"], &[]);
    assert_eq!(env.m.read(UNIT, "Revision"), 2);
    assert_eq!(env.m.read(UNIT, "Label"), "1.1.0");
    assert_eq!(
        env.proxy_state(),
        "Paused",
        "operator state survives a reload"
    );

    // 5: the Events view shows what happened, from /events.
    t.keys(&["5"]);
    t.wait_for(
        &[
            "unit_activated",
            "shop revision 2 (1.1.0)",
            "state_changed",
            "proxy shop/orders → Paused",
        ],
        &[],
    );

    // Resume from the drill-down of the unit: 1, Enter, select the proxy, p (no question).
    t.keys(&["1"]);
    t.wait_for(&["Units (1)"], &[]);
    t.keys(&["Enter"]);
    t.wait_for(&["Unit shop", "Esc back", "orders", "status"], &[]);
    t.keys(&["p"]);
    t.wait_for(&["proxy shop/orders: Active"], &[]);
    wait_until("the proxy to serve again", LIMIT, || {
        env.get("/orders") == 200
    });

    // 7: the Cluster view; this server has no [cluster], which is no error.
    t.keys(&["7"]);
    t.wait_for(
        &["this server is not in a cluster; see docs/cluster.md"],
        &["cannot read the cluster status"],
    );

    // q quits with status 0.
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

#[test]
fn console_read_only_refuses_actions_and_reading_still_works() {
    if !Tmux::available("console_read_only_refuses_actions_and_reading_still_works") {
        return;
    }
    let env = Env::start();
    let t = Tmux::start(&env.uterm(&["--read-only"]), env.conf.root());
    t.wait_for(&["READ-ONLY", "● connected", "shop"], &[]);
    t.keys(&["2"]);
    t.wait_for(&["Proxies (3)"], &[]);
    t.keys(&["j", "p"]);
    t.wait_for(&["read-only: pause/resume is disabled"], &[]);
    t.keys(&[":"]);
    t.type_text("unload shop");
    t.keys(&["Enter"]);
    t.wait_for(&["read-only: `unload shop` changes server state"], &[]);
    assert_eq!(env.proxy_state(), "Active");
    assert_eq!(env.m.read(UNIT, "State"), "Active");
    // Reading is allowed: a `:` command with a table opens it in a popup.
    t.keys(&[":"]);
    t.type_text("list transports");
    t.keys(&["Enter"]);
    t.wait_for(&[":list transports", "TRANSPORT", "web"], &[]);
    t.keys(&["Escape"]);
    t.wait_for(&["Proxies (3)"], &[":list transports"]);
    // SIGINT ends it like q, with the conventional status.
    // SAFETY: kill(2) on the pid of the pane's own process.
    unsafe {
        libc::kill(t.pid(), libc::SIGINT);
    }
    assert_eq!(t.wait_exit(), 128 + libc::SIGINT);
}

#[test]
fn console_shows_a_lost_server_and_reconnects() {
    if !Tmux::available("console_shows_a_lost_server_and_reconnects") {
        return;
    }
    let env = Env::start();
    let Env {
        esb,
        conf,
        m,
        backend: _backend,
    } = env;
    let argv = vec![
        uterm_bin().display().to_string(),
        "--url".into(),
        conf.mgmt_url(""),
        "--token".into(),
        m.control.clone(),
    ];
    let t = Tmux::start(&argv, conf.root());
    t.wait_for(&["● connected", "shop"], &[]);
    drop(esb);
    t.wait_for(&["✖ disconnected", "data from", "cannot connect to"], &[]);
    let esb = Esb::start(&conf);
    t.wait_for(&["● connected", "Units (2)"], &["✖ disconnected"]);
    // The events stream is back too.
    t.wait_for(&["events live"], &[]);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
    drop(esb);
}

#[test]
fn console_taps_the_selected_proxy_live() {
    if !Tmux::available("console_taps_the_selected_proxy_live") {
        return;
    }
    let env = Env::start();
    let t = Tmux::start(&env.uterm(&["--refresh", "500ms"]), env.conf.root());
    t.keys(&["2"]);
    t.wait_for(&["Proxies (3)", "shop/orders"], &[]);
    // Select shop/orders with the filter, then w: a popup that streams its requests.
    t.keys(&["/"]);
    t.type_text("orders");
    t.keys(&["Enter"]);
    t.wait_for(&["Proxies (1)"], &[]);
    t.keys(&["w"]);
    t.wait_for(&["tap proxy shop/orders", "waiting for requests"], &[]);
    // The tap opens on its own thread: requests go until one shows.
    let deadline = Instant::now() + LIMIT;
    loop {
        assert_eq!(env.get("/orders/tapped"), 200);
        if t.screen().contains("GET /orders/tapped 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no tap line; the console shows:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = t.wait_for(&["shop/orders  r1  GET /orders/tapped 200", "→ be"], &[]);
    assert!(s.contains(&env.backend.url()), "{s}");
    // Esc closes it; q quits.
    t.keys(&["Escape"]);
    t.wait_for(&["Proxies (1)"], &["tap proxy"]);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

#[test]
fn console_cluster_view_shows_each_node_synced_then_a_killed_one_down() {
    if !Tmux::available("console_cluster_view_shows_each_node_synced_then_a_killed_one_down") {
        return;
    }
    let etcd = e2e::etcd::Etcd::start();
    // A short lease, so that a killed node shows DOWN within a few seconds.
    let confs: Vec<TempConf> = ["a", "b"]
        .iter()
        .map(|n| {
            TempConf::new()
                .http("web")
                .table(&etcd.cluster_table("ui", n, 2))
        })
        .collect();
    let mut esbs: Vec<Esb> = confs.iter().map(Esb::start).collect();
    let m = Mgmt::of(&confs[0]);
    let text = e2e::scenario::answering("/shop", "v1");
    let env = m.exec(
        deployments::protocol::cluster::BEAN,
        "deploy",
        serde_json::json!([{"unit": "shop", "files": {"unit.toml": text}, "wait_ms": 10_000}]),
    );
    assert_eq!(env["status"], 200, "{env}");
    let argv: Vec<String> = [
        uterm_bin().display().to_string(),
        "--url".into(),
        confs[0].mgmt_url(""),
        "--token".into(),
        m.control.clone(),
        "--refresh".into(),
        "500ms".into(),
    ]
    .into();
    let t = Tmux::start(&argv, confs[0].root());
    t.wait_for(&["● connected"], &[]);

    // 7: the Cluster view: the store up, the unit SYNCED on both nodes.
    t.keys(&["7"]);
    let s = t.wait_for(
        &[
            "Cluster ui · nodes 2 · units 1",
            "store UP",
            "answered by a",
            "shop",
            "a up",
            "b up",
        ],
        &["DOWN", "PENDING"],
    );
    assert_eq!(s.matches("SYNCED").count(), 2, "{s}");

    // Node b dies: its lease expires and the view shows it DOWN; a still serves.
    esbs[1].signal(libc::SIGKILL);
    esbs[1].wait(Duration::from_secs(10));
    t.wait_for(&["b DOWN (lease expired)", "SYNCED"], &["b up"]);

    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), 0);
}

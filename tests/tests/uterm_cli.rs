//! `uterm` as operators and CI run it: the real binary as a fresh process against a real
//! `esb` with real backends on loopback. Every command of docs/uterm.md runs through it
//! with `--url`/`--token` (once through `ESB_URL`/`ESB_TOKEN`, once through token files);
//! each test asserts the human output (key fragments, table cells under their headers), the
//! exit code, and that the server really changed (a Jolokia read, or traffic). Then the
//! script rules (comments, a failure in the middle, `--keep-going`), `--json`, usage errors
//! (2), connection and token errors (3), `events --follow` and offline `validate --dir`.

use e2e::mgmt_client::Mgmt;
use e2e::units::answer_unit;
use e2e::uterm::{Follower, Run, Uterm};
use e2e::{wait_until, Backend, Client, ClosedPort, Esb, TempConf};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long any expected change may take to show.
const LIMIT: Duration = Duration::from_secs(10);

const SERVER: &str = "esb:type=Server";
const MANAGER: &str = "esb:type=DeploymentManager";
const ORDERS: &str = "esb:type=Proxy,unit=shop,name=orders";
const BE: &str = "esb:type=Endpoint,unit=shop,name=be";
const NIGHTLY: &str = "esb:type=Task,unit=shop,name=nightly";
const WEB: &str = "esb:type=Transport,name=web";

fn unit_bean(unit: &str) -> String {
    format!("esb:type=Unit,name={unit}")
}

/// Unit `shop`: proxy `orders` on `/orders` to endpoint `be`; task `nightly` (every hour)
/// calling endpoint `jobs`.
fn shop_unit(be: &str, jobs: &str) -> String {
    format!(
        r#"version = "1.0"

[[proxy]]
name = "orders"
path = "/orders"
endpoint = "be"

[[endpoint]]
name = "be"
addresses = ["{be}"]

[[task]]
name = "nightly"
every = "1h"
sequence = "call-jobs"

[[sequence]]
name = "call-jobs"
steps = [{{ call = {{ endpoint = "jobs" }} }}]

[[endpoint]]
name = "jobs"
addresses = ["{jobs}"]
"#
    )
}

/// `shop` with a typo (`endpoint = "bee"`), and where the server must point: (line, col) of
/// the value.
fn broken_shop(be: &str, jobs: &str) -> (String, usize, usize) {
    let text = shop_unit(be, jobs).replacen("endpoint = \"be\"", "endpoint = \"bee\"", 1);
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("\"bee\"").map(|c| (i + 1, c + 1)))
        .expect("the typo is in the text");
    (text, line, col)
}

/// A running esb with its configuration and management endpoint, and a data-plane client.
/// Field order matters: esb stops before its configuration directory is removed.
struct Env {
    esb: Esb,
    conf: TempConf,
    m: Mgmt,
    http: Client,
}

impl Env {
    fn start(conf: TempConf) -> Env {
        let esb = Esb::start(&conf);
        let m = Mgmt::of(&conf);
        Env {
            esb,
            conf,
            m,
            http: Client::new().timeout(Duration::from_secs(15)),
        }
    }

    /// `shop` (backends `be` and `jobs`) and `other` (answers `/other`).
    fn shop(be: &Backend, jobs: &Backend) -> Env {
        Env::start(
            TempConf::new()
                .http("web")
                .unit("shop", &shop_unit(&be.url(), &jobs.url()))
                .unit("other", &answer_unit("/other", "o1", "1.0")),
        )
    }

    /// The management URL as uterm is given it.
    fn url(&self) -> String {
        self.conf.mgmt_url("")
    }

    /// `uterm --url URL --token CONTROL`.
    fn ut(&self) -> Uterm {
        Uterm::connected(&self.url(), &self.m.control)
    }

    /// `uterm --url URL --token CONTROL -c SCRIPT`, run.
    fn run(&self, script: &str) -> Run {
        self.ut().c(script).run()
    }

    /// Runs `script` and requires exit 0.
    #[track_caller]
    fn ok(&self, script: &str) -> Run {
        let r = self.run(script);
        if r.code != 0 {
            panic!(
                "unexpected exit code\n{r}\n--- esb log ---\n{}",
                self.esb.log()
            );
        }
        r
    }

    /// `GET http://127.0.0.1:<web>{path}`: status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(&self.conf.url("web", path));
        (r.status, r.text())
    }

    #[track_caller]
    fn expect(&self, path: &str, status: u16) -> String {
        let (s, body) = self.get(path);
        assert_eq!(s, status, "GET {path}: {body}");
        body
    }

    fn write_unit(&self, unit: &str, toml: &str) {
        let path = self.conf.unit_dir(unit).join("unit.toml");
        std::fs::create_dir_all(path.parent().expect("unit dir")).expect("mkdir unit");
        std::fs::write(&path, toml).expect("write unit.toml");
    }

    fn read(&self, bean: &str, attr: &str) -> Value {
        self.m.read(bean, attr)
    }

    /// A file outside the conf directory (for `--file`, scripts, token files).
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.conf.root().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }
}

/// The value of a `key  value` line of a sheet.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        (rest.is_empty() || rest.starts_with("  ")).then(|| rest.trim().to_owned())
    })
}

#[track_caller]
fn assert_field(r: &Run, key: &str, value: &str) {
    assert_eq!(
        field(&r.stdout, key).as_deref(),
        Some(value),
        "field {key}\n{r}"
    );
}

#[track_caller]
fn assert_cell(r: &Run, first_header: &str, key: &str, column: &str, value: &str) {
    assert_eq!(
        r.table(first_header).cell(key, column).as_deref(),
        Some(value),
        "cell {column} of row {key}\n{r}"
    );
}

fn tcp_refused(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

// ---------------------------------------------------------------------------------------
// Every command of docs/uterm.md
// ---------------------------------------------------------------------------------------

#[test]
fn looking_commands_print_aligned_tables_and_sheets() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    for _ in 0..3 {
        assert_eq!(env.expect("/orders", 200), "from be");
    }
    // On disk only: a new unit, and a changed file of a loaded one.
    env.write_unit("extra", &answer_unit("/extra", "x", "0.1"));
    env.write_unit("other", &answer_unit("/other", "o2", "1.1"));
    wait_until("other to be modified on disk", LIMIT, || {
        env.read(&unit_bean("other"), "ModifiedOnDisk") == true
    });
    let shop_hash = env.read(&unit_bean("shop"), "Hash");
    let shop_hash = shop_hash.as_str().expect("Hash");

    // status: the server line, totals, one row per unit, units not loaded.
    let r = env.ok("status");
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("e2e  Running  up ") && first.contains("  version 0.1.0  hot deploy off"),
        "{r}"
    );
    r.stdout_has(&["units 2  proxies 2  requests 3  errors 0  in flight 0"]);
    let t = r.table("UNIT");
    assert_eq!(
        t.headers(),
        [
            "UNIT",
            "STATE",
            "REV",
            "LABEL",
            "HASH",
            "DEPLOYED",
            "PROXIES",
            "ENDPOINTS",
            "TASKS",
            "REQUESTS",
            "ERRORS",
            "IN-FLIGHT",
            "NOTES"
        ],
        "{r}"
    );
    assert_eq!(t.keys(), ["other", "shop"], "{r}");
    for (col, want) in [
        ("STATE", "Active"),
        ("REV", "1"),
        ("LABEL", "1.0"),
        ("HASH", &shop_hash[..12]),
        ("PROXIES", "1"),
        ("ENDPOINTS", "2"),
        ("TASKS", "1"),
        ("REQUESTS", "3"),
        ("ERRORS", "0"),
        ("IN-FLIGHT", "0"),
        ("NOTES", ""),
    ] {
        assert_eq!(t.cell("shop", col).as_deref(), Some(want), "{col}\n{r}");
    }
    assert!(
        t.cell("shop", "DEPLOYED")
            .is_some_and(|d| d.ends_with(" ago")),
        "{r}"
    );
    assert_eq!(
        t.cell("other", "NOTES").as_deref(),
        Some("modified on disk"),
        "{r}"
    );
    r.stdout_has(&["on disk, not loaded: extra  (load UNIT)"]);

    // list: `list` alone and `list units` are the units table.
    for cmd in ["list", "list units"] {
        let r = env.ok(cmd);
        assert_eq!(r.table("UNIT").keys(), ["other", "shop"], "{r}");
        assert_cell(&r, "UNIT", "shop", "REQUESTS", "3");
    }
    let r = env.ok("list proxies");
    let t = r.table("UNIT");
    assert_eq!(
        t.headers(),
        [
            "UNIT",
            "PROXY",
            "STATE",
            "PATH",
            "METHODS",
            "TRANSPORTS",
            "ENDPOINT",
            "REQUESTS",
            "ERRORS",
            "P50",
            "P99"
        ],
        "{r}"
    );
    for (col, want) in [
        ("UNIT", "shop"),
        ("STATE", "Active"),
        ("PATH", "/orders"),
        ("METHODS", "any"),
        ("TRANSPORTS", "all"),
        ("ENDPOINT", "be"),
        ("REQUESTS", "3"),
    ] {
        assert_eq!(
            t.lookup("PROXY", "orders", col).as_deref(),
            Some(want),
            "{col}\n{r}"
        );
    }
    assert_eq!(
        t.lookup("PROXY", "hello", "PATH").as_deref(),
        Some("/other")
    );
    let r = env.ok("list proxies other");
    assert_eq!(r.table("UNIT").column("PROXY"), ["hello"], "{r}");
    let r = env.ok("list endpoints shop");
    let t = r.table("UNIT");
    assert_eq!(t.column("ENDPOINT"), ["be", "jobs"], "{r}");
    assert_eq!(
        t.lookup("ENDPOINT", "be", "ADDRESSES").as_deref(),
        Some("1/1 active")
    );
    assert_eq!(
        t.lookup("ENDPOINT", "be", "STRATEGY").as_deref(),
        Some("failover")
    );
    assert_eq!(t.lookup("ENDPOINT", "be", "REQUESTS").as_deref(), Some("3"));
    let r = env.ok("list transports");
    let bind = format!("127.0.0.1:{}", env.conf.port("web"));
    assert_cell(&r, "TRANSPORT", "web", "STATE", "Started");
    assert_cell(&r, "TRANSPORT", "web", "KIND", "http");
    assert_cell(&r, "TRANSPORT", "web", "BIND", &bind);
    let r = env.ok("list tasks");
    let t = r.table("UNIT");
    for (col, want) in [
        ("STATE", "Scheduled"),
        ("EVERY", "1h"),
        ("SEQUENCE", "call-jobs"),
        ("RUNS", "0"),
        ("LAST RUN", "never"),
    ] {
        assert_eq!(
            t.lookup("TASK", "nightly", col).as_deref(),
            Some(want),
            "{col}\n{r}"
        );
    }
    // A unit that does not exist: exit 1 with a suggestion.
    env.run("list proxies shpo")
        .expect(1)
        .stderr_has(&["no unit shpo is loaded", "did you mean unit shop?"]);

    // show: every attribute of one object.
    for cmd in ["show shop", "show unit shop"] {
        let r = env.ok(cmd);
        assert!(r.stdout.starts_with("unit shop\n"), "{r}");
        assert_field(&r, "State", "Active");
        assert_field(&r, "Revision", "1");
        assert_field(&r, "Label", "1.0");
        assert_field(&r, "Hash", shop_hash);
        assert_field(&r, "Proxies", "orders");
        assert_field(&r, "Endpoints", "be, jobs");
        assert_field(&r, "Requests", "3");
    }
    let r = env.ok("show proxy shop/orders");
    assert!(r.stdout.starts_with("proxy shop/orders\n"), "{r}");
    assert_field(&r, "State", "Active");
    assert_field(&r, "Path", "/orders");
    assert_field(&r, "Endpoint", "be");
    assert_field(&r, "Requests", "3");
    let r = env.ok("show endpoint shop/be");
    assert_field(&r, "Strategy", "failover");
    assert_cell(&r, "URL", &be.url(), "STATE", "Active");
    assert_cell(&r, "URL", &be.url(), "REQUESTS", "3");
    let r = env.ok("show task shop/nightly");
    assert_field(&r, "State", "Scheduled");
    assert_field(&r, "EveryMillis", "3600000 (1h)");
    assert_field(&r, "Sequence", "call-jobs");
    let r = env.ok("show sequence shop/call-jobs");
    assert_field(&r, "Steps", "1");
    assert_field(&r, "StepKinds", "call");
    let r = env.ok("show transport web");
    assert_field(&r, "Bind", &bind);
    assert_field(&r, "State", "Started");
    env.run("show proxy shop/ordres")
        .expect(1)
        .stderr_has(&["error: no proxy shop/ordres exists; did you mean proxy shop/orders?"]);

    // history, diff, validate of a unit on the server.
    let r = env.ok("history shop");
    assert_eq!(
        r.table("REV").headers(),
        ["REV", "ACTIVE", "HASH", "LABEL", "DEPLOYED", "TOOK"],
        "{r}"
    );
    assert_cell(&r, "REV", "1", "ACTIVE", "*");
    assert_cell(&r, "REV", "1", "HASH", &shop_hash[..12]);
    let r = env.ok("diff other");
    r.stdout_has(&[
        "other: +0 ~2 -0 (a reload would apply this)",
        "~ sequence say",
        "~ unit other: version: \"1.0\" → \"1.1\"",
    ]);
    let r = env.ok("diff extra");
    r.stdout_has(&[
        "extra: ",
        "(not loaded; loading it would add this)",
        "+ proxy hello",
    ]);
    env.ok("validate other").stdout_has(&["valid other"]);
    // Looking changed nothing.
    assert_eq!(env.read(&unit_bean("other"), "Revision"), 1);
    assert_eq!(env.expect("/other", 200), "o1");

    // events: the last ones the server keeps.
    let r = env.ok("events --recent 20");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("  unit_activated  ") && l.contains("shop revision 1 (1.0)")),
        "{r}"
    );
    r.stdout_has(&["server_started", "server e2e started"]);
    let r = env.ok("events --recent 1");
    assert_eq!(r.stdout.lines().count(), 1, "{r}");

    // hot-deploy alone shows the switch; help works.
    env.ok("hot-deploy").stdout_has(&["hot deploy off"]);
    let r = env.ok("help");
    assert_eq!(r.table("COMMAND").headers(), ["COMMAND", "WHAT IT DOES"]);
    r.stdout_has(&["status", "rollback UNIT [--to REV]", "exec BEAN OPERATION"]);
    env.ok("help reload")
        .stdout_has(&["usage: reload UNIT...", "reload --all", "examples:"]);
}

#[test]
fn deploying_commands_change_the_running_revision() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0"))
            .unit("other", &answer_unit("/other", "o1", "1.0")),
    );
    let rev = |u: &str| env.read(&unit_bean(u), "Revision");

    // reload: re-reads the files, activates what changed.
    env.write_unit("app", &answer_unit("/hello", "v2", "2.0"));
    env.ok("diff app")
        .stdout_has(&["app: +0 ~2 -0 (a reload would apply this)"]);
    assert_eq!(env.expect("/hello", 200), "v1", "diff must not deploy");
    let r = env.ok("reload app");
    r.stdout_has(&[
        "activated app: revision 2 (label 2.0, hash ",
        " ms  +0 ~2 -0",
    ]);
    assert!(r.stderr.is_empty(), "{r}");
    assert_eq!(rev("app"), 2);
    assert_eq!(env.expect("/hello", 200), "v2");
    env.ok("reload app")
        .stdout_has(&["unchanged app: revision 2 already matches the files"]);
    assert_eq!(rev("app"), 2);

    // load / unload a unit from the deployments directory.
    env.write_unit("extra", &answer_unit("/extra", "x1", "0.1"));
    env.expect("/extra", 404);
    env.ok("load extra")
        .stdout_has(&["activated extra: revision 1 (label 0.1", "+ proxy hello"]);
    assert_eq!(env.expect("/extra", 200), "x1");
    env.ok("unload extra")
        .stdout_has(&["unloaded extra: revision 1 drains and stops"]);
    env.expect("/extra", 404);
    assert!(!env
        .read(MANAGER, "Units")
        .as_array()
        .expect("Units")
        .contains(&json!("extra")));

    // Several units: one batch.
    env.write_unit("app", &answer_unit("/hello", "v3", "3.0"));
    env.write_unit("other", &answer_unit("/other", "o2", "2.0"));
    let r = env.ok("reload app other");
    r.stdout_has(&["activated app: revision 3", "activated other: revision 2"]);
    assert_eq!(env.expect("/hello", 200), "v3");
    assert_eq!(env.expect("/other", 200), "o2");

    // reload --all, as shell words: changed units reload, new directories load.
    env.write_unit("app", &answer_unit("/hello", "v4", "4.0"));
    env.write_unit("fresh", &answer_unit("/fresh", "f1", "1.0"));
    let r = env.ut().args(["reload", "--all"]).run().expect(0);
    r.stdout_has(&[
        "activated app: revision 4",
        "activated fresh: revision 1",
        "unchanged other: revision 2",
    ]);
    assert_eq!(env.expect("/hello", 200), "v4");
    assert_eq!(env.expect("/fresh", 200), "f1");

    // deploy: a local file becomes the unit's unit.toml.
    let v5 = env.file("app-v5.toml", &answer_unit("/hello", "v5", "5.0"));
    let r = env
        .ut()
        .c(&format!("deploy app --file {}", v5.display()))
        .run()
        .expect(0);
    r.stdout_has(&["activated app: revision 5 (label 5.0"]);
    assert_eq!(env.expect("/hello", 200), "v5");
    env.run("deploy app --file /nonexistent/unit.toml")
        .expect(1)
        .stderr_has(&["cannot read /nonexistent/unit.toml", "--file"]);

    // validate / diff against a local file: nothing changes on the server.
    let good = env.file("app-v6.toml", &answer_unit("/hello", "v6", "6.0"));
    let bad = env.file(
        "app-bad.toml",
        "version = \"7\"\n\n[[proxy]]\nname = \"hello\"\npath = \"/hello\"\nsequence = \"nope\"\n",
    );
    env.ok(&format!("validate app --file {}", good.display()))
        .stdout_has(&["valid app"]);
    env.ok(&format!("diff app --file {}", good.display()))
        .stdout_has(&["app: +0 ~2 -0 (a reload would apply this)"]);
    env.run(&format!("validate app --file {}", bad.display()))
        .expect(1)
        .stdout_has(&[
            "invalid app: 1 error",
            "app/unit.toml:6:12: proxy \"hello\": sequence \"nope\" not found",
        ])
        .stderr_has(&["error: app is not valid"]);
    assert_eq!(rev("app"), 5);
    assert_eq!(env.expect("/hello", 200), "v5");

    // history and rollback.
    let r = env.ok("history app");
    let t = r.table("REV");
    assert_eq!(t.cell("5", "ACTIVE").as_deref(), Some("*"), "{r}");
    assert_eq!(t.cell("5", "LABEL").as_deref(), Some("5.0"), "{r}");
    assert_eq!(t.cell("4", "ACTIVE").as_deref(), Some(""), "{r}");
    env.ok("rollback app")
        .stdout_has(&["activated app: revision 4 (label 4.0"]);
    assert_eq!(env.expect("/hello", 200), "v4");
    assert_eq!(rev("app"), 4);
    env.ok("rollback app --to 2")
        .stdout_has(&["activated app: revision 2 (label 2.0"]);
    assert_eq!(env.expect("/hello", 200), "v2");
    env.ok("rollback app --to r5");
    assert_eq!(env.expect("/hello", 200), "v5");
    let r = env.ok("history app");
    assert_eq!(
        r.table("REV").cell("5", "ACTIVE").as_deref(),
        Some("*"),
        "{r}"
    );
    env.run("rollback app --to 99").expect(1);
    assert_eq!(env.expect("/hello", 200), "v5");
}

#[test]
fn runtime_control_commands_change_traffic_and_state() {
    let be = Backend::fixed(200, "from be").name("be").start();
    let spare = Backend::fixed(200, "from spare").name("spare").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    assert_eq!(env.expect("/orders", 200), "from be");

    // Units: pause answers 503, resume serves.
    env.ok("pause shop").stdout_has(&["unit shop: Paused"]);
    assert_eq!(env.read(&unit_bean("shop"), "State"), "Paused");
    env.expect("/orders", 503);
    env.ok("resume shop").stdout_has(&["unit shop: Active"]);
    env.expect("/orders", 200);

    // pause --hold: a new request waits, and resume releases it.
    env.ok("pause unit shop --hold 5s").stdout_has(&[
        "unit shop: Paused",
        "new requests wait up to 5000 ms for `resume shop`",
    ]);
    let url = env.conf.url("web", "/orders");
    let http = env.http.clone();
    let held = std::thread::spawn(move || http.get(&url).status);
    wait_until("the held request to be in flight", LIMIT, || {
        env.read(ORDERS, "InFlight") == 1
    });
    assert!(!held.is_finished(), "a held request must wait for resume");
    env.ok("resume shop");
    assert_eq!(held.join().expect("held request"), 200);

    // Proxies: pause 503, stop 404.
    env.ok("pause proxy shop/orders")
        .stdout_has(&["proxy shop/orders: Paused"]);
    env.expect("/orders", 503);
    env.ok("resume proxy shop/orders")
        .stdout_has(&["proxy shop/orders: Active"]);
    env.expect("/orders", 200);
    env.ok("stop proxy shop/orders")
        .stdout_has(&["proxy shop/orders: Stopped"]);
    env.expect("/orders", 404);
    env.ok("start proxy shop/orders")
        .stdout_has(&["proxy shop/orders: Active"]);
    env.expect("/orders", 200);

    // Endpoints: maintenance fails fast without reaching the backend.
    let hits = be.hits();
    env.ok("pause endpoint shop/be")
        .stdout_has(&["endpoint shop/be: Maintenance"]);
    env.expect("/orders", 503);
    assert_eq!(
        be.hits(),
        hits,
        "an endpoint in maintenance reached the backend"
    );
    env.ok("resume endpoint shop/be")
        .stdout_has(&["endpoint shop/be: Active"]);
    env.expect("/orders", 200);

    // Addresses: add, suspend, activate, remove; traffic follows.
    let r = env.ok(&format!("add address shop/be {}", spare.url()));
    r.stdout_has(&[&format!("endpoint shop/be: added {}", spare.url())]);
    assert_cell(&r, "URL", &spare.url(), "STATE", "Active");
    assert_eq!(env.read(BE, "Addresses").as_array().map(Vec::len), Some(2));
    let r = env.ok(&format!("suspend address shop/be {}", be.url()));
    assert_cell(&r, "URL", &be.url(), "STATE", "Maintenance");
    let (b0, s0) = (be.hits(), spare.hits());
    assert_eq!(env.expect("/orders", 200), "from spare");
    assert_eq!(env.expect("/orders", 200), "from spare");
    assert_eq!((be.hits(), spare.hits()), (b0, s0 + 2));
    let r = env.ok(&format!("activate address shop/be {}", be.url()));
    assert_cell(&r, "URL", &be.url(), "STATE", "Active");
    assert_eq!(env.expect("/orders", 200), "from be");
    let r = env.ok(&format!("remove address shop/be {}", spare.url()));
    assert_eq!(r.table("URL").keys(), [be.url()], "{r}");
    assert_eq!(env.read(BE, "Addresses").as_array().map(Vec::len), Some(1));
    env.run(&format!("remove address shop/be {}", be.url()))
        .expect(1)
        .stderr_has(&["cannot remove the last address of endpoint \"be\""]);
    assert_eq!(env.expect("/orders", 200), "from be");

    // Transports: pause holds new connections, stop releases the port.
    env.ok("pause transport web")
        .stdout_has(&["transport web: Paused"]);
    assert_eq!(env.read(WEB, "State"), "Paused");
    let url = env.conf.url("web", "/orders");
    let http = env.http.clone();
    let waiting = std::thread::spawn(move || http.get(&url).status);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiting.is_finished(),
        "a paused transport served a request"
    );
    env.ok("resume transport web")
        .stdout_has(&["transport web: Started"]);
    assert_eq!(waiting.join().expect("waiting request"), 200);
    env.ok("stop transport web")
        .stdout_has(&["transport web: Stopped"]);
    let port = env.conf.port("web");
    wait_until("the stopped transport to refuse connections", LIMIT, || {
        tcp_refused(port)
    });
    env.ok("start transport web")
        .stdout_has(&["transport web: Started"]);
    env.expect("/orders", 200);

    // Tasks: pause, resume, run now.
    env.ok("pause task shop/nightly")
        .stdout_has(&["task shop/nightly: Paused"]);
    assert_eq!(env.read(NIGHTLY, "State"), "Paused");
    env.ok("resume task shop/nightly")
        .stdout_has(&["task shop/nightly: Scheduled"]);
    assert_eq!(jobs.hits(), 0);
    env.ok("run task shop/nightly")
        .stdout_has(&["task shop/nightly: "]);
    wait_until("the task to have run once", LIMIT, || {
        env.read(NIGHTLY, "Runs") == 1
    });
    assert_eq!(jobs.hits(), 1);

    // Server maintenance: /health answers 503, traffic is still served.
    env.ok("maintenance on").stdout_has(&[
        "server: Maintenance",
        "/health answers 503 so load balancers drain",
    ]);
    assert_eq!(env.m.health().status, 503);
    env.expect("/orders", 200);
    env.ok("maintenance off")
        .stdout_has(&["server: Running", "/health answers 200 again"]);
    assert_eq!(env.m.health().status, 200);

    // Hot deploy switch.
    env.ok("hot-deploy on").stdout_has(&["hot deploy on"]);
    assert_eq!(env.read(MANAGER, "HotDeploy"), true);
    env.ok("hot-deploy").stdout_has(&["hot deploy on"]);
    env.ok("hot-deploy off").stdout_has(&["hot deploy off"]);
    assert_eq!(env.read(MANAGER, "HotDeploy"), false);

    // An object that does not exist: exit 1 with a suggestion, nothing changes.
    env.run("pause proxy shop/ordrs")
        .expect(1)
        .stderr_has(&["no proxy shop/ordrs exists; did you mean proxy shop/orders?"]);
    env.run("stop transport webb")
        .expect(1)
        .stderr_has(&["no transport webb exists; did you mean transport web?"]);
    env.expect("/orders", 200);
}

#[test]
fn generic_bean_commands_beans_info_get_set_exec() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);

    let r = env.ok("beans");
    for name in [
        "esb:type=Server",
        "esb:type=DeploymentManager",
        "esb:name=orders,type=Proxy,unit=shop",
        "esb:name=web,type=Transport",
        "esb:name=other,type=Unit",
    ] {
        assert!(r.stdout.lines().any(|l| l == name), "{name}\n{r}");
    }
    let r = env.ok("beans esb:type=Proxy,*");
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "esb:name=hello,type=Proxy,unit=other",
            "esb:name=orders,type=Proxy,unit=shop"
        ],
        "{r}"
    );
    let r = env.ok("beans nightly");
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["esb:name=nightly,type=Task,unit=shop"],
        "{r}"
    );

    let r = env.ok("info type=Server");
    assert_cell(&r, "ATTRIBUTE", "HotDeploy", "ACCESS", "rw");
    assert_cell(&r, "ATTRIBUTE", "Name", "ACCESS", "r");
    assert_cell(&r, "ATTRIBUTE", "Name", "TYPE", "String");
    assert_cell(&r, "OPERATION", "maintenance", "ARGUMENTS", "on: boolean");

    let r = env.ok("get type=Server");
    assert_field(&r, "Name", "e2e");
    assert_field(&r, "State", "Running");
    assert_field(&r, "HotDeploy", "false");
    assert_eq!(env.ok("get esb:type=Server Name").stdout, "e2e\n");
    let r = env.ok("get type=Server Name Version");
    assert_field(&r, "Name", "e2e");
    assert_field(&r, "Version", "0.1.0");
    let r = env.ok("get esb:type=Proxy,* Path");
    r.stdout_has(&[
        "esb:name=orders,type=Proxy,unit=shop",
        "esb:name=hello,type=Proxy,unit=other",
    ]);
    for path in ["/orders", "/other"] {
        assert!(
            r.stdout.lines().any(|l| l == format!("Path  {path}")),
            "{path}\n{r}"
        );
    }
    env.run("get type=Nope")
        .expect(1)
        .stderr_has(&["no bean esb:type=Nope", "`beans`"]);

    let r = env.ok("set esb:type=Server HotDeploy true");
    assert_eq!(r.stdout, "esb:type=Server HotDeploy: false → true\n", "{r}");
    assert_eq!(env.read(MANAGER, "HotDeploy"), true);
    env.ok("set type=Server HotDeploy false")
        .stdout_has(&["HotDeploy: true → false"]);
    assert_eq!(env.read(SERVER, "HotDeploy"), false);

    // exec: an operation; deployment outcomes print like reload.
    env.ok("exec type=Proxy,unit=shop,name=orders pause");
    assert_eq!(env.read(ORDERS, "State"), "Paused");
    env.expect("/orders", 503);
    env.ok("exec esb:type=Proxy,unit=shop,name=orders resume");
    env.expect("/orders", 200);
    env.write_unit("other", &answer_unit("/other", "o2", "2.0"));
    env.ok(r#"exec esb:type=DeploymentManager batch '["other","shop"]'"#)
        .stdout_has(&["activated other: revision 2", "unchanged shop: revision 1"]);
    assert_eq!(env.expect("/other", 200), "o2");
    // The same as shell words.
    env.write_unit("other", &answer_unit("/other", "o3", "3.0"));
    env.ut()
        .args([
            "exec",
            "type=DeploymentManager",
            "batch",
            r#"["other","shop"]"#,
        ])
        .run()
        .expect(0)
        .stdout_has(&["activated other: revision 3"]);
    assert_eq!(env.expect("/other", 200), "o3");
    let r = env.ok("exec type=DeploymentManager history other");
    assert_cell(&r, "REVISION", "3", "ACTIVE", "true");
    env.run("exec type=DeploymentManager reload nope")
        .expect(1)
        .stdout_has(&["rejected nope"])
        .stderr_has(&["error: exec ", "DeploymentManager reload: rejected"]);
}

#[test]
fn restart_rereads_esb_toml_and_refuses_a_broken_one_with_its_location() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0")),
    );
    let root = env.conf.dir().join("esb.toml");
    let good = std::fs::read_to_string(&root).expect("read esb.toml");

    let broken = format!("{good}\ngarbage = [\n");
    let line = broken.lines().count();
    std::fs::write(&root, &broken).expect("write esb.toml");
    let r = env.run("restart").expect(1);
    r.stdout_has(&[
        "rejected restart: 1 error; nothing changed, the running configuration keeps serving",
        "conf/esb.toml:",
    ]);
    r.stderr_has(&["restart: rejected"]);
    // The location: the line of the open array, or the end of the file right after it.
    let at: usize = r
        .stdout
        .split("conf/esb.toml:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no esb.toml:LINE:COL\n{r}"));
    assert!(
        at == line || at == line + 1,
        "line {at}, expected {line}\n{r}"
    );
    assert_eq!(env.read(SERVER, "Name"), "e2e");

    std::fs::write(
        &root,
        good.replace("name = \"e2e\"", "name = \"e2e-renamed\""),
    )
    .expect("write esb.toml");
    // `restart` answers once the new configuration serves: the next command sees it.
    env.ok("restart")
        .stdout_has(&["restarted in ", "settings changed: server.name"]);
    assert_eq!(env.read(SERVER, "Name"), "e2e-renamed");
    let r = env.ok("status");
    assert!(r.stdout.starts_with("e2e-renamed  Running  up "), "{r}");
    assert_eq!(env.expect("/hello", 200), "v1");
}

// ---------------------------------------------------------------------------------------
// Deployment failures, scripts and --keep-going
// ---------------------------------------------------------------------------------------

#[test]
fn rejected_reload_prints_file_line_col_and_exits_1() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    let (bad, line, col) = broken_shop(&be.url(), &jobs.url());
    env.write_unit("shop", &bad);
    let location = format!("conf/deployments/shop/unit.toml:{line}:{col}: ");

    let r = env.run("reload shop").expect(1);
    r.stdout_has(&[
        "rejected shop: 1 error; nothing changed, the running revision keeps serving",
        &format!(
            "{location}proxy \"orders\": endpoint \"bee\" not found in unit \"shop\"; did you mean \"be\"?\n"
        ),
    ]);
    assert_eq!(r.stderr, "error: reload shop: rejected\n", "{r}");
    assert_eq!(env.read(&unit_bean("shop"), "Revision"), 1);
    assert_eq!(env.expect("/orders", 200), "from be");
    let r = env.ok("status");
    assert_cell(
        &r,
        "UNIT",
        "shop",
        "NOTES",
        "modified on disk, last deploy rejected (1 error)",
    );

    // In a batch, nothing changes, the valid unit included.
    env.write_unit("other", &answer_unit("/other", "o2", "2.0"));
    let r = env.run("reload shop other").expect(1);
    r.stdout_has(&[
        "rejected shop: 1 error",
        &location,
        "rejected other: ",
        "not applied: the batch was rejected because of errors in shop",
        "the batch is all-or-nothing: no unit was changed",
    ]);
    assert_eq!(env.read(&unit_bean("other"), "Revision"), 1);
    assert_eq!(env.expect("/other", 200), "o1");

    // validate and diff point at the same place.
    env.run("validate shop")
        .expect(1)
        .stdout_has(&["invalid shop: 1 error", "shop/unit.toml:"])
        .stderr_has(&["error: shop is not valid"]);
    env.run("diff shop")
        .expect(1)
        .stdout_has(&["invalid shop: its files do not validate"])
        .stderr_has(&["error: cannot diff shop: its files do not validate"]);
    // Fixed, it deploys.
    env.write_unit("shop", &shop_unit(&be.url(), &jobs.url()));
    env.ok("reload shop")
        .stdout_has(&["unchanged shop: revision 1"]);
}

#[test]
fn script_file_with_comments_and_blank_lines_runs_in_order() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    env.write_unit("other", &answer_unit("/other", "o2", "2.0"));
    let script = "\
# Maintenance window for shop.
#   (comments, blank lines and trailing comments are ignored)

pause proxy shop/orders        # stop taking orders

get type=Proxy,unit=shop,name=orders State ; reload other
  # indented comment
exec type=DeploymentManager batch '[\"shop\"]'   # a JSON argument
resume proxy \"shop/orders\"
";
    let file = env.file("window.uterm", script);
    let r = env.ut().arg("-f").arg(&file).run().expect(0);
    let headers: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("==> "))
        .collect();
    assert_eq!(
        headers,
        [
            "pause proxy shop/orders",
            "get type=Proxy,unit=shop,name=orders State",
            "reload other",
            "exec type=DeploymentManager batch '[\"shop\"]'",
            "resume proxy \"shop/orders\"",
        ],
        "{r}"
    );
    // Each command ran after the one before: the get saw the pause.
    let after_get = r
        .stdout
        .split("==> get type=Proxy,unit=shop,name=orders State\n")
        .nth(1)
        .expect("output of get");
    assert!(after_get.starts_with("Paused\n"), "{r}");
    r.stdout_has(&[
        "proxy shop/orders: Paused",
        "activated other: revision 2",
        "unchanged shop: revision 1",
        "proxy shop/orders: Active",
    ]);
    assert!(r.stderr.is_empty(), "{r}");
    assert_eq!(env.read(ORDERS, "State"), "Active");
    assert_eq!(env.expect("/other", 200), "o2");
    let pauses = env
        .m
        .audit()
        .iter()
        .filter(|a| a["what"].to_string().contains("\"pause\""))
        .count();
    assert_eq!(pauses, 1, "the script paused once");

    // The same script from stdin, with `-` and with `-f -`.
    for args in [vec!["-"], vec!["-f", "-"]] {
        let r = env.ut().args(args).stdin(script).run().expect(0);
        assert_eq!(r.stdout.matches("==> ").count(), 5, "{r}");
        r.stdout_has(&["unchanged other: revision 2", "proxy shop/orders: Active"]);
    }
    assert_eq!(env.read(ORDERS, "State"), "Active");
}

/// A script whose second command fails (a rejected reload) after the first changed state.
fn failing_script(env: &Env, be: &Backend, jobs: &Backend) -> PathBuf {
    let (bad, ..) = broken_shop(&be.url(), &jobs.url());
    env.write_unit("shop", &bad);
    env.file(
        "failing.uterm",
        "maintenance on\n\n# the reload is rejected\nreload shop\npause proxy shop/orders\n",
    )
}

#[test]
fn failure_in_the_middle_of_a_script_stops_there() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    let file = failing_script(&env, &be, &jobs);

    let r = env.ut().arg("-f").arg(&file).run().expect(1);
    r.stdout_has(&[
        "==> maintenance on",
        "server: Maintenance",
        "==> reload shop",
        "rejected shop: 1 error",
    ]);
    assert!(!r.stdout.contains("==> pause"), "{r}");
    r.stderr_has(&[
        "error: line 4: reload shop: rejected",
        "uterm: stopped; 1 command not run (--keep-going runs them anyway)",
    ]);
    // On the server: the first command ran, the third did not.
    assert_eq!(env.read(SERVER, "State"), "Maintenance");
    assert_eq!(env.read(ORDERS, "State"), "Active");
    assert_eq!(env.expect("/orders", 200), "from be");
    assert_eq!(env.read(&unit_bean("shop"), "Revision"), 1);
}

#[test]
fn keep_going_runs_the_rest_and_exits_1() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    let file = failing_script(&env, &be, &jobs);

    let r = env
        .ut()
        .arg("--keep-going")
        .arg("-f")
        .arg(&file)
        .run()
        .expect(1);
    r.stdout_has(&[
        "==> maintenance on",
        "==> reload shop",
        "rejected shop: 1 error",
        "==> pause proxy shop/orders",
        "proxy shop/orders: Paused",
    ]);
    r.stderr_has(&["error: line 4: reload shop: rejected"]);
    assert!(!r.stderr.contains("stopped"), "{r}");
    assert_eq!(env.read(SERVER, "State"), "Maintenance");
    assert_eq!(env.read(ORDERS, "State"), "Paused");
    env.expect("/orders", 503);

    // Two failures and successes between them: still 1, every command ran.
    let r = env
        .ut()
        .arg("--keep-going")
        .c("show proxy shop/nope; resume proxy shop/orders; reload shop; maintenance off")
        .run()
        .expect(1);
    assert_eq!(r.stdout.matches("==> ").count(), 4, "{r}");
    assert_eq!(r.stderr.matches("error: line").count(), 2, "{r}");
    assert_eq!(env.read(ORDERS, "State"), "Active");
    assert_eq!(env.read(SERVER, "State"), "Running");
}

#[test]
fn json_output_is_one_parsable_document_per_command() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    env.expect("/orders", 200);
    let commands = [
        "status",
        "list proxies",
        "show proxy shop/orders",
        "reload shop",
        "pause proxy shop/orders",
        "resume proxy shop/orders",
        "get type=Server Name",
        "history shop",
        "events --recent 3",
        "beans shop",
        "hot-deploy",
        "validate shop",
        "diff shop",
        "info type=Server",
        "help",
    ];
    let r = env
        .ut()
        .arg("--json")
        .c(&commands.join("\n"))
        .run()
        .expect(0);
    assert!(r.stderr.is_empty(), "{r}");
    let docs = r.json_lines();
    assert_eq!(docs.len(), commands.len(), "{r}");
    for (doc, cmd) in docs.iter().zip(commands) {
        assert_eq!(doc["command"], cmd, "{doc:#}");
        assert_eq!(doc["ok"], true, "{doc:#}");
        assert!(doc.get("result").is_some(), "{doc:#}");
    }
    let status = &docs[0]["result"];
    assert_eq!(status["server"]["Name"], "e2e", "{status:#}");
    assert_eq!(status["server"]["Requests"], 1, "{status:#}");
    assert!(
        status["deployment_manager"]["Units"].is_array(),
        "{status:#}"
    );
    let units = status["units"].as_array().expect("units");
    let shop = units
        .iter()
        .find(|u| u["name"] == "shop")
        .expect("unit shop");
    assert_eq!(shop["mbean"], "esb:name=shop,type=Unit", "{shop:#}");
    assert_eq!(shop["State"], "Active");
    let proxies = docs[1]["result"].as_array().expect("list is an array");
    let orders = proxies
        .iter()
        .find(|p| p["name"] == "orders")
        .expect("proxy orders");
    assert_eq!(orders["unit"], "shop");
    assert_eq!(orders["Path"], "/orders");
    assert_eq!(orders["Requests"], 1);
    assert_eq!(docs[2]["result"]["State"], "Active");
    assert_eq!(docs[3]["result"]["outcome"], "unchanged");
    assert_eq!(docs[3]["result"]["revision"], 1);
    assert_eq!(docs[4]["result"]["state"], "Paused");
    assert_eq!(docs[5]["result"]["state"], "Active");
    assert_eq!(docs[6]["result"], "e2e");
    assert_eq!(docs[7]["result"][0]["active"], true);
    assert!(docs[8]["result"].is_array(), "{:#}", docs[8]);
    assert!(docs[9]["result"]
        .as_array()
        .is_some_and(|b| b.contains(&json!("esb:name=orders,type=Proxy,unit=shop"))));
    assert_eq!(docs[10]["result"], json!({"hot_deploy": false}));
    assert_eq!(docs[11]["result"]["valid"], true);

    // A rejected reload: ok false, exit 1, the outcome with every error; the script stops.
    let (bad, line, col) = broken_shop(&be.url(), &jobs.url());
    env.write_unit("shop", &bad);
    let r = env
        .ut()
        .arg("--json")
        .c("reload shop; status")
        .run()
        .expect(1);
    assert!(r.stderr.is_empty(), "{r}");
    let docs = r.json_lines();
    assert_eq!(docs.len(), 1, "{r}");
    let d = &docs[0];
    assert_eq!(
        (d["ok"].clone(), d["exit"].clone()),
        (json!(false), json!(1)),
        "{d:#}"
    );
    assert_eq!(d["error"]["message"], "reload shop: rejected");
    assert_eq!(d["result"]["outcome"], "rejected");
    let e = &d["result"]["errors"][0];
    assert!(
        e["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("deployments/shop/unit.toml")),
        "{e:#}"
    );
    assert_eq!(
        (e["line"].clone(), e["col"].clone()),
        (json!(line), json!(col)),
        "{e:#}"
    );

    // --keep-going: a document for every command.
    let r = env
        .ut()
        .args(["--json", "--keep-going"])
        .c("reload shop; status")
        .run()
        .expect(1);
    let docs = r.json_lines();
    assert_eq!(docs.len(), 2, "{r}");
    assert_eq!(docs[1]["ok"], true);

    // A usage error: a document with the suggestion, nothing ran.
    let r = env
        .ut()
        .arg("--json")
        .c("pause proxy shop/orders; relaod shop")
        .run()
        .expect(2);
    assert!(r.stderr.is_empty(), "{r}");
    let docs = r.json_lines();
    assert_eq!(docs.len(), 1, "{r}");
    assert_eq!(docs[0]["exit"], 2);
    assert_eq!(docs[0]["line"], 1);
    assert_eq!(docs[0]["command"], "relaod shop");
    assert_eq!(docs[0]["error"]["suggestion"], "reload shop");
    assert_eq!(env.read(ORDERS, "State"), "Active");
}

// ---------------------------------------------------------------------------------------
// Usage errors (2), connection and authorisation errors (3)
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_command_exits_2_with_a_suggestion_and_runs_nothing() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);

    let r = env.run("relaod shop").expect(2);
    assert!(r.stdout.is_empty(), "{r}");
    assert_eq!(
        r.stderr, "error: unknown command \"relaod\"; did you mean `reload shop`?\n",
        "{r}"
    );
    // As shell words too, and without any server: nothing is sent.
    let closed = ClosedPort::new();
    Uterm::connected(&closed.url(), "t")
        .args(["relaod", "shop"])
        .run()
        .expect(2)
        .stderr_has(&["did you mean `reload shop`?"]);

    // A typo on line 5 of a script: reported with its line and the usage; line 1 never ran.
    let file = env.file(
        "typo.uterm",
        "pause proxy shop/orders\n# then\n\nstatus\nlist proxis shop\n",
    );
    let r = env.ut().arg("-f").arg(&file).run().expect(2);
    assert!(r.stdout.is_empty(), "{r}");
    r.stderr_has(&[
        "error: line 5: cannot list \"proxis\"; did you mean `list proxies shop`?",
        "usage: list units|proxies|endpoints|transports|tasks|consumers [UNIT]",
        "uterm: nothing was run",
    ]);
    assert_eq!(env.read(ORDERS, "State"), "Active");
    env.expect("/orders", 200);

    // An element named without its kind: the forms it could mean.
    env.run("pause shop/orders").expect(2).stderr_has(&[
        "`pause proxy shop/orders` or `pause endpoint shop/orders` or `pause task shop/orders`",
        "usage: pause [unit] UNIT [--hold MS]",
    ]);
    env.run("reload").expect(2);
    assert_eq!(env.read(ORDERS, "State"), "Active");
}

#[test]
fn unreachable_server_exits_3_naming_the_url() {
    let closed = ClosedPort::new();
    let url = closed.url();
    let r = Uterm::connected(&url, "t").c("status").run().expect(3);
    assert!(r.stdout.is_empty(), "{r}");
    r.stderr_has(&[
        &format!("error: cannot connect to {url}: "),
        "is esb running?",
        "--url or ESB_URL",
    ]);
    // `host:port` alone is fine, and names the URL it made of it.
    let bare = format!("127.0.0.1:{}", closed.port());
    Uterm::connected(&bare, "t")
        .c("list units")
        .run()
        .expect(3)
        .stderr_has(&[&format!("cannot connect to {url}")]);

    // A script stops at once, even with --keep-going.
    let r = Uterm::connected(&url, "t")
        .arg("--keep-going")
        .c("status; pause shop; status")
        .run()
        .expect(3);
    assert_eq!(r.stdout.matches("==> ").count(), 1, "{r}");
    assert_eq!(r.stderr.matches("cannot connect").count(), 1, "{r}");
    r.stderr_has(&["uterm: stopped; 2 commands not run"]);

    // A server that accepts the connection and never answers: 3 after --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    Uterm::connected(&silent_url, "t")
        .args(["--timeout", "1"])
        .c("status")
        .run()
        .expect(3)
        .stderr_has(&[&format!("{silent_url}/jolokia did not answer within 1 s")]);
    drop(silent);

    // --json: one document with exit 3, nothing on stderr.
    let r = Uterm::connected(&url, "t")
        .arg("--json")
        .c("status; status")
        .run()
        .expect(3);
    assert!(r.stderr.is_empty(), "{r}");
    let docs = r.json_lines();
    assert_eq!(docs.len(), 1, "{r}");
    assert_eq!(docs[0]["exit"], 3);
    assert!(
        docs[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&url)),
        "{r}"
    );
}

#[test]
fn wrong_token_exits_3_naming_where_the_token_is_looked_for() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    let url = env.url();

    let r = Uterm::connected(&url, "not-the-token")
        .arg("--keep-going")
        .c("status; pause proxy shop/orders")
        .run()
        .expect(3);
    r.stderr_has(&[
        &format!("error: line 1: not authorised by {url}: HTTP 401"),
        "the token from --token/ESB_TOKEN was refused",
        "control.token",
    ]);
    assert!(!r.stdout.contains("==> pause"), "{r}");

    // From a file: the file is named.
    let wrong = env.file("wrong.token", "not-the-token\n");
    Uterm::new()
        .args(["--url", &url, "--token-file"])
        .arg(&wrong)
        .c("status")
        .run()
        .expect(3)
        .stderr_has(&[&format!(
            "the token from file {} was refused",
            wrong.display()
        )]);
    let missing = env.conf.root().join("missing.token");
    Uterm::new()
        .args(["--url", &url, "--token-file"])
        .arg(&missing)
        .c("status")
        .run()
        .expect(3)
        .stderr_has(&[&format!("cannot read the token file {}", missing.display())]);

    // No token anywhere: every place looked at is listed.
    Uterm::new()
        .args(["--url", &url])
        .c("status")
        .run()
        .expect(3)
        .stderr_has(&[
            "no token was found (looked in var/control.token, conf/../var/control.token, \
             the state_dir of conf/esb.toml)",
            "--token / ESB_TOKEN, --token-file / ESB_TOKEN_FILE or --state-dir / ESB_STATE_DIR",
            "pick it with --server",
        ]);

    // The monitor token reads, and is refused for changes.
    let monitor = Uterm::connected(&url, &env.m.monitor);
    monitor.clone().c("status").run().expect(0);
    monitor
        .c("pause proxy shop/orders")
        .run()
        .expect(3)
        .stderr_has(&["not authorised", "control role", "monitor"]);
    assert_eq!(env.read(ORDERS, "State"), "Active");
    env.expect("/orders", 200);
}

#[test]
fn connection_from_environment_and_token_files() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    let url = env.url();
    let token_file = env.conf.state_dir().join("control.token");

    // ESB_URL and ESB_TOKEN.
    let r = Uterm::new()
        .env("ESB_URL", &url)
        .env("ESB_TOKEN", &env.m.control)
        .c("pause proxy shop/orders")
        .run()
        .expect(0);
    r.stdout_has(&["proxy shop/orders: Paused"]);
    assert_eq!(env.read(ORDERS, "State"), "Paused");

    // ESB_TOKEN_FILE (an empty ESB_TOKEN counts as unset).
    Uterm::new()
        .env("ESB_URL", &url)
        .env("ESB_TOKEN", "")
        .env("ESB_TOKEN_FILE", &token_file)
        .c("resume proxy shop/orders")
        .run()
        .expect(0);
    assert_eq!(env.read(ORDERS, "State"), "Active");

    // --token-file, and --url winning over ESB_URL.
    let closed = ClosedPort::new();
    Uterm::new()
        .env("ESB_URL", closed.url())
        .args(["--url", &url, "--token-file"])
        .arg(&token_file)
        .c("stop proxy shop/orders")
        .run()
        .expect(0);
    assert_eq!(env.read(ORDERS, "State"), "Stopped");
    env.expect("/orders", 404);

    // Found without being named: from the directory holding conf/ (the state_dir named by
    // conf/esb.toml), and from var/control.token.
    Uterm::new()
        .args(["--url", &url])
        .cwd(env.conf.root())
        .c("start proxy shop/orders")
        .run()
        .expect(0);
    assert_eq!(env.read(ORDERS, "State"), "Active");
    let checkout = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(checkout.path().join("var")).expect("mkdir var");
    std::fs::copy(&token_file, checkout.path().join("var/control.token")).expect("copy token");
    Uterm::new()
        .env("ESB_URL", &url)
        .cwd(checkout.path())
        .c("maintenance on")
        .run()
        .expect(0);
    assert_eq!(env.read(SERVER, "State"), "Maintenance");
    assert_eq!(env.m.health().status, 503);
}

// ---------------------------------------------------------------------------------------
// events --follow and offline validation
// ---------------------------------------------------------------------------------------

/// The live stream starts when the follower has connected: pokes the server with a harmless
/// state event until the follower prints one.
fn wait_following(env: &Env, f: &mut Follower) {
    let deadline = Instant::now() + LIMIT;
    loop {
        env.m.exec_ok(SERVER, "maintenance", json!([false]));
        if f.try_line(Duration::from_millis(300), |l| l.contains("state_changed"))
            .is_some()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the follower printed no event: {:?}\n{}",
            f.seen(),
            f.stderr()
        );
    }
}

#[test]
fn events_follow_sees_a_reload() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0")),
    );
    let mut human = env.ut().c("events --follow").spawn();
    let mut machine = Uterm::new()
        .env("ESB_URL", env.url())
        .env("ESB_TOKEN", &env.m.control)
        .args(["--json", "-c", "events --follow"])
        .spawn();
    wait_following(&env, &mut human);
    wait_following(&env, &mut machine);

    env.write_unit("app", &answer_unit("/hello", "v2", "2.0"));
    env.ok("reload app");
    let line = human.wait_line("with unit_activated", LIMIT, |l| {
        l.contains("unit_activated")
    });
    assert!(line.contains("app revision 2 (2.0)"), "{line}");
    let line = machine.wait_line("with unit_activated", LIMIT, |l| {
        l.contains("unit_activated")
    });
    let ev: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(ev["type"], "unit_activated", "{ev:#}");
    assert_eq!(ev["unit"], "app", "{ev:#}");
    assert_eq!(ev["revision"], 2, "{ev:#}");
    assert!(ev["id"].is_number() || ev["id"].is_string(), "{ev:#}");

    // A rejected reload shows too, with the error's location.
    env.write_unit(
        "app",
        "version = \"3\"\n[[proxy]]\nname = \"hello\"\npath = \"/hello\"\nsequence = \"gone\"\n",
    );
    env.run("reload app").expect(1);
    human.wait_line("with unit_rejected", LIMIT, |l| l.contains("unit_rejected"));
    human.wait_line("with the error's location", LIMIT, |l| {
        l.contains("app/unit.toml:5:")
    });
    // Still following; nothing on stderr.
    assert_eq!(human.exited(), None);
    assert_eq!(machine.exited(), None);
    assert!(human.stderr().is_empty(), "{}", human.stderr());
}

#[test]
fn validate_dir_works_offline() {
    // No esb anywhere: the URL refuses connections, so any request would fail with 3.
    let closed = ClosedPort::new();
    let offline = || Uterm::connected(&closed.url(), "t");
    let conf = TempConf::new()
        .http("web")
        .unit("app", &answer_unit("/hello", "v1", "1.0"))
        .unit("other", &answer_unit("/other", "o1", "1.0"));
    let dir = conf.dir();
    let validate = |d: &Path| {
        offline()
            .c(&format!("validate --dir {}", d.display()))
            .run()
    };

    let r = validate(&dir).expect(0);
    r.stdout_has(&["✓ app (", "✓ other ("]);
    assert!(r.stderr.is_empty(), "{r}");
    validate(&conf.unit_dir("app"))
        .expect(0)
        .stdout_has(&["✓ app ("]);
    offline().c("help validate").run().expect(0);

    // A broken unit: exit 1, its location.
    let conf = conf.unit(
        "broken",
        "version = \"1\"\n\n[[proxy]]\nname = \"p\"\npath = \"/p\"\nendpoint = \"nowhere\"\n",
    );
    let r = validate(&dir).expect(1);
    r.stdout_has(&["✓ app (", "✗ broken", "broken/unit.toml:6:12: "]);
    r.stderr_has(&["error: validation failed: 1 unit with errors"]);
    validate(&conf.unit_dir("broken"))
        .expect(1)
        .stdout_has(&["broken/unit.toml:6:12: "]);
    let r = offline()
        .arg("--json")
        .c(&format!("validate --dir {}", dir.display()))
        .run()
        .expect(1);
    let docs = r.json_lines();
    assert_eq!(docs[0]["result"]["ok"], false, "{r}");

    // Neither a conf directory nor a unit directory.
    validate(conf.root())
        .expect(1)
        .stderr_has(&["is neither a conf directory", "validate --dir conf"]);
}

// ---------------------------------------------------------------------------------------
// Regressions: script continuations, following events across a warm restart, diffs of
// unchanged units, suggestions for misspelt units.
// ---------------------------------------------------------------------------------------

#[test]
fn script_line_continuation_joins_the_lines() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    env.write_unit("other", &answer_unit("/other", "o2", "2.0"));
    // docs/uterm.md: "a backslash escapes the next character (and a line ending, to
    // continue a command)".
    let script =
        "exec type=DeploymentManager batch \\\n    '[\"other\"]'\nresume proxy \\\n  shop/orders\n";
    let r = env.ut().args(["-f", "-"]).stdin(script).run();
    assert_eq!(r.code, 0, "{r}");
    r.stdout_has(&[
        "==> exec type=DeploymentManager batch '[\"other\"]'\n",
        "activated other: revision 2",
        "==> resume proxy shop/orders\n",
        "proxy shop/orders: Active",
    ]);
    assert_eq!(env.expect("/other", 200), "o2");
}

#[test]
fn events_follow_resumes_after_a_warm_restart_without_replaying() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0")),
    );
    let mut f = env.ut().c("events --follow").spawn();
    wait_following(&env, &mut f);
    env.ok("restart");
    f.wait_line("with server_stopping", LIMIT, |l| {
        l.contains("server_stopping")
    });
    // Once the restarted server answers, one new event must arrive, once.
    wait_until("the restarted server to answer", LIMIT, || {
        env.m
            .control("POST", "/jolokia")
            .json(&json!({"type": "read", "mbean": SERVER, "attribute": "Name"}))
            .timeout(Duration::from_secs(2))
            .try_send()
            .is_ok_and(|r| r.status == 200)
    });
    env.ok("hot-deploy on");
    f.wait_line("with hot deploy on", LIMIT, |l| l.contains("hot deploy on"));
    let _ = f.try_line(Duration::from_millis(1500), |_| false);
    let count = |what: &str| f.seen().iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        (
            count("server_stopping"),
            count("server_started"),
            count("hot deploy on")
        ),
        (1, 1, 1),
        "every event once, nothing replayed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        f.seen().join("\n"),
        f.stderr()
    );
    assert!(
        f.stderr().contains("uterm: events: reconnected"),
        "{}",
        f.stderr()
    );
    assert_eq!(f.exited(), None);
}

#[test]
fn diff_of_an_unchanged_unit_says_there_are_no_changes() {
    let env = Env::start(
        TempConf::new()
            .http("web")
            .unit("app", &answer_unit("/hello", "v1", "1.0")),
    );
    let r = env.ok("diff app");
    assert!(!r.stdout.contains("a reload would apply this"), "{r}");
    r.stdout_has(&["no changes"]);
}

#[test]
fn deployment_commands_on_a_misspelt_unit_suggest_the_unit() {
    let be = Backend::fixed(200, "from be").start();
    let jobs = Backend::fixed(200, "job done").start();
    let env = Env::shop(&be, &jobs);
    // `history shpo` already does: "no unit \"shpo\"; did you mean \"shop\"?".
    env.run("history shpo")
        .expect(1)
        .stderr_has(&["did you mean \"shop\"?"]);
    for cmd in ["load shpo", "reload shpo", "unload shpo", "rollback shpo"] {
        env.run(cmd)
            .expect(1)
            .stderr_has(&["did you mean \"shop\"?"]);
    }
}

//! The management side under hostile conditions, end to end with a real `esb`: secrets in
//! `state_dir` are private (audit log, tokens, the directory itself) and deploy contents are
//! audited as a hash, never as text; weak or tampered token files stop the start-up;
//! refused attempts (no credentials, foreign `Origin`/`Host`) are audited and logged, with a
//! rate limit; state changes are refused while the audit log cannot be written (reads go
//! on); and every state change has exactly one audit record whoever caused it (endpoint,
//! hot deployer, SIGHUP) while reads (diff, history, validate) have none.

use e2e::mgmt_client::Mgmt;
use e2e::uterm::Uterm;
use e2e::{wait_for, wait_until, Backend, Esb, EsbOptions, TempConf};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);
const UNIT: &str = "esb:type=Unit,name=shop";
const PROXY: &str = "esb:type=Proxy,unit=shop,name=orders";
const SERVER: &str = "esb:type=Server";
const MANAGER: &str = "esb:type=DeploymentManager";
/// A secret that travels in a deployed unit (a header value for the backend).
const API_KEY: &str = "sk_live_9f8e7d6c5b4a39281706";

fn shop_unit(backend: &str, version: &str) -> String {
    format!(
        r#"version = "{version}"

[[proxy]]
name = "orders"
path = "/orders"
sequence = "sign"
endpoint = "be"

[[sequence]]
name = "sign"
steps = [{{ set_header = {{ name = "x-api-key", value = "{API_KEY}" }} }}]

[[endpoint]]
name = "be"
addresses = ["{backend}"]
"#
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a unit file atomically (a temporary file renamed into place), so the hot
/// deployer never sees it half-written.
fn write_unit_atomically(conf: &TempConf, unit: &str, toml: &str) {
    let tmp = conf.root().join(format!(".{unit}.toml.tmp"));
    std::fs::write(&tmp, toml).expect("write temporary unit file");
    std::fs::create_dir_all(conf.unit_dir(unit)).expect("mkdir unit");
    std::fs::rename(&tmp, conf.unit_dir(unit).join("unit.toml")).expect("rename unit file");
}

/// Pre-creates `state_dir/<name>` with `contents` and `mode` before esb starts.
fn seed_state_file(conf: &TempConf, name: &str, contents: &str, mode: u32) {
    std::fs::create_dir_all(conf.state_dir()).expect("mkdir state");
    let path = conf.state_dir().join(name);
    std::fs::write(&path, contents).expect("seed state file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn records_by(m: &Mgmt, by: &str) -> Vec<Value> {
    m.audit().into_iter().filter(|r| r["by"] == by).collect()
}

fn unit_revision(m: &Mgmt) -> u64 {
    m.read(UNIT, "Revision").as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// 1. Secrets in state_dir
// ---------------------------------------------------------------------------------------

#[test]
fn state_dir_files_are_private_and_deploy_content_is_audited_as_a_hash() {
    let be = Backend::fixed(200, "ok").start();
    let conf = TempConf::new().http("web");
    let esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    let content = shop_unit(&be.url(), "1.0");
    let o = m.exec_ok(MANAGER, "deploy", json!(["shop", content]));
    assert_eq!(o["outcome"], "activated", "{o:#}");

    let state = conf.state_dir();
    assert_eq!(mode(&state), 0o700, "state_dir");
    for f in ["control.token", "monitor.token", "audit.log"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    let text = std::fs::read_to_string(state.join("audit.log")).expect("audit.log");
    assert!(
        !text.contains(API_KEY) && !text.contains("x-api-key"),
        "the audit log holds the deployed content: {text}"
    );
    let records = m.audit();
    assert_eq!(records.len(), 1, "{records:#?}");
    let args = &records[0]["what"]["arguments"];
    assert_eq!(args[0], "shop", "{:#}", records[0]);
    assert_eq!(
        args[1],
        json!({"sha256": sha256_hex(&content), "bytes": content.len()}),
        "{:#}",
        records[0]
    );
    drop(esb);
}

#[test]
fn loose_token_files_are_tightened_with_a_warning() {
    let conf = TempConf::new().http("web");
    seed_state_file(
        &conf,
        "control.token",
        "c0ntrol-token-0123456789abcdef\n",
        0o644,
    );
    seed_state_file(
        &conf,
        "monitor.token",
        "m0nitor-token-0123456789abcdef\n",
        0o640,
    );
    let esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    assert_eq!(m.control, "c0ntrol-token-0123456789abcdef", "token kept");
    for f in ["control.token", "monitor.token"] {
        assert_eq!(mode(&conf.state_dir().join(f)), 0o600, "{f}");
        let line = wait_for(
            &format!("a warning about {f}"),
            LIMIT,
            || {
                esb.log()
                    .lines()
                    .find(|l| l.contains(f) && l.contains("readable"))
                    .map(str::to_owned)
            },
            || esb.log(),
        );
        assert!(
            line.contains("WARN") && line.contains("0600"),
            "a warning names the loose file and its new mode: {line}"
        );
    }
}

#[test]
fn weak_or_others_writable_token_files_stop_the_start_up() {
    // A 4-character token: refused with the file named and what to do.
    let conf = TempConf::new().http("web");
    seed_state_file(&conf, "control.token", "abcd\n", 0o600);
    let mut esb = Esb::spawn(&conf, &EsbOptions::default());
    let status = esb.wait(LIMIT);
    assert!(!status.success(), "esb started with a 4-character token");
    let log = esb.log();
    assert!(
        log.contains("state/control.token") && log.contains("at least 16"),
        "the error names the file and the minimum length:\n{log}"
    );
    assert!(
        log.to_lowercase().contains("delete the file"),
        "the error says what to do:\n{log}"
    );

    // A token file anyone may have written: refused, not silently fixed.
    let conf = TempConf::new().http("web");
    seed_state_file(
        &conf,
        "monitor.token",
        "m0nitor-token-0123456789abcdef\n",
        0o666,
    );
    let mut esb = Esb::spawn(&conf, &EsbOptions::default());
    let status = esb.wait(LIMIT);
    assert!(!status.success(), "esb started with a world-writable token");
    let log = esb.log();
    assert!(
        log.contains("state/monitor.token") && log.contains("writable by group or others"),
        "the error names the file and why:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Refused attempts and fail-closed auditing
// ---------------------------------------------------------------------------------------

#[test]
fn refused_attempts_are_audited_logged_and_rate_limited() {
    let conf = TempConf::new().http("web");
    // The generated esb.toml has [management] last but for [hot_deploy] and transports.
    let root = conf.dir().join("esb.toml");
    let text = std::fs::read_to_string(&root).unwrap();
    std::fs::write(
        &root,
        text.replacen(
            "[management]\n",
            "[management]\naudit_refused_per_second = 2\n",
            1,
        ),
    )
    .unwrap();
    let esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    let pause =
        json!({"type": "exec", "mbean": SERVER, "operation": "maintenance", "arguments": [true]});

    // No credentials (a guessed token must not end up in the audit log).
    let r = m
        .request("POST", "/jolokia")
        .bearer("guessed-token-value-42")
        .json(&pause)
        .send();
    assert_eq!(r.status, 401);
    // A foreign Origin, with a valid token.
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", "http://evil.example")
        .json(&pause)
        .send();
    assert_eq!(r.status, 403);
    // A foreign Host (DNS rebinding).
    let r = m
        .control("POST", "/jolokia")
        .header("Host", &format!("rebind.example:{}", conf.mgmt_port()))
        .json(&pause)
        .send();
    assert_eq!(r.status, 403);

    let refused = |m: &Mgmt| -> Vec<Value> {
        m.audit()
            .into_iter()
            .filter(|r| r["kind"] == "refused")
            .collect()
    };
    let seen = wait_for(
        "three refused-attempt records",
        LIMIT,
        || Some(refused(&m)).filter(|r| r.len() >= 3),
        || format!("{:#?}", m.audit()),
    );
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let reasons: Vec<&str> = seen.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["unauthenticated", "origin", "host"], "{seen:#?}");
    for r in &seen {
        assert_eq!(
            r["status"].as_u64(),
            Some(if r["reason"] == "unauthenticated" {
                401
            } else {
                403
            })
        );
        assert!(
            r["from"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{r:#}"
        );
        assert_eq!(r["what"]["method"], "POST", "{r:#}");
        assert_eq!(r["what"]["path"], "/jolokia", "{r:#}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r:#}");
    }
    assert!(seen[1]["error"].as_str().unwrap().contains("evil.example"));
    assert!(seen[2]["error"]
        .as_str()
        .unwrap()
        .contains("rebind.example"));
    let audit_text = std::fs::read_to_string(conf.state_dir().join("audit.log")).unwrap();
    assert!(
        !audit_text.contains("guessed-token-value-42"),
        "{audit_text}"
    );
    assert!(!audit_text.contains(&m.control), "{audit_text}");
    let line = esb.wait_log("refused", LIMIT);
    assert!(line.contains("WARN"), "{line}");
    assert!(!esb.log().contains("guessed-token-value-42"));
    assert_eq!(m.read(SERVER, "State"), "Running", "nothing changed");

    // A burst of unauthenticated attempts: at most 2 records a second, the rest summed up
    // in "suppressed" records, none lost.
    let burst = 40;
    for _ in 0..burst {
        let r = m.request("POST", "/jolokia").json(&pause).send();
        assert_eq!(r.status, 401);
    }
    let count = |m: &Mgmt| -> (u64, u64) {
        let a = m.audit();
        let recorded = a
            .iter()
            .filter(|r| r["kind"] == "refused" && r["reason"] == "unauthenticated")
            .count() as u64;
        let suppressed = a
            .iter()
            .filter(|r| r["kind"] == "suppressed" && r["reason"] == "unauthenticated")
            .map(|r| r["count"].as_u64().unwrap())
            .sum::<u64>();
        (recorded, suppressed)
    };
    let (recorded, suppressed) = wait_for(
        "every unauthenticated attempt recorded or counted as suppressed",
        LIMIT,
        || Some(count(&m)).filter(|(r, s)| r + s == burst + 1),
        || format!("{:?}\n{:#?}", count(&m), m.audit()),
    );
    assert!(
        suppressed > 0,
        "no attempt was suppressed: {recorded} recorded"
    );
    assert!(recorded < burst, "{recorded} records for {burst} attempts");
    let summary = m
        .audit()
        .into_iter()
        .find(|r| r["kind"] == "suppressed")
        .unwrap();
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.contains("suppressed")),
        "{summary:#}"
    );

    // What the client chose is cut short in the record: an 8 KiB Origin costs ~256 bytes.
    let huge = format!("http://{}.example", "x".repeat(8 << 10));
    let r = m
        .control("POST", "/jolokia")
        .header("Origin", &huge)
        .json(&pause)
        .send();
    assert_eq!(r.status, 403);
    let record = wait_for(
        "the record of the huge Origin",
        LIMIT,
        || {
            m.audit().into_iter().find(|r| {
                r["reason"] == "origin"
                    && r["what"]["origin"]
                        .as_str()
                        .is_some_and(|o| o.starts_with("http://xxx"))
            })
        },
        || format!("{:#?}", m.audit()),
    );
    let line = record.to_string();
    assert!(line.len() < 1024, "{} bytes: {line}", line.len());
}

#[test]
fn state_changes_are_refused_while_the_audit_log_cannot_be_written() {
    let be = Backend::fixed(200, "ok").start();
    let conf = TempConf::new()
        .http("web")
        .unit("shop", &shop_unit(&be.url(), "1.0"));
    let esb = Esb::start(&conf);
    let m = Mgmt::of(&conf);
    // audit.log becomes something that cannot be appended to (root ignores modes).
    let audit = conf.state_dir().join("audit.log");
    let _ = std::fs::remove_file(&audit);
    std::fs::create_dir(&audit).expect("mkdir audit.log");

    let env = m.exec(PROXY, "pause", json!([]));
    assert_eq!(env["status"], 503, "{env:#}");
    let error = env["error"].as_str().unwrap();
    assert!(
        error.contains("state/audit.log cannot be written")
            && error.contains("state changes are refused until it can"),
        "{error}"
    );
    // The operator's tool says so too.
    let url = conf.mgmt_url("");
    let run = Uterm::connected(&url, &m.control)
        .c("pause proxy shop/orders")
        .run()
        .expect(1);
    run.stderr_has(&["audit.log cannot be written", "state changes are refused"]);
    let hot_deploy = m.read(SERVER, "HotDeploy");
    let flipped = !hot_deploy.as_bool().unwrap();
    let env = m.jolokia(
        &json!({"type": "write", "mbean": SERVER, "attribute": "HotDeploy", "value": flipped}),
    );
    assert_eq!(env["status"], 503, "{env:#}");
    // Nothing changed, and reads (including read-only operations) keep working.
    assert_eq!(m.read(PROXY, "State"), "Active");
    assert_eq!(m.read(SERVER, "HotDeploy"), hot_deploy);
    let diff = m.exec(MANAGER, "diff", json!(["shop"]));
    assert_eq!(diff["status"], 200, "{diff:#}");
    // SIGHUP is a state change too: refused while the audit log is unwritable.
    write_unit_atomically(&conf, "shop", &shop_unit(&be.url(), "2.0"));
    esb.sighup();
    let line = esb.wait_log("SIGHUP ignored", LIMIT);
    assert!(
        line.contains("ERROR") && line.contains("state changes are refused"),
        "{line}"
    );
    assert_eq!(unit_revision(&m), 1);

    // Writable again: changes go through and are audited.
    std::fs::remove_dir(&audit).unwrap();
    m.exec_ok(PROXY, "pause", json!([]));
    assert_eq!(m.read(PROXY, "State"), "Paused");
    let records = m.audit();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["what"]["operation"], "pause");
    assert_eq!(mode(&audit), 0o600);
}

// ---------------------------------------------------------------------------------------
// 3. One audit record per state change, whoever caused it; none for reads
// ---------------------------------------------------------------------------------------

#[test]
fn every_state_change_has_one_audit_record_naming_its_cause_and_reads_none() {
    let be = Backend::fixed(200, "ok").start();
    let conf = TempConf::new()
        .http("web")
        .unit("shop", &shop_unit(&be.url(), "1.0"));
    let esb = Esb::start_with(
        &conf,
        EsbOptions {
            no_watch: false,
            ..EsbOptions::default()
        },
    );
    let m = Mgmt::of(&conf);
    esb.wait_log("hot deployer watching", LIMIT);

    // 1. The hot deployer picks up an edit.
    write_unit_atomically(&conf, "shop", &shop_unit(&be.url(), "1.1"));
    wait_until("revision 2 from the hot deployer", LIMIT, || {
        unit_revision(&m) == 2
    });
    let hd = wait_for(
        "the hot deployer's audit record",
        LIMIT,
        || Some(records_by(&m, "hot-deployer")).filter(|r| !r.is_empty()),
        || format!("{:#?}", m.audit()),
    );
    assert_eq!(hd.len(), 1, "{hd:#?}");
    assert_eq!(hd[0]["result"], "ok", "{:#}", hd[0]);
    assert_eq!(hd[0]["revision_before"], 1, "{:#}", hd[0]);
    assert_eq!(hd[0]["revision_after"], 2, "{:#}", hd[0]);

    // 2. The endpoint switches the hot deployer off (a state change by the control role).
    let w = m.jolokia(
        &json!({"type": "write", "mbean": SERVER, "attribute": "HotDeploy", "value": false}),
    );
    assert_eq!(w["status"], 200, "{w:#}");

    // 3. SIGHUP reloads the next edit.
    write_unit_atomically(&conf, "shop", &shop_unit(&be.url(), "1.2"));
    esb.sighup();
    wait_until("revision 3 from SIGHUP", LIMIT, || unit_revision(&m) == 3);
    let sig = wait_for(
        "the signal's audit record",
        LIMIT,
        || Some(records_by(&m, "signal")).filter(|r| !r.is_empty()),
        || format!("{:#?}", m.audit()),
    );
    assert_eq!(sig.len(), 1, "{sig:#?}");
    assert_eq!(
        (&sig[0]["revision_before"], &sig[0]["revision_after"]),
        (&json!(2), &json!(3))
    );

    // 4. uterm deploys from a file (content over the endpoint).
    let file = conf.root().join("shop-1.3.toml");
    std::fs::write(&file, shop_unit(&be.url(), "1.3")).unwrap();
    let url = conf.mgmt_url("");
    let ut = || Uterm::connected(&url, &m.control);
    ut().c(&format!("deploy shop --file {}", file.display()))
        .run()
        .expect(0);
    assert_eq!(unit_revision(&m), 4);

    // Reads, through uterm and over HTTP: no records.
    let before = m.audit().len();
    ut().c("diff shop; history shop; validate shop")
        .run()
        .expect(0);
    for (op, args) in [
        ("diff", json!(["shop"])),
        ("history", json!(["shop"])),
        ("validate", json!(["shop"])),
        (
            "validateContent",
            json!(["shop", shop_unit(&be.url(), "9")]),
        ),
        ("diffContent", json!(["shop", shop_unit(&be.url(), "9")])),
    ] {
        m.exec_ok(MANAGER, op, args);
    }
    m.exec_ok(UNIT, "history", json!([]));
    m.exec_ok(UNIT, "diff", json!([]));
    assert_eq!(
        m.audit().len(),
        before,
        "reads were audited: {:#?}",
        m.audit()
    );

    let all = m.audit();
    let by: Vec<&str> = all
        .iter()
        .map(|r| r["by"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        by,
        ["hot-deployer", "control", "signal", "control"],
        "one record per state change: {all:#?}"
    );
    assert_eq!(all[3]["what"]["operation"], "deploy");
    assert_eq!(
        (&all[3]["revision_before"], &all[3]["revision_after"]),
        (&json!(3), &json!(4))
    );
}

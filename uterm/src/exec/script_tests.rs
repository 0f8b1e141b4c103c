use super::*;
use crate::fake::{key, ok, Fake};
use serde_json::json;

fn fake() -> Fake {
    Fake::start("", |r| match key(r) {
        (t, _, op) if t == "exec" && op == "reload" => {
            let unit = r["arguments"][0].as_str().unwrap_or("");
            if unit == "bad" {
                ok(json!({"outcome": "rejected", "unit": "bad",
                    "errors": [{"file": "conf/deployments/bad/unit.toml", "line": 2, "col": 1, "message": "oops"}]}))
            } else {
                ok(json!({"outcome": "unchanged", "unit": unit, "revision": 1}))
            }
        }
        (t, _, a) if t == "read" && a == "HotDeploy" => ok(json!(true)),
        other => panic!("unexpected {other:?}"),
    })
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn go(exec: &Executor, script: &str, json: bool, keep_going: bool) -> Run {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        exec,
        script,
        Options {
            json,
            keep_going,
            ..Options::default()
        },
        &mut Sinks {
            out: &mut out,
            err: &mut err,
        },
    );
    Run {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn all_succeed_with_headers_for_several_commands() {
    let f = fake();
    let r = go(&f.executor(), "reload a; hot-deploy", false, false);
    assert_eq!(r.code, exit::OK);
    assert_eq!(
        r.out,
        "==> reload a\nunchanged a: revision 1 already matches the files\n\n==> hot-deploy\nhot deploy on\n"
    );
    assert_eq!(r.err, "");
    // One command: no header.
    let r = go(&f.executor(), "hot-deploy", false, false);
    assert_eq!(r.out, "hot deploy on\n");
}

#[test]
fn a_failure_stops_the_script_unless_keep_going() {
    let f = fake();
    let r = go(
        &f.executor(),
        "reload a\nreload bad\nreload c\n",
        false,
        false,
    );
    assert_eq!(r.code, exit::FAILED);
    assert!(
        r.out.contains("rejected bad") && r.out.contains("unit.toml:2:1: oops"),
        "{}",
        r.out
    );
    assert!(!r.out.contains("reload c"), "{}", r.out);
    assert_eq!(
        r.err,
        "error: line 2: reload bad: rejected\nuterm: stopped; 1 command not run (--keep-going runs them anyway)\n"
    );
    let r = go(
        &f.executor(),
        "reload a\nreload bad\nreload c\n",
        false,
        true,
    );
    assert_eq!(r.code, exit::FAILED);
    assert!(r.out.contains("==> reload c\nunchanged c"), "{}", r.out);
}

#[test]
fn usage_errors_run_nothing() {
    let f = fake();
    let r = go(&f.executor(), "reload a; relaod b; list unitz", false, true);
    assert_eq!(r.code, exit::USAGE);
    assert_eq!(f.post_count(), 0);
    assert_eq!(r.out, "");
    assert!(
        r.err
            .contains("error: line 1: unknown command \"relaod\"; did you mean `reload b`?"),
        "{}",
        r.err
    );
    assert!(r.err.contains("did you mean `list units`?"), "{}", r.err);
    assert!(r.err.ends_with("uterm: nothing was run\n"), "{}", r.err);
    // A single command has no line number.
    let r = go(&f.executor(), "stauts", false, false);
    assert_eq!(
        r.err,
        "error: unknown command \"stauts\"; did you mean `status`?\n"
    );
}

#[test]
fn json_mode_prints_one_document_per_command() {
    let f = fake();
    let r = go(&f.executor(), "reload a; reload bad", true, false);
    assert_eq!(r.code, exit::FAILED);
    assert_eq!(r.err, "");
    let docs: Vec<Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0],
        json!({"command": "reload a", "ok": true,
        "result": {"outcome": "unchanged", "unit": "a", "revision": 1}})
    );
    assert_eq!(docs[1]["ok"], json!(false));
    assert_eq!(docs[1]["exit"], json!(1));
    assert_eq!(docs[1]["error"]["message"], "reload bad: rejected");
    assert_eq!(docs[1]["result"]["outcome"], "rejected");

    let r = go(&f.executor(), "relaod a", true, false);
    assert_eq!(r.code, exit::USAGE);
    let doc: Value = serde_json::from_str(r.out.trim()).unwrap();
    assert_eq!(doc["command"], "relaod a");
    assert_eq!(doc["error"]["suggestion"], "reload a");
}

#[test]
fn unreachable_server_stops_even_with_keep_going() {
    let exec = Executor::new(crate::Client::new(crate::ClientConfig {
        url: "http://127.0.0.1:1".into(),
        token: crate::TokenSpec::Given("t".into()),
        ..Default::default()
    }));
    let r = go(&exec, "help status; status; status", false, true);
    assert_eq!(r.code, exit::UNREACHABLE);
    assert!(
        r.out.contains("==> help status\nusage: status"),
        "{}",
        r.out
    );
    assert!(
        r.err
            .contains("error: line 1: cannot connect to http://127.0.0.1:1"),
        "{}",
        r.err
    );
    assert!(
        r.err.ends_with("uterm: stopped; 1 command not run\n"),
        "{}",
        r.err
    );
}

#[test]
fn empty_script_succeeds() {
    let f = fake();
    assert_eq!(
        go(&f.executor(), "# nothing\n\n", false, false).code,
        exit::OK
    );
}

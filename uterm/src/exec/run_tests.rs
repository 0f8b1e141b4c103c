use super::*;
use crate::exec::stream::Follow;
use crate::fake::{err, key, not_found, ok, Fake};
use crate::lang::parse::parse;
use crate::present::output::Style;
use serde_json::{json, Value};

fn run(exec: &Executor, line: &str) -> Result<Output, CmdError> {
    exec.run(&parse(line).unwrap())
}

fn text(o: &Output) -> String {
    o.render(Style::PLAIN)
}

fn units_value() -> Value {
    json!({
        "esb:name=orders,type=Unit": {"State": "Active", "Revision": 4, "Proxies": ["list"]},
        "esb:name=default,type=Unit": {"State": "Active", "Revision": 1, "Proxies": []}
    })
}

fn server_value() -> Value {
    json!({"Name": "esb-local", "State": "Running", "UptimeSeconds": 5, "Units": 2})
}

#[test]
fn status_is_one_bulk_request() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, _) if t == "read" && m == "esb:type=Server" => ok(server_value()),
        (t, m, _) if t == "read" && m == "esb:type=DeploymentManager" => {
            ok(json!({"Units": ["default", "orders"], "UnitsOnDisk": ["default", "orders"]}))
        }
        (t, m, _) if t == "read" && m == "esb:type=Unit,*" => ok(units_value()),
        other => panic!("unexpected {other:?}"),
    });
    let out = run(&fake.executor(), "status").unwrap();
    assert_eq!(fake.post_count(), 1, "status must be a single round trip");
    assert_eq!(fake.requests().len(), 3);
    let t = text(&out);
    assert!(t.starts_with("esb-local  Running  up 5s"), "{t}");
    // Units sorted by name.
    let d = t.find("\ndefault").unwrap();
    let o = t.find("\norders").unwrap();
    assert!(d < o, "{t}");
    assert_eq!(out.json["units"][0]["name"], "default");
}

#[test]
fn pattern_reads_fall_back_to_search_and_no_match_is_empty() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, _) if t == "read" && m == "esb:type=Proxy,*" => err(
            400,
            "java.lang.IllegalArgumentException",
            "read request needs exactly one MBean",
        ),
        (t, _, _) if t == "search" => ok(json!(["esb:type=Proxy,unit=orders,name=list"])),
        (t, m, _) if t == "read" && m == "esb:type=Proxy,unit=orders,name=list" => {
            ok(json!({"State": "Active", "Path": "/orders"}))
        }
        (t, m, _) if t == "read" && m == "esb:type=Task,*" => not_found("esb:type=Task,*"),
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    let out = run(&exec, "list proxies").unwrap();
    assert!(
        text(&out).contains("orders  list   Active  /orders"),
        "{}",
        text(&out)
    );
    assert_eq!(out.json[0]["Path"], "/orders");
    let out = run(&exec, "list tasks").unwrap();
    assert_eq!(text(&out), "no tasks\n");
}

#[test]
fn list_in_an_unknown_unit_suggests_the_name() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, _) if t == "read" && m == "esb:type=Proxy,unit=ordrs,*" => ok(json!({})),
        (t, m, _) if t == "read" && m == "esb:type=Unit,name=ordrs" => {
            not_found("esb:type=Unit,name=ordrs")
        }
        (t, _, _) if t == "search" => ok(json!([
            "esb:name=orders,type=Unit",
            "esb:name=default,type=Unit"
        ])),
        other => panic!("unexpected {other:?}"),
    });
    let e = run(&fake.executor(), "list proxies ordrs").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.to_string(),
        "no unit ordrs is loaded; did you mean unit orders?"
    );
}

#[test]
fn reload_prints_the_outcome_and_batches_several_units() {
    let fake = Fake::start("", |r| match key(r) {
        (t, _, op) if t == "exec" && op == "reload" => ok(json!({
            "outcome": "activated", "unit": r["arguments"][0], "revision": 5, "duration_ms": 2.5,
            "diff": {"unit": "orders", "changes": [{"kind": "proxy", "name": "list", "change": "added"}]}
        })),
        (t, _, op) if t == "exec" && op == "batch" => ok(json!([
            {"outcome": "unchanged", "unit": "a", "revision": 1},
            {"outcome": "activated", "unit": "b", "revision": 2}
        ])),
        (t, _, op) if t == "exec" && op == "unloadBatch" => ok(json!([
            {"outcome": "unloaded", "unit": "a", "revision": 1},
            {"outcome": "unloaded", "unit": "b", "revision": 2}
        ])),
        (t, _, op) if t == "exec" && op == "reloadAll" => ok(json!([])),
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    let out = run(&exec, "reload orders").unwrap();
    assert_eq!(
        text(&out),
        "activated orders: revision 5 in 2.5 ms  +1 ~0 -0\n    + proxy list\n"
    );
    let out = run(&exec, "reload a b").unwrap();
    assert!(text(&out).contains("unchanged a") && text(&out).contains("activated b"));
    run(&exec, "unload a b").unwrap();
    run(&exec, "reload --all").unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs[0]["mbean"], "esb:type=DeploymentManager");
    assert_eq!(reqs[0]["arguments"], json!(["orders"]));
    assert_eq!(reqs[1]["operation"], "batch");
    assert_eq!(reqs[1]["arguments"], json!([["a", "b"]]));
    assert_eq!(reqs[2]["operation"], "unloadBatch");
    assert_eq!(reqs[3]["operation"], "reloadAll");
    assert_eq!(reqs[3]["arguments"], json!([]));
}

#[test]
fn a_rejected_reload_fails_with_every_error() {
    let fake = Fake::start("", |r| match key(r) {
        (t, _, op) if t == "exec" && op == "reload" => ok(json!({
            "outcome": "rejected", "unit": "orders",
            "errors": [{"file": "conf/deployments/orders/unit.toml", "line": 7, "col": 12, "message": "bad path"}]
        })),
        other => panic!("unexpected {other:?}"),
    });
    let e = run(&fake.executor(), "reload orders").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(e.to_string(), "reload orders: rejected");
    let out = e.output().expect("the outcome is shown");
    assert!(text(out).contains("conf/deployments/orders/unit.toml:7:12: bad path"));
    assert_eq!(out.json["outcome"], "rejected");
}

#[test]
fn unknown_unit_in_a_manager_operation_gets_a_suggestion() {
    let fake = Fake::start("", |r| {
        match key(r) {
        (t, _, op) if t == "exec" && op == "history" => err(
            500,
            "javax.management.RuntimeMBeanException",
            "operation history on MBean esb:type=DeploymentManager failed: unit \"ordrs\" is not loaded",
        ),
        (t, m, _) if t == "read" && m == "esb:type=DeploymentManager" => {
            ok(json!({"Units": ["orders"], "UnitsOnDisk": ["orders", "billing"]}))
        }
        other => panic!("unexpected {other:?}"),
    }
    });
    let e = run(&fake.executor(), "history ordrs").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let m = e.to_string();
    assert!(m.starts_with("history ordrs: operation history"), "{m}");
    assert!(m.ends_with("did you mean \"orders\"?"), "{m}");
}

#[test]
fn pause_with_hold_reads_the_new_state_in_the_same_request() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, op) if t == "exec" && m == "esb:type=Unit,name=orders" && op == "pauseHold" => {
            ok(Value::Null)
        }
        (t, m, a) if t == "read" && m == "esb:type=Unit,name=orders" && a == "State" => {
            ok(json!("Paused"))
        }
        other => panic!("unexpected {other:?}"),
    });
    let out = run(&fake.executor(), "pause orders --hold 5s").unwrap();
    assert_eq!(fake.post_count(), 1);
    assert_eq!(fake.requests()[0]["arguments"], json!([5000]));
    assert_eq!(
        text(&out),
        "unit orders: Paused\n\nnew requests wait up to 5000 ms for `resume orders`\n"
    );
    assert_eq!(out.json["state"], "Paused");
    assert_eq!(out.json["operation"], "pauseHold");
}

#[test]
fn operations_on_missing_objects_suggest_names() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, _)
            if (t == "exec" || t == "read")
                && (m.contains("name=lst")
                    || m.contains("name=nope")
                    || m.contains("unit=billing")) =>
        {
            not_found(&m)
        }
        (t, m, _) if t == "search" && m == "esb:type=Proxy,*" => ok(json!([
            "esb:name=list,type=Proxy,unit=orders",
            "esb:name=create,type=Proxy,unit=orders"
        ])),
        (t, _, op) if t == "exec" && op == "runNow" => err(
            500,
            "javax.management.RuntimeMBeanException",
            "operation runNow on MBean esb:type=Task,unit=d,name=t failed: the task is paused",
        ),
        (t, _, _) if t == "read" => ok(json!("Paused")),
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    for cmd in ["stop proxy orders/lst", "show proxy orders/lst"] {
        let e = run(&exec, cmd).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no proxy orders/lst exists; did you mean proxy orders/list?",
            "{cmd}"
        );
    }
    // Names are compared within the unit; the same name in another unit is offered too.
    let e = run(&exec, "show proxy orders/nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proxy orders/nope exists; proxies of orders: list, create"
    );
    let e = run(&exec, "show proxy billing/list").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proxy billing/list exists; did you mean proxy orders/list?"
    );
    let e = run(&exec, "show proxy billing/zzz").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no proxy billing/zzz exists; unit billing has no proxies loaded"
    );
    let e = run(&exec, "run task d/t").unwrap_err();
    assert_eq!(
        e.to_string(),
        "run task d/t: operation runNow on MBean esb:type=Task,unit=d,name=t failed: the task is paused"
    );
}

#[test]
fn addresses_maintenance_hot_deploy_and_restart() {
    let fake = Fake::start("", |r| match key(r) {
        (t, _, op) if t == "exec" && op == "addAddress" => ok(Value::Null),
        (t, _, a) if t == "read" && a == "Addresses" => ok(json!([
            {"url": "http://a:1", "state": "Active"}, {"url": "http://b:2", "state": "Active"}
        ])),
        (t, _, op) if t == "exec" && op == "maintenance" => ok(Value::Null),
        (t, m, a) if t == "read" && m == "esb:type=Server" && a == "State" => {
            ok(json!("Maintenance"))
        }
        (t, _, op) if t == "exec" && op == "setHotDeploy" => ok(Value::Null),
        (t, _, a) if t == "read" && a == "HotDeploy" => ok(json!(false)),
        (t, _, op) if t == "exec" && op == "restart" => ok(json!({
            "outcome": "restarted", "duration_ms": 12.5, "text": "",
            "diff": {"transports_added": ["b"], "transports_removed": [], "transports_changed": [],
                     "settings_changed": ["server.drain_timeout"]}
        })),
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    let out = run(&exec, "add address orders/backend http://b:2").unwrap();
    let t = text(&out);
    assert!(
        t.starts_with("endpoint orders/backend: added http://b:2\n"),
        "{t}"
    );
    assert!(t.contains("http://b:2  Active"), "{t}");
    let out = run(&exec, "maintenance on").unwrap();
    assert!(text(&out).starts_with("server: Maintenance\n"));
    assert_eq!(fake.requests()[2]["arguments"], json!([true]));
    assert_eq!(
        text(&run(&exec, "hot-deploy off").unwrap()),
        "hot deploy off\n"
    );
    assert_eq!(text(&run(&exec, "hot-deploy").unwrap()), "hot deploy off\n");
    assert_eq!(
        text(&run(&exec, "restart").unwrap()),
        "restarted in 12 ms: transports added: b; settings changed: server.drain_timeout\n"
    );
}

#[test]
fn validate_diff_deploy_history_rollback() {
    let dir = std::env::temp_dir().join(format!("uterm-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("unit.toml");
    std::fs::write(&file, "version = \"2\"\n").unwrap();
    let fake = Fake::start("", |r| match key(r) {
        (t, _, op) if t == "exec" && op == "validate" => {
            ok(json!({"unit": "orders", "valid": false,
            "errors": [{"file": "u.toml", "line": 1, "col": 1, "message": "m"}]}))
        }
        (t, _, op) if t == "exec" && op == "validateContent" => {
            ok(json!({"unit": "orders", "valid": true}))
        }
        (t, _, op) if t == "exec" && op == "diff" => ok(json!({"unit": "orders",
            "diff": {"unit": "orders", "changes": []}, "text": ""})),
        (t, _, op) if t == "exec" && op == "deploy" => {
            ok(json!({"outcome": "activated", "unit": "orders", "revision": 6}))
        }
        (t, _, op) if t == "exec" && op == "history" => {
            ok(json!([{"revision": 6, "active": true}]))
        }
        (t, _, op) if t == "exec" && (op == "rollback" || op == "rollbackTo") => {
            ok(json!({"outcome": "activated", "unit": "orders", "revision": 5}))
        }
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    let e = run(&exec, "validate orders").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(text(e.output().unwrap()).contains("u.toml:1:1: m"));
    let f = file.display().to_string();
    assert_eq!(
        text(&run(&exec, &format!("validate orders --file {f}")).unwrap()),
        "valid orders\n"
    );
    assert!(text(&run(&exec, "diff orders").unwrap()).starts_with("no changes"));
    run(&exec, &format!("deploy orders --file {f}")).unwrap();
    assert!(text(&run(&exec, "history orders").unwrap()).contains("6  *"));
    run(&exec, "rollback orders").unwrap();
    run(&exec, "rollback orders --to 5").unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs[1]["arguments"], json!(["orders", "version = \"2\"\n"]));
    assert_eq!(reqs[3]["arguments"], json!(["orders", "version = \"2\"\n"]));
    assert_eq!(reqs[6]["arguments"], json!(["orders", 5]));
    let e = run(&exec, "deploy orders --file /nonexistent/unit.toml").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("cannot read /nonexistent/unit.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generic_get_set_exec_and_beans() {
    let fake = Fake::start("", |r| match key(r) {
        (t, m, a) if t == "read" && m == "esb:type=Server" && a == "UptimeSeconds" => ok(json!(42)),
        (t, m, _) if t == "read" && m == "esb:type=Server" => ok(server_value()),
        (t, m, _) if t == "read" && m == "esb:type=Unit,*" => ok(units_value()),
        (t, _, _) if t == "read" => not_found(r["mbean"].as_str().unwrap()),
        (t, _, _) if t == "write" => ok(json!(true)),
        (t, _, op) if t == "exec" && op == "reload" => {
            ok(json!({"outcome": "unchanged", "unit": "x", "revision": 1}))
        }
        (t, _, op) if t == "exec" => ok(json!({"echo": r["arguments"].clone(), "op": op})),
        (t, _, _) if t == "search" => ok(json!([
            "esb:type=Server",
            "esb:name=orders,type=Unit",
            "esb:type=DeploymentManager"
        ])),
        other => panic!("unexpected {other:?}"),
    });
    let exec = fake.executor();
    assert_eq!(
        text(&run(&exec, "get type=Server UptimeSeconds").unwrap()),
        "42\n"
    );
    let t = text(&run(&exec, "get esb:type=Server").unwrap());
    assert!(t.starts_with("State          Running\n"), "{t}");
    let t = text(&run(&exec, "get esb:type=Unit,*").unwrap());
    assert!(
        t.contains("esb:name=default,type=Unit\n\nState     Active"),
        "{t}"
    );
    let e = run(&exec, "get esb:type=Nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no bean esb:type=Nope; list the names with `beans` (or `beans PATTERN`)"
    );
    let out = run(&exec, "set esb:type=Server HotDeploy false").unwrap();
    assert_eq!(text(&out), "esb:type=Server HotDeploy: true → false\n");
    assert_eq!(out.json["new"], json!(false));
    let out = run(&exec, "exec esb:type=DeploymentManager reload x").unwrap();
    assert_eq!(
        text(&out),
        "unchanged x: revision 1 already matches the files\n"
    );
    let out = run(&exec, "exec esb:type=Server frob 1 '[2]' a").unwrap();
    assert_eq!(out.json["echo"], json!([1, [2], "a"]));
    let out = run(&exec, "beans").unwrap();
    assert_eq!(
        out.json,
        json!([
            "esb:name=orders,type=Unit",
            "esb:type=DeploymentManager",
            "esb:type=Server"
        ])
    );
    let out = run(&exec, "beans ORDERS").unwrap();
    assert_eq!(text(&out), "esb:name=orders,type=Unit\n");
}

#[test]
fn recent_events_come_from_the_sse_ring() {
    let sse = "id: 1\nevent: hot_deploy\ndata: {\"id\":1,\"time\":0,\"type\":\"hot_deploy\",\"enabled\":false}\n\n\
               id: 2\nevent: server_stopping\ndata: {\"id\":2,\"time\":1000,\"type\":\"server_stopping\"}\n\n";
    let fake = Fake::start(sse, |_| panic!("no jolokia"));
    let out = run(&fake.executor(), "events").unwrap();
    assert_eq!(
        text(&out),
        "00:00:00.000  hot_deploy        hot deploy off\n00:00:01.000  server_stopping   server stopping\n"
    );
    assert_eq!(out.json[1]["type"], "server_stopping");
    let mut seen = Vec::new();
    // The fake closes the stream after the ring; stop at the first reconnect.
    fake.executor()
        .follow_events(|f| match f {
            Follow::Event(e) => {
                seen.push(e.kind.clone());
                true
            }
            _ => false,
        })
        .unwrap();
    assert_eq!(seen, vec!["hot_deploy", "server_stopping"]);
}

#[test]
fn refused_tokens_are_exit_3_and_say_where_the_token_was_looked_for() {
    let fake = Fake::start("", |_| ok(Value::Null));
    let exec = fake.executor_with(crate::conn::token::TokenSpec::Given("wrong".into()));
    let e = run(&exec, "status").unwrap_err();
    assert_eq!(e.exit_code(), 3);
    let m = e.to_string();
    assert!(m.contains(&fake.url) && m.contains("HTTP 401"), "{m}");
    assert!(
        m.contains("the token from --token/ESB_TOKEN was refused"),
        "{m}"
    );

    // A monitor token trying to change something: 403 inside the envelope.
    let fake = Fake::start("", |_| {
        err(
            403,
            "java.lang.SecurityException",
            "access denied: role monitor may not exec",
        )
    });
    let e = run(&fake.executor(), "reload orders").unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.to_string()
            .contains(": access denied: role monitor may not exec; "),
        "{e}"
    );
}

#[test]
fn offline_commands_need_no_server() {
    let exec = Executor::new(crate::Client::new(crate::ClientConfig {
        url: "http://127.0.0.1:1".into(),
        ..Default::default()
    }));
    assert!(text(&run(&exec, "help").unwrap()).contains("status"));
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../conf");
    let out = run(&exec, &format!("validate --dir {conf}")).unwrap();
    assert_eq!(out.json["ok"], json!(true));
    let unit = format!("{conf}/deployments/default");
    let out = run(&exec, &format!("validate --dir {unit}")).unwrap();
    assert!(text(&out).starts_with("✓ default ("), "{}", text(&out));
    let e = run(&exec, "validate --dir /").unwrap_err();
    assert!(e.to_string().contains("neither a conf directory"), "{e}");
    assert_eq!(run(&exec, "status").unwrap_err().exit_code(), 3);
}

#[test]
fn invalid_unit_directory_fails_with_located_errors() {
    let dir = std::env::temp_dir().join(format!("uterm-validate-{}", std::process::id()));
    let unit = dir.join("deployments/bad");
    std::fs::create_dir_all(&unit).unwrap();
    std::fs::write(
        dir.join("esb.toml"),
        "[[transport]]\nname = \"http\"\nkind = \"http\"\nbind = \"127.0.0.1:18280\"\n",
    )
    .unwrap();
    std::fs::write(
        unit.join("unit.toml"),
        "[[proxy]]\nname = \"p\"\npath = \"/p\"\nendpoint = \"nope\"\n",
    )
    .unwrap();
    let e = crate::exec::offline::validate_dir(&unit).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(e.to_string(), "validation failed: 1 unit with errors");
    let t = text(e.output().unwrap());
    assert!(
        t.contains("✗ bad (1 error)") && t.contains("unit.toml:"),
        "{t}"
    );
    let e = crate::exec::offline::validate_dir(&dir).unwrap_err();
    assert_eq!(e.output().unwrap().json["ok"], json!(false));
    std::fs::remove_dir_all(&dir).unwrap();
}

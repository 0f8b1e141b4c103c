use super::*;
use serde_json::json;

fn p(s: &str) -> Command {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn e(s: &str) -> UsageError {
    match parse(s) {
        Ok(c) => panic!("{s} parsed as {c:?}"),
        Err(e) => e,
    }
}

fn unit(u: &str) -> Target {
    Target::Unit(u.into())
}

fn el(kind: Kind, u: &str, n: &str) -> Target {
    Target::Element {
        kind,
        unit: u.into(),
        name: n.into(),
    }
}

#[test]
fn status_list_show() {
    assert_eq!(p("status"), Command::Status);
    assert_eq!(p("STATUS"), Command::Status);
    assert_eq!(
        p("list"),
        Command::List {
            kind: Kind::Unit,
            unit: None
        }
    );
    assert_eq!(
        p("list proxies orders"),
        Command::List {
            kind: Kind::Proxy,
            unit: Some("orders".into())
        }
    );
    assert_eq!(
        p("ls endpoint"),
        Command::List {
            kind: Kind::Endpoint,
            unit: None
        }
    );
    for k in ["units", "proxies", "endpoints", "transports", "tasks"] {
        assert!(matches!(p(&format!("list {k}")), Command::List { .. }));
    }
    assert_eq!(p("show orders"), Command::Show(unit("orders")));
    assert_eq!(p("show unit orders"), Command::Show(unit("orders")));
    assert_eq!(
        p("show proxy orders/list"),
        Command::Show(el(Kind::Proxy, "orders", "list"))
    );
    assert_eq!(
        p("show sequence orders/orders-in"),
        Command::Show(el(Kind::Sequence, "orders", "orders-in"))
    );
    assert_eq!(
        p("show transport http-8280"),
        Command::Show(Target::Transport("http-8280".into()))
    );
}

#[test]
fn deployment_commands() {
    assert_eq!(p("load a"), Command::Load(vec!["a".into()]));
    assert_eq!(
        p("reload a b c"),
        Command::Reload(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        p("unload a b"),
        Command::Unload(vec!["a".into(), "b".into()])
    );
    assert_eq!(p("reload --all"), Command::ReloadAll);
    assert_eq!(
        p("deploy orders --file x/unit.toml"),
        Command::Deploy {
            unit: "orders".into(),
            from: DeployFrom::File("x/unit.toml".into())
        }
    );
    assert_eq!(
        p("deploy orders --file=x.toml"),
        Command::Deploy {
            unit: "orders".into(),
            from: DeployFrom::File("x.toml".into())
        }
    );
    assert_eq!(
        p("deploy orders --dir build/orders"),
        Command::Deploy {
            unit: "orders".into(),
            from: DeployFrom::Dir("build/orders".into())
        }
    );
    assert_eq!(
        p("deploy orders --from-disk"),
        Command::Deploy {
            unit: "orders".into(),
            from: DeployFrom::ServerDisk
        }
    );
    assert!(crate::lang::parse::parse("deploy orders --file a --dir b").is_err());
    assert_eq!(
        p("show source orders --rev 3"),
        Command::Source {
            unit: "orders".into(),
            revision: Some(3),
            out: None
        }
    );
    assert_eq!(
        p("validate orders"),
        Command::Validate(ValidateWhat::Unit {
            unit: "orders".into(),
            file: None
        })
    );
    assert_eq!(
        p("validate orders --file u.toml"),
        Command::Validate(ValidateWhat::Unit {
            unit: "orders".into(),
            file: Some("u.toml".into())
        })
    );
    assert_eq!(
        p("validate --dir conf"),
        Command::Validate(ValidateWhat::Dir("conf".into()))
    );
    assert_eq!(
        p("diff orders"),
        Command::Diff {
            unit: "orders".into(),
            file: None
        }
    );
    assert_eq!(p("history orders"), Command::History("orders".into()));
    assert_eq!(
        p("rollback orders"),
        Command::Rollback {
            unit: "orders".into(),
            to: None
        }
    );
    assert_eq!(
        p("rollback orders --to 3"),
        Command::Rollback {
            unit: "orders".into(),
            to: Some(3)
        }
    );
    assert_eq!(
        p("rollback orders --to r3"),
        Command::Rollback {
            unit: "orders".into(),
            to: Some(3)
        }
    );
}

#[test]
fn drain_cancel_takes_a_unit_and_an_optional_revision() {
    assert_eq!(
        p("drain cancel orders"),
        Command::DrainCancel {
            unit: "orders".into(),
            revision: None
        }
    );
    assert_eq!(
        p("drain cancel orders --rev r4"),
        Command::DrainCancel {
            unit: "orders".into(),
            revision: Some(4)
        }
    );
    assert!(e("drain").message.contains("needs an action"));
    assert!(e("drain stop orders")
        .message
        .contains("unknown drain action \"stop\""));
    assert!(e("drain cancel").message.contains("one unit name"));
    assert!(e("drain cancel a b").message.contains("one unit name"));
    assert!(e("drain cancel orders --rev x")
        .message
        .contains("not a revision"));
}

#[test]
fn runtime_control_commands() {
    assert_eq!(
        p("pause orders"),
        Command::Pause {
            target: unit("orders"),
            hold_ms: None
        }
    );
    assert_eq!(
        p("pause unit orders --hold 1500"),
        Command::Pause {
            target: unit("orders"),
            hold_ms: Some(1500)
        }
    );
    assert_eq!(
        p("pause --hold 2s orders"),
        Command::Pause {
            target: unit("orders"),
            hold_ms: Some(2000)
        }
    );
    assert_eq!(
        p("pause endpoint orders/backend"),
        Command::Pause {
            target: el(Kind::Endpoint, "orders", "backend"),
            hold_ms: None
        }
    );
    assert_eq!(
        p("resume task default/heartbeat"),
        Command::Resume(el(Kind::Task, "default", "heartbeat"))
    );
    assert_eq!(
        p("resume transport http-8280"),
        Command::Resume(Target::Transport("http-8280".into()))
    );
    assert_eq!(
        p("stop proxy orders/list"),
        Command::Stop(el(Kind::Proxy, "orders", "list"))
    );
    assert_eq!(
        p("pause consumer orders/orders-in"),
        Command::Pause {
            target: el(Kind::Consumer, "orders", "orders-in"),
            hold_ms: None
        }
    );
    assert_eq!(
        p("stop consumer orders/orders-in"),
        Command::Stop(el(Kind::Consumer, "orders", "orders-in"))
    );
    assert_eq!(
        p("start consumer orders/orders-in"),
        Command::Start(el(Kind::Consumer, "orders", "orders-in"))
    );
    assert_eq!(
        p("list consumers orders"),
        Command::List {
            kind: Kind::Consumer,
            unit: Some("orders".into())
        }
    );
    assert_eq!(
        p("start transport http-8281"),
        Command::Start(Target::Transport("http-8281".into()))
    );
    assert_eq!(
        p("suspend address orders/backend http://127.0.0.1:9001"),
        Command::Address {
            op: AddressOp::Suspend,
            unit: "orders".into(),
            endpoint: "backend".into(),
            url: "http://127.0.0.1:9001".into()
        }
    );
    for (verb, op) in [
        ("add", AddressOp::Add),
        ("remove", AddressOp::Remove),
        ("activate", AddressOp::Activate),
    ] {
        assert!(matches!(
            p(&format!("{verb} address u/e http://h:1")),
            Command::Address { op: o, .. } if o == op
        ));
    }
    assert_eq!(
        p("run task default/heartbeat"),
        Command::RunTask {
            unit: "default".into(),
            task: "heartbeat".into()
        }
    );
    assert_eq!(p("maintenance on"), Command::Maintenance(true));
    assert_eq!(p("maintenance OFF"), Command::Maintenance(false));
    assert_eq!(p("restart"), Command::Restart);
    assert_eq!(p("hot-deploy off"), Command::HotDeploy(Some(false)));
    assert_eq!(p("hot-deploy"), Command::HotDeploy(None));
    assert_eq!(
        p("events"),
        Command::Events {
            follow: false,
            recent: 50
        }
    );
    assert_eq!(
        p("events --follow --recent 5"),
        Command::Events {
            follow: true,
            recent: 5
        }
    );
}

#[test]
fn generic_bean_access() {
    assert_eq!(p("beans"), Command::Beans(None));
    assert_eq!(
        p("beans esb:type=Proxy,*"),
        Command::Beans(Some("esb:type=Proxy,*".into()))
    );
    assert_eq!(p("beans orders"), Command::Beans(Some("orders".into())));
    assert_eq!(
        p("get esb:type=Server"),
        Command::Get {
            bean: ObjectName::parse("esb:type=Server").unwrap(),
            attributes: vec![]
        }
    );
    // The esb: domain may be left out; patterns are fine for get.
    assert_eq!(
        p("get type=Server UptimeSeconds State"),
        Command::Get {
            bean: ObjectName::parse("esb:type=Server").unwrap(),
            attributes: vec!["UptimeSeconds".into(), "State".into()]
        }
    );
    assert!(matches!(p("get esb:type=Unit,*"), Command::Get { .. }));
    assert_eq!(
        p("set esb:type=Server HotDeploy false"),
        Command::Set {
            bean: ObjectName::parse("esb:type=Server").unwrap(),
            attribute: "HotDeploy".into(),
            value: json!(false)
        }
    );
    assert_eq!(
        p(r#"exec esb:type=DeploymentManager batch '["a","b"]' 3 x '"42"' --all"#),
        Command::Exec {
            bean: ObjectName::parse("esb:type=DeploymentManager").unwrap(),
            operation: "batch".into(),
            arguments: vec![
                json!(["a", "b"]),
                json!(3),
                json!("x"),
                json!("42"),
                json!("--all")
            ]
        }
    );
    assert_eq!(p("help"), Command::Help(None));
    assert_eq!(p("help reload"), Command::Help(Some("reload".into())));
    assert_eq!(p("?"), Command::Help(None));
}

#[test]
fn unknown_verbs_suggest_the_nearest_command() {
    let err = e("relaod orders billing");
    assert_eq!(err.suggestion.as_deref(), Some("reload orders billing"));
    assert!(err
        .to_string()
        .contains("did you mean `reload orders billing`?"));
    assert_eq!(e("stauts").suggestion.as_deref(), Some("status"));
    assert_eq!(
        e("evnts --follow").suggestion.as_deref(),
        Some("events --follow")
    );
    assert_eq!(p("hotdeploy off"), Command::HotDeploy(Some(false)));
    let err = e("frobnicate");
    assert_eq!(err.suggestion, None);
    assert!(err.to_string().contains("type `help`"), "{err}");
}

#[test]
fn wrong_object_kinds_and_names() {
    assert_eq!(e("list unitz").suggestion.as_deref(), Some("list units"));
    assert_eq!(
        e("list proxis orders").suggestion.as_deref(),
        Some("list proxies orders")
    );
    assert!(e("list units orders").message.contains("not inside a unit"));
    assert_eq!(
        e("show proxi orders/list").suggestion.as_deref(),
        Some("show proxy orders/list")
    );
    let m = e("show orders/list").message;
    assert!(
        m.contains("`show proxy orders/list`") && m.contains("`show endpoint orders/list`"),
        "{m}"
    );
    assert!(e("stop unit orders").message.contains("cannot stop a unit"));
    assert!(e("stop orders")
        .message
        .contains("proxy|transport|consumer NAME"));
    assert!(e("show proxy orders").message.contains("UNIT/NAME"));
    assert!(e("show proxy /list").message.contains("not a unit name"));
    assert!(e("show proxy orders/").message.contains("UNIT/NAME"));
    assert!(e("reload ../etc").message.contains("not a unit name"));
    assert!(e("reload Orders").message.contains("not a unit name"));
    assert!(e("show unit").message.contains("needs a name"));
    assert!(e("show").message.contains("needs an object"));
    assert!(e("show proxy a/b c").message.contains("extra \"c\""));
    assert_eq!(
        e("add orders/backend http://h:1").suggestion.as_deref(),
        Some("add address orders/backend http://h:1")
    );
    assert_eq!(
        e("suspend endpoint orders/backend http://h:1")
            .suggestion
            .as_deref(),
        Some("suspend address orders/backend http://h:1")
    );
    assert!(e("add address orders/backend h:1")
        .message
        .contains("not a URL"));
    assert!(e("add address orders/backend")
        .message
        .contains("needs UNIT/ENDPOINT and URL"));
    assert_eq!(
        e("run default/heartbeat").suggestion.as_deref(),
        Some("run task default/heartbeat")
    );
    assert_eq!(
        e("maintenance of").suggestion.as_deref(),
        Some("maintenance off")
    );
    assert!(e("maintenance").message.contains("on or off"));
}

#[test]
fn flags_and_arguments() {
    assert_eq!(e("reload --al").suggestion.as_deref(), Some("reload --all"));
    assert_eq!(
        e("events --folow").suggestion.as_deref(),
        Some("events --follow")
    );
    assert!(e("status --x")
        .hint
        .as_deref()
        .unwrap()
        .contains("takes no options"));
    assert!(e("reload --all orders")
        .message
        .contains("no unit names with --all"));
    assert!(e("reload")
        .message
        .contains("at least one unit name (or --all)"));
    assert!(e("reload a a").message.contains("named twice"));
    assert!(e("deploy orders").message.contains("--file"));
    assert!(e("deploy orders --file")
        .message
        .contains("--file needs a value"));
    assert!(e("rollback orders --to x")
        .message
        .contains("not a revision"));
    assert!(e("rollback orders --to 1 --to 2")
        .message
        .contains("given twice"));
    assert!(e("reload --all=yes").message.contains("takes no value"));
    assert!(e("pause proxy a/b --hold 5").message.contains("units only"));
    assert!(e("pause orders --hold soon")
        .message
        .contains("not a duration"));
    assert!(e("validate --dir conf orders")
        .message
        .contains("no unit name with --dir"));
    assert!(e("validate --dir conf --file x")
        .message
        .contains("either --dir or --file"));
    assert!(e("status now").message.contains("extra \"now\""));
    assert!(e("events --recent lots").message.contains("count"));
    assert!(e("set esb:type=Server HotDeploy")
        .message
        .contains("a bean, an attribute and a value"));
    assert!(e("set esb:type=Unit,* State x")
        .message
        .contains("is a pattern"));
    assert!(e("exec esb:type=Server")
        .message
        .contains("a bean and an operation"));
    assert!(e("get esb:").message.contains("esb:"));
    assert!(e("beans a b").message.contains("at most one pattern"));
    assert_eq!(e("help relaod").suggestion.as_deref(), Some("help reload"));
    // A quoted flag is a word, not a flag.
    assert!(e("reload '--all'").message.contains("not a unit name"));
    // Every usage error shows the usage of its command.
    assert!(e("reload")
        .to_string()
        .contains("usage: reload UNIT...\n       reload --all"));
}

#[test]
fn scripts_are_parsed_whole_before_running() {
    let ok = parse_script("status\n# comment\nreload a; pause b # why\n\n").unwrap();
    assert_eq!(ok.len(), 3);
    assert_eq!(ok[1].line, 3);
    assert_eq!(ok[2].text, "pause b");
    let errs = parse_script("status\nrelaod a\nlist\nshow\n").unwrap_err();
    assert_eq!(errs.len(), 2);
    assert_eq!((errs[0].line, errs[0].text.as_str()), (2, "relaod a"));
    assert_eq!(errs[1].line, 4);
    assert_eq!(parse_script("  \n# only comments\n").unwrap(), vec![]);
    assert!(parse("a; b").unwrap_err().message.contains("one command"));
    assert!(parse("").is_err());
}

#[test]
fn args_from_the_shell_are_taken_verbatim() {
    assert_eq!(
        parse_args(&["set", "type=Server", "HotDeploy", "a b;c"]).unwrap(),
        Command::Set {
            bean: ObjectName::parse("esb:type=Server").unwrap(),
            attribute: "HotDeploy".into(),
            value: json!("a b;c")
        }
    );
    assert_eq!(
        parse_args(&["reload", "--all"]).unwrap(),
        Command::ReloadAll
    );
    assert!(parse_args::<&str>(&[]).is_err());
}

#[test]
fn targets_name_their_beans() {
    assert_eq!(
        unit("orders").bean().to_string(),
        "esb:name=orders,type=Unit"
    );
    let t = el(Kind::Proxy, "orders", "list");
    assert_eq!(t.bean().original(), "esb:type=Proxy,unit=orders,name=list");
    assert_eq!(t.to_string(), "proxy orders/list");
    assert_eq!(
        Kind::Task.pattern(Some("default")).original(),
        "esb:type=Task,unit=default,*"
    );
    assert_eq!(
        Kind::Transport.pattern(Some("x")).original(),
        "esb:type=Transport,*"
    );
}

#[test]
fn state_changing_and_offline_commands() {
    assert!(!p("status").changes_state());
    assert!(!p("diff a").changes_state());
    assert!(!p("hot-deploy").changes_state());
    assert!(p("hot-deploy on").changes_state());
    assert!(p("reload a").changes_state());
    assert!(p("exec type=Server restart").changes_state());
    assert!(p("help").is_offline());
    assert!(p("validate --dir conf").is_offline());
    assert!(!p("validate orders").is_offline());
}

#[test]
fn values_and_durations() {
    assert_eq!(json_arg("42"), json!(42));
    assert_eq!(json_arg("true"), json!(true));
    assert_eq!(json_arg("null"), json!(null));
    assert_eq!(json_arg("1.2.0"), json!("1.2.0"));
    assert_eq!(json_arg("orders"), json!("orders"));
    assert_eq!(json_arg("\"42\""), json!("42"));
    assert_eq!(json_arg("{\"a\":1}"), json!({"a":1}));
    assert_eq!(parse_millis("1500"), Ok(1500));
    assert_eq!(parse_millis("500ms"), Ok(500));
    assert_eq!(parse_millis("2s"), Ok(2000));
    assert_eq!(parse_millis("1m"), Ok(60_000));
    assert!(parse_millis("-1").is_err());
}

#[test]
fn tap_takes_a_proxy_a_unit_and_a_limit() {
    assert_eq!(
        p("tap shop/orders --limit 5"),
        Command::Tap {
            name: "orders".into(),
            unit: Some("shop".into()),
            limit: Some(5),
            consumer: false,
        }
    );
    assert_eq!(
        p("tap orders --unit shop"),
        Command::Tap {
            name: "orders".into(),
            unit: Some("shop".into()),
            limit: None,
            consumer: false,
        }
    );
    assert_eq!(
        p("tap orders"),
        Command::Tap {
            name: "orders".into(),
            unit: None,
            limit: None,
            consumer: false,
        }
    );
    assert_eq!(
        p("tap consumer shop/orders-in --limit 2"),
        Command::Tap {
            name: "orders-in".into(),
            unit: Some("shop".into()),
            limit: Some(2),
            consumer: true,
        }
    );
    assert_eq!(
        p("tap consumer orders-in --unit shop"),
        p("tap consumer shop/orders-in")
    );
    assert_eq!(p("tap proxy shop/orders"), p("tap shop/orders"));
    assert!(e("tap consumer shop/")
        .to_string()
        .contains("is not UNIT/CONSUMER"));
    assert!(e("tap").to_string().contains("the proxy"));
    assert!(e("tap a/b --unit c")
        .to_string()
        .contains("names unit \"a\""));
    assert!(e("tap orders --limit 0")
        .to_string()
        .contains("positive count"));
    assert!(!p("tap orders").changes_state());
}

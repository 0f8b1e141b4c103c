//! Tests of POST bodies: single and bulk requests, every request type and its fields.

use super::*;

#[test]
fn post_single_of_every_type() {
    assert_eq!(
        single(r#"{"type":"read","mbean":"esb:type=Server","attribute":"Uptime"}"#),
        Request::read(on("esb:type=Server"), Some("Uptime"))
    );
    assert_eq!(
        single(r#"{"type":"read","mbean":"esb:type=Server","attribute":["A","B"],"path":"x/y"}"#),
        Request::Read {
            mbean: on("esb:type=Server"),
            attribute: Some(Attributes::Many(vec!["A".into(), "B".into()])),
            path: Some("x/y".into()),
            config: None,
        }
    );
    // null / empty array attribute = all attributes
    assert_eq!(
        single(r#"{"type":"read","mbean":"esb:type=Server","attribute":null}"#),
        Request::read(on("esb:type=Server"), None)
    );
    assert_eq!(
        single(r#"{"type":"read","mbean":"esb:type=Server","attribute":[]}"#),
        Request::read(on("esb:type=Server"), None)
    );
    // read accepts patterns
    assert!(matches!(
        single(r#"{"type":"read","mbean":"esb:type=Proxy,*","attribute":"Count"}"#),
        Request::Read { .. }
    ));
    assert_eq!(
        single(
            r#"{"type":"write","mbean":"esb:type=Server","attribute":"LogLevel","value":"debug"}"#
        ),
        Request::write(on("esb:type=Server"), "LogLevel", json!("debug"))
    );
    assert_eq!(
        single(r#"{"type":"write","mbean":"esb:type=Server","attribute":"X","value":null}"#),
        Request::write(on("esb:type=Server"), "X", Value::Null)
    );
    assert_eq!(
        single(
            r#"{"type":"exec","mbean":"esb:type=Unit,name=orders","operation":"reload","arguments":[1,"a",null]}"#
        ),
        Request::exec(
            on("esb:type=Unit,name=orders"),
            "reload",
            vec![json!(1), json!("a"), Value::Null]
        )
    );
    assert_eq!(
        single(r#"{"type":"exec","mbean":"esb:type=Unit,name=orders","operation":"reload"}"#),
        Request::exec(on("esb:type=Unit,name=orders"), "reload", vec![])
    );
    assert_eq!(
        single(r#"{"type":"search","mbean":"esb:type=Proxy,*"}"#),
        Request::search(on("esb:type=Proxy,*"))
    );
    assert_eq!(single(r#"{"type":"list"}"#), Request::list(None, None));
    assert_eq!(
        single(r#"{"type":"list","path":"esb/type=Server","config":{"maxDepth":2}}"#),
        Request::list(Some("esb/type=Server"), Some(2))
    );
    assert_eq!(single(r#"{"type":"version"}"#), Request::version());
}

#[test]
fn post_config_and_unknown_fields_are_tolerated() {
    let r = single(
        r#"{"type":"version","config":{"ignoreErrors":"true","maxDepth":"3"},"target":{"url":"x"},"extra":1}"#,
    );
    let config = r.config().unwrap();
    assert_eq!(config.max_depth, Some(3));
    assert_eq!(config.other.get("ignoreErrors"), Some(&json!("true")));
    assert_eq!(r.max_depth(), Some(3));
    // top-level maxDepth accepted; config wins over it
    assert_eq!(
        single(r#"{"type":"list","maxDepth":1}"#).max_depth(),
        Some(1)
    );
    assert_eq!(
        single(r#"{"type":"list","maxDepth":1,"config":{"maxDepth":4}}"#).max_depth(),
        Some(4)
    );
    // config on a read is kept but not echoed
    let r = single(r#"{"type":"read","mbean":"esb:type=Server","config":{"x":true}}"#);
    assert!(r.config().is_some());
    assert_eq!(
        r.to_echo_json(),
        json!({"type":"read","mbean":"esb:type=Server"})
    );
}

#[test]
fn post_bulk() {
    let parsed = post(
        r#"[{"type":"version"},{"type":"read","mbean":"esb:type=Server","attribute":"Uptime"}]"#,
    )
    .unwrap();
    assert!(parsed.is_bulk);
    assert_eq!(
        parsed.requests,
        vec![
            Request::version(),
            Request::read(on("esb:type=Server"), Some("Uptime"))
        ]
    );
    // A one-element array is still bulk.
    assert!(post(r#"[{"type":"version"}]"#).unwrap().is_bulk);
    // Whitespace around the body is fine.
    assert!(!post(" \n{\"type\":\"version\"}\n").unwrap().is_bulk);
}

#[test]
fn post_bulk_each_keeps_good_items() {
    let items = parse_post_body_each(br#"[{"type":"version"},{"type":"nope"},7]"#).unwrap();
    assert!(items.is_bulk);
    assert_eq!(items.items.len(), 3);
    assert_eq!(items.items[0], Ok(Request::version()));
    let bad = items.items[1].clone().unwrap_err();
    assert_eq!(bad.raw, json!({"type":"nope"}));
    assert!(matches!(bad.error, ProtocolError::UnknownType { .. }));
    assert!(matches!(
        items.items[2].clone().unwrap_err().error,
        ProtocolError::RequestNotObject { .. }
    ));
}

#[test]
fn post_errors() {
    use ProtocolError as E;
    assert_eq!(post_err(""), E::EmptyBody);
    assert_eq!(post_err("  \n"), E::EmptyBody);
    match post_err("{\n  \"type\": \"read\",\n  \"mbean\" \"x\"\n}") {
        E::InvalidJson {
            line,
            column,
            message,
        } => {
            assert_eq!((line, column), (3, 11));
            assert!(message.contains("expected `:`"), "{message}");
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let msg = post_err("{\"type\":").to_string();
    assert!(msg.contains("line 1, column 8"), "{msg}");
    assert_eq!(
        post_err("42"),
        E::InvalidBody {
            found: "the number 42".into()
        }
    );
    assert_eq!(post_err("[]"), E::EmptyBulk);
    assert_eq!(post_err("{}"), E::MissingType);
    assert_eq!(post_err(r#"{"type":null}"#), E::MissingType);
    assert_eq!(
        post_err(r#"{"type":3}"#),
        E::TypeNotString {
            found: "the number 3".into()
        }
    );

    let e = post_err(r#"{"type":"foo"}"#);
    assert_eq!(
        e,
        E::UnknownType {
            given: "foo".into(),
            suggestion: None
        }
    );
    assert_eq!(
        e.to_string(),
        "unknown request type \"foo\"; supported types are read, write, exec, search, list, version"
    );
    let e = post_err(r#"{"type":"raed","mbean":"esb:type=Server"}"#);
    assert_eq!(
        e,
        E::UnknownType {
            given: "raed".into(),
            suggestion: Some("read")
        }
    );
    assert!(e.to_string().contains("(did you mean \"read\"?)"), "{e}");
    assert!(matches!(
        post_err(r#"{"type":"execute"}"#),
        E::UnknownType {
            suggestion: Some("exec"),
            ..
        }
    ));
    // Types match without regard to case (jmx4perl sends "READ"), so "READ" only
    // fails for the missing mbean.
    assert!(matches!(
        post_err(r#"{"type":"READ"}"#),
        E::MissingField {
            kind: "read",
            field: "mbean",
            ..
        }
    ));

    let e = post_err(r#"{"type":"read"}"#);
    assert_eq!(
        e,
        E::MissingField {
            kind: "read",
            field: "mbean",
            hint: "set it to an MBean name such as esb:type=Server"
        }
    );
    assert_eq!(
        e.to_string(),
        "read request is missing \"mbean\"; set it to an MBean name such as esb:type=Server"
    );
    assert!(matches!(
        post_err(r#"{"type":"search"}"#),
        E::MissingField { field: "mbean", .. }
    ));
    assert!(matches!(
        post_err(r#"{"type":"read","mbean":5}"#),
        E::InvalidField { field: "mbean", .. }
    ));
    let e = post_err(r#"{"type":"read","mbean":"nocolon"}"#);
    assert!(matches!(
        e,
        E::InvalidObjectName {
            kind: "read",
            source: ObjectNameError::MissingColon { .. }
        }
    ));
    assert!(
        e.to_string()
            .starts_with("read request has an invalid MBean name: object name \"nocolon\""),
        "{e}"
    );
    assert!(matches!(
        post_err(r#"{"type":"read","mbean":"esb:type=Server","attribute":5}"#),
        E::InvalidField {
            field: "attribute",
            ..
        }
    ));
    assert!(matches!(
        post_err(r#"{"type":"read","mbean":"esb:type=Server","attribute":["a",1]}"#),
        E::InvalidField {
            field: "attribute",
            ..
        }
    ));
    assert!(matches!(
        post_err(r#"{"type":"read","mbean":"esb:type=Server","path":5}"#),
        E::InvalidField { field: "path", .. }
    ));
    assert!(matches!(
        post_err(r#"{"type":"read","mbean":"esb:type=Server","path":"a/b!"}"#),
        E::DanglingEscape { .. }
    ));
    assert!(matches!(
        post_err(r#"{"type":"write","mbean":"esb:type=Server","value":1}"#),
        E::MissingField {
            kind: "write",
            field: "attribute",
            ..
        }
    ));
    assert!(matches!(
        post_err(r#"{"type":"write","mbean":"esb:type=Server","attribute":"","value":1}"#),
        E::InvalidField {
            kind: "write",
            field: "attribute",
            ..
        }
    ));
    let e = post_err(r#"{"type":"write","mbean":"esb:type=Server","attribute":"A"}"#);
    assert!(matches!(e, E::MissingField { field: "value", .. }));
    assert!(e.to_string().contains("null is allowed"), "{e}");
    let e = post_err(r#"{"type":"write","mbean":"esb:type=Proxy,*","attribute":"A","value":1}"#);
    assert_eq!(
        e,
        E::PatternNotAllowed {
            kind: "write",
            mbean: "esb:type=Proxy,*".into()
        }
    );
    assert!(matches!(
        post_err(r#"{"type":"exec","mbean":"esb:type=Unit,name=*","operation":"reload"}"#),
        E::PatternNotAllowed { kind: "exec", .. }
    ));
    assert!(matches!(
        post_err(r#"{"type":"exec","mbean":"esb:type=Server"}"#),
        E::MissingField {
            kind: "exec",
            field: "operation",
            ..
        }
    ));
    assert!(matches!(
        post_err(r#"{"type":"exec","mbean":"esb:type=Server","operation":"x","arguments":"a"}"#),
        E::InvalidField {
            field: "arguments",
            ..
        }
    ));
    assert!(matches!(
        post_err(r#"{"type":"list","config":[1]}"#),
        E::InvalidField {
            field: "config",
            ..
        }
    ));
    let e = post_err(r#"{"type":"list","config":{"maxDepth":-1}}"#);
    assert!(matches!(
        e,
        E::InvalidField {
            field: "config.maxDepth",
            ..
        }
    ));
    assert!(e.to_string().contains("non-negative integer"), "{e}");
    assert!(matches!(
        post_err(r#"{"type":"list","maxDepth":"two"}"#),
        E::InvalidField {
            field: "maxDepth",
            ..
        }
    ));

    // Bulk errors say which item failed.
    let e = post_err(r#"[{"type":"version"},{"type":"read"}]"#);
    assert!(
        matches!(&e, E::InBulk { index: 1, source } if matches!(**source, E::MissingField { .. }))
    );
    assert!(
        e.to_string()
            .starts_with("bulk request at index 1: read request is missing \"mbean\""),
        "{e}"
    );
    assert!(matches!(
        post_err(r#"[{"type":"version"}, "x"]"#),
        E::InBulk { index: 1, .. }
    ));
}

#[test]
fn request_serde_round_trip() {
    let r = single(r#"{"type":"list","path":"esb","config":{"maxDepth":2,"x":"y"}}"#);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v,
        json!({"type":"list","path":"esb","config":{"maxDepth":2,"x":"y"}})
    );
    let back: Request = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    let err = serde_json::from_str::<Request>(r#"{"type":"foo"}"#).unwrap_err();
    assert!(
        err.to_string().contains("unknown request type \"foo\""),
        "{err}"
    );
}

#[test]
fn kinds_and_echo() {
    let read = Request::read(on("esb:type=Unit,name=x"), Some("State"));
    assert_eq!(read.kind(), "read");
    assert!(!read.is_state_changing());
    assert_eq!(
        read.to_echo_json(),
        json!({"type":"read","mbean":"esb:type=Unit,name=x","attribute":"State"})
    );
    let write = Request::write(on("esb:type=Server"), "LogLevel", json!("info"));
    assert!(write.is_state_changing());
    assert_eq!(
        write.to_echo_json(),
        json!({"type":"write","mbean":"esb:type=Server","attribute":"LogLevel","value":"info"})
    );
    let exec = Request::exec(on("esb:type=Server"), "gc", vec![]);
    assert!(exec.is_state_changing());
    assert_eq!(exec.kind(), "exec");
    assert_eq!(
        exec.to_echo_json(),
        json!({"type":"exec","mbean":"esb:type=Server","operation":"gc","arguments":[]})
    );
    assert_eq!(
        Request::search(on("esb:*")).to_echo_json(),
        json!({"type":"search","mbean":"esb:*"})
    );
    assert_eq!(
        Request::list(None, Some(1)).to_echo_json(),
        json!({"type":"list"})
    );
    assert_eq!(Request::version().to_echo_json(), json!({"type":"version"}));
    assert_eq!(Request::version().kind(), "version");
    assert_eq!(Request::list(None, None).kind(), "list");
    assert_eq!(Request::search(on("esb:*")).kind(), "search");
    assert_eq!(read.mbean(), Some(&on("esb:name=x,type=Unit")));
    assert_eq!(Request::version().mbean(), None);
}

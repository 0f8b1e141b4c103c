//! Tests of GET paths: escaping, percent-decoding, every request type as a path.

use super::*;

fn get(path: &str) -> Request {
    parse_get_path(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn get_err(path: &str) -> ProtocolError {
    parse_get_path(path).expect_err(path)
}

#[test]
fn get_every_type() {
    assert_eq!(get("/version"), Request::version());
    assert_eq!(get("version"), Request::version());
    assert_eq!(get("/version/"), Request::version());
    assert_eq!(
        get("/read/esb:type=Server"),
        Request::read(on("esb:type=Server"), None)
    );
    assert_eq!(
        get("/read/esb:type=Server/Uptime"),
        Request::read(on("esb:type=Server"), Some("Uptime"))
    );
    assert_eq!(
        get("/read/esb:type=Server/Memory/heap/used"),
        Request::Read {
            mbean: on("esb:type=Server"),
            attribute: Some(Attributes::One("Memory".into())),
            path: Some("heap/used".into()),
            config: None,
        }
    );
    assert_eq!(
        get("/write/esb:type=Server/LogLevel/debug"),
        Request::write(on("esb:type=Server"), "LogLevel", json!("debug"))
    );
    assert_eq!(
        get("/write/esb:type=Server/Limits/10/max"),
        Request::Write {
            mbean: on("esb:type=Server"),
            attribute: "Limits".into(),
            value: json!("10"),
            path: Some("max".into()),
            config: None,
        }
    );
    assert_eq!(
        get("/exec/esb:type=Unit,name=orders/reload"),
        Request::exec(on("esb:type=Unit,name=orders"), "reload", vec![])
    );
    assert_eq!(
        get("/exec/esb:type=Unit,name=orders/scale/3/fast"),
        Request::exec(
            on("esb:type=Unit,name=orders"),
            "scale",
            vec![json!("3"), json!("fast")]
        )
    );
    assert_eq!(
        get("/search/esb:type=Proxy,*"),
        Request::search(on("esb:type=Proxy,*"))
    );
    assert_eq!(get("/search/*:*"), Request::search(on("*:*")));
    assert_eq!(get("/list"), Request::list(None, None));
    assert_eq!(get("/list/"), Request::list(None, None));
    assert_eq!(
        get("/list/esb/type=Server"),
        Request::list(Some("esb/type=Server"), None)
    );
}

#[test]
fn get_escaping_and_percent_decoding() {
    // `!/` is a literal slash inside a segment; `!!` a literal `!`.
    let r = get("/read/esb:type=Proxy,name=a!/b/Count");
    assert_eq!(r.mbean().unwrap().get("name"), Some("a/b"));
    assert!(
        matches!(&r, Request::Read { attribute: Some(Attributes::One(a)), .. } if a == "Count")
    );
    let r = get("/read/esb:type=Proxy,name=wow!!/Count");
    assert_eq!(r.mbean().unwrap().get("name"), Some("wow!"));
    let r = get("/read/esb:type=Proxy,name=x!!!/y/A");
    assert_eq!(r.mbean().unwrap().get("name"), Some("x!/y"));
    // Percent-decoding of segments; %2F is a slash inside the segment, not a separator.
    let r = get("/read/esb:type=Proxy,name=a%2Fb%20c/Count");
    assert_eq!(r.mbean().unwrap().get("name"), Some("a/b c"));
    let r = get("/read/esb:type=Proxy,name=%22a,b%22/Count");
    assert_eq!(r.mbean().unwrap().get("name"), Some("a,b"));
    // Fully percent-encoded escapes still work.
    let r = get("/read/esb:type=Proxy,name=a%21%2Fb/Count");
    assert_eq!(r.mbean().unwrap().get("name"), Some("a/b"));
    // `+` is not a space in a path.
    let r = get("/write/esb:type=Server/Greeting/a+b");
    assert!(matches!(r, Request::Write { value, .. } if value == json!("a+b")));
    // Inner paths are re-escaped so that `split_path` gives the decoded segments back.
    let r = get("/read/esb:type=Server/Map/a!/b/c");
    let Request::Read { path: Some(p), .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(p, "a!/b/c");
    assert_eq!(split_path(p).unwrap(), vec!["a/b", "c"]);
    let r = get("/list/esb/name=a!/b,type=Proxy");
    let Request::List { path: Some(p), .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(split_path(p).unwrap(), vec!["esb", "name=a/b,type=Proxy"]);
}

#[test]
fn get_null_and_empty_values() {
    assert_eq!(
        get("/write/esb:type=Server/Comment/[null]"),
        Request::write(on("esb:type=Server"), "Comment", Value::Null)
    );
    assert_eq!(
        get("/write/esb:type=Server/Comment/%5Bnull%5D"),
        Request::write(on("esb:type=Server"), "Comment", Value::Null)
    );
    assert_eq!(
        get("/write/esb:type=Server/Comment/\"\""),
        Request::write(on("esb:type=Server"), "Comment", json!(""))
    );
    assert_eq!(
        get("/write/esb:type=Server/Comment/%22%22"),
        Request::write(on("esb:type=Server"), "Comment", json!(""))
    );
    assert_eq!(
        get("/exec/esb:type=Server/op/[null]/\"\"/x"),
        Request::exec(
            on("esb:type=Server"),
            "op",
            vec![Value::Null, json!(""), json!("x")]
        )
    );
    // An empty segment in the middle is an empty string argument.
    assert_eq!(
        get("/exec/esb:type=Server/op//x"),
        Request::exec(on("esb:type=Server"), "op", vec![json!(""), json!("x")])
    );
}

#[test]
fn get_errors() {
    use ProtocolError as E;
    assert_eq!(parse_get_path("").unwrap(), Request::version());
    assert_eq!(parse_get_path("/").unwrap(), Request::version());
    assert_eq!(
        parse_get_path("/read/esb:type=Server/*").unwrap(),
        Request::read(ObjectName::parse("esb:type=Server").unwrap(), None)
    );
    assert!(matches!(
        parse_get_path("/read/esb:type=Server/State,Name").unwrap(),
        Request::Read { attribute: Some(Attributes::Many(ref v)), .. } if v == &["State", "Name"]
    ));
    assert_eq!(
        get_err("/reed/esb:type=Server"),
        E::UnknownType {
            given: "reed".into(),
            suggestion: Some("read")
        }
    );
    assert!(matches!(
        get_err("/foo"),
        E::UnknownType {
            suggestion: None,
            ..
        }
    ));
    let e = get_err("/read");
    assert_eq!(
        e,
        E::MissingSegment {
            kind: "read",
            what: "MBean name",
            usage: USAGE_READ
        }
    );
    assert_eq!(
        e.to_string(),
        "GET read request is missing the MBean name; use /read/<mbean>[/<attribute>[/<inner path>]]"
    );
    assert!(matches!(
        get_err("/read/esb:type=Server//x"),
        E::MissingSegment {
            what: "attribute name",
            ..
        }
    ));
    assert!(matches!(
        get_err("/read/nocolon/A"),
        E::InvalidObjectName { kind: "read", .. }
    ));
    assert!(matches!(
        get_err("/write/esb:type=Server"),
        E::MissingSegment {
            kind: "write",
            what: "attribute name",
            ..
        }
    ));
    let e = get_err("/write/esb:type=Server/A");
    assert!(matches!(e, E::MissingSegment { kind: "write", .. }));
    assert!(e.to_string().contains("[null]"), "{e}");
    assert!(matches!(
        get_err("/write/esb:type=Proxy,*/A/1"),
        E::PatternNotAllowed { kind: "write", .. }
    ));
    assert!(matches!(
        get_err("/exec/esb:type=Server"),
        E::MissingSegment {
            kind: "exec",
            what: "operation name",
            ..
        }
    ));
    assert!(matches!(
        get_err("/exec/esb:*/op"),
        E::PatternNotAllowed { kind: "exec", .. }
    ));
    assert!(matches!(
        get_err("/search"),
        E::MissingSegment {
            kind: "search",
            what: "MBean pattern",
            ..
        }
    ));
    let e = get_err("/search/esb:*/extra/x!/y");
    assert_eq!(
        e,
        E::UnexpectedSegments {
            kind: "search",
            extra: "extra/x!/y".into(),
            usage: USAGE_SEARCH
        }
    );
    assert!(matches!(
        get_err("/version/x"),
        E::UnexpectedSegments {
            kind: "version",
            ..
        }
    ));
    assert!(matches!(
        get_err("/read/esb:type=Proxy,name=a%2/A"),
        E::InvalidPercentEncoding { .. }
    ));
    assert!(matches!(
        get_err("/read/esb:type=Proxy,name=a%zz/A"),
        E::InvalidPercentEncoding { .. }
    ));
    let e = get_err("/read/esb:type=Proxy,name=%FF/A");
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    let e = get_err("/read/esb:type=Server/A/b!");
    assert_eq!(
        e,
        E::DanglingEscape {
            segment: "b!".into()
        }
    );
}

#[test]
fn query_and_get_request() {
    let c = parse_query("?maxDepth=2&ignoreErrors=true&x=a+b%21").unwrap();
    assert_eq!(c.max_depth, Some(2));
    assert_eq!(c.other.get("ignoreErrors"), Some(&json!("true")));
    assert_eq!(c.other.get("x"), Some(&json!("a b!")));
    assert_eq!(parse_query("").unwrap(), Config::default());
    assert_eq!(
        parse_query("flag").unwrap().other.get("flag"),
        Some(&json!(""))
    );
    let e = parse_query("maxDepth=deep").unwrap_err();
    assert!(matches!(&e, ProtocolError::InvalidQuery { param, .. } if param == "maxDepth"));
    assert!(e.to_string().contains("non-negative integer"), "{e}");
    assert!(matches!(
        parse_query("a=%G1"),
        Err(ProtocolError::InvalidQuery { .. })
    ));

    let r = parse_get_request("/list/esb", Some("maxDepth=1")).unwrap();
    assert_eq!(r, Request::list(Some("esb"), Some(1)));
    let r = parse_get_request("/version", Some("")).unwrap();
    assert_eq!(r, Request::version());
}

#[test]
fn escaping_helpers_round_trip() {
    assert_eq!(escape_path_segment("a/b!c"), "a!/b!!c");
    assert_eq!(escape_path_segment("plain"), "plain");
    assert_eq!(join_path(&["a/b", "c!"]), "a!/b/c!!");
    assert_eq!(split_path("a!/b/c!!").unwrap(), vec!["a/b", "c!"]);
    assert_eq!(split_path("/a/b/").unwrap(), vec!["a", "b"]);
    assert!(split_path("").unwrap().is_empty());
    assert_eq!(encode_get_segment("a b/\"x\"%!"), "a%20b!/%22x%22%25!!");

    let weird = ObjectName::new("esb", &[("type", "Proxy"), ("name", "a/b c!d,e")]);
    let requests = vec![
        Request::read(weird.clone(), Some("Count")),
        Request::Read {
            mbean: weird.clone(),
            attribute: Some(Attributes::One("M/ap".into())),
            path: Some("x!/y/z".into()),
            config: None,
        },
        Request::write(weird.clone(), "A", Value::Null),
        Request::write(weird.clone(), "A", json!("")),
        Request::write(weird.clone(), "A", json!("50% off")),
        Request::exec(
            weird.clone(),
            "op",
            vec![Value::Null, json!(""), json!("1/2")],
        ),
        Request::search(on("esb:type=Proxy,*")),
        Request::list(Some("esb/name=a!/b,type=Proxy"), None),
        Request::list(None, None),
        Request::version(),
    ];
    for r in requests {
        let path = r.to_get_path().unwrap();
        assert_eq!(parse_get_path(&path).unwrap(), r, "{path}");
    }
    assert_eq!(
        Request::read(on("esb:type=Server"), Some("Uptime"))
            .to_get_path()
            .unwrap(),
        "/read/esb:type=Server/Uptime"
    );
    // Values that GET cannot carry.
    assert_eq!(
        Request::write(on("esb:type=Server"), "A", json!({"a":1})).to_get_path(),
        None
    );
    assert_eq!(
        Request::write(on("esb:type=Server"), "A", json!("[null]")).to_get_path(),
        None
    );
    let many = Request::Read {
        mbean: on("esb:type=Server"),
        attribute: Some(Attributes::Many(vec!["A".into(), "B".into()])),
        path: None,
        config: None,
    };
    assert_eq!(many.to_get_path(), None);
    // Numbers and booleans become their text (GET values are strings).
    assert_eq!(
        Request::write(on("esb:type=Server"), "A", json!(5))
            .to_get_path()
            .unwrap(),
        "/write/esb:type=Server/A/5"
    );
}

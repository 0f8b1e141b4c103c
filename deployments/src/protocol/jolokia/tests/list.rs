//! Tests of list metadata, the list tree, did-you-mean hints and the other helpers.

use super::*;

fn sample_infos() -> Vec<(ObjectName, MBeanInfo)> {
    vec![
        (
            on("esb:type=Server"),
            MBeanInfo::new("The server")
                .with_attr("Uptime", "long", "Seconds since start", false)
                .with_attr("LogLevel", "java.lang.String", "Log level", true)
                .with_op("reload", &[], "void", "Reload all units"),
        ),
        (
            on("esb:type=Proxy,unit=orders,name=list"),
            MBeanInfo::new("Proxy orders/list")
                .with_attr("Count", "long", "Requests served", false)
                .with_op(
                    "setEnabled",
                    &[("enabled", "boolean", "Enable or disable")],
                    "void",
                    "Enable or disable the proxy",
                ),
        ),
        (on("other:type=Empty"), MBeanInfo::new("Nothing here")),
    ]
}

#[test]
fn list_full_tree() {
    let infos = sample_infos();
    let tree = list_tree(&infos, None, None).unwrap();
    assert_eq!(
        tree,
        json!({
            "esb": {
                "type=Server": {
                    "desc": "The server",
                    "attr": {
                        "LogLevel": {"type": "java.lang.String", "desc": "Log level", "rw": true},
                        "Uptime": {"type": "long", "desc": "Seconds since start", "rw": false}
                    },
                    "op": {"reload": {"args": [], "ret": "void", "desc": "Reload all units"}}
                },
                "name=list,type=Proxy,unit=orders": {
                    "desc": "Proxy orders/list",
                    "attr": {"Count": {"type": "long", "desc": "Requests served", "rw": false}},
                    "op": {"setEnabled": {
                        "args": [{"name": "enabled", "type": "boolean", "desc": "Enable or disable"}],
                        "ret": "void",
                        "desc": "Enable or disable the proxy"
                    }}
                }
            },
            "other": {"type=Empty": {"desc": "Nothing here"}}
        })
    );
    // MBeanInfo serde matches the list shape.
    assert_eq!(
        serde_json::to_value(&infos[0].1).unwrap(),
        infos[0].1.to_json()
    );
    assert_eq!(list_tree(&[], None, None).unwrap(), json!({}));
    assert_eq!(list_tree(&infos, Some(""), Some(0)).unwrap(), tree);
}

#[test]
fn list_max_depth() {
    let infos = sample_infos();
    assert_eq!(
        list_tree(&infos, None, Some(1)).unwrap(),
        json!({"esb": 1, "other": 1})
    );
    assert_eq!(
        list_tree(&infos, None, Some(2)).unwrap(),
        json!({"esb": {"type=Server": 1, "name=list,type=Proxy,unit=orders": 1}, "other": {"type=Empty": 1}})
    );
    assert_eq!(
        list_tree(&infos, None, Some(3)).unwrap()["esb"]["type=Server"],
        json!({"desc": "The server", "attr": 1, "op": 1})
    );
    // Relative to the node the path selects.
    assert_eq!(
        list_tree(&infos, Some("esb"), Some(1)).unwrap(),
        json!({"type=Server": 1, "name=list,type=Proxy,unit=orders": 1})
    );
    assert_eq!(
        list_tree(&infos, Some("esb/type=Server/attr"), Some(1)).unwrap(),
        json!({"LogLevel": 1, "Uptime": 1})
    );
    // Leaves are never truncated.
    assert_eq!(
        list_tree(&infos, Some("esb/type=Server/desc"), Some(1)).unwrap(),
        json!("The server")
    );
}

#[test]
fn list_paths() {
    let infos = sample_infos();
    assert_eq!(
        list_tree(&infos, Some("other"), None).unwrap(),
        json!({"type=Empty": {"desc": "Nothing here"}})
    );
    // Any property order, canonicalized.
    let proxy = list_tree(&infos, Some("esb/type=Proxy,unit=orders,name=list"), None).unwrap();
    assert_eq!(proxy["desc"], json!("Proxy orders/list"));
    assert_eq!(
        list_tree(&infos, Some("esb/type=Server/attr/Uptime"), None).unwrap(),
        json!({"type": "long", "desc": "Seconds since start", "rw": false})
    );
    assert_eq!(
        list_tree(&infos, Some("esb/type=Server/attr/LogLevel/rw"), None).unwrap(),
        json!(true)
    );
    assert_eq!(
        list_tree(
            &infos,
            Some("esb/name=list,type=Proxy,unit=orders/op/setEnabled/args/0/name"),
            None
        )
        .unwrap(),
        json!("enabled")
    );
    assert_eq!(
        list_tree(&infos, Some("esb/type=Server/op"), None).unwrap(),
        json!({"reload": {"args": [], "ret": "void", "desc": "Reload all units"}})
    );
    // `!/` escaping in path segments.
    let slashy = vec![(
        ObjectName::new("esb", &[("type", "Proxy"), ("name", "a/b")]),
        MBeanInfo::new("slashy"),
    )];
    assert_eq!(
        list_tree(&slashy, Some("esb/name=a!/b,type=Proxy/desc"), None).unwrap(),
        json!("slashy")
    );
    assert!(list_tree(&slashy, None, None).unwrap()["esb"]
        .get("name=a/b,type=Proxy")
        .is_some());
}

#[test]
fn list_path_errors() {
    let infos = sample_infos();
    let e = list_tree(&infos, Some("ebs"), None).unwrap_err();
    assert_eq!(
        e,
        ManagementError::DomainNotFound {
            domain: "ebs".into(),
            suggestion: Some("esb".into())
        }
    );
    assert_eq!(e.status(), 404);
    let e = list_tree(&infos, Some("esb/type=Unit,name=x"), None).unwrap_err();
    assert_eq!(
        e,
        ManagementError::InstanceNotFound {
            mbean: "esb:type=Unit,name=x".into()
        }
    );
    let e = list_tree(&infos, Some("esb/type=Proxy,*"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("pattern")),
        "{e}"
    );
    let e = list_tree(&infos, Some("es*"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("pattern")),
        "{e}"
    );
    let e = list_tree(&infos, Some("esb/type"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("not a valid key property list")),
        "{e}"
    );
    let e = list_tree(&infos, Some("esb/type=Server/attributes"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("use desc, attr or op")),
        "{e}"
    );
    let e = list_tree(&infos, Some("esb/type=Server/attr/Uptiem"), None).unwrap_err();
    assert!(matches!(
        &e,
        ManagementError::AttributeNotFound { suggestion: Some(s), .. } if s == "Uptime"
    ));
    assert_eq!(e.status(), 404);
    let e = list_tree(&infos, Some("esb/type=Server/op/relaod"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::NoSuchOperation { suggestion: Some(s), .. } if s == "reload")
    );
    assert_eq!(e.status(), 400);
    let e = list_tree(&infos, Some("esb/type=Server/attr/Uptime/nope"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("valid there: desc, rw, type")),
        "{e}"
    );
    let e = list_tree(&infos, Some("esb/type=Server/desc/x"), None).unwrap_err();
    assert!(
        matches!(&e, ManagementError::BadRequest(m) if m.contains("leaf")),
        "{e}"
    );
    let e = list_tree(&infos, Some("esb!"), None).unwrap_err();
    assert!(matches!(
        e,
        ManagementError::Protocol(ProtocolError::DanglingEscape { .. })
    ));
}

#[test]
fn request_types_match_without_regard_to_case() {
    let r = single(r#"{"type":"EXEC","mbean":"esb:type=Server","operation":"restart"}"#);
    assert_eq!(r.kind(), "exec");
    assert_eq!(r.to_echo_json()["type"], "exec");
    let r = parse_get_path("/Read/esb:type=Server/Name").unwrap();
    assert_eq!(r.kind(), "read");
    assert!(parse_get_path("/Version").unwrap().kind() == "version");
}

#[test]
fn p_parameter_carries_the_get_path() {
    let r = parse_get_request("", Some("p=/read/esb:type%3DServer/Name&maxDepth=2")).unwrap();
    assert_eq!(
        r,
        Request::Read {
            mbean: on("esb:type=Server"),
            attribute: Some(Attributes::One("Name".into())),
            path: None,
            config: Some(Config::with_max_depth(2)),
        }
    );
    // `+` is a space, as in any query parameter (send %2B for a plus); `!` escapes work
    // as in the path form.
    let r = parse_get_request("/", Some("p=/exec/esb:type=Unit,name=a/deploy/x+y/a!/b")).unwrap();
    let Request::Exec { arguments, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(arguments, vec![json!("x y"), json!("a/b")]);
    // A real path wins; `p` is then an ordinary parameter.
    let r = parse_get_request("/version", Some("p=/read/esb:type=Server")).unwrap();
    assert_eq!(r.kind(), "version");
    assert!(parse_get_request("", Some("p=")).unwrap().kind() == "version");
}

#[test]
fn numeric_processing_parameters_are_checked() {
    let c = parse_query("maxCollectionSize=3&maxObjects=10&ignoreErrors=true").unwrap();
    assert_eq!(c.number("maxCollectionSize"), Some(3));
    assert_eq!(c.number("maxObjects"), Some(10));
    assert!(c.ignore_errors());
    assert!(c.canonical_naming());
    assert!(matches!(
        parse_query("maxCollectionSize=lots"),
        Err(ProtocolError::InvalidQuery { .. })
    ));
    let e = post(r#"{"type":"version","config":{"maxObjects":-1}}"#).unwrap_err();
    assert!(e.to_string().contains("config.maxObjects"), "{e}");
}

#[test]
fn shaping_applies_depth_collection_and_object_limits() {
    let v = json!({"a": [1, 2, 3], "b": {"c": {"d": 1}}, "n": 5000000000u64, "f": 0.5});
    let shape = |q: &str| Shaping::of(Some(&parse_query(q).unwrap())).apply(v.clone());
    assert_eq!(shape(""), v);
    assert_eq!(
        shape("maxDepth=2"),
        json!({"a": [1, 2, 3], "b": {"c": "{\"d\":1}"}, "n": 5000000000u64, "f": 0.5})
    );
    assert_eq!(
        shape("maxDepth=1"),
        json!({"a": "[1,2,3]", "b": "{\"c\":{\"d\":1}}", "n": 5000000000u64, "f": 0.5})
    );
    assert_eq!(
        shape("maxCollectionSize=2"),
        json!({"a": [1, 2], "b": {"c": {"d": 1}}})
    );
    assert_eq!(
        shape("serializeLong=string"),
        json!({"a": ["1", "2", "3"], "b": {"c": {"d": "1"}}, "n": "5000000000", "f": 0.5})
    );
    // Depth-first count: the object, "a", 1, 2 — then the marker.
    assert_eq!(
        shape("maxObjects=4"),
        json!({"a": [1, 2, OBJECT_LIMIT_MARKER], "b": OBJECT_LIMIT_MARKER,
               "f": OBJECT_LIMIT_MARKER, "n": OBJECT_LIMIT_MARKER})
    );
    assert!(Shaping::of(None).is_identity());
}

#[test]
fn list_keys_follow_canonical_naming() {
    let infos = vec![(
        on("esb:type=Proxy,unit=u,name=p"),
        MBeanInfo::new("a proxy"),
    )];
    let sorted = list_tree_named(&infos, Some("esb"), Some(1), true).unwrap();
    assert_eq!(sorted, json!({"name=p,type=Proxy,unit=u": 1}));
    let given = list_tree_named(&infos, Some("esb"), Some(1), false).unwrap();
    assert_eq!(given, json!({"type=Proxy,unit=u,name=p": 1}));
    // Paths are matched in any order either way.
    let info = list_tree_named(&infos, Some("esb/name=p,unit=u,type=Proxy"), None, false);
    assert_eq!(info.unwrap()["desc"], "a proxy");
}

#[test]
fn stack_traces_only_on_request_and_get_changes_are_403() {
    let e = ManagementError::ChangeOverGet { kind: "exec" };
    let r = Response::from_error(json!({"type": "exec"}), &e);
    assert_eq!(r.status, 403);
    assert!(serde_json::to_value(&r)
        .unwrap()
        .get("stacktrace")
        .is_none());
    let t = r.with_stacktrace().stacktrace.unwrap();
    assert!(
        t.starts_with("java.lang.SecurityException: exec requests"),
        "{t}"
    );
}

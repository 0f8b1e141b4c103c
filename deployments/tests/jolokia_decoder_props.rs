//! Property tests of the Jolokia request decoder (POST JSON bodies, bulk arrays, GET paths
//! with `!` escaping and percent-encoding, query strings) against arbitrary and hostile
//! input: it never panics, its answers stay proportional to its input (no error message or
//! request list larger than what was sent), deep nesting is refused instead of recursing,
//! and a request it accepts re-encodes to a GET path that decodes to the same path again.
//! The management endpoint feeds it unauthenticated-size-bounded but otherwise raw bytes.

use deployments::protocol::{
    parse_get_path, parse_get_request, parse_post_body, parse_post_body_each, Request,
    REQUEST_TYPES,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Characters that mean something to the decoder, plus a few multi-byte and control ones.
const HOSTILE: &str = "[!/%a-fA-F0-9xyz:=,*?\"\\\\ .+&#\\[\\]{}é€😀\u{0}\u{7f}\n]{0,48}";

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::string::string_regex(HOSTILE).expect("regex"),
        1 => any::<String>(),
        1 => Just("esb:type=Server".to_owned()),
        1 => Just("esb:type=Unit,name=*".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "type", "mbean", "attribute", "operation", "arguments", "path", "value", "config",
            "maxDepth",
        ])
        .prop_map(str::to_owned),
        1 => hostile(),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile().prop_map(Value::from),
        prop::sample::select(REQUEST_TYPES.to_vec()).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A request-shaped object: a known (or hostile) type and arbitrary request fields.
fn request_json() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => prop::sample::select(REQUEST_TYPES.to_vec()).prop_map(Value::from),
            1 => json(),
        ],
        prop::collection::btree_map(key(), json(), 0..6),
        prop_oneof![
            hostile(),
            Just("esb:type=Proxy,unit=shop,name=orders".to_owned())
        ],
    )
        .prop_map(|(kind, fields, mbean)| {
            let mut m: Map<String, Value> = fields.into_iter().collect();
            m.insert("type".into(), kind);
            m.entry("mbean").or_insert(Value::String(mbean));
            Value::Object(m)
        })
}

/// What a decoded request may cost: its error texts and echoes are proportional to the input.
fn bounded(input_len: usize, text_len: usize) -> bool {
    text_len <= 4 * input_len + 4096
}

/// A decoded request survives the operations the endpoint applies to it, and its GET form
/// (when it has one) decodes and re-encodes to itself.
fn check_request(r: &Request, input_len: usize) -> Result<(), TestCaseError> {
    let echo = r.to_echo_json().to_string();
    prop_assert!(
        bounded(input_len, echo.len()),
        "echo of {} bytes",
        echo.len()
    );
    let _ = r.kind();
    let _ = r.is_state_changing();
    if let Some(path) = r.to_get_path() {
        let back = parse_get_path(&path);
        prop_assert!(
            back.is_ok(),
            "{path} does not decode: {back:?} (from {r:?})"
        );
        let again = back.unwrap().to_get_path();
        prop_assert_eq!(again.as_deref(), Some(path.as_str()), "from {:?}", r);
    }
    Ok(())
}

fn check_post(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_post_body_each(body) {
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                bounded(body.len(), text.len()),
                "{} bytes of error",
                text.len()
            );
        }
        Ok(items) => {
            prop_assert!(items.items.len() <= body.len());
            for item in &items.items {
                match item {
                    Ok(r) => check_request(r, body.len())?,
                    Err(rejected) => {
                        let text = rejected.error.to_string();
                        prop_assert!(bounded(body.len(), text.len()));
                    }
                }
            }
        }
    }
    let _ = parse_post_body(body);
    Ok(())
}

/// 256 cases per property (about a second in all); `PROPTEST_CASES=N` for a deeper run.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_a_post_body_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_post(&body)?;
    }

    #[test]
    fn request_shaped_json_single_or_bulk_never_panics(
        requests in prop::collection::vec(request_json(), 1..6),
        bulk in any::<bool>(),
    ) {
        let body = if bulk {
            serde_json::to_vec(&requests).unwrap()
        } else {
            serde_json::to_vec(&requests[0]).unwrap()
        };
        check_post(&body)?;
    }

    #[test]
    fn truncated_or_corrupted_json_never_panics(
        request in request_json(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut body = serde_json::to_vec(&request).unwrap();
        let at = cut.index(body.len() + 1);
        check_post(&body[..at])?;
        if at < body.len() {
            body[at] = byte;
            check_post(&body)?;
        }
    }

    #[test]
    fn hostile_get_paths_and_queries_never_panic(
        segments in prop::collection::vec(hostile(), 0..8),
        kind in prop::sample::select(REQUEST_TYPES.to_vec()),
        query in proptest::option::of(hostile()),
    ) {
        let path = format!("/{kind}/{}", segments.join("/"));
        for p in [path.as_str(), &path[1..], segments.join("/").as_str()] {
            match parse_get_request(p, query.as_deref()) {
                Ok(r) => check_request(&r, p.len() + query.as_ref().map_or(0, String::len))?,
                Err(e) => prop_assert!(bounded(p.len(), e.to_string().len())),
            }
        }
    }

    #[test]
    fn requests_with_hostile_names_decode_from_their_get_form_to_themselves(
        attribute in hostile(),
        args in prop::collection::vec(hostile(), 0..4),
        operation in hostile(),
        value in hostile(),
    ) {
        let mbean = deployments::protocol::ObjectName::parse("esb:type=Unit,name=shop").unwrap();
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        for r in [
            Request::exec(mbean.clone(), &operation, args),
            Request::read(mbean.clone(), Some(&attribute)),
            Request::write(mbean.clone(), &attribute, Value::from(value)),
        ] {
            // A request without a GET form is sent as POST; one with a GET form must mean
            // exactly the same request when decoded.
            if let Some(path) = r.to_get_path() {
                let back = parse_get_path(&path);
                prop_assert_eq!(back.as_ref().ok(), Some(&r), "{} decodes to {:?}", path, back);
            }
        }
    }
}

/// Nesting far beyond what any request needs is refused with an error, without recursing
/// into a stack overflow — as a whole body, as a bulk item and inside exec arguments.
#[test]
fn deeply_nested_json_is_refused_without_recursing() {
    for depth in [200, 10_000, 1_000_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(
            parse_post_body_each(arrays.as_bytes()).is_err(),
            "depth {depth}"
        );
        let unclosed = "[".repeat(depth);
        assert!(parse_post_body_each(unclosed.as_bytes()).is_err());
        let objects = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert!(parse_post_body_each(objects.as_bytes()).is_err());
        let in_args = format!(
            r#"{{"type":"exec","mbean":"esb:type=Server","operation":"x","arguments":{arrays}}}"#
        );
        assert!(parse_post_body_each(in_args.as_bytes()).is_err());
    }
    // Just below the limit it decodes, and echoing it works.
    let depth = 100;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let body = format!(
        r#"[{{"type":"exec","mbean":"esb:type=Server","operation":"x","arguments":{arrays}}}]"#
    );
    let items = parse_post_body_each(body.as_bytes()).expect("nesting of 100 decodes");
    let r = items.items[0].as_ref().expect("a request");
    assert!(r.to_echo_json().to_string().len() > 2 * depth);
    assert_eq!(r.to_get_path(), None);
}

/// Huge values (a 4 MiB string, a 100,000-item bulk, a 1 MiB GET path) are decoded in one
/// pass; what comes back is proportional to them.
#[test]
fn huge_strings_bulks_and_paths_are_decoded_in_proportion() {
    let big = "x".repeat(4 << 20);
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "exec", "mbean": "esb:type=DeploymentManager", "operation": "deploy",
        "arguments": ["u", big],
    }))
    .unwrap();
    let items = parse_post_body_each(&body).unwrap();
    assert!(items.items[0].is_ok());

    let bulk: Vec<Value> = (0..100_000)
        .map(|_| serde_json::json!({"type": "version"}))
        .collect();
    let items = parse_post_body_each(&serde_json::to_vec(&bulk).unwrap()).unwrap();
    assert_eq!(items.items.len(), 100_000);

    for path in [
        format!("/read/esb:type=Server/{}", "!/".repeat(1 << 19)),
        format!("/list/{}", "a/".repeat(1 << 19)),
        format!("/exec/esb:type=Server/op/{}", "%e2%82".repeat(1 << 17)),
        format!("/read/esb:type=Server/A/{}!", "b".repeat(1 << 20)),
        format!("/search/{}", "*:*,".repeat(1 << 18)),
    ] {
        match parse_get_path(&path) {
            Ok(r) => assert!(r.to_echo_json().to_string().len() <= 4 * path.len()),
            Err(e) => assert!(e.to_string().len() <= 4 * path.len() + 4096),
        }
    }
    let query = format!("maxDepth={}&{}", "9".repeat(1000), "a=b&".repeat(1 << 16));
    assert!(parse_get_request("/list", Some(&query)).is_err());
}

/// Percent-escapes that decode to invalid UTF-8, dangling `%` and `!`, surrogate escapes in
/// JSON: each is an error naming what is wrong, never a panic.
#[test]
fn invalid_escapes_are_errors() {
    for path in [
        "/read/esb:type=Server/%ff%fe",
        "/read/esb:type=Server/%e2%82",
        "/read/esb:type=Server/%",
        "/read/esb:type=Server/%4",
        "/read/esb:type=Server/%zz",
        "/read/esb:type=Server/A!",
        "/exec/esb:type=Server/op/%c0%af",
        "/read/%",
    ] {
        assert!(parse_get_path(path).is_err(), "{path}");
    }
    for body in [
        r#"{"type":"read","mbean":"esb:type=Server","attribute":"\ud800"}"#,
        r#"{"type":"read","mbean":"esb:type=Server","attribute":"\u00"}"#,
        "{\"type\":\"read\",\"mbean\":\"esb:type=Server\",\"attribute\":\"\u{0}\"}",
        "{\"type\":\"read\",\"mbean\":\"esb:type=Server\",\"attribute\":\"\\x\"}",
    ] {
        let _ = parse_post_body_each(body.as_bytes());
    }
    assert!(parse_post_body_each(b"{\"type\":\"read\",\"mbean\":\"\xff\xfe\"}").is_err());
}

/// An inner path with an empty first or last segment has no GET form (the GET form trims
/// one empty segment at each end, so it would come back as another path); an empty segment
/// inside one round-trips. Found by `hostile_get_paths_and_queries_never_panic`.
#[test]
fn inner_paths_with_empty_end_segments_have_no_get_form() {
    for path in ["//a", "a//", "!//a"] {
        let r = Request::List {
            path: Some(path.to_owned()),
            config: None,
        };
        let get = r.to_get_path();
        if let Some(get) = &get {
            let again = parse_get_path(get).expect("decodes").to_get_path();
            assert_eq!(again.as_ref(), Some(get), "{path:?} round-trips");
        }
    }
    let r = Request::List {
        path: Some("//a".to_owned()),
        config: None,
    };
    assert_eq!(r.to_get_path(), None);
    let r = Request::List {
        path: Some("a//b".to_owned()),
        config: None,
    };
    let get = r.to_get_path().expect("a GET form");
    assert_eq!(get, "/list/a//b");
    assert_eq!(parse_get_path(&get).unwrap().to_get_path(), Some(get));
}

//! Tests of the response envelope and error mapping.

use super::*;

#[test]
fn response_envelope_exact_json() {
    let req = Request::read(on("esb:type=Server"), Some("Uptime")).to_echo_json();
    let ok = Response::ok_at(req.clone(), json!(42), 1_700_000_000);
    assert!(ok.is_ok());
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({
            "request": {"type":"read","mbean":"esb:type=Server","attribute":"Uptime"},
            "value": 42,
            "status": 200,
            "timestamp": 1_700_000_000u64
        })
    );
    // A null value is still sent.
    let null_ok = Response::ok_at(req.clone(), Value::Null, 1);
    assert_eq!(
        serde_json::to_value(&null_ok).unwrap(),
        json!({"request": req, "value": null, "status": 200, "timestamp": 1})
    );
    let back: Response = serde_json::from_value(serde_json::to_value(&null_ok).unwrap()).unwrap();
    assert_eq!(back, null_ok);
    // Clock-based constructor sets a plausible timestamp.
    assert!(Response::ok(req.clone(), json!(1)).timestamp.unwrap() > 1_600_000_000);

    let missing = on("esb:type=Unit,name=x");
    let ereq = Request::read(missing.clone(), Some("State")).to_echo_json();
    let err = Response::from_error(ereq.clone(), &ManagementError::instance_not_found(&missing));
    assert!(!err.is_ok());
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({
            "request": {"type":"read","mbean":"esb:type=Unit,name=x","attribute":"State"},
            "status": 404,
            "error_type": "javax.management.InstanceNotFoundException",
            "error": "javax.management.InstanceNotFoundException : esb:type=Unit,name=x"
        })
    );
    let back: Response = serde_json::from_value(serde_json::to_value(&err).unwrap()).unwrap();
    assert_eq!(back, err);

    let manual = Response::error(ereq, 403, "java.lang.SecurityException", "nope");
    assert_eq!(
        manual.error.as_deref(),
        Some("java.lang.SecurityException : nope")
    );

    // No request could be parsed: the echo is omitted.
    let e = Response::from_error(Value::Null, &ProtocolError::EmptyBulk);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({
            "status": 400,
            "error_type": "java.lang.IllegalArgumentException",
            "error": "java.lang.IllegalArgumentException : bulk request array is empty; put at least one request object in it"
        })
    );
}

#[test]
fn error_status_and_types() {
    let n = on("esb:type=Proxy,unit=orders,name=list");
    let cases: Vec<(ManagementError, u16, &str)> = vec![
        (
            ManagementError::Protocol(ProtocolError::MissingType),
            400,
            "java.lang.IllegalArgumentException",
        ),
        (
            ManagementError::BadRequest("x".into()),
            400,
            "java.lang.IllegalArgumentException",
        ),
        (
            ManagementError::Forbidden {
                reason: "read-only token".into(),
            },
            403,
            "java.lang.SecurityException",
        ),
        (
            ManagementError::instance_not_found(&n),
            404,
            "javax.management.InstanceNotFoundException",
        ),
        (
            ManagementError::DomainNotFound {
                domain: "x".into(),
                suggestion: None,
            },
            404,
            "javax.management.InstanceNotFoundException",
        ),
        (
            ManagementError::attribute_not_found(&n, "Cuont", ["Count", "State"]),
            404,
            "javax.management.AttributeNotFoundException",
        ),
        (
            ManagementError::no_such_operation(&n, "relaod", ["reload", "stop"]),
            400,
            "java.lang.IllegalArgumentException",
        ),
        (
            ManagementError::WrongArgumentCount {
                mbean: "m".into(),
                operation: "o".into(),
                expected: 1,
                given: 2,
            },
            400,
            "java.lang.IllegalArgumentException",
        ),
        (
            ManagementError::ReadOnlyAttribute {
                mbean: "m".into(),
                attribute: "a".into(),
            },
            400,
            "java.lang.IllegalArgumentException",
        ),
        (
            ManagementError::ChangeOverGet { kind: "exec" },
            403,
            "java.lang.SecurityException",
        ),
        (
            ManagementError::OperationFailed {
                mbean: "m".into(),
                operation: "o".into(),
                message: "boom".into(),
            },
            500,
            "javax.management.RuntimeMBeanException",
        ),
        (
            ManagementError::Internal("x".into()),
            500,
            "java.lang.IllegalStateException",
        ),
    ];
    for (err, status, ty) in cases {
        assert_eq!(err.status(), status, "{err:?}");
        assert_eq!(err.error_type(), ty, "{err:?}");
    }
    assert_eq!(ProtocolError::EmptyBody.status(), 400);
    assert_eq!(
        ProtocolError::EmptyBody.error_type(),
        "java.lang.IllegalArgumentException"
    );

    let op = ManagementError::no_such_operation(&n, "relaod", ["reload", "stop"]);
    assert_eq!(
        op.to_string(),
        "No operation relaod found on MBean esb:type=Proxy,unit=orders,name=list (did you mean \"reload\"?); \
         send a list request for the MBean to see its operations"
    );
    let attr = ManagementError::attribute_not_found(&n, "Cuont", ["Count", "State"]);
    assert!(attr.to_string().starts_with("No attribute Cuont found on MBean esb:type=Proxy,unit=orders,name=list (did you mean \"Count\"?)"));
    let none = ManagementError::no_such_operation(&n, "zzz", ["reload"]);
    assert!(!none.to_string().contains("did you mean"));
    let inf = ManagementError::instance_not_found(&n);
    assert_eq!(
        inf.jolokia_message(),
        "esb:type=Proxy,unit=orders,name=list"
    );
    assert!(inf.to_string().contains("search request"));
    let m = ManagementError::ChangeOverGet { kind: "write" }.to_string();
    assert!(m.contains("POST") && m.contains("allow_get_changes"), "{m}");
}

#[test]
fn version_info_shape() {
    let mut v = VersionInfo::new("esb", "0.1.0");
    v.config.insert("maxDepth".into(), json!(15));
    let expected = json!({
        "agent": "0.1.0",
        "protocol": "7.2",
        "config": {"maxDepth": 15},
        "info": {"product": "esb", "vendor": "esb", "version": "0.1.0"}
    });
    assert_eq!(v.to_value(), expected);
    assert_eq!(serde_json::to_value(&v).unwrap(), expected);
}

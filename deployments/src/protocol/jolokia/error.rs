//! Protocol and management errors, their Jolokia status codes and Java error types, and the did-you-mean hints they carry.

use super::*;

pub(super) fn hint<S: AsRef<str>>(suggestion: &Option<S>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{}\"?)", s.as_ref()),
        None => String::new(),
    }
}

/// A request that is malformed: it can never succeed as sent. Always status 400
/// (`java.lang.IllegalArgumentException`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "request body is empty; send a JSON request object such as {{\"type\":\"version\"}} \
         or a JSON array of request objects"
    )]
    EmptyBody,
    #[error(
        "request body is not valid JSON (line {line}, column {column}): {message}; send a JSON \
         request object or a JSON array of request objects"
    )]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("request body must be a JSON object or an array of objects, but it is {found}")]
    InvalidBody { found: String },
    #[error("bulk request array is empty; put at least one request object in it")]
    EmptyBulk,
    #[error("bulk request at index {index}: {source}")]
    InBulk {
        index: usize,
        source: Box<ProtocolError>,
    },
    #[error("a request must be a JSON object, but it is {found}")]
    RequestNotObject { found: String },
    #[error("request has no \"type\"; set \"type\" to one of {TYPES_LIST}")]
    MissingType,
    #[error("request field \"type\" must be a string (one of {TYPES_LIST}), but it is {found}")]
    TypeNotString { found: String },
    #[error(
        "unknown request type \"{given}\"{}; supported types are {TYPES_LIST}",
        hint(.suggestion)
    )]
    UnknownType {
        given: String,
        suggestion: Option<&'static str>,
    },
    #[error("{kind} request is missing \"{field}\"; {hint}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
        hint: &'static str,
    },
    #[error("\"{field}\" in the {kind} request must be {expected}, but it is {found}")]
    InvalidField {
        kind: &'static str,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{kind} request has an invalid MBean name: {source}")]
    InvalidObjectName {
        kind: &'static str,
        source: ObjectNameError,
    },
    #[error(
        "{kind} request needs exactly one MBean, but \"{mbean}\" is a pattern; name the MBean \
         exactly (a search request lists the names matching a pattern)"
    )]
    PatternNotAllowed { kind: &'static str, mbean: String },
    #[error("GET path has no request type; use e.g. /version, /read/<mbean>/<attribute> or /list")]
    EmptyGetPath,
    #[error("GET {kind} request is missing the {what}; use {usage}")]
    MissingSegment {
        kind: &'static str,
        what: &'static str,
        usage: &'static str,
    },
    #[error(
        "GET {kind} request has unexpected extra path segments \"{extra}\"; use {usage} \
         (write a literal '/' inside a segment as '!/')"
    )]
    UnexpectedSegments {
        kind: &'static str,
        extra: String,
        usage: &'static str,
    },
    #[error("path segment \"{segment}\" has invalid percent-encoding: {reason}; encode a literal '%' as %25")]
    InvalidPercentEncoding {
        segment: String,
        reason: &'static str,
    },
    #[error(
        "path segment \"{segment}\" ends with a lone '!'; '!' escapes the next character, so \
         write a literal '!' as '!!' and a literal '/' as '!/'"
    )]
    DanglingEscape { segment: String },
    #[error("query parameter \"{param}\" has the invalid value \"{value}\": {reason}")]
    InvalidQuery {
        param: String,
        value: String,
        reason: String,
    },
}

/// A request that failed while being served. Maps to Jolokia's status codes and Java error types
/// via [`JolokiaError`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManagementError {
    /// The request is malformed (400).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Any other client mistake (400); the message must say what is wrong and what to do.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (403).
    #[error("access denied: {reason}")]
    Forbidden { reason: String },
    /// No MBean with this name (404). `mbean` is the name as the client gave it.
    #[error(
        "no MBean named {mbean} is registered; send a search request (e.g. for esb:*) to see \
         the registered names"
    )]
    InstanceNotFound { mbean: String },
    /// A `list` path names a domain without MBeans (404).
    #[error(
        "no MBean domain \"{domain}\" is registered{}; send a list request without a path to \
         see the domains",
        hint(.suggestion)
    )]
    DomainNotFound {
        domain: String,
        suggestion: Option<String>,
    },
    /// The MBean exists but has no such attribute (404).
    #[error(
        "No attribute {attribute} found on MBean {mbean}{}; send a list request for the MBean \
         to see its attributes",
        hint(.suggestion)
    )]
    AttributeNotFound {
        mbean: String,
        attribute: String,
        suggestion: Option<String>,
    },
    /// The MBean exists but has no such operation (400, as Jolokia does).
    #[error(
        "No operation {operation} found on MBean {mbean}{}; send a list request for the MBean \
         to see its operations",
        hint(.suggestion)
    )]
    NoSuchOperation {
        mbean: String,
        operation: String,
        suggestion: Option<String>,
    },
    /// Wrong number of exec arguments (400); message as Jolokia words it.
    #[error(
        "Invalid number of operation arguments. Operation {operation} on {mbean} requires \
         {expected} parameters, not {given} as given"
    )]
    WrongArgumentCount {
        mbean: String,
        operation: String,
        expected: usize,
        given: usize,
    },
    /// Write to an attribute that is not writable (400).
    #[error(
        "attribute {attribute} of MBean {mbean} is read-only; only attributes listed with \
         \"rw\": true can be written"
    )]
    ReadOnlyAttribute { mbean: String, attribute: String },
    /// write/exec over HTTP GET while `allow_get_changes` is off (403, in a 200 envelope so
    /// browser clients such as jolokia.js see it).
    #[error(
        "{kind} requests change server state and are refused over HTTP GET: send them as a \
         POST with a JSON body, or set `allow_get_changes = true` in [management] (loopback \
         binds only) to allow them"
    )]
    ChangeOverGet { kind: &'static str },
    /// A Jolokia agent feature esb does not have, such as the history store of
    /// `jolokia:type=Config` (404, as for a missing MBean, with a message that says so).
    #[error("{message}")]
    NotSupported { mbean: String, message: String },
    /// The operation ran and failed (500, `javax.management.RuntimeMBeanException`).
    #[error("operation {operation} on MBean {mbean} failed: {message}")]
    OperationFailed {
        mbean: String,
        operation: String,
        message: String,
    },
    /// A server-side bug or unexpected state (500, `java.lang.IllegalStateException`).
    #[error("internal error: {0}")]
    Internal(String),
    /// The server cannot do this now, e.g. state changes while the audit log cannot be
    /// written (503, `java.lang.IllegalStateException`); the message says until when.
    #[error("{0}")]
    Unavailable(String),
}

impl ManagementError {
    /// 404 for `name`, carrying the name in the order the client gave it (as Jolokia reports it).
    pub fn instance_not_found(name: &ObjectName) -> Self {
        ManagementError::InstanceNotFound {
            mbean: name.original(),
        }
    }

    /// 404 for a missing attribute, with a "did you mean" drawn from `known` attribute names.
    pub fn attribute_not_found<'a>(
        name: &ObjectName,
        attribute: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        ManagementError::AttributeNotFound {
            mbean: name.original(),
            attribute: attribute.to_string(),
            suggestion: suggest(attribute, known).map(str::to_string),
        }
    }

    /// 400 for a missing operation, with a "did you mean" drawn from `known` operation names.
    pub fn no_such_operation<'a>(
        name: &ObjectName,
        operation: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        ManagementError::NoSuchOperation {
            mbean: name.original(),
            operation: operation.to_string(),
            suggestion: suggest(operation, known).map(str::to_string),
        }
    }
}

/// How an error appears in a Jolokia response envelope.
pub trait JolokiaError: std::fmt::Display {
    /// The `status` of the response (Jolokia's HTTP-like code).
    fn status(&self) -> u16;
    /// The `error_type`: the Java exception class Jolokia would report.
    fn error_type(&self) -> &'static str;
    /// The exception message; the envelope's `error` is `"<error_type> : <message>"`.
    fn jolokia_message(&self) -> String {
        self.to_string()
    }
}

pub(super) const ILLEGAL_ARGUMENT: &str = "java.lang.IllegalArgumentException";

impl JolokiaError for ProtocolError {
    fn status(&self) -> u16 {
        400
    }
    fn error_type(&self) -> &'static str {
        ILLEGAL_ARGUMENT
    }
}

impl JolokiaError for ManagementError {
    fn status(&self) -> u16 {
        use ManagementError::*;
        match self {
            Protocol(_)
            | BadRequest(_)
            | NoSuchOperation { .. }
            | WrongArgumentCount { .. }
            | ReadOnlyAttribute { .. } => 400,
            Forbidden { .. } => 403,
            InstanceNotFound { .. }
            | DomainNotFound { .. }
            | AttributeNotFound { .. }
            | NotSupported { .. } => 404,
            ChangeOverGet { .. } => 403,
            OperationFailed { .. } | Internal(_) => 500,
            Unavailable(_) => 503,
        }
    }

    fn error_type(&self) -> &'static str {
        use ManagementError::*;
        match self {
            Protocol(_)
            | BadRequest(_)
            | NoSuchOperation { .. }
            | WrongArgumentCount { .. }
            | ReadOnlyAttribute { .. } => ILLEGAL_ARGUMENT,
            Forbidden { .. } | ChangeOverGet { .. } => "java.lang.SecurityException",
            InstanceNotFound { .. } | DomainNotFound { .. } | NotSupported { .. } => {
                "javax.management.InstanceNotFoundException"
            }
            AttributeNotFound { .. } => "javax.management.AttributeNotFoundException",
            OperationFailed { .. } => "javax.management.RuntimeMBeanException",
            Internal(_) | Unavailable(_) => "java.lang.IllegalStateException",
        }
    }

    /// Like Jolokia, an instance-not-found message is just the MBean name.
    fn jolokia_message(&self) -> String {
        match self {
            ManagementError::InstanceNotFound { mbean } => mbean.clone(),
            other => other.to_string(),
        }
    }
}

/// Short description of a JSON value for error messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.is_empty() => "an empty string".to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("the string \"{s}\""),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

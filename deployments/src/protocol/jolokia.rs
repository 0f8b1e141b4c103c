//! The Jolokia protocol (v2 subset) spoken by the management endpoint and its clients.
//! Owns request parsing (POST JSON bodies, single or bulk; GET paths with `!` escaping and
//! percent-decoding), the response envelope, the `version` and `list` value shapes, and the
//! mapping of errors to Jolokia status codes and Java error types.
//! Invariants: a parsed write/exec request never names an MBean pattern; nothing here does I/O.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::object_name::{ObjectName, ObjectNameError};

/// Jolokia protocol version we claim in `version` responses.
pub const PROTOCOL_VERSION: &str = "7.2";

/// Request types we understand, as they appear in `"type"` and in the first GET path segment
/// (matched without regard to case, as Jolokia does: jmx4perl sends `"READ"`).
pub const REQUEST_TYPES: [&str; 6] = ["read", "write", "exec", "search", "list", "version"];

const TYPES_LIST: &str = "read, write, exec, search, list, version";

const USAGE_READ: &str = "/read/<mbean>[/<attribute>[/<inner path>]]";
const USAGE_WRITE: &str = "/write/<mbean>/<attribute>/<value>[/<inner path>]";
const USAGE_EXEC: &str = "/exec/<mbean>/<operation>[/<argument>...]";
const USAGE_SEARCH: &str = "/search/<mbean pattern>";
const USAGE_VERSION: &str = "/version";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn hint<S: AsRef<str>>(suggestion: &Option<S>) -> String {
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
            suggestion: did_you_mean(attribute, known).map(str::to_string),
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
            suggestion: did_you_mean(operation, known).map(str::to_string),
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

const ILLEGAL_ARGUMENT: &str = "java.lang.IllegalArgumentException";

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

/// The closest candidate to `given`, for "did you mean" hints. Case-insensitive; a candidate
/// qualifies with a Jaro-Winkler similarity ≥ 0.8, or (for inputs of 3+ characters) a single
/// edit or transposition away.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given = given.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            let jw = strsim::jaro_winkler(&given, &lower);
            let close =
                given.chars().count() >= 3 && strsim::damerau_levenshtein(&given, &lower) <= 1;
            (jw >= 0.8 || close).then(|| {
                (
                    jw + strsim::normalized_damerau_levenshtein(&given, &lower),
                    c,
                )
            })
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Short description of a JSON value for error messages.
fn describe(v: &Value) -> String {
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

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Processing options sent with a request (`config` in JSON, query parameters in GET).
/// `maxDepth` is typed; `maxCollectionSize` and `maxObjects` are checked to be non-negative
/// integers; everything else is kept in `other` as sent (read it with [`Config::flag`],
/// [`Config::number`] and [`Config::text`]; [`Shaping`] applies the value limits).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `maxDepth`: truncation depth for `list` (0 or absent = unlimited).
    pub max_depth: Option<usize>,
    /// All other options, untouched.
    pub other: Map<String, Value>,
}

impl Config {
    /// A config with only `maxDepth` set.
    pub fn with_max_depth(max_depth: usize) -> Self {
        Config {
            max_depth: Some(max_depth),
            other: Map::new(),
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.max_depth.is_none() && self.other.is_empty()
    }

    /// Overlays `other` onto `self`; values set in `other` win.
    pub fn merge(&mut self, other: Config) {
        if other.max_depth.is_some() {
            self.max_depth = other.max_depth;
        }
        self.other.extend(other.other);
    }

    fn from_json(v: &Value, kind: &'static str) -> Result<Config, ProtocolError> {
        let Value::Object(map) = v else {
            return Err(ProtocolError::InvalidField {
                kind,
                field: "config",
                expected: "an object such as {\"maxDepth\": 2}",
                found: describe(v),
            });
        };
        let mut config = Config::default();
        for (k, val) in map {
            if k == "maxDepth" {
                config.max_depth = parse_max_depth(val, kind, "config.maxDepth")?;
            } else if let Some(field) = numeric_param(k) {
                if let Some(n) = parse_max_depth(val, kind, field)? {
                    config.other.insert(k.clone(), Value::from(n));
                }
            } else {
                config.other.insert(k.clone(), val.clone());
            }
        }
        Ok(config)
    }
}

/// Processing parameters that must be non-negative integers besides `maxDepth`, with the
/// name used in errors about their `config` form.
fn numeric_param(name: &str) -> Option<&'static str> {
    match name {
        "maxCollectionSize" => Some("config.maxCollectionSize"),
        "maxObjects" => Some("config.maxObjects"),
        _ => None,
    }
}

impl Config {
    /// A boolean parameter: JSON `true`/`false` or the strings `"true"`/`"false"` (any case).
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.other.get(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// A numeric parameter (`maxCollectionSize`, `maxObjects`); 0 is returned as given.
    pub fn number(&self, name: &str) -> Option<usize> {
        match self.other.get(name)? {
            Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A string parameter (`mimeType`, `serializeLong`, `includeStackTrace`).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.other.get(name)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `canonicalNaming`: true unless explicitly `false`.
    pub fn canonical_naming(&self) -> bool {
        self.flag("canonicalNaming") != Some(false)
    }

    /// `ignoreErrors`: false unless explicitly `true`.
    pub fn ignore_errors(&self) -> bool {
        self.flag("ignoreErrors") == Some(true)
    }

    /// `includeStackTrace`: `true` or `runtime` (Jolokia's values that send a trace).
    pub fn include_stack_trace(&self) -> bool {
        match self.other.get("includeStackTrace") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => {
                s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("runtime")
            }
            _ => false,
        }
    }

    /// `mimeType`: `text/plain` or `application/json` (the default); other values are
    /// ignored, as Jolokia does.
    pub fn mime_type(&self) -> Option<&'static str> {
        match self.text("mimeType")?.trim() {
            m if m.eq_ignore_ascii_case("text/plain") => Some("text/plain"),
            m if m.eq_ignore_ascii_case("application/json") => Some("application/json"),
            _ => None,
        }
    }
}

/// How result values are shaped on their way into the envelope: Jolokia's serialization
/// limits and options, applied to the values of read, write and exec.
///
/// * `maxDepth` N: the value itself is level 1; an object or array at a level deeper than N
///   is replaced by its compact JSON text (a string), as Jolokia falls back to `toString()`.
///   Scalars are never replaced. 0 or absent: unlimited.
/// * `maxCollectionSize` N: arrays keep their first N elements and objects their first N
///   entries (in the order sent); the rest is dropped. 0 or absent: unlimited.
/// * `maxObjects` N: values are counted depth-first (each object, array and scalar counts
///   one); every value after the Nth is replaced by the string `[Object limit exceeded]`,
///   Jolokia's marker. 0 or absent: unlimited.
/// * `serializeLong=string`: every integer is sent as a decimal string (esb's counters are
///   Java longs; JavaScript loses precision above 2^53). Fractions stay numbers.
///
/// For a read of several attributes or of a pattern, the limits apply to each attribute's
/// value on its own (the map of attributes and the map of MBeans are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shaping {
    pub max_depth: Option<usize>,
    pub max_collection_size: Option<usize>,
    pub max_objects: Option<usize>,
    pub long_as_string: bool,
}

/// The marker Jolokia puts in place of values beyond `maxObjects`.
pub const OBJECT_LIMIT_MARKER: &str = "[Object limit exceeded]";

impl Shaping {
    /// The shaping a request's config asks for (nothing when there is no config).
    pub fn of(config: Option<&Config>) -> Shaping {
        let Some(c) = config else {
            return Shaping::default();
        };
        let positive = |n: Option<usize>| n.filter(|n| *n > 0);
        Shaping {
            max_depth: positive(c.max_depth),
            max_collection_size: positive(c.number("maxCollectionSize")),
            max_objects: positive(c.number("maxObjects")),
            long_as_string: c
                .text("serializeLong")
                .is_some_and(|s| s.eq_ignore_ascii_case("string")),
        }
    }

    /// True when [`Shaping::apply`] would return every value unchanged.
    pub fn is_identity(&self) -> bool {
        *self == Shaping::default()
    }

    /// Shapes one value (one attribute's value, one operation's result).
    pub fn apply(&self, value: Value) -> Value {
        if self.is_identity() {
            return value;
        }
        let mut count = 0usize;
        self.shape(value, 1, &mut count)
    }

    fn shape(&self, value: Value, level: usize, count: &mut usize) -> Value {
        *count += 1;
        if self.max_objects.is_some_and(|max| *count > max) {
            return Value::String(OBJECT_LIMIT_MARKER.into());
        }
        let container = matches!(value, Value::Array(_) | Value::Object(_));
        if container && self.max_depth.is_some_and(|d| level > d) {
            return Value::String(value.to_string());
        }
        let keep = self.max_collection_size.unwrap_or(usize::MAX);
        match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .take(keep)
                    .map(|v| self.shape(v, level + 1, count))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .take(keep)
                    .map(|(k, v)| (k, self.shape(v, level + 1, count)))
                    .collect(),
            ),
            Value::Number(n) if self.long_as_string && (n.is_i64() || n.is_u64()) => {
                Value::String(n.to_string())
            }
            other => other,
        }
    }
}

fn parse_max_depth(
    v: &Value,
    kind: &'static str,
    field: &'static str,
) -> Result<Option<usize>, ProtocolError> {
    let parsed = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<usize>().ok(),
        _ => None,
    };
    match parsed {
        Some(d) => Ok(Some(d)),
        None => Err(ProtocolError::InvalidField {
            kind,
            field,
            expected: "a non-negative integer such as 2",
            found: describe(v),
        }),
    }
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = usize::from(self.max_depth.is_some());
        let mut map = serializer.serialize_map(Some(self.other.len() + extra))?;
        if let Some(d) = self.max_depth {
            map.serialize_entry("maxDepth", &d)?;
        }
        for (k, v) in &self.other {
            if k != "maxDepth" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Config::from_json(&v, "this").map_err(serde::de::Error::custom)
    }
}

/// The `attribute` of a read request: one name (the value is returned directly) or several
/// (a map name → value is returned). An empty JSON array is parsed as "all attributes" (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Attributes {
    One(String),
    Many(Vec<String>),
}

impl Attributes {
    /// The attribute names, in request order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Attributes::One(a) => vec![a.as_str()],
            Attributes::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// One Jolokia request. Serializes internally tagged by `"type"` (lowercase), the Jolokia JSON
/// shape; deserializing goes through [`Request::from_json`] for precise errors. Unknown fields
/// are ignored; `config` is accepted on every type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Request {
    Read {
        mbean: ObjectName,
        #[serde(skip_serializing_if = "Option::is_none")]
        attribute: Option<Attributes>,
        /// Inner path into the value, `/`-separated with `!` escapes (see [`split_path`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
    Write {
        mbean: ObjectName,
        attribute: String,
        value: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
    Exec {
        mbean: ObjectName,
        operation: String,
        arguments: Vec<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
    Search {
        mbean: ObjectName,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
    List {
        /// Path into the list tree (`<domain>/<key list>/attr/<name>`), `!` escapes as in [`split_path`].
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
    Version {
        #[serde(skip_serializing_if = "Option::is_none")]
        config: Option<Config>,
    },
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Request::from_json(&v).map_err(serde::de::Error::custom)
    }
}

fn known_type(given: &str) -> Result<&'static str, ProtocolError> {
    REQUEST_TYPES
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(given))
        .ok_or_else(|| ProtocolError::UnknownType {
            given: given.to_string(),
            suggestion: did_you_mean(given, REQUEST_TYPES),
        })
}

type Obj = Map<String, Value>;

fn field<'a>(obj: &'a Obj, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn check_pattern(
    kind: &'static str,
    name: ObjectName,
    pattern_allowed: bool,
) -> Result<ObjectName, ProtocolError> {
    if !pattern_allowed && name.is_pattern() {
        return Err(ProtocolError::PatternNotAllowed {
            kind,
            mbean: name.original(),
        });
    }
    Ok(name)
}

fn mbean_field(
    obj: &Obj,
    kind: &'static str,
    pattern_allowed: bool,
) -> Result<ObjectName, ProtocolError> {
    let hint = if kind == "search" {
        "set it to an MBean pattern such as esb:type=Proxy,*"
    } else {
        "set it to an MBean name such as esb:type=Server"
    };
    let v = field(obj, "mbean").ok_or(ProtocolError::MissingField {
        kind,
        field: "mbean",
        hint,
    })?;
    let Value::String(s) = v else {
        return Err(ProtocolError::InvalidField {
            kind,
            field: "mbean",
            expected: "a string such as \"esb:type=Server\"",
            found: describe(v),
        });
    };
    let name =
        ObjectName::parse(s).map_err(|source| ProtocolError::InvalidObjectName { kind, source })?;
    check_pattern(kind, name, pattern_allowed)
}

fn required_string(
    obj: &Obj,
    kind: &'static str,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ProtocolError> {
    match field(obj, name) {
        None => Err(ProtocolError::MissingField {
            kind,
            field: name,
            hint,
        }),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(v) => Err(ProtocolError::InvalidField {
            kind,
            field: name,
            expected: "a non-empty string",
            found: describe(v),
        }),
    }
}

fn path_field(obj: &Obj, kind: &'static str) -> Result<Option<String>, ProtocolError> {
    match field(obj, "path") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            split_path(s)?;
            Ok(Some(s.clone()))
        }
        Some(v) => Err(ProtocolError::InvalidField {
            kind,
            field: "path",
            expected: "a string such as \"HeapMemoryUsage/used\"",
            found: describe(v),
        }),
    }
}

fn attributes_field(obj: &Obj) -> Result<Option<Attributes>, ProtocolError> {
    let invalid = |v: &Value| ProtocolError::InvalidField {
        kind: "read",
        field: "attribute",
        expected: "an attribute name or an array of attribute names",
        found: describe(v),
    };
    match field(obj, "attribute") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Attributes::One(s.clone()))),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(Attributes::Many(v))),
        Some(v) => Err(invalid(v)),
    }
}

impl Request {
    /// Builds a request from one JSON request object, with precise errors.
    pub fn from_json(v: &Value) -> Result<Request, ProtocolError> {
        let Value::Object(obj) = v else {
            return Err(ProtocolError::RequestNotObject { found: describe(v) });
        };
        let kind = match field(obj, "type") {
            None => return Err(ProtocolError::MissingType),
            Some(Value::String(t)) => known_type(t)?,
            Some(other) => {
                return Err(ProtocolError::TypeNotString {
                    found: describe(other),
                })
            }
        };
        let mut config = match field(obj, "config") {
            None => None,
            Some(c) => Some(Config::from_json(c, kind)?),
        };
        // Tolerate `maxDepth` at the top level of the request, too (config wins).
        if let Some(md) = field(obj, "maxDepth") {
            let md = parse_max_depth(md, kind, "maxDepth")?;
            let c = config.get_or_insert_with(Config::default);
            if c.max_depth.is_none() {
                c.max_depth = md;
            }
        }
        let request = match kind {
            "read" => Request::Read {
                mbean: mbean_field(obj, kind, true)?,
                attribute: attributes_field(obj)?,
                path: path_field(obj, kind)?,
                config,
            },
            "write" => {
                let mbean = mbean_field(obj, kind, false)?;
                let attribute = required_string(
                    obj,
                    kind,
                    "attribute",
                    "set it to the name of the attribute to change",
                )?;
                let value = obj
                    .get("value")
                    .cloned()
                    .ok_or(ProtocolError::MissingField {
                        kind,
                        field: "value",
                        hint: "set it to the new value (null is allowed)",
                    })?;
                Request::Write {
                    mbean,
                    attribute,
                    value,
                    path: path_field(obj, kind)?,
                    config,
                }
            }
            "exec" => {
                let mbean = mbean_field(obj, kind, false)?;
                let operation = required_string(
                    obj,
                    kind,
                    "operation",
                    "set it to the name of the operation to run",
                )?;
                let arguments = match field(obj, "arguments") {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a.clone(),
                    Some(v) => {
                        return Err(ProtocolError::InvalidField {
                            kind,
                            field: "arguments",
                            expected: "an array of argument values such as [\"x\", 1]",
                            found: describe(v),
                        })
                    }
                };
                Request::Exec {
                    mbean,
                    operation,
                    arguments,
                    config,
                }
            }
            "search" => Request::Search {
                mbean: mbean_field(obj, kind, true)?,
                config,
            },
            "list" => Request::List {
                path: path_field(obj, kind)?,
                config,
            },
            _ => Request::Version { config },
        };
        Ok(request)
    }

    /// A read of one attribute, or of all attributes when `attribute` is `None`.
    pub fn read(mbean: ObjectName, attribute: Option<&str>) -> Request {
        Request::Read {
            mbean,
            attribute: attribute.map(|a| Attributes::One(a.to_string())),
            path: None,
            config: None,
        }
    }

    /// A write of `value` to `attribute`.
    pub fn write(mbean: ObjectName, attribute: &str, value: Value) -> Request {
        Request::Write {
            mbean,
            attribute: attribute.to_string(),
            value,
            path: None,
            config: None,
        }
    }

    /// An exec of `operation` with `arguments`.
    pub fn exec(mbean: ObjectName, operation: &str, arguments: Vec<Value>) -> Request {
        Request::Exec {
            mbean,
            operation: operation.to_string(),
            arguments,
            config: None,
        }
    }

    /// A search for MBean names matching `pattern`.
    pub fn search(pattern: ObjectName) -> Request {
        Request::Search {
            mbean: pattern,
            config: None,
        }
    }

    /// A list request, optionally below `path` and truncated at `max_depth`.
    pub fn list(path: Option<&str>, max_depth: Option<usize>) -> Request {
        Request::List {
            path: path.map(str::to_string),
            config: max_depth.map(Config::with_max_depth),
        }
    }

    /// A version request.
    pub fn version() -> Request {
        Request::Version { config: None }
    }

    /// `"read"`, `"write"`, `"exec"`, `"search"`, `"list"` or `"version"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::Exec { .. } => "exec",
            Request::Search { .. } => "search",
            Request::List { .. } => "list",
            Request::Version { .. } => "version",
        }
    }

    /// True for write and exec, which may change server state.
    pub fn is_state_changing(&self) -> bool {
        matches!(self, Request::Write { .. } | Request::Exec { .. })
    }

    /// The MBean (or pattern, for read/search) the request addresses, if any.
    pub fn mbean(&self) -> Option<&ObjectName> {
        match self {
            Request::Read { mbean, .. }
            | Request::Write { mbean, .. }
            | Request::Exec { mbean, .. }
            | Request::Search { mbean, .. } => Some(mbean),
            Request::List { .. } | Request::Version { .. } => None,
        }
    }

    /// The request's processing config, if any.
    pub fn config(&self) -> Option<&Config> {
        match self {
            Request::Read { config, .. }
            | Request::Write { config, .. }
            | Request::Exec { config, .. }
            | Request::Search { config, .. }
            | Request::List { config, .. }
            | Request::Version { config } => config.as_ref(),
        }
    }

    /// Mutable access to the request's processing config.
    pub fn config_mut(&mut self) -> &mut Option<Config> {
        match self {
            Request::Read { config, .. }
            | Request::Write { config, .. }
            | Request::Exec { config, .. }
            | Request::Search { config, .. }
            | Request::List { config, .. }
            | Request::Version { config } => config,
        }
    }

    /// `config.maxDepth`, if set.
    pub fn max_depth(&self) -> Option<usize> {
        self.config().and_then(|c| c.max_depth)
    }

    /// The request as Jolokia echoes it in responses: the JSON request shape without `config`,
    /// e.g. `{"type":"read","mbean":"esb:type=Server","attribute":"Uptime"}`.
    pub fn to_echo_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({ "type": self.kind() }));
        if let Value::Object(m) = &mut v {
            m.remove("config");
        }
        v
    }

    /// The GET path form (`/read/<mbean>/<attr>...`, segments escaped and percent-encoded), for
    /// clients. `None` when the request cannot be expressed as a GET path (several attributes,
    /// a read path without an attribute, an attribute the GET form would read differently —
    /// empty, `*` or with a `,` —, an empty write attribute or exec operation, structured write
    /// values or exec arguments, or string values that are literally `[null]` or `""`).
    /// `config` is not included. What it returns decodes to the same request.
    pub fn to_get_path(&self) -> Option<String> {
        let mut segs: Vec<String> = vec![self.kind().to_string()];
        match self {
            Request::Read {
                mbean,
                attribute,
                path,
                ..
            } => {
                segs.push(mbean.original());
                match attribute {
                    None if path.is_some() => return None,
                    None => {}
                    // The GET form reads "" and "*" as every attribute and "A,B" as several.
                    Some(Attributes::One(a)) if a.is_empty() || a == "*" || a.contains(',') => {
                        return None
                    }
                    Some(Attributes::One(a)) => segs.push(a.clone()),
                    Some(Attributes::Many(_)) => return None,
                }
                push_path(&mut segs, path.as_deref())?;
            }
            Request::Write {
                mbean,
                attribute,
                value,
                path,
                ..
            } => {
                if attribute.is_empty() {
                    return None;
                }
                segs.push(mbean.original());
                segs.push(attribute.clone());
                segs.push(get_value_text(value)?);
                push_path(&mut segs, path.as_deref())?;
            }
            Request::Exec {
                mbean,
                operation,
                arguments,
                ..
            } => {
                if operation.is_empty() {
                    return None;
                }
                segs.push(mbean.original());
                segs.push(operation.clone());
                for a in arguments {
                    segs.push(get_value_text(a)?);
                }
            }
            Request::Search { mbean, .. } => segs.push(mbean.original()),
            Request::List { path, .. } => push_path(&mut segs, path.as_deref())?,
            Request::Version { .. } => {}
        }
        let encoded: Vec<String> = segs.iter().map(|s| encode_get_segment(s)).collect();
        Some(format!("/{}", encoded.join("/")))
    }
}

fn push_path(segs: &mut Vec<String>, path: Option<&str>) -> Option<()> {
    if let Some(p) = path {
        segs.extend(split_path(p).ok()?);
    }
    Some(())
}

fn get_value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("[null]".to_string()),
        Value::String(s) if s.is_empty() => Some("\"\"".to_string()),
        Value::String(s) if s == "[null]" || s == "\"\"" => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// POST bodies
// ---------------------------------------------------------------------------------------------

/// A parsed POST body: the requests, and whether the body was a JSON array (bulk request,
/// answered with an array of responses) or a single object (answered with one response).
#[derive(Debug, Clone, PartialEq)]
pub struct PostBody {
    pub requests: Vec<Request>,
    pub is_bulk: bool,
}

/// A bulk item that could not be parsed: the raw JSON (to echo) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRequest {
    pub raw: Value,
    pub error: ProtocolError,
}

/// A POST body parsed item by item, so one bad bulk item does not sink the others.
#[derive(Debug, Clone, PartialEq)]
pub struct PostItems {
    pub items: Vec<Result<Request, RejectedRequest>>,
    pub is_bulk: bool,
}

fn body_json(body: &[u8]) -> Result<Value, ProtocolError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ProtocolError::EmptyBody);
    }
    serde_json::from_slice(body).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        ProtocolError::InvalidJson {
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

/// Parses a POST body: one request object, or a non-empty array of them (bulk). Strict: the
/// first bad bulk item fails the whole body (its error is wrapped in [`ProtocolError::InBulk`]).
pub fn parse_post_body(body: &[u8]) -> Result<PostBody, ProtocolError> {
    let parsed = parse_post_body_each(body)?;
    let mut requests = Vec::with_capacity(parsed.items.len());
    for (index, item) in parsed.items.into_iter().enumerate() {
        match item {
            Ok(r) => requests.push(r),
            Err(rejected) if parsed.is_bulk => {
                return Err(ProtocolError::InBulk {
                    index,
                    source: Box::new(rejected.error),
                })
            }
            Err(rejected) => return Err(rejected.error),
        }
    }
    Ok(PostBody {
        requests,
        is_bulk: parsed.is_bulk,
    })
}

/// Parses a POST body like [`parse_post_body`], but keeps going past bad bulk items, as
/// Jolokia does: each item is `Ok(request)` or the raw JSON with its error (answer it with an
/// error response echoing `raw`). Fails as a whole only if the body itself is unusable.
pub fn parse_post_body_each(body: &[u8]) -> Result<PostItems, ProtocolError> {
    let value = body_json(body)?;
    let one = |v: Value| Request::from_json(&v).map_err(|error| RejectedRequest { raw: v, error });
    match value {
        Value::Object(_) => Ok(PostItems {
            items: vec![one(value)],
            is_bulk: false,
        }),
        Value::Array(items) if items.is_empty() => Err(ProtocolError::EmptyBulk),
        Value::Array(items) => Ok(PostItems {
            items: items.into_iter().map(one).collect(),
            is_bulk: true,
        }),
        other => Err(ProtocolError::InvalidBody {
            found: describe(&other),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// GET paths and escaping
// ---------------------------------------------------------------------------------------------

/// Escapes one segment for a `/`-separated Jolokia path: `!` → `!!`, `/` → `!/`.
/// Inverse of the unescaping done by [`split_path`] and [`parse_get_path`].
pub fn escape_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for c in segment.chars() {
        if c == '!' || c == '/' {
            out.push('!');
        }
        out.push(c);
    }
    out
}

/// Joins segments into a Jolokia path string (`path` fields, list paths), escaping each.
pub fn join_path<S: AsRef<str>>(segments: &[S]) -> String {
    segments
        .iter()
        .map(|s| escape_path_segment(s.as_ref()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Escapes a segment for use in a GET URL path: [`escape_path_segment`], then percent-encoding
/// of everything outside `A-Z a-z 0-9 - . _ ~ ! * , = : @ /` (the `/` left is always `!/`).
pub fn encode_get_segment(segment: &str) -> String {
    let escaped = escape_path_segment(segment);
    let mut out = String::with_capacity(escaped.len());
    for b in escaped.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'*' | b',' | b'=' | b':' | b'@' | b'/'
            )
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a raw string on `/` that are not escaped by `!` (escapes are kept for later).
fn split_raw(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '!' {
            escaped = true;
        } else if c == '/' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Removes `!` escapes: `!x` → `x` (so `!/` → `/`, `!!` → `!`).
fn unescape(segment: &str) -> Result<String, ProtocolError> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '!' {
            match chars.next() {
                Some(n) => out.push(n),
                None => {
                    return Err(ProtocolError::DanglingEscape {
                        segment: segment.to_string(),
                    })
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h * 16 + l),
                    _ => return Err("'%' must be followed by two hex digits"),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded bytes are not valid UTF-8")
}

/// Splits a Jolokia path string (a request's `path`, a list path) into unescaped segments:
/// `/` separates, `!/` is a literal `/`, `!!` a literal `!` (any `!x` is `x`). A leading or
/// trailing `/` is ignored; `""` gives no segments. No percent-decoding.
pub fn split_path(path: &str) -> Result<Vec<String>, ProtocolError> {
    let mut raw = split_raw(path);
    trim_empty_ends(&mut raw);
    raw.into_iter().map(unescape).collect()
}

fn trim_empty_ends(raw: &mut Vec<&str>) {
    if raw.first() == Some(&"") {
        raw.remove(0);
    }
    if raw.last() == Some(&"") {
        raw.pop();
    }
}

/// Splits a raw (still percent-encoded) GET path into decoded segments: split on unescaped `/`,
/// percent-decode each segment, then remove `!` escapes.
fn split_get_segments(path: &str) -> Result<Vec<String>, ProtocolError> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut raw = split_raw(trimmed);
    if raw.last() == Some(&"") {
        raw.pop();
    }
    raw.into_iter()
        .map(|seg| {
            let decoded = percent_decode(seg, false).map_err(|reason| {
                ProtocolError::InvalidPercentEncoding {
                    segment: seg.to_string(),
                    reason,
                }
            })?;
            unescape(&decoded)
        })
        .collect()
}

/// GET write values and exec arguments: `[null]` is JSON null, `""` the empty string.
fn get_value(s: String) -> Value {
    match s.as_str() {
        "[null]" => Value::Null,
        "\"\"" => Value::String(String::new()),
        _ => Value::String(s),
    }
}

fn get_mbean(
    kind: &'static str,
    seg: Option<String>,
    pattern_allowed: bool,
    usage: &'static str,
) -> Result<ObjectName, ProtocolError> {
    let what = if kind == "search" {
        "MBean pattern"
    } else {
        "MBean name"
    };
    let s = seg
        .filter(|s| !s.is_empty())
        .ok_or(ProtocolError::MissingSegment { kind, what, usage })?;
    let name = ObjectName::parse(&s)
        .map_err(|source| ProtocolError::InvalidObjectName { kind, source })?;
    check_pattern(kind, name, pattern_allowed)
}

fn required_segment(
    kind: &'static str,
    seg: Option<String>,
    what: &'static str,
    usage: &'static str,
) -> Result<String, ProtocolError> {
    seg.filter(|s| !s.is_empty())
        .ok_or(ProtocolError::MissingSegment { kind, what, usage })
}

fn no_more(
    kind: &'static str,
    rest: impl Iterator<Item = String>,
    usage: &'static str,
) -> Result<(), ProtocolError> {
    let extra: Vec<String> = rest.collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::UnexpectedSegments {
            kind,
            extra: join_path(&extra),
            usage,
        })
    }
}

fn rest_path(rest: impl Iterator<Item = String>) -> Option<String> {
    let segs: Vec<String> = rest.collect();
    if segs.is_empty() {
        None
    } else {
        Some(join_path(&segs))
    }
}

/// Parses the GET form: the raw path after the agent prefix (e.g. after `/jolokia`), still
/// percent-encoded, without the query string:
/// `/version`, `/read/<mbean>[/<attr>[/<inner path>]]`, `/write/<mbean>/<attr>/<value>[/<path>]`,
/// `/exec/<mbean>/<op>[/<arg>...]`, `/search/<pattern>`, `/list[/<path>]`.
/// Inside a segment `!/` is a literal `/` and `!!` a literal `!`; `%XX` is decoded. A trailing `/`
/// is ignored. Write values and exec arguments are strings, except `[null]` (null) and `""` (empty).
/// The `path` of the result is re-joined with `!` escapes (see [`split_path`]).
pub fn parse_get_path(path: &str) -> Result<Request, ProtocolError> {
    let segs = split_get_segments(path)?;
    let mut it = segs.into_iter();
    let kind = match it.next() {
        // As Jolokia does: a GET without a type is a version request.
        None => return Ok(Request::version()),
        Some(t) if t.is_empty() => return Ok(Request::version()),
        Some(t) => known_type(&t)?,
    };
    let request = match kind {
        "read" => {
            let mbean = get_mbean(kind, it.next(), true, USAGE_READ)?;
            // `*` means every attribute and `A,B` several, as in Jolokia's GET form.
            let attribute = match it.next() {
                None => None,
                Some(a) if a == "*" => None,
                Some(a) if a.contains(',') => Some(Attributes::Many(
                    a.split(',')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )),
                Some(a) => Some(Attributes::One(required_segment(
                    kind,
                    Some(a),
                    "attribute name",
                    USAGE_READ,
                )?)),
            };
            Request::Read {
                mbean,
                attribute,
                path: rest_path(it),
                config: None,
            }
        }
        "write" => {
            let mbean = get_mbean(kind, it.next(), false, USAGE_WRITE)?;
            let attribute = required_segment(kind, it.next(), "attribute name", USAGE_WRITE)?;
            let value = it.next().ok_or(ProtocolError::MissingSegment {
                kind,
                what: "value (use [null] for null and \"\" for an empty string)",
                usage: USAGE_WRITE,
            })?;
            Request::Write {
                mbean,
                attribute,
                value: get_value(value),
                path: rest_path(it),
                config: None,
            }
        }
        "exec" => {
            let mbean = get_mbean(kind, it.next(), false, USAGE_EXEC)?;
            let operation = required_segment(kind, it.next(), "operation name", USAGE_EXEC)?;
            Request::Exec {
                mbean,
                operation,
                arguments: it.map(get_value).collect(),
                config: None,
            }
        }
        "search" => {
            let mbean = get_mbean(kind, it.next(), true, USAGE_SEARCH)?;
            no_more(kind, it, USAGE_SEARCH)?;
            Request::Search {
                mbean,
                config: None,
            }
        }
        "list" => Request::List {
            path: rest_path(it),
            config: None,
        },
        _ => {
            no_more(kind, it, USAGE_VERSION)?;
            Request::Version { config: None }
        }
    };
    Ok(request)
}

/// Parses a GET query string (with or without the leading `?`) into a [`Config`]: `maxDepth`
/// must be a non-negative integer; other parameters are kept as strings. `+` is a space.
pub fn parse_query(query: &str) -> Result<Config, ProtocolError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut config = Config::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let invalid = |reason: &str| ProtocolError::InvalidQuery {
            param: raw_key.to_string(),
            value: raw_value.to_string(),
            reason: reason.to_string(),
        };
        let key = percent_decode(raw_key, true).map_err(invalid)?;
        let value = percent_decode(raw_value, true).map_err(invalid)?;
        if key == "maxDepth" {
            let depth = value.trim().parse::<usize>().map_err(|_| {
                invalid("maxDepth must be a non-negative integer such as 2 (0 means unlimited)")
            })?;
            config.max_depth = Some(depth);
        } else if numeric_param(&key).is_some() {
            let n = value.trim().parse::<usize>().map_err(|_| {
                invalid("must be a non-negative integer such as 100 (0 means unlimited)")
            })?;
            config.other.insert(key, Value::from(n));
        } else {
            config.other.insert(key, Value::String(value));
        }
    }
    Ok(config)
}

/// [`parse_get_path`] plus [`parse_query`]: query parameters become the request's `config`.
/// When the path is empty (`/jolokia?p=/read/...`), the `p` parameter carries it, as in
/// Jolokia: its value, percent-decoded once (`+` is a space, as in any query parameter), is
/// the GET path.
pub fn parse_get_request(path: &str, query: Option<&str>) -> Result<Request, ProtocolError> {
    let mut rest = query.map(|q| q.strip_prefix('?').unwrap_or(q).to_string());
    let mut from_p = None;
    if path.trim_matches('/').is_empty() {
        if let Some(q) = &rest {
            let mut others = Vec::new();
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("p", v)) if from_p.is_none() => from_p = Some(v.replace('+', "%20")),
                    _ => others.push(pair),
                }
            }
            rest = Some(others.join("&"));
        }
    }
    let mut request = parse_get_path(from_p.as_deref().unwrap_or(path))?;
    if let Some(q) = rest {
        let config = parse_query(&q)?;
        if !config.is_empty() {
            request
                .config_mut()
                .get_or_insert_with(Config::default)
                .merge(config);
        }
    }
    Ok(request)
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The Jolokia response envelope. Serialized exactly as Jolokia does, absent fields skipped:
/// success `{"request":{..},"value":..,"status":200,"timestamp":1700000000}`; error
/// `{"request":{..},"status":404,"error_type":"..","error":"<error_type> : <message>"}`
/// (Jolokia sends no timestamp with errors; `stacktrace` only when asked for, see
/// [`Response::with_stacktrace`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request echo ([`Request::to_echo_json`]); `Value::Null` (omitted) when none was parsed.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub request: Value,
    /// The result; `Some(Value::Null)` is sent as `"value":null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub value: Option<Value>,
    pub status: u16,
    /// Seconds since the Unix epoch; set on success only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sent with errors only when the request says `includeStackTrace=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
}

impl Response {
    /// Success (status 200), timestamped with the current time.
    pub fn ok(request: Value, value: Value) -> Response {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Response::ok_at(request, value, now)
    }

    /// Success (status 200) with an explicit timestamp (seconds since the Unix epoch).
    pub fn ok_at(request: Value, value: Value, timestamp: u64) -> Response {
        Response {
            request,
            value: Some(value),
            status: 200,
            timestamp: Some(timestamp),
            error_type: None,
            error: None,
            stacktrace: None,
        }
    }

    /// Error response; `error` becomes `"<error_type> : <message>"` as in Jolokia.
    pub fn error(request: Value, status: u16, error_type: &str, message: &str) -> Response {
        Response {
            request,
            value: None,
            status,
            timestamp: None,
            error_type: Some(error_type.to_string()),
            error: Some(format!("{error_type} : {message}")),
            stacktrace: None,
        }
    }

    /// Adds Jolokia's `stacktrace` to an error response. esb has no Java stack: the trace
    /// is the exception line (`<error_type>: <message>`) followed by the esb frame that
    /// answered, so tools that print it show something true.
    pub fn with_stacktrace(mut self) -> Response {
        if let (Some(t), Some(e)) = (&self.error_type, &self.error) {
            let message = e.strip_prefix(&format!("{t} : ")).unwrap_or(e);
            self.stacktrace = Some(format!(
                "{t}: {message}\n\tat esb management endpoint (no Java stack)\n"
            ));
        }
        self
    }

    /// Error response for a [`ProtocolError`] or [`ManagementError`].
    pub fn from_error<E: JolokiaError + ?Sized>(request: Value, err: &E) -> Response {
        Response::error(
            request,
            err.status(),
            err.error_type(),
            &err.jolokia_message(),
        )
    }

    /// True for status 200.
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }
}

// ---------------------------------------------------------------------------------------------
// version
// ---------------------------------------------------------------------------------------------

/// The `info` part of a version response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product: String,
    pub vendor: String,
    pub version: String,
}

/// Value of a `version` response:
/// `{"agent":..,"protocol":"7.2","config":{..},"info":{"product":..,"vendor":..,"version":..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub agent: String,
    pub protocol: String,
    pub config: Map<String, Value>,
    pub info: ProductInfo,
}

impl VersionInfo {
    /// Agent version = `version`, vendor `"esb"`, protocol [`PROTOCOL_VERSION`], empty config.
    pub fn new(product: &str, version: &str) -> VersionInfo {
        VersionInfo {
            agent: version.to_string(),
            protocol: PROTOCOL_VERSION.to_string(),
            config: Map::new(),
            info: ProductInfo {
                product: product.to_string(),
                vendor: "esb".to_string(),
                version: version.to_string(),
            },
        }
    }

    /// As a JSON value, for [`Response::ok`].
    pub fn to_value(&self) -> Value {
        json!({
            "agent": self.agent,
            "protocol": self.protocol,
            "config": self.config,
            "info": {
                "product": self.info.product,
                "vendor": self.info.vendor,
                "version": self.info.version,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/// Attribute metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrInfo {
    #[serde(rename = "type")]
    pub type_: String,
    pub desc: String,
    pub rw: bool,
}

/// Operation argument metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub desc: String,
}

/// What running an operation does, as JMX's `MBeanOperationInfo` impact: `Info` only reads
/// (diff, history, validate), `Action` may change state. Not part of Jolokia's list output;
/// the server uses it to decide what is audited and what is refused while it cannot audit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Impact {
    Info,
    /// The default: an operation not marked otherwise counts as a state change.
    #[default]
    Action,
}

impl Impact {
    pub fn changes_state(self) -> bool {
        self == Impact::Action
    }
}

/// Operation metadata in a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpInfo {
    pub args: Vec<ArgInfo>,
    pub ret: String,
    pub desc: String,
    #[serde(skip)]
    pub impact: Impact,
}

/// MBean metadata in a list response: `{"desc":..,"attr":{..},"op":{..}}`; like Jolokia, an
/// empty `attr` or `op` map is omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MBeanInfo {
    pub desc: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attr: BTreeMap<String, AttrInfo>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub op: BTreeMap<String, OpInfo>,
}

impl MBeanInfo {
    /// An MBean with a description and no attributes or operations.
    pub fn new(desc: &str) -> MBeanInfo {
        MBeanInfo {
            desc: desc.to_string(),
            ..MBeanInfo::default()
        }
    }

    /// Adds an attribute (`rw`: writable).
    pub fn with_attr(mut self, name: &str, type_: &str, desc: &str, rw: bool) -> MBeanInfo {
        self.attr.insert(
            name.to_string(),
            AttrInfo {
                type_: type_.to_string(),
                desc: desc.to_string(),
                rw,
            },
        );
        self
    }

    /// Adds an operation that may change state; `args` are `(name, type, desc)`.
    pub fn with_op(
        self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
    ) -> MBeanInfo {
        self.with_op_impact(name, args, ret, desc, Impact::Action)
    }

    /// Adds an operation that only reads (diff, history, validate).
    pub fn with_read_op(
        self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
    ) -> MBeanInfo {
        self.with_op_impact(name, args, ret, desc, Impact::Info)
    }

    /// Adds an operation with its impact.
    pub fn with_op_impact(
        mut self,
        name: &str,
        args: &[(&str, &str, &str)],
        ret: &str,
        desc: &str,
        impact: Impact,
    ) -> MBeanInfo {
        let args = args
            .iter()
            .map(|(n, t, d)| ArgInfo {
                name: n.to_string(),
                type_: t.to_string(),
                desc: d.to_string(),
            })
            .collect();
        self.op.insert(
            name.to_string(),
            OpInfo {
                args,
                ret: ret.to_string(),
                desc: desc.to_string(),
                impact,
            },
        );
        self
    }

    /// As the JSON object used in list responses.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("desc".into(), Value::String(self.desc.clone()));
        if !self.attr.is_empty() {
            m.insert("attr".into(), attrs_json(self.attr.iter()));
        }
        if !self.op.is_empty() {
            m.insert("op".into(), ops_json(self.op.iter()));
        }
        Value::Object(m)
    }
}

fn attr_json(a: &AttrInfo) -> Value {
    json!({ "type": a.type_, "desc": a.desc, "rw": a.rw })
}

fn op_json(o: &OpInfo) -> Value {
    let args: Vec<Value> = o
        .args
        .iter()
        .map(|a| json!({ "name": a.name, "type": a.type_, "desc": a.desc }))
        .collect();
    json!({ "args": args, "ret": o.ret, "desc": o.desc })
}

fn attrs_json<'a>(it: impl Iterator<Item = (&'a String, &'a AttrInfo)>) -> Value {
    Value::Object(it.map(|(k, a)| (k.clone(), attr_json(a))).collect())
}

fn ops_json<'a>(it: impl Iterator<Item = (&'a String, &'a OpInfo)>) -> Value {
    Value::Object(it.map(|(k, o)| (k.clone(), op_json(o))).collect())
}

/// Builds the value of a `list` response: `{ <domain>: { <canonical key list>: <MBeanInfo> } }`.
///
/// `path` (split with [`split_path`]) navigates: `<domain>` → `{key list: info}`,
/// `<domain>/<key list>` (any property order) → the MBean's info, `.../desc|attr|op`,
/// `.../attr/<name>` or `.../op/<name>`, then keys inside that (e.g. `.../attr/<name>/type`).
/// A pattern is not allowed as a path element.
///
/// `max_depth` (Jolokia's `maxDepth`) truncates the value at that many levels below the node
/// the path selects: objects deeper than that become the number `1`, other values are kept
/// (so depth 1 → `{"esb": 1}`, depth 2 → `{"esb": {"name=..,type=..": 1}}`). `None` or `Some(0)`
/// means unlimited. This is Jolokia's behaviour.
///
/// Errors: an unknown domain is 404 (`DomainNotFound`), an unknown MBean 404 (`InstanceNotFound`),
/// an unknown attribute 404, an unknown operation 400, any other bad path element 400.
pub fn list_tree(
    infos: &[(ObjectName, MBeanInfo)],
    path: Option<&str>,
    max_depth: Option<usize>,
) -> Result<Value, ManagementError> {
    list_tree_named(infos, path, max_depth, true)
}

/// [`list_tree`] with Jolokia's `canonicalNaming`: when `canonical` is false the key lists
/// of the MBeans are written as the server names them (`type=Proxy,unit=u,name=p`) instead
/// of sorted. Paths are matched in any property order either way.
pub fn list_tree_named(
    infos: &[(ObjectName, MBeanInfo)],
    path: Option<&str>,
    max_depth: Option<usize>,
    canonical: bool,
) -> Result<Value, ManagementError> {
    let segs = match path {
        Some(p) => split_path(p)?,
        None => Vec::new(),
    };
    let mut domains: BTreeMap<&str, BTreeMap<String, (String, &MBeanInfo)>> = BTreeMap::new();
    for (name, info) in infos {
        let shown = if canonical {
            name.canonical_key_list()
        } else {
            name.key_list()
        };
        domains
            .entry(name.domain())
            .or_default()
            .insert(name.canonical_key_list(), (shown, info));
    }
    let beans_json = |beans: &BTreeMap<String, (String, &MBeanInfo)>| -> Value {
        Value::Object(
            beans
                .values()
                .map(|(k, i)| (k.clone(), i.to_json()))
                .collect(),
        )
    };

    let mut segs = segs.into_iter();
    let Some(domain) = segs.next() else {
        let all: Map<String, Value> = domains
            .iter()
            .map(|(d, beans)| (d.to_string(), beans_json(beans)))
            .collect();
        return Ok(truncate(Value::Object(all), max_depth));
    };
    if domain.contains(['*', '?']) {
        return Err(ManagementError::BadRequest(format!(
            "list path domain \"{domain}\" is a pattern; a list path must name a domain exactly \
             (use a search request to match names by pattern)"
        )));
    }
    let Some(beans) = domains.get(domain.as_str()) else {
        return Err(ManagementError::DomainNotFound {
            suggestion: did_you_mean(&domain, domains.keys().copied()).map(str::to_string),
            domain,
        });
    };
    let Some(key_list) = segs.next() else {
        return Ok(truncate(beans_json(beans), max_depth));
    };
    let name = ObjectName::parse(&format!("{domain}:{key_list}")).map_err(|e| {
        ManagementError::BadRequest(format!(
            "list path element \"{key_list}\" is not a valid key property list: {e}"
        ))
    })?;
    if name.is_pattern() {
        return Err(ManagementError::BadRequest(format!(
            "cannot use the MBean pattern {} as a list path; name one MBean exactly \
             (use a search request to match names by pattern)",
            name.original()
        )));
    }
    let (_, info) = beans
        .get(&name.canonical_key_list())
        .ok_or_else(|| ManagementError::instance_not_found(&name))?;
    let Some(what) = segs.next() else {
        return Ok(truncate(info.to_json(), max_depth));
    };
    let (mut value, mut prefix) = match what.as_str() {
        "desc" => (Value::String(info.desc.clone()), "desc".to_string()),
        "attr" => match segs.next() {
            None => (attrs_json(info.attr.iter()), "attr".to_string()),
            Some(attr) => {
                let a = info.attr.get(&attr).ok_or_else(|| {
                    ManagementError::attribute_not_found(
                        &name,
                        &attr,
                        info.attr.keys().map(String::as_str),
                    )
                })?;
                (attr_json(a), format!("attr/{}", escape_path_segment(&attr)))
            }
        },
        "op" => match segs.next() {
            None => (ops_json(info.op.iter()), "op".to_string()),
            Some(op) => {
                let o = info.op.get(&op).ok_or_else(|| {
                    ManagementError::no_such_operation(
                        &name,
                        &op,
                        info.op.keys().map(String::as_str),
                    )
                })?;
                (op_json(o), format!("op/{}", escape_path_segment(&op)))
            }
        },
        other => {
            return Err(ManagementError::BadRequest(format!(
                "illegal list path element \"{other}\" below MBean {}; use desc, attr or op",
                name.original()
            )))
        }
    };
    for seg in segs {
        let next = match &value {
            Value::Object(m) => m.get(&seg).cloned(),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
            _ => None,
        };
        value = next.ok_or_else(|| {
            let valid = match &value {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                Value::Array(a) => format!("indexes 0..{}", a.len()),
                _ => "nothing (it is a leaf value)".to_string(),
            };
            ManagementError::BadRequest(format!(
                "list path element \"{seg}\" does not exist below \"{prefix}\" of MBean {}; \
                 valid there: {valid}",
                name.original()
            ))
        })?;
        prefix = format!("{prefix}/{}", escape_path_segment(&seg));
    }
    Ok(truncate(value, max_depth))
}

fn truncate(value: Value, max_depth: Option<usize>) -> Value {
    match max_depth {
        None | Some(0) => value,
        Some(d) => truncate_level(value, d),
    }
}

fn truncate_level(value: Value, depth: usize) -> Value {
    match value {
        Value::Object(_) if depth == 0 => Value::from(1),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, truncate_level(v, depth - 1)))
                .collect(),
        ),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn on(s: &str) -> ObjectName {
        ObjectName::parse(s).unwrap()
    }

    fn post(body: &str) -> Result<PostBody, ProtocolError> {
        parse_post_body(body.as_bytes())
    }

    fn single(body: &str) -> Request {
        let parsed = post(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(!parsed.is_bulk);
        assert_eq!(parsed.requests.len(), 1);
        parsed.requests.into_iter().next().unwrap()
    }

    fn post_err(body: &str) -> ProtocolError {
        post(body).expect_err(body)
    }

    // ---- POST -----------------------------------------------------------------------------

    #[test]
    fn post_single_of_every_type() {
        assert_eq!(
            single(r#"{"type":"read","mbean":"esb:type=Server","attribute":"Uptime"}"#),
            Request::read(on("esb:type=Server"), Some("Uptime"))
        );
        assert_eq!(
            single(
                r#"{"type":"read","mbean":"esb:type=Server","attribute":["A","B"],"path":"x/y"}"#
            ),
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
        let e =
            post_err(r#"{"type":"write","mbean":"esb:type=Proxy,*","attribute":"A","value":1}"#);
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
            post_err(
                r#"{"type":"exec","mbean":"esb:type=Server","operation":"x","arguments":"a"}"#
            ),
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

    // ---- GET ------------------------------------------------------------------------------

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

    // ---- responses ------------------------------------------------------------------------

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
        let back: Response =
            serde_json::from_value(serde_json::to_value(&null_ok).unwrap()).unwrap();
        assert_eq!(back, null_ok);
        // Clock-based constructor sets a plausible timestamp.
        assert!(Response::ok(req.clone(), json!(1)).timestamp.unwrap() > 1_600_000_000);

        let missing = on("esb:type=Unit,name=x");
        let ereq = Request::read(missing.clone(), Some("State")).to_echo_json();
        let err =
            Response::from_error(ereq.clone(), &ManagementError::instance_not_found(&missing));
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

    // ---- list -----------------------------------------------------------------------------

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
    fn did_you_mean_works() {
        assert_eq!(did_you_mean("serach", REQUEST_TYPES), Some("search"));
        assert_eq!(did_you_mean("versoin", REQUEST_TYPES), Some("version"));
        assert_eq!(did_you_mean("lst", REQUEST_TYPES), Some("list"));
        assert_eq!(did_you_mean("foo", REQUEST_TYPES), None);
        assert_eq!(did_you_mean("x", Vec::<&str>::new()), None);
        assert_eq!(did_you_mean("ebs", ["esb", "other"]), Some("esb"));
        assert_eq!(did_you_mean("a", ["b"]), None);
        assert_eq!(
            did_you_mean("heapmemoryusage", ["HeapMemoryUsage"]),
            Some("HeapMemoryUsage")
        );
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
        let r =
            parse_get_request("/", Some("p=/exec/esb:type=Unit,name=a/deploy/x+y/a!/b")).unwrap();
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
}

//! The request model: read, write, exec, search, list and version with their fields, parsed from JSON and echoed back.

use super::*;

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

pub(super) fn known_type(given: &str) -> Result<&'static str, ProtocolError> {
    REQUEST_TYPES
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(given))
        .ok_or_else(|| ProtocolError::UnknownType {
            given: given.to_string(),
            suggestion: suggest(given, REQUEST_TYPES),
        })
}

pub(super) type Obj = Map<String, Value>;

pub(super) fn field<'a>(obj: &'a Obj, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

pub(super) fn check_pattern(
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

pub(super) fn mbean_field(
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

pub(super) fn required_string(
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

pub(super) fn path_field(obj: &Obj, kind: &'static str) -> Result<Option<String>, ProtocolError> {
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

pub(super) fn attributes_field(obj: &Obj) -> Result<Option<Attributes>, ProtocolError> {
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

/// Appends an inner path's segments; `None` when the GET form cannot carry it: an empty
/// first or last segment (as in `//a` or `a//`) would be lost, since the GET form trims one
/// empty segment at each end.
pub(super) fn push_path(segs: &mut Vec<String>, path: Option<&str>) -> Option<()> {
    if let Some(p) = path {
        let inner = split_path(p).ok()?;
        if inner.first().is_some_and(String::is_empty) || inner.last().is_some_and(String::is_empty)
        {
            return None;
        }
        segs.extend(inner);
    }
    Some(())
}

pub(super) fn get_value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("[null]".to_string()),
        Value::String(s) if s.is_empty() => Some("\"\"".to_string()),
        Value::String(s) if s == "[null]" || s == "\"\"" => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

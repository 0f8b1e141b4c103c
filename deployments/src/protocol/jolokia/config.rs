//! Processing parameters of a request (`config` in JSON, query parameters in GET) and the value shaping they ask for (depth, collection and object limits).

use super::*;

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

    pub(super) fn from_json(v: &Value, kind: &'static str) -> Result<Config, ProtocolError> {
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
pub(super) fn numeric_param(name: &str) -> Option<&'static str> {
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

pub(super) fn parse_max_depth(
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

//! GET requests: path segments with `!` escaping and percent-decoding, each request type as a path, query parameters.

use super::*;

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
pub(super) fn split_raw(s: &str) -> Vec<&str> {
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
pub(super) fn unescape(segment: &str) -> Result<String, ProtocolError> {
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

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, &'static str> {
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

pub(super) fn trim_empty_ends(raw: &mut Vec<&str>) {
    if raw.first() == Some(&"") {
        raw.remove(0);
    }
    if raw.last() == Some(&"") {
        raw.pop();
    }
}

/// Splits a raw (still percent-encoded) GET path into decoded segments: split on unescaped `/`,
/// percent-decode each segment, then remove `!` escapes.
pub(super) fn split_get_segments(path: &str) -> Result<Vec<String>, ProtocolError> {
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
pub(super) fn get_value(s: String) -> Value {
    match s.as_str() {
        "[null]" => Value::Null,
        "\"\"" => Value::String(String::new()),
        _ => Value::String(s),
    }
}

pub(super) fn get_mbean(
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

pub(super) fn required_segment(
    kind: &'static str,
    seg: Option<String>,
    what: &'static str,
    usage: &'static str,
) -> Result<String, ProtocolError> {
    seg.filter(|s| !s.is_empty())
        .ok_or(ProtocolError::MissingSegment { kind, what, usage })
}

pub(super) fn no_more(
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

pub(super) fn rest_path(rest: impl Iterator<Item = String>) -> Option<String> {
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

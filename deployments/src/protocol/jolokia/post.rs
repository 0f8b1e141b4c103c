//! POST bodies: one request object or a bulk array, strictly or item by item.

use super::*;

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

pub(super) fn body_json(body: &[u8]) -> Result<Value, ProtocolError> {
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

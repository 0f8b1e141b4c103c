//! Body types of the data plane: one boxed body type for requests and responses, a
//! message payload that is either still streaming or read into memory (bounded), and the
//! JSON error responses every fault maps to.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A message body: untouched stream, or bytes once a step needed to read it.
pub enum Payload {
    Stream(Body),
    Full(Bytes),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the body failed: {0}")]
    Io(String),
}

impl Payload {
    /// Reads the whole body into memory, refusing more than `limit` bytes.
    pub async fn read(&mut self, limit: u64) -> Result<&Bytes, ReadError> {
        if let Payload::Stream(body) = self {
            let body = std::mem::replace(body, empty());
            let collected = Limited::new(body, limit as usize).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    ReadError::TooLarge { limit }
                } else {
                    ReadError::Io(e.to_string())
                }
            })?;
            *self = Payload::Full(collected.to_bytes());
        }
        match self {
            Payload::Full(b) => Ok(b),
            Payload::Stream(_) => unreachable!("just read"),
        }
    }

    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Payload::Full(b) => Some(b),
            Payload::Stream(_) => None,
        }
    }

    pub fn take(&mut self) -> Body {
        match std::mem::replace(self, Payload::Full(Bytes::new())) {
            Payload::Stream(b) => b,
            Payload::Full(b) => full(b),
        }
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(value).expect("json serializes")));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

//! Body types of the data plane: one boxed body type for requests and responses, a
//! message payload that is either still streaming or read into memory (bounded), and the
//! JSON error responses every fault maps to.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use std::future::Future;
use std::pin::Pin;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
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
    // Boxed with an explicit `Send`: works around rustc's higher-ranked `Send` inference
    // (rust-lang/rust#102211) for callers inside spawned futures.
    pub fn read(
        &mut self,
        limit: u64,
    ) -> Pin<Box<dyn Future<Output = Result<&Bytes, ReadError>> + Send + '_>> {
        Box::pin(async move {
            if let Payload::Stream(body) = self {
                let body = std::mem::replace(body, empty());
                *self = Payload::Full(collect_limited(body, limit).await?);
            }
            match self {
                Payload::Full(b) => Ok(&*b),
                Payload::Stream(_) => unreachable!("just read"),
            }
        })
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

fn collect_limited(
    mut body: Body,
    limit: u64,
) -> Pin<Box<dyn Future<Output = Result<Bytes, ReadError>> + Send>> {
    Box::pin(async move {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Io(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > limit {
                    return Err(ReadError::TooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    })
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(value).expect("json serializes")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

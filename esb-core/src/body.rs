//! Body types of the data plane: one body type for requests and responses, a
//! message payload that is either still streaming or read into memory (bounded), the
//! client's request body with its read deadline and a record of how it failed
//! ([`ClientBody`]), and the JSON error responses every fault maps to.

use crate::inbound::RequestBody;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt};
use hyper::body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of the data plane's requests and responses: a backend's response body as it is
/// (the usual response: no box, and the fields the backend sent travel with it), bytes
/// known whole, or any other body, boxed.
pub struct Body(Inner);

enum Inner {
    Backend(crate::outbound::BackendBody),
    Full(Option<Bytes>),
    Boxed(BoxBody<Bytes, BoxError>),
}

impl Body {
    /// Any other body, boxed.
    pub fn boxed<B>(body: B) -> Body
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Body(Inner::Boxed(body.map_err(Into::into).boxed()))
    }

    /// A backend's response body, as it is.
    pub fn backend(body: crate::outbound::BackendBody) -> Body {
        Body(Inner::Backend(body))
    }

    /// The fields of a backend's response head as the backend sent them, when they were
    /// kept that way (a response that no step reads; `outbound::conn`).
    pub fn take_raw(&mut self) -> Option<Box<crate::http1::fields::RawFields>> {
        match &mut self.0 {
            Inner::Backend(b) => b.take_raw(),
            _ => None,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Inner::Backend(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Backend(b) => b.is_end_stream(),
            Inner::Full(b) => b.is_none(),
            Inner::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Backend(b) => b.size_hint(),
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Boxed(b) => b.size_hint(),
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    Body(Inner::Full((!bytes.is_empty()).then_some(bytes)))
}

pub fn empty() -> Body {
    Body(Inner::Full(None))
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

/// Why the client's request body could not be read: the client's fault, so the request
/// is answered 400 or 408 whoever was reading (a step, the pre-read before forwarding, or
/// the backend request streaming it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientBodyError {
    /// Broken framing (chunk size, CRLF, extension too long) or the client went away mid-body.
    Framing(String),
    /// The whole body did not arrive within the transport's `body_timeout`.
    Timeout(Duration),
}

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientBodyError::Framing(e) => write!(f, "invalid request body: {e}"),
            ClientBodyError::Timeout(d) => write!(
                f,
                "the request body did not arrive within {} (transport body_timeout)",
                deployments::model::duration::format(d)
            ),
        }
    }
}

impl std::error::Error for ClientBodyError {}

/// Where a [`ClientBody`] records its failure; the proxy reads it to answer for the client.
pub type ClientBodyFailure = Arc<OnceLock<ClientBodyError>>;

/// The request body as the client connection decodes it, with a deadline for the whole body (counted from
/// when the head was read) and the first failure recorded in a shared slot. Bodies that
/// are already complete never arm a timer.
pub struct ClientBody {
    inner: RequestBody,
    deadline: Option<Instant>,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    failure: ClientBodyFailure,
    done: bool,
}

impl ClientBody {
    pub fn new(inner: RequestBody, timeout: Duration) -> (ClientBody, ClientBodyFailure) {
        let failure = ClientBodyFailure::default();
        // A complete body (no body) needs no deadline: no clock read.
        let deadline =
            (!hyper::body::Body::is_end_stream(&inner)).then(|| Instant::now() + timeout);
        let body = ClientBody {
            inner,
            deadline,
            timeout,
            timer: None,
            failure: failure.clone(),
            done: false,
        };
        (body, failure)
    }

    fn fail(&mut self, e: ClientBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        let e = self.failure.get_or_init(|| e).clone();
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => {
                let detail = e.to_string();
                self.fail(ClientBodyError::Framing(detail))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = self
                    .deadline
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(tokio::time::Instant::now);
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let timeout = self.timeout;
                        self.fail(ClientBodyError::Timeout(timeout))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Bytes already read, then the rest of a body: what is forwarded when the start of a
/// body was read ahead and the rest still streams.
pub struct Resumed {
    head: Option<Bytes>,
    rest: Body,
}

impl Resumed {
    pub fn body(head: Bytes, rest: Body) -> Body {
        Body::boxed(Resumed {
            head: (!head.is_empty()).then_some(head),
            rest,
        })
    }
}

impl hyper::body::Body for Resumed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + head);
        if let Some(u) = rest.upper() {
            hint.set_upper(u + head);
        }
        hint
    }
}

/// What reading ahead at most `limit` bytes of a body found.
pub enum ReadAhead {
    /// The whole body (it ended within the limit).
    Complete(Bytes),
    /// The body is longer: the bytes read so far followed by the rest, still streaming.
    Partial(Body),
}

/// Reads a body until it ends or more than `limit` bytes have arrived.
pub fn read_ahead(
    mut body: Body,
    limit: u64,
) -> Pin<Box<dyn Future<Output = Result<ReadAhead, ReadError>> + Send>> {
    Box::pin(async move {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Io(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() as u64 > limit {
                    return Ok(ReadAhead::Partial(Resumed::body(buf.freeze(), body)));
                }
            }
        }
        Ok(ReadAhead::Complete(buf.freeze()))
    })
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

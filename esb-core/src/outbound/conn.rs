//! One HTTP/1.1 connection to a backend, driven by the task of the request that holds it:
//! the request is written (head and whatever of the body is already there in one write,
//! the rest as it comes), then the response head is read and parsed with httparse, its
//! `1xx` answers skipped. There is no connection task: between requests the connection
//! sits in its pool, with a read buffer of a usual size. A request whose body streams is
//! sent from its own half of the connection while the response is read from the other,
//! so that a backend that answers as it reads (an echo, an early error) is not stalled.

use crate::http1::chunked::Framing as BodyFraming;
use crate::http1::fields::{self, RawFields};
use crate::http1::write::{self as wire, Framing, Sink};
use crate::http1::{spare, Io};
use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::AsyncWrite;

/// Most header fields in a response head.
const MAX_HEADERS: usize = 100;
/// Longest response head.
const MAX_HEAD: usize = 64 * 1024;

pub struct Conn {
    io: Stream,
    /// Bytes read and not consumed yet: the rest of a head, body bytes.
    pub buf: BytesMut,
    /// The socket of a plain-TCP connection (one a binary upgrade can pass on), open for as
    /// long as `io` is.
    tcp: Option<RawFd>,
}

/// How the fields of a response head are handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// In the response's header map, for whoever reads or changes them.
    Map,
    /// As [`RawFields`] with the response's body (`BackendBody`), for a response that goes
    /// to its client unchanged: the fields are written out as the backend sent them and
    /// never parsed into a header map (the map holds only what is added on the way). A head
    /// whose `Connection` names further fields, or with more than [`fields::RAW_MAX`] fields,
    /// still gets a map.
    Raw,
}

/// A response head as the backend sent it.
pub struct Head {
    pub parts: http::response::Parts,
    /// Its fields, when they were asked for as [`Fields::Raw`] (and `parts` has none).
    pub raw: Option<RawFields>,
    /// How its body is framed; `None`: until the backend closes the connection.
    pub framing: Option<BodyFraming>,
    /// The connection can carry another request once the body has been read.
    pub keep_alive: bool,
}

/// Why a response head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The backend closed the connection before the first byte of an answer.
    Closed,
    Io(io::Error),
    /// The backend sent something that is not an HTTP/1.x response head.
    Invalid(String),
}

impl Conn {
    pub fn new(io: Stream) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
            tcp: None,
        }
    }

    /// A plain-TCP connection.
    pub fn tcp(stream: tokio::net::TcpStream) -> Conn {
        let fd = stream.as_raw_fd();
        Conn {
            tcp: Some(fd),
            ..Conn::new(Box::new(stream))
        }
    }

    /// The socket of a plain-TCP connection, valid while `self` lives.
    pub fn tcp_fd(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: `io` owns the descriptor and lives as long as the borrow of `self`.
        self.tcp.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Whether an idle connection can carry a request: the backend has neither closed it
    /// nor sent anything unasked. Costs no system call unless the socket has news.
    pub fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        let mut rb = tokio::io::ReadBuf::uninit(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(&mut *self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// The connection split in its reading half (for the response) and its writing half
    /// (for a request body that is still being sent when the answer comes). The halves are
    /// not put together again: such a connection is not reused.
    pub fn split(self) -> (Box<Conn>, Writer) {
        let Conn { io, buf, .. } = self;
        let (r, w) = tokio::io::split(io);
        (
            Box::new(Conn {
                io: Box::new(ReadOnly(r)),
                buf,
                tcp: None,
            }),
            Writer(w),
        )
    }

    /// The connection goes idle. It keeps a read buffer of a usual size (the response
    /// just read may still hold on to it; it is reused in place once that is gone) and
    /// gives up a large one.
    pub fn trim_buffer(&mut self) {
        if self.buf.capacity() > spare::LARGEST {
            self.buf = BytesMut::new();
        }
    }

    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        crate::http1::poll_fill(&mut *self.io, &mut self.buf, cx)
    }

    /// Writes `out` (a complete request, or a head with the first part of its body) and
    /// flushes.
    pub async fn write(&mut self, out: &[u8]) -> io::Result<()> {
        wire::write_all(self, out).await?;
        wire::flush(self).await
    }

    /// Reads the response head (skipping `1xx` answers). `head_method`: the request was
    /// HEAD, so the response has no body whatever its headers say.
    pub async fn read_head(
        &mut self,
        head_method: bool,
        fields: Fields,
    ) -> Result<Head, HeadError> {
        loop {
            let (parts, raw, wire) = poll_fn(|cx| self.poll_head(cx, fields)).await?;
            let status = parts.status;
            // 101 would switch protocols, which esb does not proxy: it is an answer.
            if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
            return response_head(parts, raw, wire, head_method);
        }
    }

    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        fields: Fields,
    ) -> Poll<Result<Parsed, HeadError>> {
        loop {
            if let Some(head) = parse(&mut self.buf, fields)? {
                return Poll::Ready(Ok(head));
            }
            match std::task::ready!(self.poll_fill(cx)) {
                Ok(0) if self.buf.is_empty() => return Poll::Ready(Err(HeadError::Closed)),
                Ok(0) => {
                    return Poll::Ready(Err(HeadError::Invalid(
                        "the backend closed the connection in the middle of the response head"
                            .into(),
                    )))
                }
                Ok(_) => {}
                Err(e) if self.buf.is_empty() && is_reset(&e) => {
                    return Poll::Ready(Err(HeadError::Closed))
                }
                Err(e) => return Poll::Ready(Err(HeadError::Io(e))),
            }
        }
    }
}

impl Sink for Conn {
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }
}

type Stream = Box<dyn Io + Sync>;

/// The writing half of a split connection.
pub struct Writer(tokio::io::WriteHalf<Stream>);

impl Sink for Writer {
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}

/// The reading half of a split connection, as the connection's stream.
struct ReadOnly(tokio::io::ReadHalf<Stream>);

impl tokio::io::AsyncRead for ReadOnly {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ReadOnly {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::other(
            "the writing half of this connection is elsewhere",
        )))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// How a request's body goes out: by its length when it is known, chunked otherwise; no
/// framing at all for an empty body of a method that does not expect one.
pub fn request_framing<B: hyper::body::Body>(req: &Request<B>) -> Framing {
    let body = req.body();
    match body.size_hint().exact() {
        Some(0) if body.is_end_stream() => match *req.method() {
            Method::POST | Method::PUT | Method::PATCH => Framing::Length(0),
            _ => Framing::None,
        },
        Some(n) => Framing::Length(n),
        None => match fields::content_length(req.headers()) {
            Ok(Some(n)) => Framing::Length(n),
            _ => Framing::Chunked,
        },
    }
}

/// The request line and headers, then `Host` (when given: the request has none), the
/// `extra` lines and the framing's own header.
pub fn encode_head<B>(
    out: &mut Vec<u8>,
    req: &Request<B>,
    framing: Framing,
    host: Option<&HeaderValue>,
    extra: &[Option<(&HeaderName, HeaderValue)>],
) {
    let headers = req.headers();
    out.reserve(64 + headers.len() * 40);
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name != TRANSFER_ENCODING && name != CONTENT_LENGTH {
            wire::line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(host) = host {
        wire::line(out, b"host", host.as_bytes());
    }
    for (name, value) in extra.iter().flatten() {
        wire::line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        Framing::Length(n) => wire::length_line(out, n),
        Framing::Chunked => wire::line(out, b"transfer-encoding", b"chunked"),
        Framing::None | Framing::Close => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// What a response head's connection-level and framing fields say. They are read off the
/// parsed fields: the connection-level ones never go into the header map.
#[derive(Debug)]
struct Wire {
    keep_alive: bool,
    close: bool,
    /// `None` without `Transfer-Encoding`; otherwise whether its last coding is `chunked`.
    chunked: Option<bool>,
    length: Result<Option<u64>, &'static str>,
}

/// A parsed response head: its parts, its fields when asked for raw, what its
/// connection-level and framing fields say.
type Parsed = (http::response::Parts, Option<RawFields>, Wire);

/// Takes one complete response head off the front of `buf`; `None` while incomplete.
fn parse(buf: &mut BytesMut, fields: Fields) -> Result<Option<Parsed>, HeadError> {
    if !fields::has_blank_line(buf) {
        return if buf.len() > MAX_HEAD {
            Err(too_large())
        } else {
            Ok(None)
        };
    }
    // Parsed over frozen bytes, so header values are slices of them; the body's first
    // bytes go back into `buf`.
    let bytes = buf.split().freeze();
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, &bytes, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => return Err(too_large()),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            *buf = BytesMut::from(bytes);
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::Invalid(format!(
                "response head with more than {MAX_HEADERS} header fields: have the backend send fewer"
            )))
        }
        Err(e) => {
            return Err(HeadError::Invalid(format!(
                "malformed response head ({e}): the backend does not answer in HTTP/1.x; check the address and its scheme (http or https)"
            )))
        }
    };
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let status = StatusCode::from_u16(resp.code.unwrap_or(0)).map_err(|_| {
        HeadError::Invalid(format!(
            "invalid status code {}: the backend does not answer in HTTP/1.x",
            resp.code.unwrap_or(0)
        ))
    })?;
    let all = &*resp.headers;
    let (wire, names_more) = wire_fields(all);
    let end_to_end = |name: &str| fields::hop_by_hop_index(name.as_bytes()).is_none();
    let raw = match fields {
        Fields::Raw if !names_more => RawFields::of(&bytes, all, end_to_end),
        _ => None,
    };
    let mut parts = http::Response::new(()).into_parts().0;
    if raw.is_none() {
        // Hop-by-hop fields stay out of the map; when `Connection` names further ones,
        // they are taken out of the whole map afterwards.
        let mut headers = fields::header_map(&bytes, all, |name| names_more || end_to_end(name))
            .map_err(HeadError::Invalid)?;
        if names_more {
            fields::strip_hop_by_hop(&mut headers);
        }
        parts.headers = headers;
    }
    if len < bytes.len() {
        buf.extend_from_slice(&bytes[len..]);
    }
    parts.status = status;
    parts.version = version;
    Ok(Some((parts, raw, wire)))
}

/// What the connection-level and framing fields of a response head say (one pass over
/// the fields), and whether `Connection` names further fields.
fn wire_fields(all: &[httparse::Header<'_>]) -> (Wire, bool) {
    let mut wire = Wire {
        keep_alive: false,
        close: false,
        chunked: None,
        length: Ok(None),
    };
    let mut names_more = false;
    let mut lengths = 0;
    for h in all {
        let name = h.name.as_bytes();
        match name.len() {
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for t in fields::tokens(h.value) {
                    wire.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                    wire.close |= t.eq_ignore_ascii_case(b"close");
                }
                names_more |= fields::listed_in_connection(h.value).next().is_some();
            }
            // The last coding of all the values decides.
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                match fields::last_coding(h.value) {
                    Some(c) => wire.chunked = Some(c.eq_ignore_ascii_case(b"chunked")),
                    None => {
                        wire.chunked.get_or_insert(false);
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                lengths += 1;
                if lengths == 1 {
                    wire.length = fields::length_of(std::iter::once(h.value));
                }
            }
            _ => {}
        }
    }
    if lengths > 1 {
        wire.length = fields::length_of(
            all.iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| h.value),
        );
    }
    (wire, names_more)
}

fn too_large() -> HeadError {
    HeadError::Invalid(format!(
        "response head larger than {} KiB: have the backend send fewer or shorter headers",
        MAX_HEAD / 1024
    ))
}

/// The response's framing and whether the connection stays open after it.
fn response_head(
    parts: http::response::Parts,
    raw: Option<RawFields>,
    wire: Wire,
    head_method: bool,
) -> Result<Head, HeadError> {
    let mut keep_alive = match parts.version {
        Version::HTTP_10 => wire.keep_alive,
        _ => !wire.close,
    };
    let status = parts.status;
    let bodiless = head_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Some(BodyFraming::Done)
    } else if let Some(chunked) = wire.chunked {
        // With Content-Length as well, the coding wins; the connection is not trusted
        // with another request.
        keep_alive &= chunked && !matches!(wire.length, Ok(None));
        chunked.then(BodyFraming::chunked)
    } else {
        match wire.length {
            Ok(Some(0)) => Some(BodyFraming::Done),
            Ok(Some(n)) => Some(BodyFraming::Length(n)),
            Ok(None) => None,
            Err(_) => {
                return Err(HeadError::Invalid(
                    "the response's Content-Length is not one decimal number of bytes (or its values differ): the backend's framing is broken; fix the backend".into(),
                ))
            }
        }
    };
    if framing.is_none() || status == StatusCode::SWITCHING_PROTOCOLS {
        keep_alive = false;
    }
    Ok(Head {
        parts,
        raw,
        framing,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::fields::RAW_MAX;

    fn head(text: &str, head_method: bool) -> Result<Head, HeadError> {
        head_as(text, head_method, Fields::Map)
    }

    fn head_as(text: &str, head_method: bool, fields: Fields) -> Result<Head, HeadError> {
        let mut buf = BytesMut::from(text.as_bytes());
        let (parts, raw, wire) = parse(&mut buf, fields)?.expect("complete");
        response_head(parts, raw, wire, head_method)
    }

    fn names(h: &Head) -> Vec<&str> {
        h.parts.headers.keys().map(|k| k.as_str()).collect()
    }

    #[test]
    fn response_framing_follows_the_headers_and_the_request() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false).unwrap();
        assert_eq!(h.framing, Some(BodyFraming::Length(5)));
        assert!(h.keep_alive);
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            names(&h),
            ["x-a", "content-length"],
            "hop-by-hop fields stay out"
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            names(&h),
            ["x-a", "content-length"],
            "and those Connection names"
        );
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap();
        assert_eq!(h.framing, Some(BodyFraming::Done), "HEAD has no body");
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, Some(BodyFraming::chunked()));
        let h = head("HTTP/1.0 200 OK\r\n\r\n", false).unwrap();
        assert!(h.framing.is_none() && !h.keep_alive, "read to close");
        let h = head(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(h.keep_alive);
        let h = head(
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, Some(BodyFraming::Done));
        assert!(!h.keep_alive);
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
            Err(HeadError::Invalid(_))
        ));
    }

    #[test]
    fn raw_fields_are_the_end_to_end_ones_as_sent() {
        let text = "HTTP/1.1 200 OK\r\nServer: be\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Two: 1\r\nx-two: 2\r\nContent-Length: 2\r\n\r\nok";
        let h = head_as(text, false, Fields::Raw).unwrap();
        assert!(h.parts.headers.is_empty(), "no map");
        let raw = h.raw.expect("raw fields");
        let got: Vec<(&[u8], &[u8])> = raw.iter().collect();
        assert_eq!(
            got,
            [
                (&b"Server"[..], &b"be"[..]),
                (b"X-Two", b"1"),
                (b"x-two", b"2"),
                (b"Content-Length", b"2")
            ]
        );
        assert_eq!(raw.content_length(), Some(&b"2"[..]));
        assert!(!raw.has_date());
        assert_eq!(h.framing, Some(BodyFraming::Length(2)));
        let h = head_as(
            "HTTP/1.1 304 Not Modified\r\nDATE: x\r\n\r\n",
            false,
            Fields::Raw,
        )
        .unwrap();
        let raw = h.raw.expect("raw fields");
        assert!(raw.has_date() && raw.content_length().is_none());
        // Fields that `Connection` names, or too many of them: a map after all.
        let h = head_as(
            "HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nX-A: 1\r\n\r\n",
            false,
            Fields::Raw,
        )
        .unwrap();
        assert!(h.raw.is_none());
        assert_eq!(names(&h), ["x-a"]);
        let many: String = (0..=RAW_MAX).map(|i| format!("x-{i}: 1\r\n")).collect();
        let h = head_as(
            &format!("HTTP/1.1 200 OK\r\n{many}\r\n"),
            false,
            Fields::Raw,
        )
        .unwrap();
        assert!(h.raw.is_none());
        assert_eq!(h.parts.headers.len(), RAW_MAX + 1);
    }

    #[test]
    fn repeated_framing_fields_are_read_as_one() {
        // The last coding of all the Transfer-Encoding values decides.
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, Some(BodyFraming::chunked()));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(
            h.framing.is_none() && !h.keep_alive,
            "not chunked: read to close"
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            h.framing,
            Some(BodyFraming::chunked()),
            "an empty value adds no coding"
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: Keep-Alive, close\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.framing, Some(BodyFraming::Length(2)));
        assert!(!h.keep_alive, "close wins in HTTP/1.1");
        assert!(matches!(
            head(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                false
            ),
            Err(HeadError::Invalid(_))
        ));
    }

    #[test]
    fn requests_are_written_in_origin_form_with_their_framing() {
        let mut req = Request::new(crate::body::full("hi"));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = "/orders?id=1".parse().unwrap();
        req.headers_mut()
            .insert("content-length", "99".parse().unwrap());
        req.headers_mut().insert("x-a", "1".parse().unwrap());
        let framing = request_framing(&req);
        assert_eq!(framing, Framing::Length(2));
        let mut out = Vec::new();
        let xff = HeaderName::from_static("x-forwarded-for");
        encode_head(
            &mut out,
            &req,
            framing,
            Some(&HeaderValue::from_static("be:80")),
            &[None, Some((&xff, HeaderValue::from_static("10.0.0.1")))],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /orders?id=1 HTTP/1.1\r\nx-a: 1\r\nhost: be:80\r\nx-forwarded-for: 10.0.0.1\r\ncontent-length: 2\r\n\r\n"
        );
        let get = Request::new(crate::body::empty());
        assert_eq!(request_framing(&get), Framing::None);
    }
}

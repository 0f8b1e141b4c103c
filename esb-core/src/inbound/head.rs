//! Parsing a request head out of the connection's buffer (httparse) into the request's
//! parts, its body framing and what it says of the connection. Header values are slices
//! of the head's bytes, not copies. Framing that could be read two ways (both
//! `Transfer-Encoding` and `Content-Length`, differing `Content-Length`s, a transfer coding
//! other than a final `chunked`) is refused, so no backend can see a different request
//! boundary than esb.

use crate::http1::chunked::Framing;
use crate::http1::fields::{self, has_token};
use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use std::mem::MaybeUninit;

/// Most header fields in a request head (as hyper's default).
pub const MAX_HEADERS: usize = 100;
/// Longest request head, request line included.
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head larger than {} KiB: send fewer or shorter headers (large data belongs in the body)", MAX_HEAD / 1024)]
    TooLarge,
    #[error("more than {MAX_HEADERS} header fields: combine or drop some")]
    TooManyHeaders,
    #[error("HTTP version not supported (esb serves HTTP/1.0 and HTTP/1.1)")]
    Version,
    #[error("{0}")]
    Invalid(String),
}

impl HeadError {
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HeadError::Version => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HeadError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// A parsed request head.
pub struct Head {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client allows the connection to carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

/// Takes one complete request head off the front of `buf`; `None` while it is incomplete.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    if !fields::has_blank_line(buf) {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    }
    // Parsed over frozen bytes, so header values are slices of them; what follows the
    // head (a body, a pipelined request) goes back into `buf`.
    let bytes = buf.split().freeze();
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(&bytes, &mut slots) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(len),
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => {
            *buf = BytesMut::from(bytes);
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(httparse::Error::Version) => Err(HeadError::Version),
        Err(e) => Err(HeadError::Invalid(format!(
            "malformed request head: {e}; check the request line and the header syntax (`Name: value`, CRLF line ends)"
        ))),
    }?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes()).map_err(|_| {
        HeadError::Invalid("invalid method: use a token such as GET or POST".into())
    })?;
    let uri = Uri::from_maybe_shared(bytes.slice_ref(req.path.unwrap_or_default().as_bytes()))
        .map_err(|e| {
            HeadError::Invalid(format!(
                "invalid request target ({e}): send a path such as /orders?id=1"
            ))
        })?;
    // No room is left for what the proxy adds: `Host` and `X-Forwarded-*` go out as head
    // lines of their own, past the map.
    let headers = fields::header_map(&bytes, req.headers, |_| true).map_err(HeadError::Invalid)?;
    if len < bytes.len() {
        buf.extend_from_slice(&bytes[len..]);
    }
    let framing = framing(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, &CONNECTION, "keep-alive"),
        _ => !has_token(&headers, &CONNECTION, "close"),
    };
    let expect_continue = version == Version::HTTP_11
        && !framing.is_done()
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(Head {
        parts,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// The body's framing, from `Transfer-Encoding` and `Content-Length`.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, HeadError> {
    let invalid = |m: &str| Err(HeadError::Invalid(m.into()));
    if let Some(chunked) = fields::ends_chunked(headers) {
        if version == Version::HTTP_10 {
            return invalid("Transfer-Encoding is not allowed in an HTTP/1.0 request: send Content-Length, or use HTTP/1.1");
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return invalid("both Transfer-Encoding and Content-Length: send one of them");
        }
        return match chunked {
            true => Ok(Framing::chunked()),
            false => invalid(
                "the last transfer coding must be chunked: end Transfer-Encoding with `chunked`",
            ),
        };
    }
    Ok(
        match fields::content_length(headers).map_err(|e| HeadError::Invalid(e.into()))? {
            None | Some(0) => Framing::Done,
            Some(n) => Framing::Length(n),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, HeadError> {
        parse(&mut BytesMut::from(text.as_bytes()))
    }

    #[test]
    fn a_head_becomes_parts_with_its_framing() {
        let mut buf = BytesMut::from(
            &b"POST /a/b?x=1 HTTP/1.1\r\nHost: t\r\nX-Two: 1\r\nx-two: 2\r\nContent-Length: 5\r\n\r\nhello"[..],
        );
        let h = parse(&mut buf).unwrap().unwrap();
        assert_eq!(h.parts.method, Method::POST);
        assert_eq!(h.parts.uri.path(), "/a/b");
        assert_eq!(h.parts.uri.query(), Some("x=1"));
        assert_eq!(h.parts.headers.get_all("x-two").iter().count(), 2);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive && !h.expect_continue);
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn incomplete_heads_wait_and_oversized_ones_are_refused() {
        assert!(head("GET / HTTP/1.1\r\nHost: t\r\n").unwrap().is_none());
        let big = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(head(&big).err(), Some(HeadError::TooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert_eq!(
            head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).err(),
            Some(HeadError::TooManyHeaders)
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let ka = |t: &str| head(t).unwrap().unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for text in [
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(
                matches!(head(text), Err(HeadError::Invalid(_))),
                "{text:?} must be refused"
            );
        }
        let f = |t: &str| head(t).unwrap().unwrap().framing;
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n"),
            Framing::Length(3)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Framing::chunked()
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Framing::Done
        );
        assert!(
            head("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .unwrap()
                .expect_continue
        );
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        for text in [
            "GET\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            "G@T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                head(text).err().map(|e| e.status()),
                Some(StatusCode::BAD_REQUEST),
                "{text:?}"
            );
        }
        assert_eq!(
            head("GET / HTTP/2.0\r\n\r\n").err(),
            Some(HeadError::Version)
        );
    }
}

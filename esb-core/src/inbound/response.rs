//! Writing a response on the client connection: the head (status line, headers, `date`
//! when the response has none) and the body, framed by its length, chunked, or — for an
//! HTTP/1.0 client and a body of unknown length — by closing the connection. A body
//! that is already there and small goes out with the head in one write.

use super::body::{lock, Conn};
use crate::body::Body;
use crate::http1::fields::RawFields;
use crate::http1::write::{self as wire, line, Framing, Sink, COALESCE};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};
use hyper::body::Body as _;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the request said that shapes its response.
pub struct Answering {
    pub version: Version,
    pub head_method: bool,
    /// Close the connection after this response (the client or the server wants it).
    pub close: bool,
}

/// Writes `resp`; whether the connection must close after it. A backend's fields that
/// came as [`RawFields`] (with its body) are written as they came, after the map's.
pub async fn write(conn: &Conn, resp: Response<Body>, req: Answering) -> io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let raw = body.take_raw();
    let status = parts.status;
    let headers = &parts.headers;
    // Raw fields hold no connection-level ones.
    let mut close = req.close || crate::http1::fields::has_token(headers, &CONNECTION, "close");
    let bodiless = req.head_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declared = headers
        .get(CONTENT_LENGTH)
        .map(|v| v.as_bytes())
        .or_else(|| raw.as_ref()?.content_length())
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    let framing = match body.size_hint().exact() {
        _ if bodiless => Framing::None,
        Some(n) => Framing::Length(n),
        None => match declared {
            Some(n) => Framing::Length(n),
            None if req.version == Version::HTTP_11 => Framing::Chunked,
            None => {
                close = true;
                Framing::Close
            }
        },
    };
    let mut out = std::mem::take(&mut lock(conn).out);
    if out.capacity() == 0 {
        out = crate::http1::spare::take_out();
    }
    out.clear();
    out.reserve(160 + (headers.len() + raw.as_deref().map_or(0, RawFields::len)) * 40);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let ours = name == TRANSFER_ENCODING
            || name == CONNECTION
            || (name == CONTENT_LENGTH && !matches!(framing, Framing::None));
        if !ours {
            line(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    for (name, value) in raw.iter().flat_map(|r| r.iter()) {
        let ours =
            !matches!(framing, Framing::None) && name.eq_ignore_ascii_case(b"content-length");
        if !ours {
            line(&mut out, name, value);
        }
    }
    match framing {
        Framing::Length(n) => wire::length_line(&mut out, n),
        Framing::Chunked => line(&mut out, b"transfer-encoding", b"chunked"),
        Framing::None | Framing::Close => {}
    }
    if close {
        line(&mut out, b"connection", b"close");
    } else if req.version == Version::HTTP_10 {
        line(&mut out, b"connection", b"keep-alive");
    }
    if !headers.contains_key(DATE) && !raw.as_deref().is_some_and(RawFields::has_date) {
        DATE_CACHE.with(|d| line(&mut out, b"date", d.borrow_mut().now()));
    }
    out.extend_from_slice(b"\r\n");
    crate::http1::spare::put_map(parts.headers);

    let mut sent: u64 = 0;
    let mut sink = Locked(conn);
    if framing == Framing::None {
        wire::write_all(&mut sink, &out).await?;
    } else if wire::take_ready(&mut body, &mut out, framing, &mut sent, COALESCE)? {
        // A body that is already there goes out with the head.
        wire::end(&mut out, framing);
        wire::write_all(&mut sink, &out).await?;
    } else {
        wire::stream(&mut sink, &mut out, &mut body, framing, &mut sent).await?;
    }
    wire::flush(&mut sink).await?;
    out.clear();
    lock(conn).out = out;
    match framing {
        Framing::Length(n) if n != sent => Err(io::Error::other(format!(
            "response body of {sent} bytes, {n} declared"
        ))),
        _ => Ok(close),
    }
}

/// The client connection as a place to write to, locked for each write.
struct Locked<'a>(&'a Conn);

impl Sink for Locked<'_> {
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(self.0).io).poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(self.0).io).poll_flush(cx)
    }
}

/// The `date` header's value, formatted once a second per thread.
struct DateCache {
    second: u64,
    text: [u8; 29],
}

thread_local! {
    static DATE_CACHE: RefCell<DateCache> = const { RefCell::new(DateCache { second: u64::MAX, text: [0; 29] }) };
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == self.text.len() {
                self.text.copy_from_slice(text.as_bytes());
                self.second = second;
            }
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_an_http_date() {
        let d = DATE_CACHE.with(|d| d.borrow_mut().now().to_vec());
        let text = String::from_utf8(d).unwrap();
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}

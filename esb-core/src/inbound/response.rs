//! Writing a response on the client connection: the head (status line, headers, `date`
//! when the response has none) and the body, framed by its length, chunked, or — for an
//! HTTP/1.0 client and a body of unknown length — by closing the connection. A body
//! that is already there and small goes out with the head in one write.

use super::body::{lock, Conn};
use crate::body::Body;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

/// Body bytes copied next to the head or a chunk's framing to save a write.
const COALESCE: usize = 16 * 1024;

/// What the request said that shapes its response.
pub struct Answering {
    pub version: Version,
    pub head_method: bool,
    /// Close the connection after this response (the client or the server wants it).
    pub close: bool,
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 client, unknown length).
    Close,
}

/// Writes `resp`; whether the connection must close after it.
pub async fn write(conn: &Conn, resp: Response<Body>, req: Answering) -> io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let headers = &parts.headers;
    let mut close = req.close || super::head::has_token(headers, &CONNECTION, "close");
    let bodiless = req.head_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
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
        out = super::body::spare::take_out();
    }
    out.clear();
    out.reserve(160 + headers.len() * 40);
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
    match framing {
        Framing::Length(n) => {
            let mut digits = [0; 20];
            line(&mut out, b"content-length", itoa(n, &mut digits));
        }
        Framing::Chunked => line(&mut out, b"transfer-encoding", b"chunked"),
        Framing::None | Framing::Close => {}
    }
    if close {
        line(&mut out, b"connection", b"close");
    } else if req.version == Version::HTTP_10 {
        line(&mut out, b"connection", b"keep-alive");
    }
    if !headers.contains_key(DATE) {
        DATE_CACHE.with(|d| line(&mut out, b"date", d.borrow_mut().now()));
    }
    out.extend_from_slice(b"\r\n");

    let mut sent: u64 = 0;
    if matches!(framing, Framing::None) {
        write_all(conn, &out).await?;
        out.clear();
        lock(conn).out = out;
        return Ok(close);
    }
    // A body that is already there goes out with the head.
    let ended = take_ready(&mut body, &mut out, &framing, &mut sent)?;
    if !ended {
        write_all(conn, &out).await?;
        out.clear();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(io::Error::other)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if data.len() <= COALESCE {
                frame_into(&mut out, &framing, &data);
                write_all(conn, &out).await?;
                out.clear();
            } else {
                write_big(conn, &framing, &data).await?;
            }
            flush(conn).await?;
        }
    }
    if let Framing::Chunked = framing {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        write_all(conn, &out).await?;
    }
    flush(conn).await?;
    out.clear();
    lock(conn).out = out;
    match framing {
        Framing::Length(n) if n != sent => Err(io::Error::other(format!(
            "response body of {sent} bytes, {n} declared"
        ))),
        _ => Ok(close),
    }
}

/// Moves the frames `body` has ready into `out` (up to [`COALESCE`]); whether it ended.
fn take_ready(
    body: &mut Body,
    out: &mut Vec<u8>,
    framing: &Framing,
    sent: &mut u64,
) -> io::Result<bool> {
    let mut cx = Context::from_waker(Waker::noop());
    while out.len() < COALESCE {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    *sent += data.len() as u64;
                    frame_into(out, framing, &data);
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
            Poll::Ready(None) => return Ok(true),
            Poll::Pending => return Ok(false),
        }
        if body.is_end_stream() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Body bytes with their chunk framing, if any.
fn frame_into(out: &mut Vec<u8>, framing: &Framing, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if let Framing::Chunked = framing {
        chunk_size(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

async fn write_big(conn: &Conn, framing: &Framing, data: &Bytes) -> io::Result<()> {
    if let Framing::Chunked = framing {
        let mut size = Vec::with_capacity(20);
        chunk_size(&mut size, data.len());
        write_all(conn, &size).await?;
        write_all(conn, data).await?;
        write_all(conn, b"\r\n").await
    } else {
        write_all(conn, data).await
    }
}

fn chunk_size(out: &mut Vec<u8>, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[(n >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

pub async fn write_all(conn: &Conn, data: &[u8]) -> io::Result<()> {
    let mut written = 0;
    poll_fn(|cx| lock(conn).poll_write_all(cx, data, &mut written)).await
}

pub async fn flush(conn: &Conn) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *lock(conn).io).poll_flush(cx)).await
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
    fn numbers_are_written_in_decimal_and_hex() {
        let mut b = [0; 20];
        assert_eq!(itoa(0, &mut b), b"0");
        let mut b = [0; 20];
        assert_eq!(itoa(u64::MAX, &mut b), u64::MAX.to_string().as_bytes());
        for n in [1usize, 15, 16, 255, 4096, 0x12345] {
            let mut out = Vec::new();
            chunk_size(&mut out, n);
            assert_eq!(out, format!("{n:x}\r\n").into_bytes());
        }
    }

    #[test]
    fn the_date_is_an_http_date() {
        let d = DATE_CACHE.with(|d| d.borrow_mut().now().to_vec());
        let text = String::from_utf8(d).unwrap();
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}

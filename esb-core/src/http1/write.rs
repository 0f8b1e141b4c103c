//! Writing heads and framed bodies: header lines, numbers in decimal and hex, a body's
//! frames by its length, chunked or until close, with what is already there coalesced
//! next to the head to save writes. Generic over where the bytes go ([`Sink`]).

use crate::body::{Body, BoxError};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Body bytes copied next to a head or a chunk's framing to save a write.
pub const COALESCE: usize = 16 * 1024;

/// How a body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a HEAD answer, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, an unknown length).
    Close,
}

/// Why a body could not be written: the body itself failed, or the connection did.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the body failed: {0}")]
    Body(#[source] BoxError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> io::Error {
        match e {
            WriteError::Io(e) => e,
            WriteError::Body(e) => io::Error::other(e),
        }
    }
}

/// Where written bytes go: a socket, or a connection shared behind a lock.
pub trait Sink {
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

pub async fn write_all<S: Sink>(sink: &mut S, data: &[u8]) -> io::Result<()> {
    let mut written = 0;
    poll_fn(|cx| {
        while written < data.len() {
            let n = std::task::ready!(sink.poll_write(cx, &data[written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            written += n;
        }
        Poll::Ready(Ok(()))
    })
    .await
}

pub async fn flush<S: Sink>(sink: &mut S) -> io::Result<()> {
    poll_fn(|cx| sink.poll_flush(cx)).await
}

/// Moves the frames `body` has ready into `out`, framed, until `out` holds `limit` bytes;
/// whether the body ended. `sent` counts the body bytes taken.
pub fn take_ready(
    body: &mut Body,
    out: &mut Vec<u8>,
    framing: Framing,
    sent: &mut u64,
    limit: usize,
) -> Result<bool, WriteError> {
    let mut cx = Context::from_waker(Waker::noop());
    while out.len() < limit {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    *sent += data.len() as u64;
                    frame_into(out, framing, &data);
                }
            }
            Poll::Ready(Some(Err(e))) => return Err(WriteError::Body(e)),
            Poll::Ready(None) => return Ok(true),
            Poll::Pending => return Ok(false),
        }
        if body.is_end_stream() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The end of a body's framing (the last chunk of a chunked body).
pub fn end(out: &mut Vec<u8>, framing: Framing) {
    if let Framing::Chunked = framing {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

/// Writes `out` (a head, with what the body had ready), then the rest of `body` as it
/// comes, then the end of its framing; flushes after each part. An error of the body
/// itself keeps it as its source.
pub async fn stream<S: Sink>(
    sink: &mut S,
    out: &mut Vec<u8>,
    body: &mut Body,
    framing: Framing,
    sent: &mut u64,
) -> Result<(), WriteError> {
    write_all(sink, out).await?;
    out.clear();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(WriteError::Body)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        *sent += data.len() as u64;
        if data.len() <= COALESCE {
            frame_into(out, framing, &data);
            write_all(sink, out).await?;
            out.clear();
        } else {
            write_big(sink, framing, &data).await?;
        }
        flush(sink).await?;
    }
    end(out, framing);
    if !out.is_empty() {
        write_all(sink, out).await?;
    }
    Ok(flush(sink).await?)
}

/// A `name: value` header line.
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A `content-length` line.
pub fn length_line(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0; 20];
    line(out, b"content-length", itoa(n, &mut digits));
}

/// Body bytes with their chunk framing, if any.
fn frame_into(out: &mut Vec<u8>, framing: Framing, data: &[u8]) {
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

async fn write_big<S: Sink>(sink: &mut S, framing: Framing, data: &Bytes) -> io::Result<()> {
    if let Framing::Chunked = framing {
        let mut size = Vec::with_capacity(20);
        chunk_size(&mut size, data.len());
        write_all(sink, &size).await?;
        write_all(sink, data).await?;
        write_all(sink, b"\r\n").await
    } else {
        write_all(sink, data).await
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
}

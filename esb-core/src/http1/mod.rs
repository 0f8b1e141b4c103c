//! HTTP/1.1 wire pieces shared by the data plane's server connection ([`crate::inbound`])
//! and its backend connections ([`crate::outbound`]): body framing decoded as bytes
//! arrive ([`chunked`]), header fields read out of a parsed head ([`fields`]) and the
//! writing of heads and framed bodies ([`write`]).

pub mod chunked;
pub mod fields;
pub mod spare;
pub mod write;

/// A connection's byte stream (plain TCP or TLS).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Most bytes one read takes from the socket.
const READ_CHUNK: usize = 16 * 1024;

/// Reads what `io` has into `buf`; `Ok(0)` at the peer's end of stream. The read goes
/// through the stack, so that a connection holds a buffer (from [`spare`]) only once
/// bytes arrived.
pub fn poll_fill(
    io: &mut dyn Io,
    buf: &mut bytes::BytesMut,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<usize>> {
    let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut rb = tokio::io::ReadBuf::uninit(&mut stack);
    std::task::ready!(std::pin::Pin::new(io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    if n > 0 {
        if buf.is_empty() && buf.capacity() == 0 {
            *buf = spare::take_read();
        }
        buf.extend_from_slice(rb.filled());
    }
    std::task::Poll::Ready(Ok(n))
}

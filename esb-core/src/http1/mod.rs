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
/// Free room a buffer must have for a read to go into it directly.
const MIN_ROOM: usize = 1024;

/// Reads what `io` has into `buf`; `Ok(0)` at the peer's end of stream. A buffer with
/// free room (which a head split off its front leaves behind) is read into directly.
/// Otherwise the read goes through the stack: a connection that waits holds no buffer
/// until bytes arrived (it then takes one from [`spare`]), and a body streaming through
/// a full buffer is read in large chunks.
pub fn poll_fill(
    io: &mut dyn Io,
    buf: &mut bytes::BytesMut,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < MIN_ROOM {
        return poll_fill_through_stack(io, buf, cx);
    }
    let room = buf.spare_capacity_mut();
    let take = room.len().min(READ_CHUNK);
    let start = room.as_ptr().cast::<u8>();
    let mut rb = tokio::io::ReadBuf::uninit(&mut room[..take]);
    std::task::ready!(std::pin::Pin::new(io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    // The read filled the free room, not some other memory of its own.
    assert_eq!(rb.filled().as_ptr(), start, "a read replaced its buffer");
    // SAFETY: the read initialised the first `n` bytes of the free room.
    unsafe { buf.set_len(buf.len() + n) };
    std::task::Poll::Ready(Ok(n))
}

fn poll_fill_through_stack(
    io: &mut dyn Io,
    buf: &mut bytes::BytesMut,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<usize>> {
    let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut rb = tokio::io::ReadBuf::uninit(&mut stack);
    std::task::ready!(std::pin::Pin::new(io).poll_read(cx, &mut rb))?;
    let n = rb.filled().len();
    if n > 0 {
        if buf.capacity() == 0 {
            *buf = spare::take_read();
        }
        buf.extend_from_slice(rb.filled());
    }
    std::task::Poll::Ready(Ok(n))
}

//! The connection's shared half and the request body read from it. The socket, the read
//! buffer and the current body's framing sit behind one lock, held for one poll at a
//! time: the request body can be read by whichever task forwards it while the connection
//! writes the response. A connection waiting for its next request holds no buffer at
//! all: its reads go through a stack buffer until bytes arrived ([`crate::http1::poll_fill`]).

use crate::body::BoxError;
use crate::http1::chunked::{Decoded, Framing, FramingError};
use crate::http1::spare;
pub use crate::http1::Io;
use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

pub struct Shared {
    pub io: Box<dyn Io>,
    /// Bytes read and not consumed yet (the rest of a head, body bytes, a pipelined request).
    /// Kept from one request to the next while the client keeps the connection busy, and
    /// released when it goes idle ([`Shared::release_buffers`]).
    pub buf: BytesMut,
    /// The response head being written (kept like `buf`).
    pub out: Vec<u8>,
    /// What remains of the current request's body.
    pub framing: Framing,
    /// Counts the requests served: a body of an earlier request reads nothing more.
    pub request: u64,
    /// Bytes of `100 Continue` still to write before the body is read (`None`: none owed).
    pub continue_owed: Option<usize>,
    /// The client closed its side.
    pub eof: bool,
    /// The body's framing broke: the connection cannot carry another request.
    pub broken: bool,
    /// The connection's task waits for the body to end (to watch for the client leaving).
    pub body_waiter: Option<Waker>,
}

pub type Conn = Arc<Mutex<Shared>>;

pub fn lock(conn: &Conn) -> MutexGuard<'_, Shared> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(io: Box<dyn Io>) -> Shared {
        Shared {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            framing: Framing::Done,
            request: 0,
            continue_owed: None,
            eof: false,
            broken: false,
            body_waiter: None,
        }
    }

    /// The connection waits for its client: it keeps no buffer. They go to this thread's
    /// spares, for the next connection that has bytes to read or a response to write.
    pub fn release_buffers(&mut self) {
        if self.buf.is_empty() {
            spare::put_read(std::mem::take(&mut self.buf));
        }
        spare::put_out(std::mem::take(&mut self.out));
    }

    /// Reads what the socket has into the buffer; `Ok(0)` at the client's end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let n = ready!(crate::http1::poll_fill(&mut *self.io, &mut self.buf, cx))?;
        if n == 0 {
            self.eof = true;
        }
        Poll::Ready(Ok(n))
    }

    pub fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        while *written < data.len() {
            let n = ready!(Pin::new(&mut *self.io).poll_write(cx, &data[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// The next part of the current body, reading from the socket as needed.
    pub fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, BodyError>> {
        if let Some(mut written) = self.continue_owed {
            let r = self.poll_write_all(cx, CONTINUE, &mut written);
            self.continue_owed = Some(written);
            ready!(r).map_err(BodyError::Io)?;
            ready!(Pin::new(&mut *self.io).poll_flush(cx)).map_err(BodyError::Io)?;
            self.continue_owed = None;
        }
        loop {
            let decoded = self.framing.decode(&mut self.buf);
            if self.framing.is_done() {
                if let Some(w) = self.body_waiter.take() {
                    w.wake();
                }
            }
            match decoded {
                Ok(Decoded::Data(d)) => return Poll::Ready(Ok(Some(d))),
                Ok(Decoded::End) => return Poll::Ready(Ok(None)),
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    self.broken = true;
                    self.framing = Framing::Done;
                    return Poll::Ready(Err(BodyError::Framing(e)));
                }
            }
            if self.eof {
                self.broken = true;
                self.framing = Framing::Done;
                return Poll::Ready(Err(BodyError::Closed));
            }
            ready!(self.poll_fill(cx)).map_err(BodyError::Io)?;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Framing(FramingError),
    #[error("the client closed the connection before the body ended")]
    Closed,
    #[error("reading the body failed: {0}")]
    Io(io::Error),
    #[error("the request was already answered")]
    Answered,
}

/// A request's body as it arrives on the client connection.
pub struct RequestBody {
    conn: Option<Conn>,
    request: u64,
    length: Option<u64>,
    done: bool,
}

impl RequestBody {
    pub fn new(conn: &Conn, framing: Framing, request: u64) -> RequestBody {
        RequestBody {
            conn: (!framing.is_done()).then(|| conn.clone()),
            request,
            length: match framing {
                Framing::Length(n) => Some(n),
                Framing::Done => Some(0),
                Framing::Chunked(_) => None,
            },
            done: framing.is_done(),
        }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let Some(conn) = self.conn.clone() else {
            return Poll::Ready(None);
        };
        let mut shared = lock(&conn);
        let r = if shared.request != self.request {
            Err(BodyError::Answered)
        } else {
            ready!(shared.poll_body(cx))
        };
        drop(shared);
        match r {
            Ok(Some(data)) => {
                if let Some(n) = &mut self.length {
                    *n = n.saturating_sub(data.len() as u64);
                    self.done = *n == 0;
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Ok(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Err(e) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::new(),
        }
    }
}

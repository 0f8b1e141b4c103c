//! A backend's response body, read off its connection by the task that forwards it. The
//! connection goes back into its pool once the body has been read to its end (a body
//! dropped half-read closes the connection, unless the rest of it is already buffered).

use super::conn::Conn;
use super::Pool;
use crate::http1::chunked::{Decoded, Framing, FramingError};
use crate::http1::fields::RawFields;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Why a response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("invalid response body: {0}")]
    Framing(FramingError),
    #[error("the backend closed the connection before the response body ended")]
    Closed,
    #[error("reading the response body failed: {0}")]
    Io(io::Error),
}

pub struct BackendBody {
    /// `None` once the body ended or failed.
    conn: Option<Box<Conn>>,
    /// How the body is framed; `None`: until the backend closes the connection.
    framing: Option<Framing>,
    /// Where the connection goes when the body has ended (`None`: it closes).
    pool: Option<Arc<Pool>>,
    /// The head's fields as the backend sent them, when they were kept that way.
    raw: Option<Box<RawFields>>,
}

impl BackendBody {
    pub(super) fn new(
        conn: Box<Conn>,
        framing: Option<Framing>,
        pool: Option<Arc<Pool>>,
    ) -> BackendBody {
        let mut body = BackendBody {
            conn: Some(conn),
            framing,
            pool,
            raw: None,
        };
        if body.framing == Some(Framing::Done) {
            body.release();
        }
        body
    }

    /// The head's fields as the backend sent them (see [`RawFields`]), once.
    pub fn take_raw(&mut self) -> Option<Box<RawFields>> {
        self.raw.take()
    }

    pub(super) fn with_raw(mut self, raw: Option<RawFields>) -> BackendBody {
        self.raw = raw.map(Box::new);
        self
    }

    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some(pool)) = (conn, self.pool.take()) {
            if conn.buf.is_empty() {
                pool.put_back(conn);
            }
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl hyper::body::Body for BackendBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let Some(framing) = this.framing.as_mut() else {
                // Until the backend closes.
                if !conn.buf.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(conn.buf.split().freeze()))));
                }
                return match ready!(conn.poll_fill(cx)) {
                    Ok(0) => {
                        this.conn = None;
                        Poll::Ready(None)
                    }
                    Ok(_) => continue,
                    Err(e) => this.fail(BodyError::Io(e)),
                };
            };
            match framing.decode(&mut conn.buf) {
                Ok(Decoded::Data(d)) => {
                    if framing.is_done() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Ok(Decoded::End) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => return this.fail(BodyError::Framing(e)),
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => return this.fail(BodyError::Closed),
                Ok(_) => {}
                Err(e) => return this.fail(BodyError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.framing == Some(Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            _ if self.conn.is_none() => SizeHint::with_exact(0),
            Some(Framing::Length(n)) => SizeHint::with_exact(n),
            Some(Framing::Done) => SizeHint::with_exact(0),
            _ => SizeHint::new(),
        }
    }
}

impl Drop for BackendBody {
    /// A body dropped before its end keeps its connection only if the rest of it has
    /// already arrived.
    fn drop(&mut self) {
        let (Some(conn), Some(framing)) = (self.conn.as_mut(), self.framing.as_mut()) else {
            return;
        };
        loop {
            match framing.decode(&mut conn.buf) {
                Ok(Decoded::Data(_)) => {}
                Ok(Decoded::End) => return self.release(),
                Ok(Decoded::NeedMore) | Err(_) => return,
            }
        }
    }
}

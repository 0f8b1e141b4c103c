//! The data plane's HTTP/1.1 server connection: heads parsed with httparse, bodies
//! decoded as they are read ([`crate::http1::chunked`]), responses framed and written
//! ([`response`]), keep-alive and pipelining, `Expect: 100-continue`, the head deadline
//! (`header_timeout`, also for a connection that never sends anything), graceful
//! draining ([`Drain`]) and, in a binary upgrade, passing the connection on to the new
//! process whenever it has nothing of the client's unanswered ([`crate::handoff`]). A connection waiting for its next request holds no buffers:
//! reads go through the stack ([`body`]), the write buffer lives for one response, and
//! the request's future is boxed so the connection's own task stays small.
//!
//! While a request is served, a connection whose body has been read watches for the
//! client going away, and drops the request's future when it does (which ends the
//! request's in-flight accounting and its backend request).

pub mod body;
pub mod head;
pub mod response;

use body::{lock, Conn, Shared};
pub use body::{Io, RequestBody};
use bytes::BytesMut;
use futures_util::future::{Fuse, FusedFuture, FutureExt};
use http::{Request, Response};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Most bytes of an unread request body read and dropped to keep its connection open.
const DRAIN_BODY: usize = 64 * 1024;
/// How long a closing connection reads what the client still sends (so that the answer
/// is not lost to a reset), and how much.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// How far a server generation is in ending, as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    Serving,
    /// A binary upgrade: each connection passes itself on to the new process once it has
    /// nothing of the client's unanswered or buffered (or, where it cannot, goes on
    /// serving until its transport tells it to close).
    HandOff,
    /// Idle connections close now, busy ones after their response (`Connection: close`).
    Close,
}

/// Tells connections to finish: [`Drain::hand_off`] to the new process of a binary
/// upgrade, [`Drain::shutdown`] to close (idle ones now, busy ones after their response,
/// which says `Connection: close`), waiting until all have closed.
pub struct Drain {
    tx: watch::Sender<Ending>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

impl Drain {
    pub fn new() -> Drain {
        Drain {
            tx: watch::channel(Ending::Serving).0,
        }
    }

    pub fn watcher(&self) -> watch::Receiver<Ending> {
        self.tx.subscribe()
    }

    /// Connections pass themselves on (see [`Ending::HandOff`]).
    pub fn hand_off(&self) {
        self.tx.send_if_modified(|e| {
            let was = *e;
            *e = was.max(Ending::HandOff);
            *e != was
        });
    }

    pub async fn shutdown(&self) {
        self.tx.send_replace(Ending::Close);
        self.tx.closed().await;
    }
}

/// Serves the requests of one client connection until it closes, or until `hand_off`
/// has passed it on (true: the connection is then dropped without a shutdown, as the
/// new process holds it).
pub async fn serve<F, Fut, H, HF>(
    io: Box<dyn Io>,
    header_timeout: Duration,
    drain: watch::Receiver<Ending>,
    mut handler: F,
    mut hand_off: H,
) where
    F: FnMut(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<crate::body::Body>> + Send + 'static,
    H: FnMut() -> HF,
    HF: Future<Output = bool>,
{
    let conn: Conn = Arc::new(Mutex::new(Shared::new(io)));
    let mut timer = HeadTimer::new(header_timeout);
    let mut drained = std::pin::pin!(ending_past(drain.clone(), Ending::Serving).fuse());
    // Once passing it on failed, the connection serves until it is told to close.
    let mut stays = false;
    loop {
        let head = match next_head(&conn, &mut timer, &drain, !stays, drained.as_mut()).await {
            Next::Head(h) => h,
            Next::Closed => break,
            Next::HandOff => {
                if hand_off().await {
                    return;
                }
                stays = true;
                drained.set(ending_past(drain.clone(), Ending::HandOff).fuse());
                continue;
            }
            Next::Bad(e) => {
                let resp = crate::body::json_response(
                    e.status(),
                    &serde_json::json!({
                        "error": format!("{}: {e}", e.status().canonical_reason().unwrap_or("bad request").to_lowercase()),
                        "status": e.status().as_u16(),
                    }),
                );
                let answering = response::Answering {
                    version: http::Version::HTTP_11,
                    head_method: false,
                    close: true,
                };
                let _ = response::write(&conn, resp, answering).await;
                break;
            }
        };
        let request = {
            let mut s = lock(&conn);
            s.framing = head.framing;
            s.continue_owed = head.expect_continue.then_some(0);
            s.request
        };
        let version = head.parts.version;
        let head_method = head.parts.method == http::Method::HEAD;
        let body = RequestBody::new(&conn, head.framing, request);
        // Boxed: the connection's own future stays small while it waits for a request.
        let answer = boxed(|| handler(Request::from_parts(head.parts, body)));
        let Some(resp) = (WhileConnected {
            conn: &conn,
            answer,
        })
        .await
        else {
            break;
        };
        let answering = response::Answering {
            version,
            head_method,
            close: !head.keep_alive || *drain.borrow() == Ending::Close,
        };
        match response::write(&conn, resp, answering).await {
            Ok(false) => {}
            Ok(true) | Err(_) => break,
        }
        if !finish_body(&conn, header_timeout).await {
            break;
        }
        lock(&conn).request += 1;
    }
    close(&conn).await;
}

/// `make()` in a box of its own, written there directly: the room is taken first, so that
/// the future (kilobytes, most of it not yet in use) is not built elsewhere and copied in.
fn boxed<T>(make: impl FnOnce() -> T) -> Pin<Box<T>> {
    let mut room = Box::<T>::new_uninit();
    room.write(make());
    // SAFETY: written just above.
    Box::into_pin(unsafe { room.assume_init() })
}

#[allow(clippy::large_enum_variant)] // one per request, moved once
enum Next {
    Head(head::Head),
    Bad(head::HeadError),
    Closed,
    /// Nothing of the client's is unanswered or buffered: time to pass it on.
    HandOff,
}

/// Waits for the next complete request head, within the head deadline, unless drained
/// or handed off (`may_hand_off`). A connection that has to wait releases its buffers.
async fn next_head(
    conn: &Conn,
    timer: &mut HeadTimer,
    drain: &watch::Receiver<Ending>,
    may_hand_off: bool,
    mut drained: Pin<&mut Fuse<impl Future<Output = bool>>>,
) -> Next {
    let leaves = |ending: Ending| match ending {
        Ending::Serving => None,
        _ if !lock(conn).buf.is_empty() => None,
        Ending::HandOff if may_hand_off => Some(Next::HandOff),
        Ending::HandOff => None,
        Ending::Close => Some(Next::Closed),
    };
    // A connection's first head, and a pipelined one, are mostly there already (or arrive
    // with the first read): no clock, no timer. After an answer, a keep-alive client has
    // yet to send its next request: no read is tried before the wait — unless the server
    // drains, which closes a connection that has no request to read now. One that is to
    // be passed on goes with nothing read: what the client sends next is the new
    // process's to read.
    let ending = *drain.borrow();
    if ending == Ending::HandOff {
        if let Some(next) = leaves(ending) {
            return next;
        }
    }
    let fresh = {
        let s = lock(conn);
        s.request == 0 || !s.buf.is_empty() || ending != Ending::Serving
    };
    if fresh {
        if let Poll::Ready(next) = poll_head(conn, &mut Context::from_waker(Waker::noop())) {
            return next;
        }
    }
    lock(conn).release_buffers();
    timer.start();
    loop {
        if let Some(next) = leaves(*drain.borrow()) {
            return next;
        }
        tokio::select! {
            biased;
            next = poll_fn(|cx| poll_head(conn, cx)) => return next,
            gone = &mut drained, if !drained.is_terminated() => if gone { return Next::Closed },
            () = timer.expired() => return Next::Closed,
        }
    }
}

fn poll_head(conn: &Conn, cx: &mut Context<'_>) -> Poll<Next> {
    let mut s = lock(conn);
    loop {
        if !s.buf.is_empty() {
            match head::parse(&mut s.buf) {
                Ok(Some(h)) => return Poll::Ready(Next::Head(h)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Next::Bad(e)),
            }
        }
        if s.eof {
            return Poll::Ready(Next::Closed);
        }
        match s.poll_fill(cx) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(Next::Closed),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The request's answer, or `None` when the client went away first (its body read, the
/// connection reached its end).
struct WhileConnected<'a, F> {
    conn: &'a Conn,
    answer: Pin<Box<F>>,
}

impl<F: Future<Output = Response<crate::body::Body>>> Future for WhileConnected<'_, F> {
    type Output = Option<Response<crate::body::Body>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(r) = self.answer.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        let mut s = lock(self.conn);
        if !s.framing.is_done() {
            s.body_waiter = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // Pipelined bytes wait in the buffer; past a head's worth, stop reading.
        while !s.eof && s.buf.len() <= head::MAX_HEAD {
            match s.poll_fill(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        if s.eof {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// Resolves once the server's ending is past `seen` (true: it is gone without draining).
/// A connection waits on one of these for its whole life, not on a new one for every
/// request.
async fn ending_past(mut drain: watch::Receiver<Ending>, seen: Ending) -> bool {
    while *drain.borrow_and_update() <= seen {
        if drain.changed().await.is_err() {
            return true;
        }
    }
    false
}

/// Reads what is left of an answered request's body (up to [`DRAIN_BODY`]), so the
/// connection can carry the next request; false when it cannot.
async fn finish_body(conn: &Conn, timeout: Duration) -> bool {
    {
        let s = lock(conn);
        if s.broken || s.continue_owed.is_some() {
            return false;
        }
        if s.framing.is_done() {
            return true;
        }
    }
    let mut budget = DRAIN_BODY;
    let drained = poll_fn(|cx| {
        let mut s = lock(conn);
        loop {
            match s.poll_body(cx) {
                Poll::Ready(Ok(Some(d))) if d.len() <= budget => budget -= d.len(),
                Poll::Ready(Ok(Some(_))) | Poll::Ready(Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(None)) => return Poll::Ready(true),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    tokio::time::timeout(timeout, drained)
        .await
        .unwrap_or(false)
}

/// Ends the connection: our side first, then, if the client may still be sending, what it
/// sends is read and dropped for a moment, so that the answer is not lost to a reset.
async fn close(conn: &Conn) {
    // A TLS close_notify may wait for a client that reads nothing: bounded too.
    let shutdown = poll_fn(|cx| Pin::new(&mut *lock(conn).io).poll_shutdown(cx));
    let _ = tokio::time::timeout(LINGER, shutdown).await;
    let clean = {
        let mut s = lock(conn);
        let clean = s.eof || (s.buf.is_empty() && s.framing.is_done() && !s.broken);
        s.buf = BytesMut::new();
        clean
    };
    if clean {
        return;
    }
    let mut left = LINGER_BYTES;
    let linger = poll_fn(|cx| {
        let mut s = lock(conn);
        loop {
            match s.poll_fill(cx) {
                Poll::Ready(Ok(n)) if n > 0 && n < left => {
                    left -= n;
                    s.buf.clear();
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// The head deadline, set lazily: the timer is moved only when it fires early, not for
/// every request.
struct HeadTimer {
    period: Duration,
    started: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HeadTimer {
    fn new(period: Duration) -> HeadTimer {
        HeadTimer {
            period,
            started: Instant::now(),
            sleep: None,
        }
    }

    /// A wait for a head begins.
    fn start(&mut self) {
        self.started = Instant::now();
    }

    /// Resolves once the current wait has lasted the whole period.
    async fn expired(&mut self) {
        let deadline = self.started + self.period;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            sleep.as_mut().await;
            if Instant::now() >= deadline {
                return;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

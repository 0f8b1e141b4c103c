//! The outbound HTTP/1.1 client: esb's own connections ([`conn`]: the request written by
//! the task that sends it, the response head parsed with httparse, the body read by
//! whoever forwards it, see [`response`]), kept in a pool of idle connections per backend
//! address and per data-plane worker thread (last in, first out, so the warmest one is
//! reused; a request only takes a connection its own thread drives, see
//! [`crate::workers`]). There is no connection task and no pool dispatcher. A connection
//! the backend closed is dropped at checkout; a request a pooled connection could not
//! carry (the backend closed it meanwhile) goes out on another one when it can be sent
//! again: its bytes were all written at once, and either nothing could be written or the
//! method is idempotent. Idle connections are closed after [`IDLE_TIMEOUT`]. A binary
//! upgrade takes the idle plain-TCP ones out ([`HttpClient::take_idle`]) and passes them to
//! the new process, whose pools take them in ([`HttpClient::adopt_idle`]).

pub mod conn;
pub mod response;

use crate::body::{Body, BoxError};
use crate::http1::spare;
use crate::http1::write::{self as wire, Framing, WriteError};
pub use conn::Fields;
use conn::{Conn, HeadError};
use http::header::{HeaderName, HeaderValue, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, Uri};
pub use response::BackendBody;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::net::TcpStream;

/// Idle connections older than this are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per backend address and thread; more are closed when they come
/// back.
const MAX_IDLE: usize = 1024;
/// Request bytes (head and body) written in one go, and kept to send again when a pooled
/// connection turns out closed.
const REQUEST_COALESCE: usize = 64 * 1024;

/// Why a backend request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("tcp connect error")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    #[error("invalid backend address {0}: it needs a host and an http or https scheme")]
    Address(Uri),
    #[error("sending the request failed")]
    Send(#[source] std::io::Error),
    #[error("the request body failed")]
    Body(#[source] BoxError),
    #[error("the backend closed the connection without answering")]
    Closed,
    #[error("reading the response failed")]
    Receive(#[source] std::io::Error),
    #[error("invalid response: {0}")]
    Response(String),
}

impl RequestError {
    /// Whether the request never reached the backend because no connection could be made
    /// (safe to send again elsewhere).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            RequestError::Connect(_) | RequestError::Tls(_) | RequestError::Address(_)
        )
    }
}

/// A pooled HTTP/1.1 client; cheap to clone (clones share the pools).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    connect_timeout: Duration,
    tls: OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    make_tls: MakeTls,
    pools: Mutex<HashMap<(bool, Authority), Arc<Pool>>>,
}

/// Makes a client's TLS setup (the trusted roots are read from disk).
pub type MakeTls = Box<dyn Fn() -> Result<Arc<rustls::ClientConfig>, String> + Send + Sync>;

/// A backend address of one client: the handle of its connection pool.
#[derive(Clone)]
pub struct Target(Arc<Pool>);

/// The idle connections to one backend address.
struct Pool {
    https: bool,
    /// `host:port` to connect to.
    connect_to: String,
    host: HeaderValue,
    server_name: rustls::pki_types::ServerName<'static>,
    /// Idle connections by worker thread ([`crate::workers`]), and a last list for every
    /// other thread: a request takes a connection its own thread drives.
    idle: Box<[Mutex<Vec<Idle>>]>,
    opened: AtomicU64,
    /// Connections taken over from the process a binary upgrade replaced.
    adopted: AtomicU64,
}

struct Idle {
    conn: Box<Conn>,
    since_ms: u64,
}

impl HttpClient {
    /// A client whose TLS setup `make_tls` makes when it is first needed ([`Self::tls`]): a
    /// configuration without `https://` addresses never reads the system's trusted roots,
    /// which is most of a new process's startup (an upgrade's new binary starts on the
    /// cores that serve).
    pub fn new(connect_timeout: Duration, make_tls: MakeTls) -> Self {
        HttpClient {
            inner: Arc::new(Inner {
                connect_timeout,
                tls: OnceLock::new(),
                make_tls,
                pools: Mutex::default(),
            }),
        }
    }

    /// The TLS setup for `https://` addresses, made on the first call. A deploy asks for
    /// it when it builds an endpoint with such an address, so that connecting never waits
    /// for it and a broken setup is the deploy's error.
    pub fn tls(&self) -> Result<&tokio_rustls::TlsConnector, String> {
        self.inner
            .tls
            .get_or_init(|| (self.inner.make_tls)().map(tokio_rustls::TlsConnector::from))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Connections opened so far to every address, and those taken over from the process
    /// a binary upgrade replaced.
    pub fn connections_opened(&self) -> (u64, u64) {
        let pools = self.inner.pools.lock().expect("pools");
        pools.values().fold((0, 0), |(o, a), p| {
            (o + p.opened.load(Relaxed), a + p.adopted.load(Relaxed))
        })
    }

    /// Takes every idle plain-TCP connection that is still usable out of the pools, with
    /// its address (`host:port`), for a binary upgrade to pass on.
    pub fn take_idle(&self) -> Vec<(String, Box<Conn>)> {
        let pools = self.inner.pools.lock().expect("pools");
        let mut taken = Vec::new();
        for ((https, authority), pool) in pools.iter() {
            if *https {
                continue;
            }
            for idle in &pool.idle {
                let list = std::mem::take(&mut *idle.lock().expect("pool"));
                taken.extend(
                    list.into_iter()
                        .filter_map(|mut i| i.conn.is_usable().then_some(i.conn))
                        .filter(|c| c.tcp_fd().is_some())
                        .map(|c| (authority.as_str().to_owned(), c)),
                );
            }
        }
        taken
    }

    /// The idle plain-TCP connection that went idle last on this thread's list of the pool
    /// with the most idle connections there, with its address: what a client connection
    /// passed on in a binary upgrade takes along.
    pub fn take_one_idle(&self) -> Option<(String, Box<Conn>)> {
        let pools = self.inner.pools.lock().expect("pools");
        let (_, authority, pool) = pools
            .iter()
            .filter(|((https, _), _)| !*https)
            .map(|((_, authority), pool)| {
                (pool.local().lock().expect("pool").len(), authority, pool)
            })
            .max_by_key(|(held, _, _)| *held)?;
        let mut list = pool.local().lock().expect("pool");
        while let Some(mut i) = list.pop() {
            if i.conn.is_usable() && i.conn.tcp_fd().is_some() {
                return Some((authority.as_str().to_owned(), i.conn));
            }
        }
        None
    }

    /// The most idle plain-TCP connections this thread's list of one pool holds.
    pub fn idle_here(&self) -> usize {
        let pools = self.inner.pools.lock().expect("pools");
        pools
            .iter()
            .filter(|((https, _), _)| !*https)
            .map(|(_, pool)| pool.local().lock().expect("pool").len())
            .max()
            .unwrap_or(0)
    }

    /// Makes `stream`, an idle connection to `address` (`host:port`) that the process a
    /// binary upgrade replaced passed on, an idle connection of this client, on the worker
    /// thread that has the fewest idle ones to that address.
    pub fn adopt_idle(&self, address: &str, stream: std::net::TcpStream) -> Result<(), String> {
        let uri: Uri = format!("http://{address}/")
            .parse()
            .map_err(|e| format!("backend address {address}: {e}"))?;
        let pool = self.pool(&uri).map_err(|e| e.to_string())?;
        let worker =
            (0..pool.idle.len() - 1).min_by_key(|&w| pool.idle[w].lock().expect("pool").len());
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("backend connection to {address}: {e}"))?;
        let stream = crate::workers::register(worker, stream)
            .map_err(|e| format!("backend connection to {address}: {e}"))?;
        let list = &pool.idle[worker.unwrap_or(pool.idle.len() - 1)];
        list.lock().expect("pool").push(Idle {
            conn: Box::new(Conn::tcp(stream)),
            since_ms: coarse_now_ms(),
        });
        pool.adopted.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Sends a request whose URI is absolute (`http://host:port/path`); it goes out in
    /// origin form with `Host` set to the address when the request has none.
    pub async fn request(
        &self,
        mut req: Request<Body>,
    ) -> Result<Response<BackendBody>, RequestError> {
        let target = self.target(req.uri())?;
        let pq = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(pq);
        self.send(&target, req).await
    }

    /// The pool of a backend address (`scheme://host:port`), for [`HttpClient::send`]:
    /// looked up once, kept by whoever sends to that address often.
    pub fn target(&self, uri: &Uri) -> Result<Target, RequestError> {
        self.pool(uri).map(Target)
    }

    /// Sends a request (URI in origin form: path and query) to a target of this client,
    /// with `Host` set to the target's address when the request has none.
    pub async fn send(
        &self,
        target: &Target,
        req: Request<Body>,
    ) -> Result<Response<BackendBody>, RequestError> {
        self.send_with(target, req, &[], Fields::Map).await
    }

    /// As [`HttpClient::send`], with `extra` header lines written after the request's own
    /// (`None` entries are skipped): headers added on the way out without touching the
    /// request's map; the response's fields handed on as `fields` says.
    pub async fn send_with(
        &self,
        target: &Target,
        req: Request<Body>,
        extra: &[Option<(&HeaderName, HeaderValue)>],
        fields: Fields,
    ) -> Result<Response<BackendBody>, RequestError> {
        let pool = &target.0;
        let host = (!req.headers().contains_key(HOST)).then_some(&pool.host);
        let framing = conn::request_framing(&req);
        let head_method = req.method() == Method::HEAD;
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut out = spare::take_out();
        conn::encode_head(&mut out, &req, framing, host, extra);
        let (parts, mut body) = req.into_parts();
        spare::put_map(parts.headers);
        let mut sent = 0;
        // A request whose body is already there goes out in one write, and can be sent again.
        let whole = framing == Framing::None
            || wire::take_ready(&mut body, &mut out, framing, &mut sent, REQUEST_COALESCE)
                .map_err(request_body)?;
        if whole {
            wire::end(&mut out, framing);
        }
        // The paths a usual request does not take (a new connection, a streamed body, an
        // answer to a request that could not be written) are boxed: this future is moved
        // into its caller's, so its size costs every request.
        let answered = loop {
            let (conn, reused) = match pool.checkout() {
                Some(c) => (c, true),
                None => (Box::pin(self.connect(pool)).await?, false),
            };
            if !whole {
                return Box::pin(send_streaming(conn, out, body, framing, sent, head_method)).await;
            }
            let mut exchange = Exchange {
                conn: Some(conn),
                pool: pool.clone(),
                head_method,
                sent: false,
            };
            let c = exchange.conn.as_mut().expect("just set");
            match (c.write(&out).await, framing) {
                // A pooled connection the backend had closed: nothing reached it.
                (Err(_), _) if reused => continue,
                // The backend may have answered (and closed) before it read everything.
                (Err(e), _) => {
                    break Box::pin(answered_anyway(exchange.conn.take(), e, head_method)).await
                }
                (Ok(()), Framing::Length(n)) if n != sent => break Err(length_mismatch(sent, n)),
                (Ok(()), _) => {}
            }
            exchange.sent = true;
            let head = c.read_head(head_method, fields).await;
            exchange.sent = false;
            let conn = exchange.conn.take().expect("still there");
            break match head {
                // The backend closed a pooled connection as the request went out.
                Err(HeadError::Closed) if reused && idempotent => continue,
                head => answer(conn, head, Some(pool)),
            };
        };
        out.clear();
        spare::put_out(out);
        answered
    }

    fn pool(&self, uri: &Uri) -> Result<Arc<Pool>, RequestError> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(RequestError::Address(uri.clone())),
        };
        let Some(authority) = uri.authority() else {
            return Err(RequestError::Address(uri.clone()));
        };
        let mut pools = self.inner.pools.lock().expect("pools");
        if let Some(p) = pools.get(&(https, authority.clone())) {
            return Ok(p.clone());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| RequestError::Address(uri.clone()))?;
        let pool = Arc::new(Pool {
            https,
            connect_to: if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            host: HeaderValue::from_str(authority.as_str())
                .map_err(|_| RequestError::Address(uri.clone()))?,
            server_name,
            idle: (0..=crate::workers::count())
                .map(|_| Mutex::default())
                .collect(),
            opened: AtomicU64::new(0),
            adopted: AtomicU64::new(0),
        });
        pools.insert((https, authority.clone()), pool.clone());
        spawn_reaper(Arc::downgrade(&pool));
        Ok(pool)
    }

    async fn connect(&self, pool: &Pool) -> Result<Box<Conn>, RequestError> {
        let timeout = self.inner.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&pool.connect_to)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(RequestError::Connect(e)),
            Err(_) => {
                return Err(RequestError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no connection within {}",
                        deployments::model::duration::format(&timeout)
                    ),
                )))
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)));
        pool.opened.fetch_add(1, Relaxed);
        if !pool.https {
            return Ok(Box::new(Conn::tcp(stream)));
        }
        let tls = self
            .tls()
            .map_err(|e| RequestError::Tls(std::io::Error::other(e)))?
            .connect(pool.server_name.clone(), stream)
            .await
            .map_err(RequestError::Tls)?;
        Ok(Box::new(Conn::new(Box::new(tls))))
    }
}

impl Pool {
    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Box<Conn>> {
        let now = coarse_now_ms();
        let mut idle = self.local().lock().expect("pool");
        while let Some(mut i) = idle.pop() {
            if now.saturating_sub(i.since_ms) <= idle_ms() && i.conn.is_usable() {
                return Some(i.conn);
            }
        }
        None
    }

    fn put_back(&self, mut conn: Box<Conn>) {
        conn.trim_buffer();
        let mut idle = self.local().lock().expect("pool");
        // The oldest entry is the least likely to be used again: drop it when the backend
        // closed it, so closed connections do not pile up under steady traffic.
        if idle.first_mut().is_some_and(|i| !i.conn.is_usable()) {
            idle.remove(0);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since_ms: coarse_now_ms(),
            });
        }
    }

    /// Closes idle connections past their time and forgets closed ones.
    fn reap(&self) {
        let now = coarse_now_ms();
        for idle in &self.idle {
            idle.lock()
                .expect("pool")
                .retain_mut(|i| now.saturating_sub(i.since_ms) <= idle_ms() && i.conn.is_usable());
        }
    }

    /// The idle connections of the calling thread.
    fn local(&self) -> &Mutex<Vec<Idle>> {
        let last = self.idle.len() - 1;
        &self.idle[crate::workers::current().map_or(last, |w| w.min(last))]
    }
}

fn idle_ms() -> u64 {
    IDLE_TIMEOUT.as_millis() as u64
}

/// One task per pool closes idle connections past their time; it ends with the pool.
fn spawn_reaper(pool: Weak<Pool>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let mut tick = tokio::time::interval(IDLE_TIMEOUT / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match pool.upgrade() {
                Some(p) => p.reap(),
                None => return,
            }
        }
    });
}

/// Milliseconds of a monotonic clock with a resolution of a few milliseconds — cheaper to
/// read than `Instant::now()`, and precise enough for idle timeouts.
pub fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Sends the rest of a request's body from one half of the connection while the
/// response is read from the other. When the answer comes first, the body goes on being
/// sent by a task of its own; the connection is not reused after either way.
async fn send_streaming(
    conn: Box<Conn>,
    mut out: Vec<u8>,
    mut body: Body,
    framing: Framing,
    mut sent: u64,
    head_method: bool,
) -> Result<Response<BackendBody>, RequestError> {
    let (mut conn, mut writer) = (*conn).split();
    let mut upload = Box::pin(async move {
        wire::stream(&mut writer, &mut out, &mut body, framing, &mut sent)
            .await
            .map_err(request_body)?;
        match framing {
            Framing::Length(n) if n != sent => Err(length_mismatch(sent, n)),
            _ => Ok(()),
        }
    });
    #[allow(clippy::large_enum_variant)] // one per streamed request, moved once
    enum First {
        Sent(Result<(), RequestError>),
        Answered(Result<conn::Head, HeadError>),
    }
    let first = tokio::select! {
        biased;
        h = conn.read_head(head_method, Fields::Map) => First::Answered(h),
        r = &mut upload => First::Sent(r),
    };
    let head = match first {
        // The backend may have answered (and closed) before it read everything.
        First::Sent(Err(RequestError::Send(e))) => {
            return answered_anyway(Some(conn), e, head_method).await
        }
        First::Sent(r) => {
            r?;
            conn.read_head(head_method, Fields::Map).await
        }
        First::Answered(h) => {
            tokio::spawn(async move {
                let _ = upload.await;
            });
            h
        }
    };
    answer(conn, head, None)
}

/// The answer a backend sent before the request could be written to its end, or the
/// error that writing met.
async fn answered_anyway(
    conn: Option<Box<Conn>>,
    error: std::io::Error,
    head_method: bool,
) -> Result<Response<BackendBody>, RequestError> {
    let Some(mut conn) = conn else {
        return Err(RequestError::Send(error));
    };
    match conn.read_head(head_method, Fields::Map).await {
        Ok(head) => answer(conn, Ok(head), None),
        Err(_) => Err(RequestError::Send(error)),
    }
}

/// The response on `conn`, whose connection goes back into `pool` when it allows.
fn answer(
    conn: Box<Conn>,
    head: Result<conn::Head, HeadError>,
    pool: Option<&Arc<Pool>>,
) -> Result<Response<BackendBody>, RequestError> {
    match head {
        Ok(head) => {
            let pool = pool.filter(|_| head.keep_alive).cloned();
            let body = BackendBody::new(conn, head.framing, pool).with_raw(head.raw);
            Ok(Response::from_parts(head.parts, body))
        }
        Err(HeadError::Closed) => Err(RequestError::Closed),
        Err(HeadError::Io(e)) => Err(RequestError::Receive(e)),
        Err(HeadError::Invalid(m)) => Err(RequestError::Response(m)),
    }
}

fn length_mismatch(sent: u64, declared: u64) -> RequestError {
    RequestError::Body(format!("request body of {sent} bytes, {declared} declared").into())
}

/// How a request's body failed to go out: the body itself (the client's, say), or the
/// connection.
fn request_body(e: WriteError) -> RequestError {
    match e {
        WriteError::Body(e) => RequestError::Body(e),
        WriteError::Io(e) => RequestError::Send(e),
    }
}

/// A request on its way. Dropped once the request went out and before the response
/// arrived (the client went away), it lets a task wait for the response and read its
/// body, so that the connection goes back into the pool instead of being closed.
struct Exchange {
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
    head_method: bool,
    /// The whole request went out: a response is owed.
    sent: bool,
}

/// How much of an abandoned response is read to save its connection, and for how long.
const DRAIN_BYTES: usize = 256 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

impl Drop for Exchange {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take().filter(|_| self.sent) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, head_method) = (self.pool.clone(), self.head_method);
        rt.spawn(async move {
            let drained = tokio::time::timeout(DRAIN_TIME, async move {
                let head = conn.read_head(head_method, Fields::Map).await.ok()?;
                let mut body =
                    BackendBody::new(conn, head.framing, head.keep_alive.then_some(pool));
                let mut read = 0;
                while let Some(frame) = http_body_util::BodyExt::frame(&mut body)
                    .await
                    .transpose()
                    .ok()?
                {
                    read += frame.data_ref().map_or(0, |d| d.len());
                    if read > DRAIN_BYTES {
                        return None;
                    }
                }
                Some(())
            });
            // Read to its end, the body has put the connection back; otherwise it closes.
            let _ = drained.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A keep-alive backend answering `ok` to every request; counts its connections.
    async fn backend() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    fn client() -> HttpClient {
        HttpClient::new(
            Duration::from_secs(1),
            Box::new(|| Err("no TLS here".into())),
        )
    }

    async fn get(client: &HttpClient, address: &str) -> String {
        let req = Request::get(format!("http://{address}/"))
            .body(crate::body::empty())
            .unwrap();
        let body = client.request(req).await.unwrap().into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn idle_connections_taken_out_serve_another_client_that_adopts_them() {
        let (address, accepted) = backend().await;
        let old = client();
        assert_eq!(get(&old, &address).await, "ok");
        let taken = old.take_idle();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, address);
        assert!(old.take_idle().is_empty(), "the pool gave it up");

        // Another process's client stands for the new one: the descriptor goes over (here
        // a duplicate), the old side's copy closes without a shutdown.
        let new = client();
        let fd = taken[0].1.tcp_fd().unwrap().try_clone_to_owned().unwrap();
        drop(taken);
        new.adopt_idle(&address, std::net::TcpStream::from(fd))
            .unwrap();
        for _ in 0..3 {
            assert_eq!(get(&new, &address).await, "ok");
        }
        assert_eq!(accepted.load(Relaxed), 1, "no new backend connection");
        assert_eq!(new.connections_opened(), (0, 1));
    }
}

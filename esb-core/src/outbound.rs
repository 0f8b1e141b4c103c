//! The outbound HTTP/1.1 client: connections made with `hyper::client::conn::http1` and
//! kept in a pool of idle connections per backend address and per data-plane worker thread
//! (last in, first out, so the warmest one is reused; a request only takes a connection
//! its own thread drives, see [`crate::workers`]). The request's own task checks a
//! connection out, sends on it and gets it back into the pool when the response body has
//! been read to its end: no pool dispatcher, no task per request. A connection the backend
//! closed is dropped at checkout; a request a pooled connection could not send (closed
//! meanwhile) goes out on another one. Idle connections are closed after [`IDLE_TIMEOUT`].

use crate::body::Body;
use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Idle connections older than this are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per backend address and thread; more are closed when they come
/// back.
const MAX_IDLE: usize = 1024;

/// Why a backend request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("tcp connect error")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    #[error("invalid backend address {0}: it needs a host and an http or https scheme")]
    Address(Uri),
    #[error(transparent)]
    Http(#[from] hyper::Error),
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
    tls: tokio_rustls::TlsConnector,
    pools: Mutex<HashMap<(bool, Authority), Arc<Pool>>>,
}

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
}

struct Idle {
    tx: SendRequest<Body>,
    since_ms: u64,
}

impl HttpClient {
    pub fn new(connect_timeout: Duration, tls: Arc<rustls::ClientConfig>) -> Self {
        HttpClient {
            inner: Arc::new(Inner {
                connect_timeout,
                tls: tokio_rustls::TlsConnector::from(tls),
                pools: Mutex::default(),
            }),
        }
    }

    /// Connections opened so far to every address (for tests and diagnostics).
    pub fn connections_opened(&self) -> u64 {
        let pools = self.inner.pools.lock().expect("pools");
        pools.values().map(|p| p.opened.load(Relaxed)).sum()
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
        mut req: Request<Body>,
    ) -> Result<Response<BackendBody>, RequestError> {
        let pool = &target.0;
        req.headers_mut()
            .entry(HOST)
            .or_insert_with(|| pool.host.clone());
        loop {
            let (mut tx, reused) = match pool.checkout().await {
                Some(tx) => (tx, true),
                None => (self.connect(pool).await?, false),
            };
            let mut exchange = Exchange {
                response: Some(Box::pin(tx.try_send_request(req))),
                conn: Some((tx, pool.clone())),
            };
            let answered = exchange.response.as_mut().expect("just set").as_mut().await;
            exchange.response = None;
            let (tx, _) = exchange.conn.take().expect("just set");
            match answered {
                Ok(resp) => {
                    return Ok(resp.map(|body| BackendBody {
                        inner: body,
                        conn: Some((tx, pool.clone())),
                    }))
                }
                Err(mut e) => match e.take_message() {
                    // A pooled connection closed before the request went out: another one.
                    Some(r) if reused => req = r,
                    _ => return Err(RequestError::Http(e.into_error())),
                },
            }
        }
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
        });
        pools.insert((https, authority.clone()), pool.clone());
        spawn_reaper(Arc::downgrade(&pool));
        Ok(pool)
    }

    async fn connect(&self, pool: &Pool) -> Result<SendRequest<Body>, RequestError> {
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
        let builder = hyper::client::conn::http1::Builder::new();
        if pool.https {
            let tls = self
                .inner
                .tls
                .connect(pool.server_name.clone(), stream)
                .await
                .map_err(RequestError::Tls)?;
            let (tx, conn) = builder.handshake(TokioIo::new(tls)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(tx)
        } else {
            let (tx, conn) = builder.handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(tx)
        }
    }
}

impl Pool {
    /// The most recently used idle connection that is still open and ready.
    async fn checkout(&self) -> Option<SendRequest<Body>> {
        loop {
            let idle = self.local().lock().expect("pool").pop()?;
            let mut tx = idle.tx;
            if tx.is_closed() || coarse_now_ms().saturating_sub(idle.since_ms) > idle_ms() {
                continue;
            }
            // Ready at once unless the connection is still finishing the last response.
            if tx.ready().await.is_ok() {
                return Some(tx);
            }
        }
    }

    fn put_back(&self, tx: SendRequest<Body>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.local().lock().expect("pool");
        // The oldest entry is the least likely to be used again: drop it when the backend
        // closed it, so closed connections do not pile up under steady traffic.
        if idle.first().is_some_and(|i| i.tx.is_closed()) {
            idle.remove(0);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                tx,
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
                .retain(|i| !i.tx.is_closed() && now.saturating_sub(i.since_ms) <= idle_ms());
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

type ResponseFuture = Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    Response<Incoming>,
                    hyper::client::conn::TrySendError<Request<Body>>,
                >,
            > + Send,
    >,
>;

/// A request on its way. Dropped before the response arrived (the client went away), it
/// lets a task wait for the response and read its body, so that the connection goes back
/// into the pool instead of being closed (hyper closes a connection whose response nobody
/// waits for).
struct Exchange {
    response: Option<ResponseFuture>,
    conn: Option<(SendRequest<Body>, Arc<Pool>)>,
}

/// How much of an abandoned response is read to save its connection, and for how long.
const DRAIN_BYTES: usize = 256 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

impl Drop for Exchange {
    fn drop(&mut self) {
        let (Some(response), Some(conn)) = (self.response.take(), self.conn.take()) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let drained = tokio::time::timeout(DRAIN_TIME, async move {
                let resp = response.await.ok()?;
                let mut body = BackendBody {
                    inner: resp.into_body(),
                    conn: Some(conn),
                };
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

/// A backend's response body; its connection goes back into the pool once the body has
/// been read to its end (a body dropped half-read closes the connection).
pub struct BackendBody {
    inner: Incoming,
    conn: Option<(SendRequest<Body>, Arc<Pool>)>,
}

impl BackendBody {
    fn release(&mut self) {
        if let Some((tx, pool)) = self.conn.take() {
            pool.put_back(tx);
        }
    }
}

impl hyper::body::Body for BackendBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for BackendBody {
    fn drop(&mut self) {
        if hyper::body::Body::is_end_stream(&self.inner) {
            self.release();
        }
    }
}

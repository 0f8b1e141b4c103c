//! Test backends: real HTTP/1.1 servers (hyper, optionally over TLS) on 127.0.0.1, each on
//! its own thread with its own runtime. A backend answers in one [`Mode`] after an optional
//! delay, tags every response with `x-backend: NAME`, and counts what it sees (requests,
//! requests in flight and their maximum, recorded request heads). [`Backend::stop`] closes
//! the port and every open connection (a dead backend); [`Backend::restart`] brings it
//! back on the same port with the same counters.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// What a backend answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The configured status, headers and body.
    Fixed,
    /// JSON: `backend`, `method`, `path`, `query`, `uri`, `headers` (lower-case names,
    /// repeated values joined by ", ") and `body` (text).
    Echo,
    /// Reads the body as a stream and answers JSON `{"backend", "bytes": N}`.
    CountBytes,
    /// Streams the request body back as the response body.
    StreamEcho,
    /// Reads the request head and closes the connection without answering.
    Abort,
}

/// The head of a request a backend received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    /// Set once the port is known, before any request can arrive.
    name: std::sync::OnceLock<String>,
    mode: Mode,
    status: StatusCode,
    body: Bytes,
    headers: Vec<(String, String)>,
    delay_ms: AtomicU64,
    hits: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

pub struct BackendBuilder {
    name: Option<String>,
    mode: Mode,
    status: u16,
    body: Bytes,
    headers: Vec<(String, String)>,
    delay: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl BackendBuilder {
    /// The name in `x-backend` and echo bodies (default `backend-PORT`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    /// A response header (every mode).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Wait this long before answering.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// Serve TLS with this certificate chain and key (PEM).
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some(crate::tls::server_config(cert_pem, key_pem));
        self
    }

    pub fn start(self) -> Backend {
        let shared = Arc::new(Shared {
            name: std::sync::OnceLock::new(),
            mode: self.mode,
            status: StatusCode::from_u16(self.status).expect("valid status"),
            body: self.body,
            headers: self.headers,
            delay_ms: AtomicU64::new(self.delay.as_millis() as u64),
            hits: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
            tls: self.tls.map(tokio_rustls::TlsAcceptor::from),
        });
        let running = Running::spawn(0, shared.clone()).expect("bind a backend on 127.0.0.1:0");
        let addr = running.addr;
        let _ = shared.name.set(
            self.name
                .unwrap_or_else(|| format!("backend-{}", addr.port())),
        );
        Backend {
            addr,
            shared,
            running: Some(running),
            placeholder: None,
        }
    }
}

/// A test backend; stopped on drop.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
    /// While stopped: a bound, non-listening socket keeping the port from other listeners.
    placeholder: Option<tokio::net::TcpSocket>,
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Binds 127.0.0.1:`port` (0 = any) on a new thread and serves until stopped.
    fn spawn(port: u16, shared: Arc<Shared>) -> std::io::Result<Running> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("backend-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("backend runtime");
                rt.block_on(async move {
                    let listener = match bind(port) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr());
                    serve(listener, shared, stop_rx).await;
                });
                // Dropping the runtime drops every connection task: open sockets close.
                drop(rt);
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("backend thread died"))??;
        Ok(Running {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let service = service_fn(move |req| handle(req, svc_shared.clone()));
            let builder = hyper::server::conn::http1::Builder::new();
            match &shared.tls {
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
            }
        });
    }
}

struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    fn name(&self) -> &str {
        self.name.get().map(String::as_str).unwrap_or("backend")
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Body>, BoxError> {
    shared.hits.fetch_add(1, SeqCst);
    let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, SeqCst);
    let guard = InFlight(shared.clone());
    let seen = Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    shared.seen.lock().expect("seen").push(seen.clone());
    let delay = shared.delay_ms.load(SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut resp = match shared.mode {
        Mode::Abort => return Err("aborting as configured".into()),
        Mode::Fixed => {
            let mut r = Response::new(full(shared.body.clone()));
            *r.status_mut() = shared.status;
            r
        }
        Mode::Echo => {
            let body = req.into_body().collect().await?.to_bytes();
            let mut headers = serde_json::Map::new();
            for (k, v) in &seen.headers {
                match headers.get_mut(k) {
                    Some(serde_json::Value::String(prev)) => {
                        prev.push_str(", ");
                        prev.push_str(v);
                    }
                    _ => {
                        headers.insert(k.clone(), v.clone().into());
                    }
                }
            }
            let uri: http::Uri = seen.uri.parse().unwrap_or_default();
            let v = json!({
                "backend": shared.name(),
                "method": seen.method,
                "path": uri.path(),
                "query": uri.query(),
                "uri": seen.uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            json_response(shared.status, &v)
        }
        Mode::CountBytes => {
            let mut body = req.into_body();
            let mut n: u64 = 0;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    n += data.len() as u64;
                }
            }
            json_response(
                shared.status,
                &json!({ "backend": shared.name(), "bytes": n }),
            )
        }
        Mode::StreamEcho => {
            let mut r = Response::new(req.into_body().map_err(BoxError::from).boxed());
            *r.status_mut() = shared.status;
            r
        }
    };
    for (k, v) in &shared.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    resp.headers_mut().insert(
        "x-backend",
        HeaderValue::from_str(shared.name()).expect("backend name is a header value"),
    );
    drop(guard);
    Ok(resp)
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(v).expect("json")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl Backend {
    pub fn builder(mode: Mode) -> BackendBuilder {
        BackendBuilder {
            name: None,
            mode,
            status: 200,
            body: Bytes::new(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            tls: None,
        }
    }

    /// Answers `status` with `body`.
    pub fn fixed(status: u16, body: &str) -> BackendBuilder {
        Self::builder(Mode::Fixed)
            .status(status)
            .body(body.to_owned())
    }

    pub fn echo() -> BackendBuilder {
        Self::builder(Mode::Echo)
    }

    pub fn count_bytes() -> BackendBuilder {
        Self::builder(Mode::CountBytes)
    }

    pub fn stream_echo() -> BackendBuilder {
        Self::builder(Mode::StreamEcho)
    }

    pub fn abort() -> BackendBuilder {
        Self::builder(Mode::Abort)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// `http://127.0.0.1:PORT` (or `https://` for a TLS backend).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Requests received (counted when the head arrives).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(SeqCst)
    }

    /// Connections the backend accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> u64 {
        self.shared.in_flight.load(SeqCst)
    }

    /// The most requests ever handled at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(SeqCst)
    }

    /// Heads of every request received, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen").clone()
    }

    pub fn last_seen(&self) -> Option<Seen> {
        self.shared.seen.lock().expect("seen").last().cloned()
    }

    pub fn set_delay(&self, d: Duration) {
        self.shared.delay_ms.store(d.as_millis() as u64, SeqCst);
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the port and every open connection, like a crashed backend.
    pub fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.stop();
            // Best effort: hold the port (refusing connections) until restart.
            self.placeholder = tokio::net::TcpSocket::new_v4()
                .and_then(|s| {
                    s.set_reuseaddr(true)?;
                    s.bind(self.addr)?;
                    Ok(s)
                })
                .ok();
        }
    }

    /// Serves again on the same port (retrying the bind for a few seconds).
    pub fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        self.placeholder = None;
        let port = self.addr.port();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Running::spawn(port, self.shared.clone()) {
                Ok(r) => {
                    self.running = Some(r);
                    return;
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot bind 127.0.0.1:{port} again: {e}"),
            }
        }
    }
}

//! Transports: the HTTP(S) listeners of the root config. Each accept loop can be paused
//! (stops accepting; clients wait in the backlog until resume), stopped (port released)
//! and started again. At `max_connections` open connections it stops accepting too, and
//! it backs off on accept errors ([`crate::accept`]). Heads must arrive within
//! `header_timeout`, bodies within `body_timeout`. Every request loads the routing
//! snapshot once and is served by the proxy it finds, on that revision, to the end.

use crate::accept::{Backoff, Gate};
use crate::body::{json_response, Body};
use crate::inbound::RequestBody;
use crate::metrics::Stats;
use crate::outbound::coarse_now_ms;
use crate::router::Lookup;
use deployments::root::{TransportDef, TransportKind};
use http::{Request, Response, StatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Counts a client connection as closed when dropped.
struct ClosedOnDrop(Arc<TransportRuntime>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.conns.closed.fetch_add(1, Relaxed);
    }
}

/// A TLS handshake under way: the client connection once it is done.
type Handshake<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<Box<dyn crate::inbound::Io>>> + Send + 'a>,
>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportState {
    Started,
    Paused,
    Stopped,
}

impl TransportState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportState::Started => "Started",
            TransportState::Paused => "Paused",
            TransportState::Stopped => "Stopped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport \"{name}\": cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("transport \"{name}\": {message}")]
    Tls { name: String, message: String },
}

pub struct TransportRuntime {
    pub name: String,
    pub kind: TransportKind,
    /// The bind address as the root config names it (the key a restart hands it over by).
    pub configured: SocketAddr,
    pub bind: SocketAddr,
    /// Since when (ms, [`coarse_now_ms`]; 0: never) this generation hands its clients over
    /// to the next one (warm restart, binary upgrade): see [`Self::start_handover`].
    handing_over_since: std::sync::atomic::AtomicU64,
    /// Where a binary upgrade passes this transport's connections ([`Self::hand_over_to`]).
    successor: std::sync::OnceLock<Arc<crate::handoff::Successor>>,
    pub stats: Stats,
    pub conns: crate::metrics::ConnCounts,
    state: watch::Sender<TransportState>,
    listener: Mutex<Option<TcpListener>>,
    /// The listening socket's descriptor while there is one (-1 when stopped), for a binary
    /// upgrade to pass a duplicate of it on whatever the accept loop is doing.
    fd: std::sync::atomic::AtomicI32,
    /// Signalled when a stop has closed the listener.
    closed: tokio::sync::Notify,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The connection cap (`max_connections`).
    pub gate: Gate,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

fn load_tls(
    def: &TransportDef,
    base: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let read = |what: &str, p: &Option<deployments::Spanned<String>>| -> Result<Vec<u8>, String> {
        let p = p
            .as_ref()
            .ok_or_else(|| format!("https transport needs `{what}` (a PEM file path)"))?;
        let path = base.join(p.get_ref());
        std::fs::read(&path).map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))
    };
    let cert_pem = read("cert", &def.cert)?;
    let key_pem = read("key", &def.key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(|c| c.ok())
        .collect();
    if certs.is_empty() {
        return Err("cert file holds no PEM certificate".into());
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("cannot parse key file: {e}"))?
        .ok_or("key file holds no PEM private key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("certificate and key do not match or are invalid: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl TransportRuntime {
    /// Binds the listener (so bind errors surface at start-up) and loads TLS material.
    /// `default_cap` is the connection cap when `max_connections` is not set.
    pub async fn bind(
        def: &TransportDef,
        base: &std::path::Path,
        default_cap: u64,
        pool: &mut crate::listeners::ListenerPool,
    ) -> Result<Arc<Self>, TransportError> {
        let name = def.name.get_ref().clone();
        let tls = match def.kind {
            TransportKind::Https => {
                Some(load_tls(def, base).map_err(|message| TransportError::Tls {
                    name: name.clone(),
                    message,
                })?)
            }
            TransportKind::Http | TransportKind::Amqp => None,
        };
        let addr = def.bind_addr();
        let listener = pool
            .take_or_bind(addr)
            .map_err(|source| TransportError::Bind {
                name: name.clone(),
                addr,
                source,
            })?;
        let bind = listener.local_addr().unwrap_or(addr);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        Ok(Arc::new(TransportRuntime {
            name,
            kind: def.kind,
            configured: addr,
            handing_over_since: std::sync::atomic::AtomicU64::new(0),
            successor: std::sync::OnceLock::new(),
            bind,
            stats: Stats::default(),
            conns: Default::default(),
            state: watch::channel(TransportState::Started).0,
            listener: Mutex::new(Some(listener)),
            fd: std::sync::atomic::AtomicI32::new(fd),
            closed: tokio::sync::Notify::new(),
            tls,
            gate: Gate::new(
                def.max_connections
                    .as_ref()
                    .map_or(default_cap, |m| *m.get_ref()),
            ),
            header_timeout: *def.header_timeout.get_ref(),
            body_timeout: *def.body_timeout.get_ref(),
        }))
    }

    pub fn state(&self) -> TransportState {
        *self.state.borrow()
    }

    pub fn pause(&self) -> Result<(), String> {
        match self.state() {
            TransportState::Stopped => Err(format!(
                "transport \"{}\" is stopped; start it instead",
                self.name
            )),
            _ => {
                self.state.send_replace(TransportState::Paused);
                Ok(())
            }
        }
    }

    pub fn resume(&self) -> Result<(), String> {
        match self.state() {
            TransportState::Stopped => Err(format!(
                "transport \"{}\" is stopped; start it instead",
                self.name
            )),
            _ => {
                self.state.send_replace(TransportState::Started);
                Ok(())
            }
        }
    }

    /// Stops accepting and releases the port; returns once the listener is closed, so a
    /// `start` right after binds again.
    pub async fn stop(&self) {
        if self.state() == TransportState::Stopped {
            return;
        }
        let closed = self.closed.notified();
        self.state.send_replace(TransportState::Stopped);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), closed).await;
    }

    /// Binds the port again after a stop.
    pub async fn start(&self) -> Result<(), String> {
        if self.state() != TransportState::Stopped {
            return self.resume();
        }
        let listener = crate::accept::listen(self.bind).map_err(|e| {
            format!(
                "transport \"{}\": cannot bind {}: {e}",
                self.name, self.bind
            )
        })?;
        self.fd.store(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            std::sync::atomic::Ordering::Relaxed,
        );
        *self.listener.lock().expect("listener") = Some(listener);
        self.state.send_replace(TransportState::Started);
        Ok(())
    }

    /// Gives the listening socket to the next generation (after the accept loop ended).
    pub fn hand_over(&self, pool: &mut crate::listeners::ListenerPool) {
        self.fd.store(-1, std::sync::atomic::Ordering::Relaxed);
        if let Some(l) = self.listener.lock().expect("listener").take() {
            pool.put(self.configured, l);
        }
    }

    /// Closes the listening socket (shutdown): the port is free at once, whatever
    /// keep-alive connections still hold this runtime.
    pub fn release(&self) {
        self.fd.store(-1, std::sync::atomic::Ordering::Relaxed);
        self.listener.lock().expect("listener").take();
    }

    /// A duplicate of the listening socket (binary upgrade), if there is one.
    pub fn dup_socket(&self) -> Option<std::os::fd::OwnedFd> {
        let fd = self.fd.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the descriptor is this runtime's listening socket, open while fd >= 0;
        // dup(2) makes an independent copy.
        (fd >= 0)
            .then(|| {
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .ok()
            })
            .flatten()
    }

    /// The accept loop; returns when `shutdown` fires.
    pub async fn run(
        self: Arc<Self>,
        engine: Arc<crate::engine::Engine>,
        drain: Arc<crate::inbound::Drain>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut state_rx = self.state.subscribe();
        let mut backoff = Backoff::default();
        loop {
            if *shutdown.borrow() {
                // The listener stays: the server hands it to its next generation or
                // releases it (`hand_over`, `release`).
                return;
            }
            let state = *state_rx.borrow_and_update();
            if state != TransportState::Started {
                if state == TransportState::Stopped
                    && self.listener.lock().expect("listener").take().is_some()
                {
                    self.fd.store(-1, std::sync::atomic::Ordering::Relaxed);
                    self.closed.notify_waiters();
                }
                tokio::select! {
                    _ = state_rx.changed() => continue,
                    _ = shutdown.changed() => continue,
                }
            }
            // At the cap, stop accepting: new connections wait in the listen backlog.
            let permit = tokio::select! {
                p = self.gate.admit() => p,
                _ = state_rx.changed() => continue,
                _ = shutdown.changed() => continue,
            };
            let listener = self.listener.lock().expect("listener").take();
            let Some(listener) = listener else {
                // Started without a listener cannot happen; avoid a busy loop regardless.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let accepted = tokio::select! {
                r = listener.accept() => Some(r),
                _ = state_rx.changed() => None,
                _ = shutdown.changed() => None,
            };
            *self.listener.lock().expect("listener") = Some(listener);
            let Some(accepted) = accepted else { continue };
            let (stream, peer) = match accepted {
                Ok(x) => {
                    backoff.success();
                    x
                }
                Err(e) => {
                    self.conns.refused.fetch_add(1, Relaxed);
                    backoff.failed(&self.name, &e).await;
                    continue;
                }
            };
            self.conns.accepted.fetch_add(1, Relaxed);
            self.clone()
                .serve_connection(stream, peer, permit, engine.clone(), drain.watcher());
        }
    }

    /// Serves a client connection on a worker, holding `permit` until it closes.
    fn serve_connection(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
        engine: Arc<crate::engine::Engine>,
        watcher: watch::Receiver<crate::inbound::Ending>,
    ) {
        let _ = stream.set_nodelay(true);
        let scheme: &'static str = if self.tls.is_some() { "https" } else { "http" };
        // Counted closed however the connection ends, also when it never got to a worker.
        let closed = ClosedOnDrop(self.clone());
        let me = self;
        let fut = move |stream: tokio::net::TcpStream| async move {
            let _permit = permit;
            let _closed = closed;
            // The request's future is `serve`'s own, not one wrapped around it.
            let handler = |req| me.clone().serve(req, engine.clone(), peer, scheme);
            // Only a plain connection can be passed on: its socket is all there is of it.
            let fd = me
                .tls
                .is_none()
                .then(|| std::os::fd::AsRawFd::as_raw_fd(&stream));
            let hand_off = || me.hand_off(fd, engine.clients());
            let io: Box<dyn crate::inbound::Io> = match &me.tls {
                None => Box::new(stream),
                Some(acceptor) => match me.handshake(acceptor, stream).await {
                    Some(tls) => tls,
                    None => return,
                },
            };
            crate::inbound::serve(io, me.header_timeout, watcher, handler, hand_off).await;
        };
        crate::workers::spawn(stream, fut);
    }

    /// Serves a client connection the process a binary upgrade replaced has passed on
    /// ([`crate::handoff`]), once the connection cap lets it in; refused (the connection
    /// closed) while the transport is stopped.
    pub async fn adopt(
        self: Arc<Self>,
        stream: std::net::TcpStream,
        engine: Arc<crate::engine::Engine>,
        drain: &crate::inbound::Drain,
    ) -> std::io::Result<()> {
        if self.state() == TransportState::Stopped {
            return Err(std::io::Error::other(format!(
                "transport \"{}\" is stopped",
                self.name
            )));
        }
        stream.set_nonblocking(true)?;
        let peer = stream.peer_addr()?;
        let stream = tokio::net::TcpStream::from_std(stream)?;
        let permit = self.gate.admit().await;
        self.conns.adopted.fetch_add(1, Relaxed);
        self.serve_connection(stream, peer, permit, engine, drain.watcher());
        Ok(())
    }

    /// Passes the connection with socket `fd` (`None`: one that cannot be) on to the new
    /// process; when that cannot be done, this transport's connections are told to close
    /// after an exchange from now on.
    async fn hand_off(
        &self,
        fd: Option<std::os::fd::RawFd>,
        clients: &crate::client::Clients,
    ) -> bool {
        if let (Some(fd), Some(next)) = (fd, self.successor.get()) {
            // SAFETY: the connection's socket, open while its `serve` runs, which awaits
            // this.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            if next.pass(self.configured, fd, clients).await {
                self.conns.handed_over.fetch_add(1, Relaxed);
                return true;
            }
        }
        self.start_handover();
        false
    }

    /// This generation stops serving (warm restart, binary upgrade): from now on its
    /// connections are told to close (`Connection: close`) after an exchange, so that
    /// keep-alive clients move to the next generation's listener after a complete
    /// exchange instead of being cut off. Each connection's turn comes at its own point
    /// within [`HANDOVER_SPREAD_MS`], so that the clients reconnect (and the next
    /// generation opens its backend connections) spread out, not all within one exchange.
    pub fn start_handover(&self) {
        let _ =
            self.handing_over_since
                .compare_exchange(0, coarse_now_ms().max(1), Relaxed, Relaxed);
    }

    /// A binary upgrade: this generation's connections are passed on to the new process
    /// (`next`; `None`: it cannot take them) where they can be, else handed over as in
    /// [`Self::start_handover`].
    pub fn hand_over_to(&self, next: Option<&Arc<crate::handoff::Successor>>) {
        match next {
            Some(next) if self.tls.is_none() => {
                let _ = self.successor.set(next.clone());
            }
            _ => self.start_handover(),
        }
    }

    fn closes_for_handover(&self, peer: SocketAddr) -> bool {
        let since = self.handing_over_since.load(Relaxed);
        since != 0 && coarse_now_ms().saturating_sub(since) >= handover_turn_ms(peer)
    }

    /// The TLS handshake, which is part of the head: bounded by `header_timeout`, so a
    /// silent client cannot hold a connection slot. Boxed, so that a connection's task
    /// does not keep the handshake's room once it is done.
    fn handshake(
        &self,
        acceptor: &tokio_rustls::TlsAcceptor,
        stream: tokio::net::TcpStream,
    ) -> Handshake<'_> {
        let accept = acceptor.accept(stream);
        Box::pin(async move {
            match tokio::time::timeout(self.header_timeout, accept).await {
                Ok(Ok(tls)) => Some(Box::new(tls) as Box<dyn crate::inbound::Io>),
                Ok(Err(e)) => {
                    self.conns.refused.fetch_add(1, Relaxed);
                    tracing::debug!(transport = %self.name, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    self.conns.refused.fetch_add(1, Relaxed);
                    tracing::debug!(transport = %self.name, "TLS handshake timed out");
                    None
                }
            }
        })
    }

    async fn serve(
        self: Arc<Self>,
        req: Request<RequestBody>,
        engine: Arc<crate::engine::Engine>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Response<Body> {
        let guard = self.stats.begin();
        let found = engine
            .table
            .load()
            .lookup(&self.name, req.method(), req.uri().path());
        let resp = match found {
            // Without a canary, straight to the answer: one level less for the request's
            // future to be moved (and copied) through.
            Lookup::Found(proxy) if proxy.canary.load().is_none() => {
                proxy
                    .answer(req, peer, scheme, self.body_timeout, guard.started())
                    .await
            }
            Lookup::Found(proxy) => {
                Box::pin(proxy.handle(req, peer, scheme, self.body_timeout, guard.started())).await
            }
            Lookup::MethodNotAllowed(methods) => {
                let allow: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                let mut r = json_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &json!({ "error": "method not allowed", "status": 405, "method": req.method().as_str(), "path": req.uri().path(), "allow": allow }),
                );
                if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
                    r.headers_mut().insert(http::header::ALLOW, v);
                }
                r
            }
            Lookup::NotFound => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "no proxy service matches", "status": 404, "transport": self.name, "method": req.method().as_str(), "path": req.uri().path() }),
            ),
        };
        guard.finish(resp.status().is_server_error());
        let mut resp = resp;
        if self.closes_for_handover(peer) {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// Over how many milliseconds a handing-over transport's connections are told to close.
pub const HANDOVER_SPREAD_MS: u64 = 200;

/// When, within [`HANDOVER_SPREAD_MS`] of a handover's start, the connection of client
/// `peer` closes: by its port, so that a client's consecutive ports (and connections) are
/// spread over the whole window.
fn handover_turn_ms(peer: SocketAddr) -> u64 {
    u64::from(peer.port()) * 7919 % HANDOVER_SPREAD_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handover_spreads_consecutive_client_ports_over_its_window() {
        let turns: Vec<u64> = (40_000..40_050)
            .map(|port| handover_turn_ms(SocketAddr::from(([127, 0, 0, 1], port))))
            .collect();
        assert!(turns.iter().all(|&t| t < HANDOVER_SPREAD_MS));
        // Every fifth of the window gets some of 50 consecutive ports, none gets most.
        let mut fifths = [0; 5];
        for t in &turns {
            fifths[(t * 5 / HANDOVER_SPREAD_MS) as usize] += 1;
        }
        assert!(fifths.iter().all(|&n| (5..=15).contains(&n)), "{fifths:?}");
    }
}

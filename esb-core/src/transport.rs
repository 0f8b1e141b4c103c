//! Transports: the HTTP(S) listeners of the root config. Each accept loop can be paused
//! (stops accepting; clients wait in the backlog until resume), stopped (port released)
//! and started again. Every request loads the routing snapshot once and is served by the
//! proxy it finds, on that revision, to the end.

use crate::body::{json_response, Body};
use crate::metrics::Stats;
use crate::router::Lookup;
use deployments::root::{TransportDef, TransportKind};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    pub bind: SocketAddr,
    pub stats: Stats,
    state: watch::Sender<TransportState>,
    listener: Mutex<Option<TcpListener>>,
    /// Signalled when a stop has closed the listener.
    closed: tokio::sync::Notify,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
    pub async fn bind(
        def: &TransportDef,
        base: &std::path::Path,
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
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Bind {
                name: name.clone(),
                addr,
                source,
            })?;
        let bind = listener.local_addr().unwrap_or(addr);
        Ok(Arc::new(TransportRuntime {
            name,
            kind: def.kind,
            bind,
            stats: Stats::default(),
            state: watch::channel(TransportState::Started).0,
            listener: Mutex::new(Some(listener)),
            closed: tokio::sync::Notify::new(),
            tls,
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
        let listener = TcpListener::bind(self.bind).await.map_err(|e| {
            format!(
                "transport \"{}\": cannot bind {}: {e}",
                self.name, self.bind
            )
        })?;
        *self.listener.lock().expect("listener") = Some(listener);
        self.state.send_replace(TransportState::Started);
        Ok(())
    }

    /// The accept loop; returns when `shutdown` fires.
    pub async fn run(
        self: Arc<Self>,
        engine: Arc<crate::engine::Engine>,
        graceful: Arc<GracefulShutdown>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut state_rx = self.state.subscribe();
        let scheme: &'static str = if self.tls.is_some() { "https" } else { "http" };
        loop {
            if *shutdown.borrow() {
                // Release the port now: keep-alive connections may hold this runtime longer.
                self.listener.lock().expect("listener").take();
                return;
            }
            let state = *state_rx.borrow_and_update();
            if state != TransportState::Started {
                if state == TransportState::Stopped
                    && self.listener.lock().expect("listener").take().is_some()
                {
                    self.closed.notify_waiters();
                }
                tokio::select! {
                    _ = state_rx.changed() => continue,
                    _ = shutdown.changed() => continue,
                }
            }
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
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(transport = %self.name, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            let engine = engine.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let svc_me = me.clone();
                let service = service_fn(move |req| {
                    let me = svc_me.clone();
                    let engine = engine.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(me.serve(req, engine, peer, scheme).await)
                    }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(30));
                match &me.tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let conn = builder.serve_connection(TokioIo::new(tls), service);
                            let _ = watcher.watch(conn).await;
                        }
                        Err(e) => {
                            tracing::debug!(transport = %me.name, "TLS handshake failed: {e}")
                        }
                    },
                }
            });
        }
    }

    async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
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
            Lookup::Found(proxy) => proxy.handle(req, peer, scheme).await,
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
        resp
    }
}

//! The management endpoint: `/jolokia` (Jolokia protocol over the beans), `/events`
//! (server-sent events, resumable), `/metrics` (Prometheus) and `/health`. Every request but
//! `/health` authenticates; state changes need the control role and POST (GET only with the
//! loopback-only `allow_get_changes`); foreign `Origin`/`Host` are refused, `allowed_origins`
//! get CORS headers and answered preflights; bodies are bounded; every state change is
//! audited, and refused when it cannot be (fail closed); refused attempts are audited too
//! (rate-limited). Here: the listener, authentication and routing to the resources;
//! `requests` serves `/jolokia` over HTTP, `jolokia` answers its requests against the
//! `beans`, `stream` serves `/events` and `/tap`, `restart` is the warm restart.

pub mod beans;
mod cors;
mod jolokia;
mod prometheus;
mod requests;
mod restart;
mod stream;

pub use restart::restart;

use crate::audit::Refusal;
use crate::auth::{self, Role, Tokens};
use crate::body::{full, json_response, Body};
use crate::server::Server;
use bytes::Bytes;
use deployments::protocol::outcome::RestartOutcome;
use deployments::protocol::{parse_get_request, parse_post_body_each, Response as JResponse};
use futures_util::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Mgmt {
    server: Arc<Server>,
    tokens: Tokens,
    bind: SocketAddr,
}

/// Serves the management listener (bound at start-up) in the background. The task ends on
/// shutdown and gives the listener back, for the next generation of a warm restart.
pub async fn spawn(
    server: Arc<Server>,
) -> Result<Option<tokio::task::JoinHandle<Option<TcpListener>>>, String> {
    let cfg = &server.engine.root.management;
    if !cfg.enabled {
        return Ok(None);
    }
    let tokens = server
        .tokens
        .clone()
        .ok_or("the tokens were not loaded at start-up")?;
    let listener = server
        .take_mgmt_listener()
        .ok_or("the management listener was not bound at start-up")?;
    let addr = *cfg.bind.get_ref();
    let bind = listener.local_addr().unwrap_or(addr);
    let mgmt = Arc::new(Mgmt {
        server,
        tokens,
        bind,
    });
    // Summaries of suppressed refused-attempt records are written once their second is over.
    let audit = mgmt.server.audit.clone();
    let mut flush_stop = mgmt.server.subscribe_shutdown();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => audit.flush_suppressed(),
                _ = flush_stop.changed() => return audit.flush_suppressed(),
            }
        }
    });
    let mut stop = mgmt.server.subscribe_shutdown();
    // Its own connection cap, apart from the transports': a flood of the data plane
    // cannot lock the operator out. At the cap new connections wait in the backlog.
    let gate =
        crate::accept::Gate::new(*mgmt.server.engine.root.management.max_connections.get_ref());
    let handle = tokio::spawn(async move {
        let mut backoff = crate::accept::Backoff::default();
        loop {
            let accepted = tokio::select! {
                a = async {
                    let permit = gate.admit().await;
                    listener.accept().await.map(|a| (a, permit))
                } => Some(a),
                _ = stop.changed() => None,
            };
            // Shutdown or warm restart: the listener goes back to the server.
            let Some(accepted) = accepted else { break };
            let ((stream, peer), permit) = match accepted {
                Ok(a) => {
                    backoff.success();
                    a
                }
                Err(e) => {
                    backoff.failed("management", &e).await;
                    continue;
                }
            };
            let mgmt = mgmt.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let svc = service_fn(move |req| {
                    let mgmt = mgmt.clone();
                    async move {
                        let mut r = mgmt.clone().handle(req, peer).await;
                        // A generation that stopped serving closes its connections after
                        // each answer: clients reconnect to the next one.
                        if mgmt
                            .server
                            .mgmt_draining
                            .load(std::sync::atomic::Ordering::Relaxed)
                        {
                            r.headers_mut().insert(
                                http::header::CONNECTION,
                                HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
        Some(listener)
    });
    Ok(Some(handle))
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({ "error": message, "status": status.as_u16() }),
    )
}

impl Mgmt {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let path = req.uri().path().to_owned();
        if path == "/health" {
            return self.health();
        }
        let cfg = &self.server.engine.root.management;
        let cors_origin = cors::allowed_origin(req.headers(), &cfg.allowed_origins);
        // Preflights carry no credentials: answered before authentication, with the CORS
        // headers only for an allowed origin.
        if req.method() == Method::OPTIONS {
            return cors::preflight(req.headers(), cors_origin.as_deref());
        }
        let mut r = self.clone().handle_authenticated(req, peer, &path).await;
        cors::decorate(r.headers_mut(), cors_origin.as_deref());
        r
    }

    async fn handle_authenticated(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        path: &str,
    ) -> Response<Body> {
        let cfg = &self.server.engine.root.management;
        if let Err(refused) = auth::check_origin(
            req.headers(),
            self.bind,
            &cfg.allowed_origins,
            cfg.allow_remote,
        ) {
            let reason = refused.to_string();
            self.refused(
                &req,
                peer,
                Refusal::from(&refused),
                StatusCode::FORBIDDEN,
                &reason,
            );
            return error(StatusCode::FORBIDDEN, &reason);
        }
        let Some(role) = self.tokens.authenticate(req.headers()) else {
            const MESSAGE: &str = "authentication required: send `Authorization: Bearer <token>` (control.token or monitor.token in the state directory) or Basic credentials (user control|monitor, the token as password)";
            let why = if req.headers().contains_key(http::header::AUTHORIZATION) {
                "invalid credentials"
            } else {
                "no credentials"
            };
            self.refused(
                &req,
                peer,
                Refusal::Unauthenticated,
                StatusCode::UNAUTHORIZED,
                why,
            );
            let mut r = error(StatusCode::UNAUTHORIZED, MESSAGE);
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"esb\""),
            );
            return r;
        };
        if path == "/jolokia" || path.starts_with("/jolokia/") {
            return self.jolokia(req, role, peer).await;
        }
        match (req.method(), path) {
            (&Method::GET, "/events") => self.events(&req),
            (&Method::GET, "/tap") => self.tap(&req).await,
            (&Method::GET, "/metrics") => {
                let mut r = Response::new(full(prometheus::render(&self.server).await));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            (_, "/events" | "/metrics" | "/tap") => {
                error(StatusCode::METHOD_NOT_ALLOWED, "use GET")
            }
            _ => error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no management resource at {path}; try /jolokia, /events, /metrics, /tap or /health"
                ),
            ),
        }
    }

    /// Audits (and logs) a request refused before it was looked at. The record says what
    /// was attempted by method, path and size only: an unauthenticated body is not parsed,
    /// credentials are never recorded, and what the client chose (path, headers) is cut to
    /// [`CLIP`] characters so a flood cannot grow the log by much more than the rate limit.
    fn refused(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
        reason: Refusal,
        status: StatusCode,
        error: &str,
    ) {
        let header = |h: http::header::HeaderName| {
            req.headers()
                .get(h)
                .map(|v| Value::String(clip(&String::from_utf8_lossy(v.as_bytes()))))
        };
        let mut what = json!({
            "method": clip(req.method().as_str()),
            "path": clip(req.uri().path()),
        });
        for (key, h) in [
            ("host", http::header::HOST),
            ("origin", http::header::ORIGIN),
            ("content_length", http::header::CONTENT_LENGTH),
        ] {
            if let Some(v) = header(h) {
                what[key] = v;
            }
        }
        let who = self.tokens.authenticate(req.headers());
        self.server
            .audit
            .refused(reason, status.as_u16(), who, peer, what, &clip(error));
    }

    fn health(&self) -> Response<Body> {
        if self
            .server
            .maintenance
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "maintenance"}),
            )
        } else {
            json_response(StatusCode::OK, &json!({"status": "up"}))
        }
    }
}

/// Longest client-chosen text kept in a refused-attempt record.
const CLIP: usize = 256;

fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

//! The management endpoint: `/jolokia` (Jolokia protocol over the beans), `/events`
//! (server-sent events, resumable), `/metrics` (Prometheus) and `/health`. Every request but
//! `/health` authenticates; state changes need the control role and POST (GET only with the
//! loopback-only `allow_get_changes`); foreign `Origin`/`Host` are refused, `allowed_origins`
//! get CORS headers and answered preflights; bodies are bounded; every state change is
//! audited, and refused when it cannot be (fail closed); refused attempts are audited too
//! (rate-limited).

pub mod beans;
mod cors;
mod jolokia;
mod prometheus;

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

/// A Jolokia answer; `mime` is the `mimeType` processing parameter (JSON by default).
fn envelope(
    value: &impl serde::Serialize,
    status: StatusCode,
    mime: Option<&'static str>,
) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(value).expect("json")));
    *r.status_mut() = status;
    let content_type = match mime {
        Some("text/plain") => "text/plain; charset=utf-8",
        _ => "application/json",
    };
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// `mimeType` from the query string of a POST (it applies to the whole answer).
fn query_mime(query: Option<&str>) -> Option<&'static str> {
    deployments::protocol::parse_query(query?)
        .ok()
        .and_then(|c| c.mime_type())
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

    async fn jolokia(
        &self,
        req: Request<Incoming>,
        role: Role,
        peer: SocketAddr,
    ) -> Response<Body> {
        let limit = self.server.engine.root.management.max_body;
        match *req.method() {
            Method::GET => {
                let rest = req.uri().path().strip_prefix("/jolokia").unwrap_or("");
                let parsed = parse_get_request(rest, req.uri().query());
                let mime = parsed
                    .as_ref()
                    .ok()
                    .and_then(|r| r.config())
                    .and_then(|c| c.mime_type());
                let allow_get = *self
                    .server
                    .engine
                    .root
                    .management
                    .allow_get_changes
                    .get_ref();
                match parsed {
                    // Refused inside a 200 envelope: jolokia.js drops the body of a non-200.
                    Ok(r) => match jolokia::refuse_change_over_get(&r, allow_get) {
                        Some(refused) => {
                            if beans::changes_state(&r) {
                                self.server
                                    .audit
                                    .request(role, peer, &r, &refused, None, None);
                            }
                            envelope(&refused, StatusCode::OK, mime)
                        }
                        None => {
                            let answer = self.answer_one(&r, role, peer).await;
                            envelope(&answer, http_status(&answer), mime)
                        }
                    },
                    Err(e) => {
                        let resp = JResponse::from_error(Value::Null, &e);
                        envelope(&resp, http_status(&resp), mime)
                    }
                }
            }
            Method::POST => {
                let req_query = req.uri().query().map(str::to_owned);
                if req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n > limit)
                {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("request body larger than {limit} bytes ([management] max_body)"),
                    );
                }
                let body = match read_limited(req.into_body(), limit).await {
                    Ok(b) => b,
                    Err(status) => {
                        return error(
                            status,
                            &format!(
                                "request body larger than {limit} bytes ([management] max_body)"
                            ),
                        )
                    }
                };
                let mut mime = query_mime(req_query.as_deref());
                let items = match parse_post_body_each(&body) {
                    Ok(items) => items,
                    Err(e) => {
                        let r = JResponse::from_error(Value::Null, &e);
                        return envelope(&r, StatusCode::OK, mime);
                    }
                };
                let mut responses = Vec::new();
                for item in items.items {
                    let r = match item {
                        Ok(r) => {
                            if !items.is_bulk {
                                mime = r.config().and_then(|c| c.mime_type()).or(mime);
                            }
                            self.answer_one(&r, role, peer).await
                        }
                        Err(rejected) => JResponse::from_error(rejected.raw, &rejected.error),
                    };
                    responses.push(r);
                }
                if items.is_bulk {
                    envelope(&responses, StatusCode::OK, mime)
                } else {
                    let r = responses.remove(0);
                    let status = http_status(&r);
                    envelope(&r, status, mime)
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
        }
    }

    /// Answers one request; a state change is audited with the revisions before and after.
    async fn answer_one(
        &self,
        r: &deployments::protocol::Request,
        role: Role,
        peer: SocketAddr,
    ) -> JResponse {
        if !beans::changes_state(r) {
            return jolokia::answer(&self.server, r, role).await;
        }
        let engine = &self.server.engine;
        let audited = audit_units(r);
        let before = crate::audit::revisions_of(engine, &audited).await;
        let answer = jolokia::answer(&self.server, r, role).await;
        // Refused because the audit log cannot be written: nothing to record.
        if answer.status != 503 {
            let after = crate::audit::revisions_of(engine, &audited).await;
            self.server
                .audit
                .request(role, peer, r, &answer, before, after);
        }
        answer
    }

    fn events(&self, req: &Request<Incoming>) -> Response<Body> {
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let recent = q("recent").and_then(|v| v.parse::<usize>().ok());
        let last_id = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| q("last-event-id"))
            .and_then(|v| v.parse::<u64>().ok());
        let bus = &self.server.events;
        let body: Body = if let Some(n) = recent {
            let text: String = bus.recent(n).iter().map(|e| sse(e)).collect();
            full(text)
        } else {
            let (past, rx) = bus.subscribe(last_id);
            let head: String = past.iter().map(|e| sse(e)).collect();
            let first = futures_util::stream::once(async move {
                Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(format!(
                    ": connected\nretry: 1000\n\n{head}"
                ))))
            });
            let live = futures_util::stream::unfold(rx, |mut rx| async move {
                loop {
                    let next =
                        tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv()).await;
                    let chunk = match next {
                        Err(_) => ": keep-alive\n\n".to_owned(),
                        Ok(Ok(e)) => sse(&e),
                        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                        Ok(Err(_)) => return None,
                    };
                    return Some((
                        Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(chunk))),
                        rx,
                    ));
                }
            });
            BodyExt::boxed(StreamBody::new(first.chain(live)))
        };
        let mut r = Response::new(body);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        r
    }
}

/// `GET /tap?proxy=P[&unit=U][&limit=N]`: server-sent events, one `tap` event per finished
/// request of the proxy, for as long as the client stays (or N records); with
/// `consumer=C` instead of `proxy`, one per attempt of the consumer at a message. Records
/// are made only while a tap is open; a client that falls behind gets a `lost` event.
async fn tap_target(
    server: &crate::server::Server,
    name: &str,
    unit: Option<&str>,
    consumer: bool,
) -> Result<(), String> {
    let units = server.engine.snapshot();
    let mut known: Vec<String> = Vec::new();
    for (u, state) in units.iter() {
        let names: Vec<&str> = if consumer {
            state.consumers.keys().map(String::as_str).collect()
        } else {
            match state.current.as_ref() {
                Some(rev) => rev.proxies.iter().map(|p| p.name.as_str()).collect(),
                None => continue,
            }
        };
        for n in names {
            if n == name && unit.is_none_or(|x| x == u.as_str()) {
                return Ok(());
            }
            known.push(format!("{u}/{n}"));
        }
    }
    known.sort();
    let kind = if consumer { "consumer" } else { "proxy" };
    let what = match unit {
        Some(u) => format!("unit \"{u}\" has no {kind} \"{name}\""),
        None => format!("no unit has a {kind} \"{name}\""),
    };
    let plural = if consumer { "consumers" } else { "proxies" };
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Err(format!("{what}; {plural}: {list}"))
}

impl Mgmt {
    async fn tap(&self, req: &Request<Incoming>) -> Response<Body> {
        let query = req.uri().query().unwrap_or("");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let named = match (get("proxy"), get("consumer")) {
            (Some(p), None) if !p.is_empty() => Some((p, false)),
            (None, Some(c)) if !c.is_empty() => Some((c, true)),
            _ => None,
        };
        if let Some((name, consumer)) = named {
            let unit = get("unit").filter(|u| !u.is_empty());
            if let Err(why) = tap_target(&self.server, name, unit, consumer).await {
                return error(StatusCode::NOT_FOUND, &why);
            }
        }
        tap(req)
    }
}

fn tap(req: &Request<Incoming>) -> Response<Body> {
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let (name, consumer) = match (q("proxy"), q("consumer")) {
        (Some(p), None) => (p, false),
        (None, Some(c)) => (c, true),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "name the proxy or the consumer: /tap?proxy=NAME or /tap?consumer=NAME \
                 (and &unit=UNIT, &limit=N)",
            )
        }
    };
    let limit = match q("limit").map(|l| l.parse::<u64>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be a positive number"),
    };
    let tapper = crate::tap::Tapper::new(crate::tap::Filter {
        name,
        unit: q("unit"),
        consumer,
    });
    let first = futures_util::stream::once(async move {
        Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from_static(
            b": tapping\nretry: 1000\n\n",
        )))
    });
    let live = futures_util::stream::unfold(
        (tapper, limit.unwrap_or(u64::MAX)),
        |(mut tapper, left)| async move {
            if left == 0 {
                return None;
            }
            let next = tokio::time::timeout(std::time::Duration::from_secs(15), tapper.next());
            let (chunk, left) = match next.await {
                Err(_) => (": keep-alive\n\n".to_owned(), left),
                Ok(Some(Ok(r))) => (
                    format!(
                        "event: tap\ndata: {}\n\n",
                        serde_json::to_string(&*r).unwrap_or_default()
                    ),
                    left - 1,
                ),
                Ok(Some(Err(n))) => (format!("event: lost\ndata: {{\"lost\":{n}}}\n\n"), left),
                Ok(None) => return None,
            };
            Some((
                Ok::<_, crate::body::BoxError>(Frame::data(Bytes::from(chunk))),
                (tapper, left),
            ))
        },
    );
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(first.chain(live))));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    r
}

/// Longest client-chosen text kept in a refused-attempt record.
const CLIP: usize = 256;

fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

fn sse(e: &crate::events::Event) -> String {
    format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id,
        e.kind.name(),
        serde_json::to_string(e).unwrap_or_default()
    )
}

/// Single requests that were refused for access reasons also carry the HTTP status.
fn http_status(r: &JResponse) -> StatusCode {
    match r.status {
        401 | 403 | 405 => StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
        _ => StatusCode::OK,
    }
}

/// The units a state-changing request concerns, for revision before/after in the audit, as
/// the typed operation says (none for a write or an exec that does not decode).
fn audit_units(r: &deployments::protocol::Request) -> Vec<String> {
    match beans::decode_exec(r) {
        Some((bean, Ok(op))) => op.units(&bean),
        Some((_, Err(_))) | None => Vec::new(),
    }
}

async fn read_limited(mut body: Incoming, limit: u64) -> Result<Bytes, StatusCode> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Ok(d) = frame.into_data() {
            if (buf.len() + d.len()) as u64 > limit {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            buf.extend_from_slice(&d);
        }
    }
    Ok(buf.freeze())
}

/// Warm restart as a transaction: the new root config is parsed and validated, every running
/// unit is checked against it, every new or moved listener is bound — any failure rejects
/// the restart with a clear outcome and the old configuration keeps running. Then the
/// server hands its sockets to the next generation and this answers once that one serves:
/// `{"outcome": "restarted", "duration_ms", "diff", "text"}` or
/// `{"outcome": "rejected", "errors": [...]}`.
pub async fn restart(server: &Arc<Server>) -> Result<RestartOutcome, String> {
    use deployments::Diagnostic;
    let started = std::time::Instant::now();
    let rejected = |errors: Vec<Diagnostic>| Ok(RestartOutcome::Rejected { errors });
    let root = match deployments::RootConfig::load(&server.conf_dir) {
        Ok(r) => r,
        Err(errors) => return rejected(errors),
    };
    let unit_errors = server.engine.check_root(&root).await;
    if !unit_errors.is_empty() {
        return rejected(unit_errors);
    }
    // Bind what is new before anything changes: a taken port rejects the restart.
    let file = server.conf_dir.join(deployments::root::ROOT_FILE);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let lines = deployments::diag::LineIndex::new(&text);
    let at = |span: Option<std::ops::Range<usize>>, msg: String| {
        let (line, col) = lines.position(span.map(|s| s.start).unwrap_or(0));
        Diagnostic::new(file.display().to_string(), line, col, msg)
    };
    let kept = server.listening_addrs();
    let mut pool = crate::listeners::ListenerPool::default();
    let mut errors = Vec::new();
    let mut wanted: Vec<(String, &deployments::Spanned<SocketAddr>)> = root
        .transports
        .iter()
        .filter_map(|t| {
            t.bind
                .as_ref()
                .map(|b| (format!("transport \"{}\"", t.name.get_ref()), b))
        })
        .collect();
    if root.management.enabled {
        wanted.push(("the management endpoint".into(), &root.management.bind));
    }
    for (what, bind) in wanted {
        let addr = *bind.get_ref();
        if !kept.contains(&addr) {
            if let Err(e) = pool.ensure(addr) {
                errors.push(at(
                    Some(bind.span()),
                    format!("{what}: cannot bind {addr}: {e}; nothing changed, the running configuration keeps serving"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return rejected(errors);
    }
    let diff = deployments::root_diff::RootDiff::between(&server.engine.root, &root);
    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let handover = crate::server::Handover { root, pool, ready };
    if !server.request_restart(handover) {
        return Err("a restart, upgrade or shutdown is already in progress; wait for it to end and try again".into());
    }
    match tokio::time::timeout(std::time::Duration::from_secs(60), is_ready).await {
        Ok(Ok(Ok(()))) => Ok(RestartOutcome::Restarted {
            duration_ms: crate::revision::millis(started.elapsed()),
            text: diff.to_string(),
            diff,
        }),
        Ok(Ok(Err(e))) => rejected(vec![at(None, e)]),
        _ => Err(
            "the restarted server did not report that it serves within 60 s; see its log".into(),
        ),
    }
}

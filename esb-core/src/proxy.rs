//! Proxy services at request time: operator state checks (paused → 503 + Retry-After,
//! unit paused → hold or 503), in-sequence → endpoint → out-sequence, the fault sequence
//! on errors, and the default JSON faults (502 backend, 503 unavailable, 504 timeout)
//! naming unit, proxy and cause. A request counts as in flight on its revision through a
//! guard, however it ends, and is raced against the end of its revision's drain. A client
//! whose own body fails (framing, body timeout) gets 400/408 whoever was reading it.

use crate::body::{json_response, Body, ClientBody, ClientBodyError, Payload};
pub use crate::control::ProxyState;
use crate::control::{DrainEnd, RevisionInfo};
use crate::endpoint::{EndpointRuntime, SendError};
use crate::inbound::RequestBody;
use crate::mediation::{CompiledSequence, Ctx, Flow, StepError};
use crate::message::Message;
use crate::metrics::Stats;
use crate::outbound::Fields;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ProxyRuntime {
    pub name: String,
    pub path: String,
    /// Allowed methods; empty means any. Proxies of a revision with the same list share it.
    pub methods: Arc<[Method]>,
    /// Explicit transports; empty means every transport. Shared like `methods`.
    pub transports: Arc<[String]>,
    pub info: Arc<RevisionInfo>,
    pub in_seq: Option<Arc<CompiledSequence>>,
    pub out_seq: Option<Arc<CompiledSequence>>,
    pub fault_seq: Option<Arc<CompiledSequence>>,
    pub endpoint: Option<Arc<EndpointRuntime>>,
    pub state: Arc<AtomicU8>,
    pub stats: Arc<Stats>,
    /// While the unit runs a canary: the canary revision's proxy of the same name and the
    /// split that decides which of the two answers a request.
    pub canary: arc_swap::ArcSwapOption<CanaryRoute>,
}

pub struct CanaryRoute {
    pub proxy: Arc<ProxyRuntime>,
    pub split: Arc<Split>,
}

/// How requests are split between a unit's stable revision and its canary.
#[derive(Debug)]
pub struct Split {
    /// Share of requests for the canary, in tenths of a percent (0..=1000).
    pub permille: std::sync::atomic::AtomicU32,
    /// With a header (`x-canary: 1`), exactly the requests that carry it go to the canary.
    pub header: Option<(http::HeaderName, HeaderValue)>,
    /// Sticky split by this request header's value (a cookie header works too) instead of
    /// by turns.
    pub sticky: Option<http::HeaderName>,
    turn: std::sync::atomic::AtomicU64,
}

impl Split {
    pub fn new(
        percent: f64,
        header: Option<(http::HeaderName, HeaderValue)>,
        sticky: Option<http::HeaderName>,
    ) -> Split {
        Split {
            permille: std::sync::atomic::AtomicU32::new(
                (percent * 10.0).round().clamp(0.0, 1000.0) as u32,
            ),
            header,
            sticky,
            turn: Default::default(),
        }
    }

    pub fn percent(&self) -> f64 {
        self.permille.load(Relaxed) as f64 / 10.0
    }

    /// Whether this request goes to the canary.
    fn picks_canary(&self, headers: &http::HeaderMap) -> bool {
        if let Some((name, value)) = &self.header {
            return headers.get(name) == Some(value);
        }
        let share = self.permille.load(Relaxed) as u64;
        let slot = match self.sticky.as_ref().and_then(|h| headers.get(h)) {
            Some(key) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                key.as_bytes().hash(&mut h);
                h.finish() % 1000
            }
            // By turns: exactly the share, spread evenly.
            None => (self.turn.fetch_add(1, Relaxed) * 617) % 1000,
        };
        slot < share
    }
}

/// Marks a response with the revision that answered it (while a canary runs).
fn tag_revision(r: &mut Response<Body>, revision: u64) {
    r.headers_mut().insert(
        http::HeaderName::from_static("x-esb-revision"),
        HeaderValue::from(revision),
    );
}

/// Why a request failed, before the fault sequence or the default fault response.
enum Fault {
    Backend(String),
    Unavailable(String, u64),
    Timeout(String),
    TooLarge(String),
}

impl Fault {
    fn status(&self) -> StatusCode {
        match self {
            Fault::Backend(_) => StatusCode::BAD_GATEWAY,
            Fault::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Fault::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
    fn cause(&self) -> &str {
        match self {
            Fault::Backend(c)
            | Fault::Unavailable(c, _)
            | Fault::Timeout(c)
            | Fault::TooLarge(c) => c,
        }
    }
}

impl ProxyRuntime {
    pub fn proxy_state(&self) -> ProxyState {
        ProxyState::from_u8(self.state.load(Relaxed))
    }

    pub fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    fn error_response(&self, status: StatusCode, error: &str, cause: &str) -> Response<Body> {
        json_response(
            status,
            &json!({ "error": error, "status": status.as_u16(), "unit": self.info.unit, "proxy": self.name, "revision": self.info.number, "cause": cause }),
        )
    }

    fn unavailable(&self, cause: &str, retry_after: u64) -> Response<Body> {
        let mut r = self.error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable",
            cause,
        );
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
        r
    }

    /// Runs the whole pipeline for one request. Never fails: every error is a response.
    /// `body_timeout` bounds reading the client's body (the transport's setting).
    /// `started`: when the request arrived (its transport's clock read).
    pub async fn handle(
        self: Arc<Self>,
        req: Request<RequestBody>,
        client: SocketAddr,
        scheme: &'static str,
        body_timeout: Duration,
        started: Instant,
    ) -> Response<Body> {
        let canary = self.canary.load_full();
        if let Some(c) = canary {
            if c.split.picks_canary(req.headers()) {
                let mut r =
                    Box::pin(
                        c.proxy
                            .clone()
                            .handle(req, client, scheme, body_timeout, started),
                    )
                    .await;
                tag_revision(&mut r, c.proxy.info.number);
                return r;
            }
            let mut r = Box::pin(
                self.clone()
                    .answer(req, client, scheme, body_timeout, started),
            )
            .await;
            tag_revision(&mut r, self.info.number);
            return r;
        }
        self.answer(req, client, scheme, body_timeout, started)
            .await
    }

    /// [`Self::handle`] for a proxy whose unit runs no canary (no split to make).
    pub async fn answer(
        self: Arc<Self>,
        req: Request<RequestBody>,
        client: SocketAddr,
        scheme: &'static str,
        body_timeout: Duration,
        started: Instant,
    ) -> Response<Body> {
        // Both guards also end when hyper drops this future (the client went away).
        let _in_flight = self.info.enter();
        let guard = self.stats.begin_at(started);
        let drain_ended = self.info.drain_ended();
        // The tap's one cost while nobody taps: a relaxed load.
        let tapped =
            crate::tap::tapping().then(|| crate::tap::Started::new(req.method(), req.uri()));
        let mut trace = tapped.as_ref().map(|_| Box::<crate::tap::Trace>::default());
        let resp = {
            // Pinned where it is made: `select!` would move (copy) it once more.
            let pipeline =
                std::pin::pin!(self.pipeline(req, client, scheme, body_timeout, &mut trace));
            tokio::select! {
                biased;
                resp = pipeline => resp,
                why = drain_ended => self.drained(why),
            }
        };
        guard.finish(resp.status().is_server_error());
        if let Some(started) = tapped {
            crate::tap::publish(
                started,
                &self.info.unit,
                &self.name,
                self.info.number,
                resp.status().as_u16(),
                trace.map(|t| *t).unwrap_or_default(),
            );
        }
        resp
    }

    /// The answer to a request its revision's drain ended.
    fn drained(&self, why: DrainEnd) -> Response<Body> {
        let how = match why {
            DrainEnd::Timeout(d) => {
                format!("after {}", deployments::model::duration::format(&d))
            }
            DrainEnd::Cancelled => "by an operator".into(),
        };
        let mut r = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": format!("revision {} of unit \"{}\" was drained {how}; retry", self.info.number, self.info.unit),
                "status": 503,
                "unit": self.info.unit,
                "proxy": self.name,
                "revision": self.info.number,
                "cause": match why { DrainEnd::Timeout(_) => "drain_timeout", DrainEnd::Cancelled => "drain_cancelled" },
            }),
        );
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }

    /// 400 or 408 for a client whose request body failed; the connection is closed, as
    /// the rest of the stream cannot be trusted.
    fn client_body_error(&self, e: &ClientBodyError) -> Response<Body> {
        let (status, error) = match e {
            ClientBodyError::Framing(_) => (StatusCode::BAD_REQUEST, "bad request"),
            ClientBodyError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request timeout"),
        };
        let mut r = json_response(
            status,
            &json!({ "error": format!("{error}: {e}"), "status": status.as_u16(), "unit": self.info.unit, "proxy": self.name, "revision": self.info.number }),
        );
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        r
    }

    async fn pipeline(
        &self,
        req: Request<RequestBody>,
        client: SocketAddr,
        scheme: &'static str,
        body_timeout: Duration,
        trace: &mut Option<Box<crate::tap::Trace>>,
    ) -> Response<Body> {
        if self.proxy_state() == ProxyState::Paused {
            return self.unavailable(&format!("proxy \"{}\" is paused", self.name), 5);
        }
        let control = &self.info.control;
        if control.paused.load(Relaxed) {
            let hold = control.hold_ms.load(Relaxed);
            let resumed = control.resumed.notified();
            let released = control.paused.load(Relaxed)
                && hold > 0
                && Box::pin(tokio::time::timeout(Duration::from_millis(hold), resumed))
                    .await
                    .is_ok();
            if control.paused.load(Relaxed) && !released {
                return self.unavailable(&format!("unit \"{}\" is paused", self.info.unit), 5);
            }
        }
        let (parts, body) = req.into_parts();
        // A request without a body has no body that could fail, nor a deadline for it.
        let (payload, client_failure) = if hyper::body::Body::is_end_stream(&body) {
            (Payload::Full(bytes::Bytes::new()), None)
        } else {
            let (body, failure) = ClientBody::new(body, body_timeout);
            (Payload::Stream(Body::boxed(body)), Some(failure))
        };
        let mut msg = Message::new(parts.method, parts.uri, parts.headers, payload);
        let mut ctx = Ctx {
            unit: &self.info.vars,
            max_body: self.info.max_body,
            client_addr: Some(client),
            scheme,
            route: None,
            trace: trace.take(),
        };
        // A response that no sequence reads goes to the client with its fields as sent.
        let fields = match self.out_seq {
            None => Fields::Raw,
            Some(_) => Fields::Map,
        };
        let result = self.exchange(&mut msg, &mut ctx, fields).await;
        let resp = match result {
            Ok(r) => r,
            // The client's body failed, whoever was reading it: the client's fault, not the
            // backend's, so the fault sequence does not run.
            Err(fault) => {
                if let Some(t) = ctx.trace.as_deref_mut() {
                    t.fault = Some(fault.cause().to_owned());
                }
                match client_failure.as_ref().and_then(|f| f.get()) {
                    Some(e) => self.client_body_error(e),
                    None => Box::pin(self.fault(fault, &mut msg, &mut ctx)).await,
                }
            }
        };
        *trace = ctx.trace.take();
        resp
    }

    /// A synthetic request through this proxy's pipeline — its sequences and endpoints,
    /// as a client's would go, but uncounted and ignoring pause state (a deploy's checks).
    pub async fn probe(&self, mut msg: Message) -> Response<Body> {
        let mut ctx = Ctx {
            unit: &self.info.vars,
            max_body: self.info.max_body,
            client_addr: None,
            scheme: "http",
            route: None,
            trace: None,
        };
        // The checks read the response's headers.
        let result = self.exchange(&mut msg, &mut ctx, Fields::Map).await;
        match result {
            Ok(r) => r,
            Err(fault) => self.fault(fault, &mut msg, &mut ctx).await,
        }
    }

    /// The request through the in-sequence, the endpoint and the out-sequence. `fields`:
    /// how the backend's response fields are handed on (no out-sequence reads them with
    /// [`Fields::Raw`]).
    async fn exchange(
        &self,
        msg: &mut Message,
        ctx: &mut Ctx<'_>,
        fields: Fields,
    ) -> Result<Response<Body>, Fault> {
        if let Some(seq) = &self.in_seq {
            if let Flow::Respond(r) = seq.run(msg, ctx).await.map_err(step_fault)? {
                return Ok(r);
            }
        }
        let endpoint = match ctx.route.take().or_else(|| self.endpoint.clone()) {
            Some(e) => e,
            None => {
                return Err(Fault::Backend(format!(
                    "sequence of proxy \"{}\" did not respond and the proxy has no endpoint",
                    self.name
                )))
            }
        };
        let sent = ctx.trace.is_some().then(std::time::Instant::now);
        let resp = endpoint
            .send(
                msg,
                ctx.client_addr,
                ctx.scheme,
                self.fault_seq.is_some(),
                fields,
            )
            .await
            .map_err(|e| send_fault(e, &endpoint))?;
        if let (Some(t), Some(sent)) = (ctx.trace.as_deref_mut(), sent) {
            let by = resp.extensions().get::<crate::tap::AnsweredBy>();
            t.answered = Some(crate::tap::Answered {
                endpoint: endpoint.name.clone(),
                address: by.map(|a| a.0.clone()).unwrap_or_default(),
                latency_us: sent.elapsed().as_micros() as u64,
            });
        }
        // The backend's connection-level fields never entered the map (`outbound::conn`).
        let (parts, body) = resp.into_parts();
        let body = Body::backend(body);
        let Some(out) = &self.out_seq else {
            return Ok(Response::from_parts(parts, body));
        };
        let mut rmsg = Message::new(
            msg.method.clone(),
            msg.uri.clone(),
            parts.headers,
            Payload::Stream(body),
        );
        rmsg.status = Some(parts.status);
        if let Flow::Respond(r) = out.run(&mut rmsg, ctx).await.map_err(step_fault)? {
            return Ok(r);
        }
        let mut r = Response::new(rmsg.payload.take());
        *r.status_mut() = rmsg.status.unwrap_or(parts.status);
        *r.headers_mut() = rmsg.headers;
        Ok(r)
    }

    async fn fault(&self, fault: Fault, msg: &mut Message, ctx: &mut Ctx<'_>) -> Response<Body> {
        if let Some(seq) = &self.fault_seq {
            msg.set_prop("error.status", fault.status().as_u16().to_string());
            msg.set_prop("error.message", fault.cause().to_owned());
            // The request body may be gone (streamed to the backend); the fault sequence sees none.
            if matches!(msg.payload, Payload::Stream(_)) {
                msg.payload = Payload::Full(bytes::Bytes::new());
            }
            match seq.run(msg, ctx).await {
                Ok(Flow::Respond(r)) => return r,
                Ok(Flow::Continue) => {}
                Err(e) => {
                    tracing::warn!(unit = %self.info.unit, proxy = %self.name, "fault sequence failed: {e}")
                }
            }
        }
        match fault {
            Fault::Unavailable(cause, retry) => self.unavailable(&cause, retry),
            Fault::Backend(cause) => {
                self.error_response(StatusCode::BAD_GATEWAY, "bad gateway", &cause)
            }
            Fault::Timeout(cause) => {
                self.error_response(StatusCode::GATEWAY_TIMEOUT, "gateway timeout", &cause)
            }
            Fault::TooLarge(cause) => {
                self.error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload too large", &cause)
            }
        }
    }
}

fn send_fault(e: SendError, ep: &EndpointRuntime) -> Fault {
    match e {
        SendError::Unavailable(c) => Fault::Unavailable(c, ep.retry_after()),
        SendError::Backend(c) => Fault::Backend(c),
        SendError::Timeout(d) => Fault::Timeout(format!(
            "endpoint \"{}\" did not answer within {}",
            ep.name,
            deployments::model::duration::format(&d)
        )),
    }
}

fn step_fault(e: StepError) -> Fault {
    match e {
        StepError::TooLarge(r) => Fault::TooLarge(r.to_string()),
        StepError::Read(r) => Fault::Backend(r.to_string()),
        StepError::Call(SendError::Unavailable(c)) => Fault::Unavailable(c, 5),
        StepError::Call(SendError::Timeout(d)) => {
            Fault::Timeout(format!("call did not answer within {d:?}"))
        }
        StepError::Call(SendError::Backend(c)) => Fault::Backend(c),
        StepError::Publish(c) => Fault::Unavailable(c, 1),
    }
}

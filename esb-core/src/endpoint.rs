//! Endpoints: a set of backend addresses behind a strategy (failover, round-robin,
//! weighted), a timeout, retry on connect failure, and address suspension after
//! consecutive failures with exponential back-off and automatic return. Forwarded
//! requests drop hop-by-hop headers (RFC 9110 §7.6.1) and carry X-Forwarded-For/-Proto.

use crate::body::{empty, read_ahead, Body, Payload, ReadAhead};
use crate::client::HttpClient;
use crate::message::Message;
use crate::metrics::Stats;
use crate::outbound::{BackendBody, Fields, Target};
use deployments::model::{Endpoint as EndpointDef, Strategy, Suspend};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Body as _;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Monotonic milliseconds since the process started.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AddressState {
    Active,
    Suspended,
    Maintenance,
}

/// How long one trial request has a suspended address to itself before another may try.
const TRIAL_WINDOW_MS: u64 = 1000;

const ACTIVE: u8 = 0;
const SUSPENDED: u8 = 1;
const MAINTENANCE: u8 = 2;

pub struct Address {
    pub url: String,
    base: Uri,
    /// The address's connection pool in the endpoint's client, looked up on first use.
    target: OnceLock<Target>,
    pub weight: u32,
    state: AtomicU8,
    failures: AtomicU32,
    level: AtomicU32,
    until_ms: AtomicU64,
    pub stats: Stats,
}

impl Address {
    pub fn new(url: &str, weight: u32) -> Result<Self, String> {
        let base: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("invalid address \"{url}\": {e}"))?;
        Ok(Address {
            url: url.to_owned(),
            base,
            target: OnceLock::new(),
            weight,
            state: AtomicU8::new(ACTIVE),
            failures: AtomicU32::new(0),
            level: AtomicU32::new(0),
            until_ms: AtomicU64::new(0),
            stats: Stats::default(),
        })
    }

    pub fn is_https(&self) -> bool {
        self.base.scheme() == Some(&http::uri::Scheme::HTTPS)
    }

    pub fn state(&self) -> AddressState {
        match self.state.load(Relaxed) {
            SUSPENDED => AddressState::Suspended,
            MAINTENANCE => AddressState::Maintenance,
            _ => AddressState::Active,
        }
    }

    /// When a suspended address is tried again (ms since start), if suspended.
    pub fn suspended_until_ms(&self) -> Option<u64> {
        (self.state.load(Relaxed) == SUSPENDED).then(|| self.until_ms.load(Relaxed))
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Relaxed)
    }

    /// Usable now: active, or suspended with the back-off elapsed (a trial request).
    /// Whether a request may use the address now. Once a suspended address's back-off has
    /// elapsed, exactly one request claims the trial (by moving the deadline on); the others
    /// keep skipping it until the trial succeeds or a further window passes.
    fn eligible(&self, now: u64) -> bool {
        match self.state.load(Relaxed) {
            ACTIVE => true,
            SUSPENDED => {
                let until = self.until_ms.load(Relaxed);
                now >= until
                    && self
                        .until_ms
                        .compare_exchange(until, now + TRIAL_WINDOW_MS, Relaxed, Relaxed)
                        .is_ok()
            }
            _ => false,
        }
    }

    /// Usable now, without claiming a trial (for reporting).
    fn available(&self, now: u64) -> bool {
        match self.state.load(Relaxed) {
            ACTIVE => true,
            SUSPENDED => now >= self.until_ms.load(Relaxed),
            _ => false,
        }
    }

    fn success(&self) {
        self.failures.store(0, Relaxed);
        if self.state.load(Relaxed) == SUSPENDED {
            self.level.store(0, Relaxed);
            let _ = self
                .state
                .compare_exchange(SUSPENDED, ACTIVE, Relaxed, Relaxed);
        }
    }

    fn failure(&self, policy: &Suspend) {
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        let state = self.state.load(Relaxed);
        // A failed trial after a back-off re-suspends at once, for longer.
        if state == SUSPENDED || (state == ACTIVE && failures >= policy.after_failures) {
            let level = self.level.fetch_add(1, Relaxed);
            let backoff = policy.initial.as_secs_f64() * policy.factor.powi(level as i32);
            let backoff = Duration::from_secs_f64(backoff.min(policy.max.as_secs_f64()));
            self.until_ms
                .store(now_ms() + backoff.as_millis() as u64, Relaxed);
            let _ = self
                .state
                .compare_exchange(state, SUSPENDED, Relaxed, Relaxed);
        }
    }

    /// Operator action: take the address out of rotation until activated.
    pub fn suspend(&self) {
        self.state.store(MAINTENANCE, Relaxed);
    }

    /// Operator action: put the address back now, forgetting failures.
    pub fn activate(&self) {
        self.failures.store(0, Relaxed);
        self.level.store(0, Relaxed);
        self.state.store(ACTIVE, Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Backend(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

pub struct EndpointRuntime {
    pub name: String,
    pub strategy: Strategy,
    pub timeout: Duration,
    pub retries: u32,
    pub suspend: Suspend,
    addresses: RwLock<Arc<Vec<Arc<Address>>>>,
    next: AtomicUsize,
    pub maintenance: AtomicBool,
    pub stats: Stats,
    client: HttpClient,
}

fn tls_unusable(endpoint: &str, e: &str) -> String {
    format!(
        "endpoint \"{endpoint}\": its https:// addresses need TLS, and the TLS setup failed: {e}; check the system's CA certificates (/etc/ssl/certs) and the endpoint's ca_file"
    )
}

fn unknown_address(endpoint: &str, list: &[Arc<Address>], url: &str) -> String {
    let all: Vec<&str> = list.iter().map(|a| a.url.as_str()).collect();
    format!(
        "endpoint \"{endpoint}\" has no address {url}; it has: {}",
        all.join(", ")
    )
}

static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

use crate::http1::fields::strip_hop_by_hop;

/// Request bodies up to this size are read completely before a backend is contacted
/// (see `docs/limits.md`); longer ones stream after this much was read.
pub const READ_AHEAD: u64 = 64 * 1024;

impl EndpointRuntime {
    pub fn build(def: &EndpointDef, client: HttpClient) -> Result<Self, String> {
        let addresses = def
            .addresses
            .iter()
            .map(|a| Address::new(a.get_ref().url(), a.get_ref().weight().max(1)).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        if addresses.iter().any(|a| a.is_https()) {
            client
                .tls()
                .map_err(|e| tls_unusable(def.name.get_ref(), &e))?;
        }
        let retries = def
            .retries
            .unwrap_or(addresses.len().saturating_sub(1) as u32);
        Ok(EndpointRuntime {
            name: def.name.get_ref().clone(),
            strategy: def.strategy,
            timeout: def.timeout,
            retries,
            suspend: def.suspend.clone(),
            addresses: RwLock::new(Arc::new(addresses)),
            next: AtomicUsize::new(0),
            maintenance: AtomicBool::new(false),
            stats: Stats::default(),
            client,
        })
    }

    pub fn addresses(&self) -> Arc<Vec<Arc<Address>>> {
        self.addresses.read().expect("addresses").clone()
    }

    pub fn add_address(&self, url: &str, weight: u32) -> Result<(), String> {
        let mut guard = self.addresses.write().expect("addresses");
        if guard.iter().any(|a| a.url == url) {
            return Err(format!(
                "address {url} is already in endpoint \"{}\"",
                self.name
            ));
        }
        let address = Address::new(url, weight)?;
        if address.is_https() {
            self.client
                .tls()
                .map_err(|e| tls_unusable(&self.name, &e))?;
        }
        let mut list = (**guard).clone();
        list.push(Arc::new(address));
        *guard = Arc::new(list);
        Ok(())
    }

    pub fn remove_address(&self, url: &str) -> Result<(), String> {
        let mut guard = self.addresses.write().expect("addresses");
        if !guard.iter().any(|a| a.url == url) {
            // Built from the guard: taking the read lock here would deadlock.
            return Err(unknown_address(&self.name, &guard, url));
        }
        if guard.len() == 1 {
            return Err(format!("cannot remove the last address of endpoint \"{}\"; put the endpoint into maintenance instead", self.name));
        }
        *guard = Arc::new(guard.iter().filter(|a| a.url != url).cloned().collect());
        Ok(())
    }

    pub fn address(&self, url: &str) -> Result<Arc<Address>, String> {
        self.addresses()
            .iter()
            .find(|a| a.url == url)
            .cloned()
            .ok_or_else(|| unknown_address(&self.name, &self.addresses(), url))
    }

    /// Picks the next address by strategy, skipping `tried` and ineligible ones.
    fn pick(&self, list: &[Arc<Address>], tried: &Tried) -> Option<usize> {
        // The clock is read only when an address is not simply active.
        let now = std::cell::OnceCell::new();
        let ok = |i: &usize| {
            !tried.contains(i)
                && (list[*i].state.load(Relaxed) == ACTIVE
                    || list[*i].eligible(*now.get_or_init(now_ms)))
        };
        match self.strategy {
            Strategy::Failover => (0..list.len()).find(ok),
            Strategy::RoundRobin => {
                let start = self.next.fetch_add(1, Relaxed);
                (0..list.len()).map(|k| (start + k) % list.len()).find(ok)
            }
            Strategy::Weighted => {
                let total: u64 = list.iter().map(|a| a.weight as u64).sum();
                let mut slot = (self.next.fetch_add(1, Relaxed) as u64) % total.max(1);
                let first = list
                    .iter()
                    .position(|a| {
                        if slot < a.weight as u64 {
                            true
                        } else {
                            slot -= a.weight as u64;
                            false
                        }
                    })
                    .unwrap_or(0);
                (0..list.len()).map(|k| (first + k) % list.len()).find(ok)
            }
        }
    }

    /// Seconds until the first suspended address returns (for Retry-After).
    pub fn retry_after(&self) -> u64 {
        let now = now_ms();
        self.addresses()
            .iter()
            .filter_map(|a| a.suspended_until_ms())
            .map(|u| u.saturating_sub(now).div_ceil(1000).max(1))
            .min()
            .unwrap_or(5)
    }

    /// Sends the message to an address and returns the backend's response, its fields as
    /// `fields` says. With `keep_headers` the message keeps its headers (a `call` step
    /// continues with them, a fault sequence may read them); otherwise they move into the
    /// forwarded request.
    pub async fn send(
        &self,
        msg: &mut Message,
        client_addr: Option<SocketAddr>,
        scheme: &str,
        keep_headers: bool,
        fields: Fields,
    ) -> Result<Response<BackendBody>, SendError> {
        if self.maintenance.load(Relaxed) {
            return Err(SendError::Unavailable(format!(
                "endpoint \"{}\" is in maintenance",
                self.name
            )));
        }
        let list = self.addresses();
        let mut headers = if keep_headers {
            msg.headers.clone()
        } else {
            std::mem::take(&mut msg.headers)
        };
        strip_hop_by_hop(&mut headers);
        // The `X-Forwarded-*` headers go out as lines of the request head, not through the
        // map; what the client sent of them, `Host` and `Expect` (esb answered any
        // `Expect: 100-continue` itself, by reading the body) leave the map.
        let present = Present::scan(&headers);
        let host = present
            .host
            .then(|| headers.remove(http::header::HOST))
            .flatten();
        let prev_xff = present
            .xff
            .then(|| headers.remove(&X_FORWARDED_FOR))
            .flatten();
        if present.xfp {
            headers.remove(&X_FORWARDED_PROTO);
        }
        if present.expect {
            headers.remove(http::header::EXPECT);
        }
        let mut lines: [Option<(&HeaderName, HeaderValue)>; 3] = [None, None, None];
        if let Some(host) = host {
            // The client's own `X-Forwarded-Host` stays only when it sent no `Host`.
            if present.xfh {
                headers.remove(&X_FORWARDED_HOST);
            }
            lines[0] = Some((&X_FORWARDED_HOST, host));
        }
        let xff = match (client_addr, &prev_xff) {
            (Some(addr), Some(prev)) => match prev.to_str() {
                Ok(prev) => HeaderValue::from_str(&format!("{prev}, {}", addr.ip())).ok(),
                Err(_) => Some(ip_header(addr.ip())),
            }
            .or(prev_xff),
            (Some(addr), None) => Some(ip_header(addr.ip())),
            (None, _) => prev_xff,
        };
        lines[1] = xff.map(|v| (&X_FORWARDED_FOR, v));
        lines[2] = Some((
            &X_FORWARDED_PROTO,
            HeaderValue::from_static(if scheme == "https" { "https" } else { "http" }),
        ));

        // Whether there is a body is the body's business, not the headers' (which may have
        // moved into `headers` above). Small bodies are read ahead completely before the
        // backend is contacted: their framing is then known good (a broken body never
        // reaches a backend, and gets 400), and they can be sent again on a retry. Longer
        // bodies stream after the part read ahead.
        match &mut msg.payload {
            Payload::Stream(body) if body.is_end_stream() => {
                msg.payload = Payload::Full(bytes::Bytes::new());
            }
            Payload::Stream(body) => {
                let body = std::mem::replace(body, empty());
                msg.payload = match read_ahead(body, READ_AHEAD).await.map_err(|e| {
                    SendError::Backend(format!("reading the request body failed: {e}"))
                })? {
                    ReadAhead::Complete(bytes) => Payload::Full(bytes),
                    ReadAhead::Partial(body) => Payload::Stream(body),
                };
            }
            Payload::Full(_) => {}
        }

        let path_and_query = msg.uri.path_and_query().cloned();
        let _guard = self.stats.begin();
        let mut tried = Tried::default();
        let mut last_error = None;
        for _attempt in 0..=self.retries {
            let Some(i) = self.pick(&list, &tried) else {
                break;
            };
            tried.push(i);
            let addr = &list[i];
            let target = match addr.target.get() {
                Some(t) => Ok(t),
                None => self
                    .client
                    .target(&addr.base)
                    .map(|t| addr.target.get_or_init(|| t)),
            };
            let uri = join(&addr.base, path_and_query.as_ref());
            let body: Body = match &msg.payload {
                Payload::Full(b) if b.is_empty() => empty(),
                Payload::Full(b) => crate::body::full(b.clone()),
                Payload::Stream(_) => msg.payload.take(),
            };
            let mut req = Request::new(body);
            *req.method_mut() = msg.method.clone();
            *req.uri_mut() = uri;
            *req.headers_mut() = if tried.len() <= self.retries as usize && list.len() > tried.len()
            {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let in_addr = addr.stats.begin_at(_guard.started());
            let sent = match target {
                Ok(t) => {
                    let send = self.client.send_with(t, req, &lines, fields);
                    tokio::time::timeout(self.timeout, send).await
                }
                Err(e) => Ok(Err(e)),
            };
            match sent {
                Ok(Ok(mut resp)) => {
                    addr.success();
                    let now = Instant::now();
                    in_addr.finish_at(false, now);
                    _guard.finish_at(false, now);
                    if crate::tap::tapping() {
                        resp.extensions_mut()
                            .insert(crate::tap::AnsweredBy(addr.url.clone()));
                    }
                    return Ok(resp);
                }
                Ok(Err(e)) if caused_by_client_body(&e) => {
                    // The client's body broke while it streamed: not the address's fault.
                    in_addr.finish(false);
                    return Err(SendError::Backend(format!(
                        "endpoint \"{}\": the request body failed while it was forwarded: {}",
                        self.name,
                        error_chain(&e)
                    )));
                }
                Ok(Err(e)) => {
                    addr.failure(&self.suspend);
                    in_addr.finish(true);
                    let connect = e.is_connect();
                    let detail = error_chain(&e);
                    last_error = Some(if connect {
                        SendError::Backend(format!(
                            "endpoint \"{}\": cannot connect to {}: {detail}",
                            self.name, addr.url
                        ))
                    } else {
                        SendError::Backend(format!(
                            "endpoint \"{}\": {} failed: {detail}",
                            self.name, addr.url
                        ))
                    });
                    let retriable = connect && matches!(msg.payload, Payload::Full(_));
                    if !retriable {
                        break;
                    }
                }
                Err(_) => {
                    addr.failure(&self.suspend);
                    in_addr.finish(true);
                    last_error = Some(SendError::Timeout(self.timeout));
                    break;
                }
            }
        }
        // Nothing left to try: 503 when no address is in rotation any more (the
        // failures suspended them), otherwise the backend's own failure (502/504).
        let now = now_ms();
        let none_left = !list.iter().any(|a| a.available(now));
        match last_error {
            Some(SendError::Backend(cause)) if none_left => Err(SendError::Unavailable(format!(
                "{cause}; every address of endpoint \"{}\" is now suspended",
                self.name
            ))),
            Some(e) => Err(e),
            None => Err(SendError::Unavailable(format!(
                "every address of endpoint \"{}\" is suspended",
                self.name
            ))),
        }
    }
}

/// Which of the headers the endpoint replaces a request has (one pass over its names,
/// comparing only names of their lengths), so that absent ones cost no lookup.
#[derive(Default)]
struct Present {
    host: bool,
    expect: bool,
    xff: bool,
    xfh: bool,
    xfp: bool,
}

impl Present {
    fn scan(headers: &HeaderMap) -> Present {
        let mut p = Present::default();
        for k in headers.keys() {
            match k.as_str().len() {
                4 => p.host |= k == http::header::HOST,
                6 => p.expect |= k == http::header::EXPECT,
                15 => p.xff |= k == X_FORWARDED_FOR,
                16 => p.xfh |= k == X_FORWARDED_HOST,
                17 => p.xfp |= k == X_FORWARDED_PROTO,
                _ => {}
            }
        }
        p
    }
}

/// The addresses one request has tried: a few, kept inline (no allocation per request).
#[derive(Default)]
struct Tried {
    first: [usize; 4],
    len: usize,
    more: Vec<usize>,
}

impl Tried {
    fn push(&mut self, i: usize) {
        match self.first.get_mut(self.len) {
            Some(slot) => *slot = i,
            None => self.more.push(i),
        }
        self.len += 1;
    }

    fn contains(&self, i: &usize) -> bool {
        self.first[..self.len.min(self.first.len())].contains(i) || self.more.contains(i)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// `X-Forwarded-For` for a peer, without formatting for the usual loopback peer.
fn ip_header(ip: std::net::IpAddr) -> HeaderValue {
    if ip == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        HeaderValue::from_static("127.0.0.1")
    } else {
        HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
    }
}

/// The path and query a backend gets: the address's own path (if any) before the request's.
fn join(base: &Uri, pq: Option<&PathAndQuery>) -> Uri {
    let prefix = base.path().trim_end_matches('/');
    if prefix.is_empty() {
        // The request's own path and query, shared rather than copied.
        return Uri::from(
            pq.cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
    }
    let pq_str = pq.map(|p| p.as_str()).unwrap_or("/");
    format!("{prefix}{pq_str}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"))
}

/// Whether a client error was caused by the client's own request body (see
/// [`crate::body::ClientBody`]).
fn caused_by_client_body(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<crate::body::ClientBodyError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_backs_off_and_returns() {
        let a = Address::new("http://127.0.0.1:1", 1).unwrap();
        let policy = Suspend {
            after_failures: 2,
            initial: Duration::from_millis(0),
            factor: 2.0,
            max: Duration::from_secs(60),
        };
        a.failure(&policy);
        assert_eq!(a.state(), AddressState::Active);
        a.failure(&policy);
        assert_eq!(a.state(), AddressState::Suspended);
        // Back-off of 0ms elapsed: eligible for a trial, and success returns it.
        assert!(a.eligible(now_ms()));
        a.success();
        assert_eq!(a.state(), AddressState::Active);
        a.suspend();
        assert!(!a.eligible(now_ms()));
        a.activate();
        assert!(a.eligible(now_ms()));
    }

    fn endpoint(addresses: &str, tls_made: &Arc<AtomicUsize>) -> Result<EndpointRuntime, String> {
        let unit =
            format!("version = \"1\"\n[[endpoint]]\nname = \"be\"\naddresses = [{addresses}]\n");
        let sources = deployments::source::UnitSources::from_content("u", &unit);
        let parsed = deployments::parse::parse_unit(&sources).expect("unit parses");
        let made = tls_made.clone();
        let client = HttpClient::new(
            Duration::from_secs(1),
            Box::new(move || {
                made.fetch_add(1, Relaxed);
                Err("no roots here".into())
            }),
        );
        EndpointRuntime::build(&parsed.unit.endpoints[0], client)
    }

    #[test]
    fn tls_is_set_up_only_for_https_addresses() {
        let made = Arc::new(AtomicUsize::new(0));
        let ep = endpoint(r#""http://127.0.0.1:1", "http://127.0.0.1:2""#, &made).unwrap();
        assert_eq!(made.load(Relaxed), 0, "plain http never reads the roots");
        let e = ep.add_address("https://127.0.0.1:3", 1).unwrap_err();
        assert!(e.contains("TLS setup failed: no roots here"), "{e}");
        assert_eq!(ep.addresses().len(), 2, "the address was not added");
        assert_eq!(made.load(Relaxed), 1);

        let made = Arc::new(AtomicUsize::new(0));
        let e = endpoint(r#""HTTPS://127.0.0.1:1""#, &made).err().unwrap();
        assert!(
            e.contains("endpoint \"be\"") && e.contains("no roots here"),
            "{e}"
        );
        assert_eq!(made.load(Relaxed), 1, "made when the endpoint is built");
    }

    #[test]
    fn join_keeps_base_path() {
        let base: Uri = "http://h:1/api".parse().unwrap();
        assert_eq!(
            join(&base, Some(&PathAndQuery::from_static("/orders?x=1"))).to_string(),
            "/api/orders?x=1"
        );
    }
}

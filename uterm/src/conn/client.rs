//! The connection to the management endpoint: Jolokia bulk requests by POST to `<url>/jolokia`
//! and the `/events` stream ([`EventStream`]), with bearer authentication. The HTTP client and
//! the token are set up lazily on first use (offline commands never pay for them), once.
//! Failing to connect, or being refused, is a [`ClientError`] that names the URL tried and
//! where the token was looked for.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use deployments::protocol::{Request, Response};
use serde_json::Value;

use crate::conn::error::{Auth, ClientError};
use crate::conn::sse::EventStream;
use crate::conn::token::{find_token, TokenSpec};

/// The default management URL (DESIGN §6).
pub const DEFAULT_URL: &str = "http://127.0.0.1:9900";

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub url: String,
    pub token: TokenSpec,
    /// Time limit of one Jolokia request (the events stream has none).
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            url: DEFAULT_URL.to_string(),
            token: TokenSpec::Search,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Puts `http://` in front of a bare `host:port` and drops trailing slashes.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

/// A client of one management endpoint.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    base: String,
    http: OnceLock<reqwest::blocking::Client>,
    auth: OnceLock<Result<Auth, ClientError>>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        Client {
            base: normalize_url(&config.url),
            config,
            http: OnceLock::new(),
            auth: OnceLock::new(),
        }
    }

    /// The endpoint's base URL as used (e.g. `http://127.0.0.1:9900`).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn http(&self) -> &reqwest::blocking::Client {
        self.http.get_or_init(|| {
            let mut b = reqwest::blocking::Client::builder()
                .timeout(None)
                .connect_timeout(Duration::from_secs(3))
                .user_agent(concat!("uterm/", env!("CARGO_PKG_VERSION")));
            if is_loopback(&self.base) {
                b = b.no_proxy();
            }
            // Building fails only without a TLS backend or a usable resolver; fall back to
            // the defaults, and let the request say what is wrong.
            b.build()
                .unwrap_or_else(|_| reqwest::blocking::Client::new())
        })
    }

    /// The token (found once).
    pub fn auth(&self) -> Result<&Auth, ClientError> {
        self.auth
            .get_or_init(|| {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                find_token(&self.config.token, &cwd)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn request(
        &self,
        rb: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::RequestBuilder, ClientError> {
        let auth = self.auth()?;
        Ok(match &auth.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        })
    }

    /// Refuses URLs this build cannot speak (no TLS is compiled in: the endpoint is plain
    /// HTTP on loopback by default).
    fn check_scheme(&self) -> Result<(), ClientError> {
        if self.base.starts_with("http://") {
            return Ok(());
        }
        Err(ClientError::BadUrl {
            url: self.base.clone(),
            reason: "uterm speaks plain http:// only (the management endpoint is HTTP, \
                     loopback by default)"
                .into(),
        })
    }

    /// Sends `requests` as one bulk POST and returns one response per request, in order.
    pub fn bulk(&self, requests: &[Request]) -> Result<Vec<Response>, ClientError> {
        self.check_scheme()?;
        let url = format!("{}/jolokia", self.base);
        let body = serde_json::to_vec(requests).map_err(|e| ClientError::Read {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let rb = self
            .http()
            .post(&url)
            .timeout(self.config.timeout)
            .header("content-type", "application/json")
            .body(body);
        let resp = self
            .request(rb)?
            .send()
            .map_err(|e| self.send_error(&url, e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().map_err(|e| self.send_error(&url, e))?;
        self.check_status(&url, status, &bytes)?;
        let responses =
            decode_bulk(&bytes, requests.len()).map_err(|reason| ClientError::Read {
                url: url.clone(),
                reason,
            })?;
        // A 403 inside the envelope: the token's role may not do this (monitor token).
        if let Some(r) = responses
            .iter()
            .find(|r| r.status == 401 || r.status == 403)
        {
            let why = r
                .error
                .clone()
                .unwrap_or_else(|| format!("status {}", r.status));
            let why = match &r.error_type {
                Some(t) => why
                    .strip_prefix(&format!("{t} : "))
                    .unwrap_or(&why)
                    .to_string(),
                None => why,
            };
            return Err(ClientError::Unauthorized {
                url: self.base.clone(),
                why,
                auth: self.auth()?.clone(),
            });
        }
        Ok(responses)
    }

    /// Opens `/events`: with `recent`, the last events the server keeps (the stream ends
    /// after them); without, the live stream, resuming after `last_event_id` if given.
    pub fn events(
        &self,
        recent: Option<usize>,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        self.check_scheme()?;
        let url = match recent {
            Some(n) => format!("{}/events?recent={n}", self.base),
            None => format!("{}/events", self.base),
        };
        let mut rb = self.http().get(&url).header("accept", "text/event-stream");
        if recent.is_some() {
            rb = rb.timeout(self.config.timeout);
        }
        if let Some(id) = last_event_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = self
            .request(rb)?
            .send()
            .map_err(|e| self.send_error(&url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let bytes = resp.bytes().unwrap_or_default();
            self.check_status(&url, status, &bytes)?;
            return Err(ClientError::Http {
                url,
                status,
                message: body_message(&bytes),
            });
        }
        Ok(EventStream::from_reader(&url, Box::new(resp)))
    }

    /// Opens `/tap` for a proxy: one `tap` event per finished request (the stream ends
    /// after `limit` of them, if given).
    pub fn tap(
        &self,
        name: &str,
        unit: Option<&str>,
        limit: Option<u64>,
        consumer: bool,
    ) -> Result<EventStream, ClientError> {
        self.check_scheme()?;
        let mut u = reqwest::Url::parse(&format!("{}/tap", self.base)).map_err(|e| {
            ClientError::BadUrl {
                url: self.base.clone(),
                reason: e.to_string(),
            }
        })?;
        {
            let mut q = u.query_pairs_mut();
            q.append_pair(if consumer { "consumer" } else { "proxy" }, name);
            if let Some(unit) = unit {
                q.append_pair("unit", unit);
            }
            if let Some(n) = limit {
                q.append_pair("limit", &n.to_string());
            }
        }
        let url = u.to_string();
        let rb = self.http().get(&url).header("accept", "text/event-stream");
        let resp = self
            .request(rb)?
            .send()
            .map_err(|e| self.send_error(&url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let bytes = resp.bytes().unwrap_or_default();
            // 404 here names the proxy that is not there (and the ones that are).
            if status != 404 {
                self.check_status(&url, status, &bytes)?;
            }
            return Err(ClientError::Http {
                url,
                status,
                message: body_message(&bytes),
            });
        }
        Ok(EventStream::from_reader(&url, Box::new(resp)))
    }

    fn send_error(&self, url: &str, e: reqwest::Error) -> ClientError {
        if e.is_timeout() && !e.is_connect() {
            return ClientError::Timeout {
                url: url.to_string(),
                secs: self.config.timeout.as_secs(),
            };
        }
        if e.is_connect() || e.is_builder() || (e.is_request() && !e.is_body()) {
            // Nothing usable answered: refused, unreachable, bad URL or scheme.
            return ClientError::Connect {
                url: self.base.clone(),
                reason: error_chain(&e),
            };
        }
        ClientError::Read {
            url: url.to_string(),
            reason: error_chain(&e),
        }
    }

    fn check_status(&self, url: &str, status: u16, body: &[u8]) -> Result<(), ClientError> {
        match status {
            200 => Ok(()),
            // A 401 body only repeats how to authenticate, which the help says better; a 403
            // says why (foreign Origin/Host, role).
            401 => Err(ClientError::Unauthorized {
                url: self.base.clone(),
                why: "HTTP 401".into(),
                auth: self.auth()?.clone(),
            }),
            403 => Err(ClientError::Unauthorized {
                url: self.base.clone(),
                why: format!("HTTP 403: {}", body_message(body)),
                auth: self.auth()?.clone(),
            }),
            404 => Err(ClientError::Http {
                url: url.to_string(),
                status,
                message: "no such path; is this the esb management endpoint ([management] \
                          bind in esb.toml)?"
                    .into(),
            }),
            _ => Err(ClientError::Http {
                url: url.to_string(),
                status,
                message: body_message(body),
            }),
        }
    }
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("");
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

/// The message of an error body: Jolokia's `error`, a JSON `message`, or the text itself.
fn body_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["error", "message", "status"] {
            if let Some(s) = v.get(key).and_then(Value::as_str) {
                return s.to_string();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text.chars().take(300).collect()
    }
}

/// The messages of an error and its sources, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        src = s.source();
    }
    // The innermost message is the useful one ("Connection refused (os error 111)").
    let last = parts.last().cloned().unwrap_or_default();
    let last = last
        .strip_prefix("tcp connect error: ")
        .unwrap_or(&last)
        .to_string();
    if parts.len() > 1 {
        last
    } else {
        parts.remove(0)
    }
}

/// Decodes a POST answer: an array of responses (bulk), or a single error object when the
/// whole body was refused.
pub fn decode_bulk(bytes: &[u8], expected: usize) -> Result<Vec<Response>, String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not JSON ({e}): {}", body_message(bytes)))?;
    let responses: Vec<Response> = match v {
        Value::Array(_) => serde_json::from_value(v).map_err(|e| e.to_string())?,
        Value::Object(_) => {
            let r: Response = serde_json::from_value(v).map_err(|e| e.to_string())?;
            vec![r; expected]
        }
        _ => return Err("expected a JSON array of responses".into()),
    };
    if responses.len() != expected {
        return Err(format!(
            "expected {expected} responses, got {}",
            responses.len()
        ));
    }
    Ok(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalized() {
        assert_eq!(normalize_url("127.0.0.1:9900"), "http://127.0.0.1:9900");
        assert_eq!(normalize_url("http://h:1/"), "http://h:1");
        assert!(is_loopback("http://127.0.0.1:9900"));
        assert!(is_loopback("http://localhost:9900"));
        assert!(is_loopback("http://[::1]:9900"));
        assert!(!is_loopback("http://10.0.0.1:9900"));
    }

    #[test]
    fn token_search_order_and_messages() {
        let dir = tempdir();
        let cwd = dir.as_path();
        // Nothing there: no token, and the message lists the places.
        let a = find_token(&TokenSpec::Search, cwd).unwrap();
        assert_eq!(a.token, None);
        let e = ClientError::Unauthorized {
            url: "http://127.0.0.1:9900".into(),
            why: "HTTP 401".into(),
            auth: a,
        };
        let m = e.to_string();
        assert!(
            m.contains("http://127.0.0.1:9900") && m.contains("var/control.token"),
            "{m}"
        );
        assert!(
            m.contains("no token was found (looked in var/control.token"),
            "{m}"
        );
        assert_eq!(e.exit_code(), 3);

        std::fs::create_dir_all(cwd.join("var")).unwrap();
        std::fs::write(cwd.join("var/control.token"), "s3cret\n").unwrap();
        let a = find_token(&TokenSpec::Search, cwd).unwrap();
        assert_eq!(a.token.as_deref(), Some("s3cret"));
        assert_eq!(a.origin, "file var/control.token");

        std::fs::write(cwd.join("other.token"), " t2 ").unwrap();
        let a = find_token(&TokenSpec::File("other.token".into()), cwd).unwrap();
        assert_eq!(a.token.as_deref(), Some("t2"));
        let e = find_token(&TokenSpec::File("missing".into()), cwd).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("missing"));
        let a = find_token(&TokenSpec::Given(" x ".into()), cwd).unwrap();
        assert_eq!(a.token.as_deref(), Some("x"));
        std::fs::remove_dir_all(cwd).unwrap();
    }

    #[test]
    fn token_from_state_dir_of_conf() {
        let dir = tempdir();
        let cwd = dir.as_path();
        std::fs::create_dir_all(cwd.join("conf")).unwrap();
        std::fs::write(
            cwd.join("conf/esb.toml"),
            "[server]\nstate_dir = \"state\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(cwd.join("conf/state")).unwrap();
        std::fs::write(cwd.join("conf/state/control.token"), "abc").unwrap();
        let a = find_token(&TokenSpec::Search, cwd).unwrap();
        assert_eq!(a.token.as_deref(), Some("abc"));
        assert_eq!(a.origin, "file conf/state/control.token");
        std::fs::remove_dir_all(cwd).unwrap();
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "uterm-client-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn decode_bulk_accepts_array_or_single_error() {
        let arr = br#"[{"request":{"type":"version"},"value":{},"status":200,"timestamp":1}]"#;
        assert_eq!(decode_bulk(arr, 1).unwrap().len(), 1);
        let single = br#"{"status":400,"error_type":"x","error":"x : bad"}"#;
        let r = decode_bulk(single, 2).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].status, 400);
        assert!(decode_bulk(b"<html>", 1).unwrap_err().contains("not JSON"));
        assert!(decode_bulk(arr, 2).unwrap_err().contains("expected 2"));
    }

    #[test]
    fn connection_refused_is_exit_3_and_names_the_url() {
        // Port 1 on loopback: nothing listens there.
        let c = Client::new(ClientConfig {
            url: "127.0.0.1:1".into(),
            token: TokenSpec::Given("t".into()),
            timeout: Duration::from_secs(5),
        });
        let e = c.bulk(&[Request::version()]).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        let m = e.to_string();
        assert!(
            m.contains("http://127.0.0.1:1") && m.contains("--url"),
            "{m}"
        );
    }
}

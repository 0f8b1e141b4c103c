//! A small blocking client for the management endpoint, written straight onto a TCP socket so
//! a test controls every byte of the request: method, path, any headers (a foreign `Host`
//! included: the default `Host` is only added when the test sets none), and the body. One
//! connection per request (`Connection: close`); chunked responses are decoded.
//!
//! [`Mgmt`] adds what nearly every management test needs: the tokens from `state_dir`,
//! waiting for the endpoint to answer, Jolokia requests with the control token, and an
//! `/events` subscription ([`EventStream`]) read on its own thread.

use serde_json::{json, Value};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::http1::{read_body, read_chunk, read_head, RawResponse};

/// A response read completely.
pub type Reply = RawResponse;

/// One request, built up and then sent with [`RawRequest::send`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl RawRequest {
    pub fn new(addr: SocketAddr, method: &str, path: &str) -> Self {
        RawRequest {
            addr,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// `Authorization: Basic base64(user:password)`.
    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.header("Authorization", &format!("Basic {encoded}"))
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, v: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(serde_json::to_vec(v).expect("json"))
    }

    /// Limit for connecting, writing and reading the whole response (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    fn head(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        let has = |n: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has("content-length")
            && !has("transfer-encoding")
            && (!self.body.is_empty() || self.method != "GET")
        {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        if !has("connection") {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Sends the request and reads the whole response.
    pub fn try_send(self) -> Result<Reply, String> {
        let what = format!("{} http://{}{}", self.method, self.addr, self.path);
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout)
            .map_err(|e| format!("{what}: connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|_| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| format!("{what}: {e}"))?;
        stream
            .write_all(&self.head())
            .map_err(|e| format!("{what}: writing the head: {e}"))?;
        // The server may answer (413) and close before the whole body is written.
        let body_written = stream.write_all(&self.body);
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).map_err(|e| match &body_written {
            Err(w) => format!("{what}: no status line ({e}) (writing the body failed: {w})"),
            Ok(()) => format!("{what}: no status line ({e})"),
        })?;
        let (body, _) = read_body(&mut reader, &head, self.method == "HEAD")
            .map_err(|e| format!("{what}: reading the body: {e}"))?;
        Ok(Reply {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Like [`RawRequest::try_send`], panicking on transport errors.
    pub fn send(self) -> Reply {
        self.try_send().unwrap_or_else(|e| panic!("{e}"))
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The management endpoint of one running `esb`, with its tokens.
#[derive(Debug, Clone)]
pub struct Mgmt {
    pub addr: SocketAddr,
    pub control: String,
    pub monitor: String,
    pub state_dir: PathBuf,
}

/// Reads a token file, waiting for esb to create it.
fn read_token(path: &Path, limit: Duration) -> String {
    crate::wait_for(
        &format!("token file {}", path.display()),
        limit,
        || {
            std::fs::read_to_string(path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        },
        String::new,
    )
}

impl Mgmt {
    /// Waits until the endpoint on 127.0.0.1:`port` answers `/health` and the tokens exist
    /// in `state_dir`.
    pub fn connect(port: u16, state_dir: &Path) -> Mgmt {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        crate::wait_until(
            "the management endpoint to answer /health",
            Duration::from_secs(15),
            || {
                RawRequest::new(addr, "GET", "/health")
                    .timeout(Duration::from_secs(2))
                    .try_send()
                    .is_ok()
            },
        );
        Mgmt {
            addr,
            control: read_token(&state_dir.join("control.token"), Duration::from_secs(5)),
            monitor: read_token(&state_dir.join("monitor.token"), Duration::from_secs(5)),
            state_dir: state_dir.to_owned(),
        }
    }

    /// The endpoint of a [`crate::TempConf`] whose `esb` was started.
    pub fn of(conf: &crate::TempConf) -> Mgmt {
        Self::connect(conf.mgmt_port(), &conf.state_dir())
    }

    /// A request without credentials.
    pub fn request(&self, method: &str, path: &str) -> RawRequest {
        RawRequest::new(self.addr, method, path)
    }

    /// A request with the control token.
    pub fn control(&self, method: &str, path: &str) -> RawRequest {
        self.request(method, path).bearer(&self.control)
    }

    /// A request with the monitor token.
    pub fn monitor(&self, method: &str, path: &str) -> RawRequest {
        self.request(method, path).bearer(&self.monitor)
    }

    /// POSTs a Jolokia request (or bulk array) with the control token; the whole reply.
    pub fn post(&self, body: &Value) -> Reply {
        self.control("POST", "/jolokia").json(body).send()
    }

    /// POSTs a Jolokia request with the control token and returns the envelope
    /// (HTTP status not checked: errors travel in the envelope).
    pub fn jolokia(&self, body: &Value) -> Value {
        self.post(body).json()
    }

    /// `exec` and the envelope.
    pub fn exec(&self, mbean: &str, operation: &str, arguments: Value) -> Value {
        self.jolokia(&json!({
            "type": "exec", "mbean": mbean, "operation": operation, "arguments": arguments,
        }))
    }

    /// `exec` that must succeed (envelope status 200); its value.
    pub fn exec_ok(&self, mbean: &str, operation: &str, arguments: Value) -> Value {
        let env = self.exec(mbean, operation, arguments);
        assert_eq!(
            env["status"], 200,
            "exec {operation} on {mbean} failed: {env:#}"
        );
        env.get("value").cloned().unwrap_or(Value::Null)
    }

    /// `read` of one attribute that must succeed; its value.
    pub fn read(&self, mbean: &str, attribute: &str) -> Value {
        let env = self.jolokia(&json!({"type": "read", "mbean": mbean, "attribute": attribute}));
        assert_eq!(
            env["status"], 200,
            "read {mbean} {attribute} failed: {env:#}"
        );
        env["value"].clone()
    }

    /// `GET /health` without credentials.
    pub fn health(&self) -> Reply {
        self.request("GET", "/health").send()
    }

    /// Subscribes to `/events` (monitor token), optionally resuming after `last_event_id`.
    pub fn events(&self, last_event_id: Option<u64>) -> EventStream {
        EventStream::open(self.addr, &self.monitor, last_event_id)
    }

    /// The lines of `state_dir/audit.log`, parsed.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
            .collect()
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// A live `/events` subscription read on its own thread; the thread ends when the server
/// closes the stream (e.g. when esb stops).
pub struct EventStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    rx: mpsc::Receiver<SseEvent>,
}

impl EventStream {
    pub fn open(addr: SocketAddr, token: &str, last_event_id: Option<u64>) -> EventStream {
        let mut req = RawRequest::new(addr, "GET", "/events")
            .bearer(token)
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", &id.to_string());
        }
        let mut stream = TcpStream::connect(addr).expect("connect to /events");
        stream
            .write_all(&req.head())
            .expect("write /events request");
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).expect("read /events response head");
        let (tx, rx) = mpsc::channel();
        let chunked = head.chunked();
        std::thread::Builder::new()
            .name("sse-reader".into())
            .spawn(move || read_events(reader, chunked, tx))
            .expect("spawn the SSE reader");
        EventStream {
            status: head.status,
            headers: head.headers,
            rx,
        }
    }

    /// The next event, or `None` if none arrives within `limit`.
    pub fn next(&self, limit: Duration) -> Option<SseEvent> {
        self.rx.recv_timeout(limit).ok()
    }

    /// Reads events until one satisfies `pred` (panics after `limit`, listing what came).
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&SseEvent) -> bool,
    ) -> SseEvent {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(e) => seen.push(e),
                Err(_) => panic!("no event {what} within {limit:?}; received: {seen:#?}"),
            }
        }
    }

    /// Every event that arrives until none has come for `quiet`.
    pub fn drain(&self, quiet: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.rx.recv_timeout(quiet) {
            out.push(e);
        }
        out
    }
}

fn read_events(mut reader: BufReader<TcpStream>, chunked: bool, tx: mpsc::Sender<SseEvent>) {
    let mut text = String::new();
    loop {
        let more = if chunked {
            match read_chunk(&mut reader) {
                Ok(Some(c)) => c,
                _ => return,
            }
        } else {
            let mut buf = vec![0; 4096];
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
            }
        };
        text.push_str(&String::from_utf8_lossy(&more));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some(e) = parse_event(&block) {
                if tx.send(e).is_err() {
                    return;
                }
            }
        }
    }
}

/// Parses one event block; comments and `retry:`-only blocks give `None`.
fn parse_event(block: &str) -> Option<SseEvent> {
    let mut e = SseEvent {
        id: None,
        event: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => e.id = value.parse().ok(),
            "event" => e.event = Some(value.to_owned()),
            "data" => {
                if has_data {
                    e.data.push('\n');
                }
                e.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn sse_blocks_parse() {
        let e = parse_event("id: 7\nevent: unit_activated\ndata: {\"a\":1}\n\n").unwrap();
        assert_eq!(e.id, Some(7));
        assert_eq!(e.event.as_deref(), Some("unit_activated"));
        assert_eq!(e.data, "{\"a\":1}");
        assert!(parse_event(": keep-alive\n\n").is_none());
        assert!(parse_event(": connected\nretry: 1000\n\n").is_none());
    }
}

//! A fake management endpoint for tests: answers Jolokia bulk POSTs with a handler per request
//! and `/events` with canned server-sent events, on an ephemeral loopback port. It records
//! every request so tests can assert round trips. HTTP/1.1 with keep-alive, nothing more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::conn::client::ClientConfig;
use crate::conn::token::TokenSpec;
use crate::exec::executor::Executor;
use crate::Client;

type Handler = dyn Fn(&Value) -> Value + Send + Sync;

/// A running fake server.
pub struct Fake {
    pub url: String,
    /// Every POST body received, in order (each a JSON array of requests).
    pub posts: Arc<Mutex<Vec<Value>>>,
}

/// The token the fake accepts.
pub const TOKEN: &str = "test-token";

impl Fake {
    /// Starts a server answering each Jolokia request with `handler(request)` (an envelope),
    /// and `/events…` with `events` (raw SSE text).
    pub fn start(events: &str, handler: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let posts = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let events = events.to_string();
        let p = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (h, p, ev) = (handler.clone(), p.clone(), events.clone());
                std::thread::spawn(move || serve(stream, &*h, &p, &ev));
            }
        });
        Fake { url, posts }
    }

    /// An executor talking to this fake with the right token.
    pub fn executor(&self) -> Executor {
        self.executor_with(TokenSpec::Given(TOKEN.into()))
    }

    pub fn executor_with(&self, token: TokenSpec) -> Executor {
        Executor::new(Client::new(ClientConfig {
            url: self.url.clone(),
            token,
            timeout: std::time::Duration::from_secs(5),
        }))
    }

    /// The requests of every POST so far, flattened.
    pub fn requests(&self) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .collect()
    }

    pub fn post_count(&self) -> usize {
        self.posts.lock().unwrap().len()
    }
}

fn serve(stream: TcpStream, handler: &Handler, posts: &Mutex<Vec<Value>>, events: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "authorization" => auth = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        if auth != format!("Bearer {TOKEN}") {
            let b = r#"{"error":"authentication required: send Authorization: Bearer <token>"}"#;
            let _ = write!(
                out,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
                b.len()
            );
            continue;
        }
        if path.starts_with("/events") {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{events}",
                events.len()
            );
            return;
        }
        let reqs: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        posts.lock().unwrap().push(reqs.clone());
        let resps: Vec<Value> = reqs
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let mut env = handler(r);
                env["request"] = r.clone();
                env
            })
            .collect();
        let b = serde_json::to_string(&resps).unwrap();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
            b.len()
        );
    }
}

/// A success envelope.
pub fn ok(value: Value) -> Value {
    json!({ "value": value, "status": 200, "timestamp": 1 })
}

/// An error envelope as Jolokia words it.
pub fn err(status: u16, error_type: &str, message: &str) -> Value {
    json!({ "status": status, "error_type": error_type, "error": format!("{error_type} : {message}") })
}

/// 404 for an unknown MBean.
pub fn not_found(mbean: &str) -> Value {
    err(404, "javax.management.InstanceNotFoundException", mbean)
}

/// Shorthands to match requests: `(type, mbean, operation or attribute)`.
pub fn key(r: &Value) -> (String, String, String) {
    let s = |k: &str| match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let third = if s("type") == "exec" {
        s("operation")
    } else {
        s("attribute")
    };
    (s("type"), s("mbean"), third)
}

//! The message a sequence works on: method, path, query, headers, a payload that streams
//! until a step needs it, properties set by steps, and (for out-sequences) a status.
//! The JSON view of the body is parsed at most once.

use crate::body::{Payload, ReadError};
use http::{HeaderMap, Method, StatusCode, Uri};
use std::borrow::Cow;
use std::sync::OnceLock;

pub struct Message {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub payload: Payload,
    /// Set on responses (out-sequence) and by `call`.
    pub status: Option<StatusCode>,
    props: Vec<(String, String)>,
    json: OnceLock<Option<serde_json::Value>>,
}

impl Message {
    pub fn new(method: Method, uri: Uri, headers: HeaderMap, payload: Payload) -> Self {
        Message {
            method,
            uri,
            headers,
            payload,
            status: None,
            props: Vec::new(),
            json: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let q = self.uri.query()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Owned(v.into_owned()))
    }

    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_prop(&mut self, name: &str, value: String) {
        self.props.retain(|(k, _)| k != name);
        self.props.push((name.to_owned(), value));
    }

    /// The body as JSON, if it was read and parses.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| {
                self.payload
                    .bytes()
                    .and_then(|b| serde_json::from_slice(b).ok())
            })
            .as_ref()
    }

    pub async fn read_body(&mut self, limit: u64) -> Result<(), ReadError> {
        self.payload.read(limit).await?;
        Ok(())
    }

    /// Replaces the body (the JSON view is recomputed on next use).
    pub fn set_body(&mut self, bytes: bytes::Bytes, content_type: Option<http::HeaderValue>) {
        self.payload = Payload::Full(bytes);
        self.json = OnceLock::new();
        self.headers.remove(http::header::CONTENT_LENGTH);
        self.headers.remove(http::header::TRANSFER_ENCODING);
        if let Some(ct) = content_type {
            self.headers.insert(http::header::CONTENT_TYPE, ct);
        }
    }
}

//! The message a sequence works on: method, path, query, headers, a payload that streams
//! until a step needs it, properties set by steps, and (for out-sequences) a status.
//! JSON pointers into the body are resolved on its bytes ([`crate::json`]).

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
    /// The body's JSON top level, indexed on first use (`None`: not JSON).
    json: OnceLock<Option<crate::json::Index>>,
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

    /// The value a JSON pointer names in the body, if the body was read and is JSON.
    pub fn json_pointer(&self, pointer: &str) -> Option<&serde_json::value::RawValue> {
        let body = self.payload.bytes()?;
        let index = self
            .json
            .get_or_init(|| crate::json::Index::build(body))
            .as_ref()?;
        crate::json::pointer_in(body, index, pointer)
    }

    pub async fn read_body(&mut self, limit: u64) -> Result<(), ReadError> {
        self.payload.read(limit).await?;
        Ok(())
    }

    /// Replaces the body.
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

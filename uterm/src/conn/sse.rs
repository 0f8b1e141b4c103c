//! The `/events` and tap streams: the server-sent-event wire format (a line parser and an
//! iterator over a response body) and the [`Event`] one message of `/events` carries.

use std::io::{BufRead, BufReader};

use deployments::protocol::event::EventKind;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::conn::error::ClientError;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    /// The `event:` field (`message` when absent).
    pub event: String,
    pub data: String,
}

/// Line-by-line parser of `text/event-stream` (fields `id`, `event`, `data`; comments and
/// `retry` ignored); an event is complete at a blank line.
#[derive(Debug, Default)]
pub struct SseParser {
    cur: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Feeds one line (without its line ending); returns an event when `line` completes one.
    pub fn feed(&mut self, line: &str) -> Option<SseEvent> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if !self.has_data && self.cur.event.is_empty() {
                self.cur = SseEvent::default();
                return None;
            }
            let mut ev = std::mem::take(&mut self.cur);
            self.has_data = false;
            if ev.event.is_empty() {
                ev.event = "message".into();
            }
            return Some(ev);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.cur.id = Some(value.to_string()),
            "event" => self.cur.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.cur.data.push('\n');
                }
                self.cur.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

/// An open `/events` stream.
pub struct EventStream {
    url: String,
    reader: BufReader<Box<dyn std::io::Read + Send>>,
    parser: SseParser,
}

impl EventStream {
    /// An event stream over any reader (tests, recorded streams).
    pub fn from_reader(url: &str, r: Box<dyn std::io::Read + Send>) -> EventStream {
        EventStream {
            url: url.to_string(),
            reader: BufReader::new(r),
            parser: SseParser::default(),
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<SseEvent, ClientError>;

    /// The next event; `None` when the server closed the stream.
    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return self.parser.feed("").map(Ok),
                Ok(_) => {
                    if let Some(ev) = self.parser.feed(line.trim_end_matches('\n')) {
                        return Some(Ok(ev));
                    }
                }
                Err(e) => {
                    return Some(Err(ClientError::Read {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }))
                }
            }
        }
    }
}

/// One event from `/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub kind: String,
    /// The event object (`id`, `time`, `type` and fields).
    pub data: Value,
}

impl Event {
    /// The event as one JSON object (with `id` and `type` filled in from the SSE fields when
    /// the data lacks them).
    pub fn to_json(&self) -> Value {
        let mut v = match &self.data {
            Value::Object(m) => Value::Object(m.clone()),
            other => json!({ "data": other }),
        };
        if let Value::Object(m) = &mut v {
            if !m.contains_key("type") {
                m.insert("type".into(), json!(self.kind));
            }
            if let (false, Some(id)) = (m.contains_key("id"), &self.id) {
                m.insert(
                    "id".into(),
                    id.parse::<u64>().map(Value::from).unwrap_or(json!(id)),
                );
            }
        }
        v
    }
}

impl Event {
    /// The event as the protocol types it; `None` for a kind this client does not know.
    pub fn typed(&self) -> Option<EventKind> {
        EventKind::deserialize(&self.data).ok()
    }

    /// When it happened (ms since the epoch), if the server said.
    pub fn time(&self) -> Option<u64> {
        #[derive(Deserialize)]
        struct At {
            time: Option<u64>,
        }
        At::deserialize(&self.data).ok().and_then(|a| a.time)
    }

    /// The kind's name (`unit_activated`): the protocol's, else the SSE `event:` field.
    pub fn name(&self) -> &str {
        match self.typed() {
            Some(k) => k.name(),
            None => &self.kind,
        }
    }

    /// True for the event a stopping server sends last.
    pub fn is_server_stopping(&self) -> bool {
        matches!(self.typed(), Some(EventKind::ServerStopping))
    }
}

impl From<SseEvent> for Event {
    /// The event of an SSE message; data that is not JSON is kept as a string.
    fn from(sse: SseEvent) -> Event {
        let data = serde_json::from_str(&sse.data).unwrap_or(Value::String(sse.data));
        Event {
            id: sse.id,
            kind: sse.event,
            data,
        }
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;

//! Events of the server (`/events`): the server-sent-event wire format (parser and stream),
//! the [`Event`] type, and their rendering as one line each (errors of a rejected deploy on
//! the lines below).

use std::io::{BufRead, BufReader};

use deployments::protocol::ObjectName;
use serde_json::{json, Value};

use crate::conn::client::ClientError;
use crate::present::output::{cell, compact, millis, time_of_day, Block, Line, Output, Span, Tone};
use crate::present::report::{diff_summary, errors_lines};

// ---------------------------------------------------------------------------------------------
// Server-sent events
// ---------------------------------------------------------------------------------------------

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

/// The lines of one event: `12:03:04.123 unit_activated orders revision 4 …`, then errors.
/// A title for one event, as people say it: `Deploy rejected: orders (event 12)`.
pub fn event_title(ev: &Event) -> String {
    let d = &ev.data;
    let kind = d.get("type").and_then(Value::as_str).unwrap_or(&ev.kind);
    let f = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    let what = match kind {
        "server_started" => "Server started".to_string(),
        "server_stopping" => "Server stopping".to_string(),
        "unit_activated" => "Unit activated".to_string(),
        "unit_unchanged" => "Unit unchanged".to_string(),
        "unit_rejected" => "Deploy rejected".to_string(),
        "unit_failed" => "Unit failed".to_string(),
        "unit_unloaded" => "Unit unloaded".to_string(),
        "revision_drained" => "Revision drained".to_string(),
        "state_changed" => "State changed".to_string(),
        "hot_deploy" => "Hot deploy switched".to_string(),
        other => {
            let words = other.replace('_', " ");
            let mut c = words.chars();
            match c.next() {
                Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
                None => "Event".to_string(),
            }
        }
    };
    let subject = f("unit")
        .or_else(|| f("object").map(|o| object_label(&o)))
        .or_else(|| f("name"));
    let mut t = match subject {
        Some(s) => format!("{what}: {s}"),
        None => what,
    };
    if let Some(id) = &ev.id {
        t.push_str(&format!(" (event {id})"));
    }
    t
}

pub fn event_lines(ev: &Event) -> Vec<Line> {
    let d = &ev.data;
    let time = d
        .get("time")
        .and_then(Value::as_u64)
        .map(time_of_day)
        .unwrap_or_else(|| " ".repeat(12));
    let kind = d
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(&ev.kind)
        .to_string();
    let f = |k: &str| cell(d.get(k));
    let (text, tone) = match kind.as_str() {
        "server_started" => (format!("server {} started", f("name")), Tone::Good),
        "server_stopping" => ("server stopping".to_string(), Tone::Warn),
        "unit_activated" => {
            let mut t = format!("{} revision {}", f("unit"), f("revision"));
            if let Some(l) = d.get("label").and_then(Value::as_str) {
                t.push_str(&format!(" ({l})"));
            }
            if let Some(ms) = d.get("duration_ms").and_then(Value::as_f64) {
                t.push_str(&format!(" in {}", millis(ms)));
            }
            match d.get("changes") {
                Some(Value::String(c)) if !c.is_empty() => t.push_str(&format!(", {c}")),
                Some(c @ Value::Object(_)) => {
                    if let Some(sum) = diff_summary(c) {
                        t.push_str(&format!(", {sum}"));
                    }
                }
                _ => {}
            }
            if d.get("degraded").and_then(Value::as_bool) == Some(true) {
                t.push_str(", degraded (last-good)");
            }
            (t, Tone::Good)
        }
        "unit_unchanged" => (
            format!("{} revision {} unchanged", f("unit"), f("revision")),
            Tone::Plain,
        ),
        // The row says why: the first error's message (all of them follow below).
        "unit_rejected" | "unit_failed" => {
            let first = match d.get("errors") {
                Some(Value::Array(e)) => e.first().map(|e| match e {
                    Value::String(s) => s.clone(),
                    e => {
                        let msg = cell(e.get("message"));
                        match e.get("element").and_then(Value::as_str) {
                            Some(el) => format!("{el}: {msg}"),
                            None => msg,
                        }
                    }
                }),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            match first {
                Some(m) => (format!("{}: {m}", f("unit")), Tone::Bad),
                None => (f("unit"), Tone::Bad),
            }
        }
        "unit_unloaded" => (
            format!("{} revision {} unloaded", f("unit"), f("revision")),
            Tone::Warn,
        ),
        "revision_drained" => match f("reason").as_str() {
            reason @ ("timeout" | "cancelled") => (
                format!(
                    "{} revision {} drained ({reason}: {} request(s) ended with 503)",
                    f("unit"),
                    f("revision"),
                    f("ended")
                ),
                Tone::Warn,
            ),
            _ => (
                format!(
                    "{} revision {} drained ({} in flight left)",
                    f("unit"),
                    f("revision"),
                    f("in_flight_left")
                ),
                Tone::Plain,
            ),
        },
        "state_changed" => (
            format!("{} → {}", object_label(&f("object")), f("state")),
            Tone::of_state(&f("state")),
        ),
        "hot_deploy" => (
            format!(
                "hot deploy {}",
                if d.get("enabled").and_then(Value::as_bool) == Some(true) {
                    "on"
                } else {
                    "off"
                }
            ),
            Tone::Plain,
        ),
        _ => {
            let mut rest = d.clone();
            if let Value::Object(m) = &mut rest {
                for k in ["id", "time", "type"] {
                    m.remove(k);
                }
            }
            (compact(&rest, 200), Tone::Plain)
        }
    };
    let kind_tone = match tone {
        Tone::Bad | Tone::Warn | Tone::Good => tone,
        _ => Tone::Dim,
    };
    let mut lines = vec![vec![
        Span::new(time, Tone::Dim),
        Span::plain("  "),
        Span::new(format!("{kind:<17}"), kind_tone),
        Span::plain(" "),
        Span::plain(text),
    ]];
    if matches!(kind.as_str(), "unit_rejected" | "unit_failed") {
        lines.extend(errors_lines(d.get("errors")));
    }
    lines
}

/// A bean name as people say it: `esb:name=list,type=Proxy,unit=orders` → `proxy orders/list`
/// (anything after the name, like ` address URL`, is kept).
pub fn object_label(object: &str) -> String {
    let (bean, rest) = match object.split_once(' ') {
        Some((b, r)) => (b, format!(" {r}")),
        None => (object, String::new()),
    };
    let Ok(name) = ObjectName::parse(bean) else {
        return object.to_string();
    };
    let label = match (name.get("type"), name.get("unit"), name.get("name")) {
        (Some("Server"), _, _) => "server".to_string(),
        (Some(t), Some(u), Some(n)) => format!("{} {u}/{n}", t.to_lowercase()),
        (Some(t), None, Some(n)) => format!("{} {n}", t.to_lowercase()),
        _ => return object.to_string(),
    };
    format!("{label}{rest}")
}

/// `events`: recent events.
pub fn events(evs: &[Event]) -> Output {
    let json = Value::Array(evs.iter().map(Event::to_json).collect());
    let lines: Vec<Line> = if evs.is_empty() {
        vec![vec![Span::new("no events", Tone::Dim)]]
    } else {
        evs.iter().flat_map(event_lines).collect()
    };
    Output::new(json).with(Block::Lines(lines))
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
#[path = "event_tests.rs"]
mod tests;

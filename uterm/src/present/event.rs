//! Events of the server (`/events`) as people read them: one line each (the errors of a
//! rejected deploy on the lines below), a title for one event, the list `events` prints.

use deployments::protocol::ObjectName;
use serde_json::Value;

use crate::conn::sse::Event;
use crate::present::output::{cell, compact, millis, time_of_day, Block, Line, Output, Span, Tone};
use crate::present::report::{diff_summary, errors_lines};

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

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;

//! Events of the server (`/events`) as people read them: one line each (the errors of a
//! rejected deploy on the lines below), a title for one event, the list `events` prints.

use deployments::protocol::event::EventKind;
use deployments::protocol::{Bean, ObjectName};
use serde_json::Value;

use crate::conn::sse::Event;
use crate::present::output::{compact, millis, time_of_day, Block, Line, Output, Span, Tone};
use crate::present::report::errors_lines;

/// A title for one event, as people say it: `Deploy rejected: orders (event 12)`.
pub fn event_title(ev: &Event) -> String {
    let kind = ev.typed();
    let what = match &kind {
        Some(EventKind::ServerStarted { .. }) => "Server started".to_string(),
        Some(EventKind::ServerStopping) => "Server stopping".to_string(),
        Some(EventKind::UnitActivated { .. }) => "Unit activated".to_string(),
        Some(EventKind::UnitUnchanged { .. }) => "Unit unchanged".to_string(),
        Some(EventKind::UnitRejected { .. }) => "Deploy rejected".to_string(),
        Some(EventKind::UnitFailed { .. }) => "Unit failed".to_string(),
        Some(EventKind::UnitUnloaded { .. }) => "Unit unloaded".to_string(),
        Some(EventKind::RevisionDrained { .. }) => "Revision drained".to_string(),
        Some(EventKind::StateChanged { .. }) => "State changed".to_string(),
        Some(EventKind::HotDeploy { .. }) => "Hot deploy switched".to_string(),
        Some(EventKind::ClusterChange { .. }) => "Cluster change".to_string(),
        Some(EventKind::ClusterStore { .. }) => "Cluster store".to_string(),
        Some(EventKind::GuardTripped { .. }) | None => {
            let words = ev.name().replace('_', " ");
            let mut c = words.chars();
            match c.next() {
                Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
                None => "Event".to_string(),
            }
        }
    };
    let subject = match &kind {
        Some(EventKind::StateChanged { object, .. }) => Some(object_label(object)),
        Some(EventKind::ServerStarted { name }) => Some(name.clone()),
        Some(k) => k.unit().map(str::to_string),
        None => None,
    };
    let mut t = match subject {
        Some(s) => format!("{what}: {s}"),
        None => what,
    };
    if let Some(id) = &ev.id {
        t.push_str(&format!(" (event {id})"));
    }
    t
}

/// The text of one event and its tone; `None` for a kind shown as its fields.
fn event_text(kind: &EventKind) -> Option<(String, Tone)> {
    Some(match kind {
        EventKind::ServerStarted { name } => (format!("server {name} started"), Tone::Good),
        EventKind::ServerStopping => ("server stopping".to_string(), Tone::Warn),
        EventKind::UnitActivated {
            unit,
            revision,
            label,
            duration_ms,
            changes,
            degraded,
            ..
        } => {
            let mut t = format!("{unit} revision {revision}");
            if let Some(l) = label {
                t.push_str(&format!(" ({l})"));
            }
            if *duration_ms > 0.0 {
                t.push_str(&format!(" in {}", millis(*duration_ms)));
            }
            if !changes.is_empty() {
                t.push_str(&format!(", {changes}"));
            }
            if *degraded {
                t.push_str(", degraded (last-good)");
            }
            (t, Tone::Good)
        }
        EventKind::UnitUnchanged { unit, revision } => {
            (format!("{unit} revision {revision} unchanged"), Tone::Plain)
        }
        // The row says why: the first error's message (all of them follow below).
        EventKind::UnitRejected { unit, errors } | EventKind::UnitFailed { unit, errors } => {
            match errors.first() {
                Some(e) => {
                    let why = match &e.element {
                        Some(el) => format!("{el}: {}", e.message),
                        None => e.message.clone(),
                    };
                    (format!("{unit}: {why}"), Tone::Bad)
                }
                None => (unit.clone(), Tone::Bad),
            }
        }
        EventKind::UnitUnloaded { unit, revision } => {
            (format!("{unit} revision {revision} unloaded"), Tone::Warn)
        }
        EventKind::RevisionDrained {
            unit,
            revision,
            in_flight_left,
            ended,
            reason,
        } => match reason.as_str() {
            "timeout" | "cancelled" => (
                format!(
                    "{unit} revision {revision} drained ({reason}: {ended} request(s) ended with 503)"
                ),
                Tone::Warn,
            ),
            _ => (
                format!("{unit} revision {revision} drained ({in_flight_left} in flight left)"),
                Tone::Plain,
            ),
        },
        EventKind::StateChanged { object, state } => (
            format!("{} → {state}", object_label(object)),
            Tone::of_state(state),
        ),
        EventKind::HotDeploy { enabled } => (
            format!("hot deploy {}", if *enabled { "on" } else { "off" }),
            Tone::Plain,
        ),
        EventKind::ClusterChange {
            action,
            unit,
            revision,
            accepted_by,
        } => (
            format!("cluster {action} {unit} revision {revision}, accepted by {accepted_by}"),
            Tone::Good,
        ),
        EventKind::ClusterStore { state, detail } => (
            match detail {
                Some(d) => format!("cluster store {state}: {d}"),
                None => format!("cluster store {state}"),
            },
            if state == "up" { Tone::Good } else { Tone::Bad },
        ),
        EventKind::GuardTripped { .. } => return None,
    })
}

/// The lines of one event: `12:03:04.123 unit_activated orders revision 4 …`, then errors.
pub fn event_lines(ev: &Event) -> Vec<Line> {
    let time = ev.time().map(time_of_day).unwrap_or_else(|| " ".repeat(12));
    let typed = ev.typed();
    let (text, tone) = match typed.as_ref().and_then(event_text) {
        Some(text) => text,
        None => {
            let mut rest = ev.data.clone();
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
        Span::new(format!("{:<17}", ev.name()), kind_tone),
        Span::plain(" "),
        Span::plain(text),
    ]];
    if let Some(EventKind::UnitRejected { errors, .. } | EventKind::UnitFailed { errors, .. }) =
        &typed
    {
        lines.extend(errors_lines(errors));
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
    let Some(bean) = Bean::of_type(&name) else {
        return object.to_string();
    };
    let kind = bean.kind().type_name().to_lowercase();
    let unit = bean
        .unit()
        .filter(|u| bean.kind().in_unit() && !u.is_empty());
    let label = match (&bean, unit, bean.name().filter(|n| !n.is_empty())) {
        (Bean::Server, _, _) => "server".to_string(),
        (_, Some(u), Some(n)) => format!("{kind} {u}/{n}"),
        (_, None, Some(n)) => format!("{kind} {n}"),
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

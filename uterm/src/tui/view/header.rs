//! The header (server name, state, uptime, version, connection state; totals and the server's
//! request rate, or why the connection is down) and the tabs of the views.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use serde_json::Value;

use super::style;
use crate::present::output::{uptime, Tone};
use crate::tui::action::View;
use crate::tui::app::{App, Conn};
use crate::tui::text::{count, rate, spark};

fn secs(ms: u64) -> String {
    format!("{}s", ms.div_ceil(1000))
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let s = app.snapshot.as_ref();
    let attr = |k: &str| s.and_then(|s| s.server.get(k));
    let text = |k: &str| attr(k).and_then(Value::as_str).unwrap_or("").to_string();
    let num = |k: &str| attr(k).and_then(Value::as_f64);
    let dim = style::tone(Tone::Dim);

    let mut l1: Vec<TSpan> = vec![TSpan::raw(" ")];
    if app.opts.read_only {
        l1.push(TSpan::styled(
            "READ-ONLY",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
        l1.push(TSpan::raw("  "));
    }
    match s {
        Some(_) => {
            l1.push(TSpan::styled(text("Name"), style::title()));
            l1.push(TSpan::raw("  "));
            l1.push(TSpan::styled(text("State"), style::state(&text("State"))));
            if let Some(up) = num("UptimeSeconds") {
                l1.push(TSpan::raw(format!("  up {}", uptime(up as u64))));
            }
            if !text("Version").is_empty() {
                l1.push(TSpan::styled(format!("  v{}", text("Version")), dim));
            }
        }
        None => l1.push(TSpan::styled("uterm", style::title())),
    }
    l1.push(TSpan::styled("  │  ", dim));
    let (mark, word, tone) = match &app.conn {
        Conn::Connecting => ("◌", "connecting".to_string(), Tone::Dim),
        Conn::Up => ("●", "connected".to_string(), Tone::Good),
        Conn::Down { retry_at_ms, .. } => {
            let retry = retry_at_ms
                .map(|t| format!(", retry in {}", secs(t.saturating_sub(app.now_ms))))
                .unwrap_or_default();
            ("✖", format!("disconnected{retry}"), Tone::Bad)
        }
    };
    l1.push(TSpan::styled(format!("{mark} {word}"), style::tone(tone)));
    l1.push(TSpan::styled(format!("  {}", app.opts.url), dim));

    let l2: Vec<TSpan> = match (&app.conn, s) {
        (Conn::Down { message, .. }, snap) => {
            let mut v = vec![TSpan::raw(" ")];
            if let Some(s) = snap {
                let age = secs(app.now_ms.saturating_sub(s.taken_ms));
                v.push(TSpan::styled(
                    format!("data from {age} ago · "),
                    style::tone(Tone::Warn),
                ));
            }
            v.push(TSpan::styled(message.clone(), style::tone(Tone::Bad)));
            v
        }
        (_, None) => vec![],
        (_, Some(_)) => {
            let samples: Vec<f64> = app.server_rates.iter().copied().collect();
            let hot = match attr("HotDeploy").and_then(Value::as_bool) {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            };
            let kv = |k: &str, v: String| {
                vec![
                    TSpan::styled(format!("{k} "), dim),
                    TSpan::raw(v),
                    TSpan::raw("  "),
                ]
            };
            let mut v = vec![TSpan::raw(" ")];
            v.extend(kv("units", count(num("Units"))));
            v.extend(kv("proxies", count(num("Proxies"))));
            v.extend(kv("req/s", rate(num("RequestsPerSecond"))));
            v.push(TSpan::styled(
                spark(&samples, 10),
                Style::default().fg(Color::Cyan),
            ));
            v.push(TSpan::raw("  "));
            v.extend(kv("requests", count(num("Requests"))));
            let errors = num("Errors");
            v.push(TSpan::styled("errors ", dim));
            v.push(TSpan::styled(
                count(errors),
                style::tone(if errors.unwrap_or(0.0) > 0.0 {
                    Tone::Bad
                } else {
                    Tone::Plain
                }),
            ));
            v.push(TSpan::raw("  "));
            v.extend(kv("in flight", count(num("InFlight"))));
            v.extend(kv("hot deploy", hot.to_string()));
            v
        }
    };
    f.render_widget(Paragraph::new(vec![TLine::from(l1), TLine::from(l2)]), area);
}

pub fn tabs(f: &mut Frame, area: Rect, app: &App) {
    let (mark, tone) = match app.events_conn {
        Conn::Up => ("events live", Tone::Dim),
        Conn::Connecting => ("events connecting", Tone::Dim),
        Conn::Down { .. } => ("events reconnecting", Tone::Warn),
    };
    let right = format!("{mark} ");
    // The tabs spaced out; tighter (no event count, one space apart) when the events
    // mark would not fit beside them otherwise.
    let mut spans = tab_spans(app, false);
    let width = |spans: &[TSpan]| spans.iter().map(|s| s.width()).sum::<usize>();
    if width(&spans) + right.chars().count() > area.width as usize {
        spans = tab_spans(app, true);
    }
    let used = width(&spans);
    let pad = (area.width as usize).saturating_sub(used + right.chars().count());
    if pad > 0 {
        spans.push(TSpan::raw(" ".repeat(pad)));
        spans.push(TSpan::styled(right, style::tone(tone)));
    }
    f.render_widget(Paragraph::new(TLine::from(spans)), area);
}

fn tab_spans(app: &App, tight: bool) -> Vec<TSpan<'static>> {
    let mut spans = vec![TSpan::raw(" ")];
    let current = if app.drill.is_some() {
        None
    } else {
        Some(app.view)
    };
    for (i, v) in View::ALL.iter().enumerate() {
        let selected = Some(*v) == current;
        let text = match v {
            View::Events if !app.events.is_empty() && !tight => {
                format!("{} {} ({})", i + 1, v.title(), app.events.len())
            }
            _ => format!("{} {}", i + 1, v.title()),
        };
        let label = if tight && !selected {
            text
        } else {
            format!(" {text} ")
        };
        let st = if selected {
            style::selected().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(TSpan::styled(label, st));
        spans.push(TSpan::raw(" "));
    }
    spans
}

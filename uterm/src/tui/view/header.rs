//! The header (server name, state, uptime, version, connection state; totals and the server's
//! request rate, or why the connection is down) and the tabs of the views.

use deployments::protocol::attrs::ServerAttrs;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

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
    let srv: ServerAttrs = s
        .map(|s| crate::present::view::typed(&s.server))
        .unwrap_or_default();
    let num = |v: Option<u64>| count(v.map(|v| v as f64));
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
            l1.push(TSpan::styled(srv.name.clone(), style::title()));
            l1.push(TSpan::raw("  "));
            l1.push(TSpan::styled(srv.state.clone(), style::state(&srv.state)));
            l1.push(TSpan::raw(format!("  up {}", uptime(srv.uptime_seconds))));
            if !srv.version.is_empty() {
                l1.push(TSpan::styled(format!("  v{}", srv.version), dim));
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
            let hot = if srv.hot_deploy { "on" } else { "off" };
            let kv = |k: &str, v: String| {
                vec![
                    TSpan::styled(format!("{k} "), dim),
                    TSpan::raw(v),
                    TSpan::raw("  "),
                ]
            };
            let mut v = vec![TSpan::raw(" ")];
            let k = &srv.counters;
            v.extend(kv("units", num(Some(srv.units as u64))));
            v.extend(kv("proxies", num(Some(srv.proxies as u64))));
            v.extend(kv("req/s", rate(k.requests_per_second.map(|r| r.0))));
            v.push(TSpan::styled(
                spark(&samples, 10),
                Style::default().fg(Color::Cyan),
            ));
            v.push(TSpan::raw("  "));
            v.extend(kv("requests", num(k.requests)));
            v.push(TSpan::styled("errors ", dim));
            v.push(TSpan::styled(
                num(k.errors),
                style::tone(if k.errors.unwrap_or(0) > 0 {
                    Tone::Bad
                } else {
                    Tone::Plain
                }),
            ));
            v.push(TSpan::raw("  "));
            v.extend(kv("in flight", num(k.in_flight)));
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

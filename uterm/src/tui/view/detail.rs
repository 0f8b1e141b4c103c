//! The detail pane of the selection: the attributes an operator looks at for its kind
//! (addresses of an endpoint, notes and last errors of a unit, …) and a sparkline of its
//! recent request rate. Tall beside the table, a wrapped paragraph beside the sparkline when
//! it sits below it.

use deployments::protocol::attrs::{EndpointAttrs, ProxyAttrs, SequenceAttrs, UnitAttrs};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::style;
use crate::lang::kind::Kind;
use crate::present::output::{ago, micros, millis, short_hash, Tone};
use crate::tui::app::App;
use crate::tui::model::{Obj, RowKind};
use crate::tui::text::{count, rate};

type Field = (&'static str, TSpan<'static>);

fn plain(k: &'static str, v: impl Into<String>) -> Field {
    (k, TSpan::raw(v.into()))
}

fn fields(o: &Obj, app: &App) -> (Vec<Field>, Vec<TLine<'static>>) {
    let n = |k: &str| count(o.num(k));
    let lat = |k: &str| match o.num(k) {
        Some(us) if us > 0.0 => micros(us),
        _ => "-".into(),
    };
    // Requests, errors, in flight and latency of a proxy or endpoint.
    let traffic = || {
        [
            plain("requests", n("Requests")),
            plain("errors", n("Errors")),
            plain("in flight", n("InFlight")),
            plain(
                "p50 / p99",
                format!("{} / {}", lat("P50Micros"), lat("P99Micros")),
            ),
        ]
    };
    let state = (
        "state",
        TSpan::styled(o.state().to_string(), style::state(o.state())),
    );
    let mut extra: Vec<TLine> = Vec::new();
    let f: Vec<Field> = match o.kind {
        RowKind::Object(Kind::Unit) if o.not_loaded() => {
            extra.push(TLine::styled(
                "on disk, not loaded: l loads it, d shows what loading would add",
                style::tone(Tone::Dim),
            ));
            vec![state]
        }
        RowKind::Object(Kind::Unit) => unit_fields(o, app, state, &mut extra),
        RowKind::Object(Kind::Proxy) => {
            let p: ProxyAttrs = o.typed();
            let mut v = vec![
                state,
                plain("path", o.str("Path")),
                plain("methods", or(p.methods.join(","), "any")),
                plain("transports", or(p.transports.join(","), "all")),
                plain("endpoint", or(p.endpoint.unwrap_or_default(), "-")),
                plain("revision", format!("r{}", n("Revision"))),
            ];
            v.extend(traffic());
            v
        }
        RowKind::Object(Kind::Endpoint) => {
            for a in o.typed::<EndpointAttrs>().addresses {
                let st = a.state;
                extra.push(TLine::from(vec![
                    TSpan::styled(format!("{st:<11} "), style::state(&st)),
                    TSpan::raw(a.url),
                    TSpan::styled(
                        format!("  req {} err {}", a.requests, a.errors),
                        style::tone(Tone::Dim),
                    ),
                ]));
            }
            let mut v = vec![
                state,
                plain("strategy", o.str("Strategy")),
                plain(
                    "timeout",
                    o.num("TimeoutMillis").map(millis).unwrap_or_default(),
                ),
            ];
            v.extend(traffic());
            v
        }
        RowKind::Object(Kind::Transport) => vec![
            state,
            plain("kind", o.str("Kind")),
            plain("bind", o.str("Bind")),
            plain("requests", n("Requests")),
            plain("errors", n("Errors")),
            plain("in flight", n("InFlight")),
        ],
        RowKind::Object(Kind::Task) => {
            let last = match o.num("LastRun") {
                Some(t) if t > 0.0 => ago(t as u64, app.now_ms),
                _ => "never".into(),
            };
            let mut v = vec![
                state,
                plain(
                    "every",
                    o.num("EveryMillis").map(millis).unwrap_or_default(),
                ),
                plain("sequence", o.str("Sequence")),
                plain("runs", n("Runs")),
                plain("failures", n("Failures")),
                plain("last run", last),
            ];
            if !o.str("LastError").is_empty() {
                v.push((
                    "last error",
                    TSpan::styled(o.str("LastError").to_string(), style::tone(Tone::Bad)),
                ));
            }
            v
        }
        RowKind::Object(Kind::Sequence) => vec![
            plain("steps", n("Steps")),
            plain("kinds", o.typed::<SequenceAttrs>().step_kinds.join(",")),
        ],
        RowKind::Object(Kind::Consumer) => {
            let mut v = vec![
                state,
                plain("source", format!("{} {}", o.str("Kind"), o.str("Source"))),
                plain("received", n("Received")),
                plain("acked", n("Acked")),
                plain(
                    "recv/ack/s",
                    format!(
                        "{} / {}",
                        rate(o.rate()),
                        rate(o.num(crate::tui::model::ACKED_RATE))
                    ),
                ),
                plain("retried", n("Retried")),
                plain("dead-lettered", n("DeadLettered")),
                plain("redelivered", n("Redelivered")),
                plain("in flight", n("InFlight")),
                plain("queue depth", n("QueueDepth")),
            ];
            if !o.str("Reason").is_empty() {
                v.push((
                    "reason",
                    TSpan::styled(o.str("Reason").to_string(), style::tone(Tone::Warn)),
                ));
            }
            v
        }
        RowKind::Draining => vec![state, plain("in flight", n("InFlight"))],
    };
    (f, extra)
}

/// A loaded unit's fields; its last errors go to `extra`.
fn unit_fields(o: &Obj, app: &App, state: Field, extra: &mut Vec<TLine<'static>>) -> Vec<Field> {
    let n = |k: &str| count(o.num(k));
    let mut v = vec![
        state,
        plain("revision", format!("r{} {}", n("Revision"), o.str("Label"))),
        plain("hash", short_hash(o.str("Hash")).to_string()),
    ];
    if let Some(t) = o.num("DeployedAt").filter(|t| *t > 0.0) {
        let took = o.num("DeployMillis").map(millis).unwrap_or_default();
        v.push(plain(
            "deployed",
            format!("{} in {took}", ago(t as u64, app.now_ms)),
        ));
    }
    for (k, attr) in [
        ("proxies", "Proxies"),
        ("endpoints", "Endpoints"),
        ("tasks", "Tasks"),
    ] {
        v.push(plain(k, o.names(attr).len().to_string()));
    }
    v.push(plain("requests", n("Requests")));
    v.push(plain("errors", n("Errors")));
    v.push(plain("in flight", n("InFlight")));
    if !o.str("Origin").is_empty() {
        v.push(plain("origin", o.str("Origin").to_owned()));
    }
    let u: UnitAttrs = o.typed();
    for (on, note) in [
        (u.degraded, "degraded: serving its last-good copy"),
        (u.modified_on_disk, "modified on disk (d: diff, r: reload)"),
    ] {
        if on {
            v.push(("note", TSpan::styled(note, style::tone(Tone::Warn))));
        }
    }
    for r in u.draining {
        v.push((
            "draining",
            TSpan::styled(
                format!("r{} ({} in flight)", r.revision, r.in_flight),
                style::tone(Tone::Warn),
            ),
        ));
    }
    for e in u.last_errors {
        extra.push(TLine::styled(e.to_string(), style::tone(Tone::Bad)));
    }
    v
}

/// Fields in as many columns as the height needs (at least [`GRID_MIN`] wide, values cut to
/// fit), else one wrapped line.
fn grid(fields: Vec<Field>, area: Rect) -> Vec<TLine<'static>> {
    let dim = style::tone(Tone::Dim);
    let rows = (area.height as usize).max(1);
    let cols = fields.len().div_ceil(rows).max(1);
    let col_w = area.width as usize / cols;
    if fields.is_empty() || col_w < GRID_MIN {
        let mut spans = Vec::new();
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if i > 0 {
                spans.push(TSpan::styled("  ", dim));
            }
            spans.push(TSpan::styled(format!("{k} "), dim));
            spans.push(v);
        }
        return vec![TLine::from(spans)];
    }
    let rows = fields.len().div_ceil(cols);
    let key_w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let value_w = col_w.saturating_sub(key_w + 1).max(1);
    let mut lines = vec![TLine::default(); rows];
    for (i, (k, v)) in fields.into_iter().enumerate() {
        let mut text: String = v.content.chars().take(value_w).collect();
        if v.content.chars().count() > value_w {
            text.pop();
            text.push('…');
        }
        let l = &mut lines[i % rows];
        l.push_span(TSpan::styled(format!("{k:<key_w$}"), dim));
        l.push_span(TSpan::styled(format!("{text:<value_w$} "), v.style));
    }
    lines
}

/// Narrowest column of the field grid below the table.
const GRID_MIN: usize = 24;

fn or(s: String, default: &str) -> String {
    if s.is_empty() {
        default.to_string()
    } else {
        s
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let Some(o) = app.selected_obj() else {
        f.render_widget(Block::default().borders(Borders::ALL), area);
        return;
    };
    let title = match o.target() {
        Some(t) => format!(" {t} "),
        None => format!(
            " {} draining {} ",
            o.unit.clone().unwrap_or_default(),
            o.name
        ),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(TSpan::styled(title, style::title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (fields, extra) = fields(o, app);
    let samples = app.rate_history(&o.key());
    let has_rate = o.rate().is_some();
    let tall = inner.height >= 14;
    let spark_h = if has_rate {
        if tall {
            4
        } else {
            inner.height
        }
    } else {
        0
    };
    let [text_area, spark_area] = if tall {
        Layout::vertical([Constraint::Min(0), Constraint::Length(spark_h)]).areas(inner)
    } else {
        let w = if has_rate {
            (inner.width / 4).clamp(12, 32)
        } else {
            0
        };
        Layout::horizontal([Constraint::Min(0), Constraint::Length(w)]).areas(inner)
    };
    let dim = style::tone(Tone::Dim);
    let mut lines: Vec<TLine> = Vec::new();
    if tall {
        for (k, v) in fields {
            lines.push(TLine::from(vec![TSpan::styled(format!("{k:<11}"), dim), v]));
        }
    } else {
        lines.extend(grid(fields, text_area));
    }
    if !extra.is_empty() && tall {
        lines.push(TLine::from(""));
    }
    lines.extend(extra);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
    if has_rate && spark_area.height > 0 {
        let now = samples.last().copied();
        let max = samples.iter().copied().fold(0.0_f64, f64::max);
        let what = if o.kind == RowKind::Object(Kind::Consumer) {
            "recv/s"
        } else {
            "req/s"
        };
        let label = format!(" {what} {} max {}", rate(now), rate(Some(max)));
        let [l, s] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(spark_area);
        f.render_widget(Paragraph::new(TSpan::styled(label, dim)), l);
        // Sparkline bars are integers: hundredths of a request per second.
        let data: Vec<u64> = samples.iter().map(|v| (v * 100.0).round() as u64).collect();
        let take = data.len().min(s.width as usize);
        f.render_widget(
            Sparkline::default()
                .data(&data[data.len() - take..])
                .max(data.iter().copied().max().unwrap_or(0).max(1))
                .style(Style::default().fg(Color::Cyan)),
            s,
        );
    }
}

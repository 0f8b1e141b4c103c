//! The detail pane of the selection: the attributes an operator looks at for its kind
//! (addresses of an endpoint, notes and last errors of a unit, …) and a sparkline of its
//! recent request rate. Tall beside the table, a wrapped paragraph beside the sparkline when
//! it sits below it.

use deployments::protocol::attrs::{
    ConsumerAttrs, Counters, EndpointAttrs, Latency, ProxyAttrs, SequenceAttrs, TaskAttrs,
    TransportAttrs, UnitAttrs,
};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::style;
use crate::lang::kind::Kind;
use crate::present::output::{ago, micros, millis, short_hash, Tone};
use crate::tui::app::App;
use crate::tui::model::{strategy_word, Obj, RowKind};
use crate::tui::text::{count, rate};

type Field = (&'static str, TSpan<'static>);

fn plain(k: &'static str, v: impl Into<String>) -> Field {
    (k, TSpan::raw(v.into()))
}

/// A counter the server may not have sent (`-`).
fn num(v: Option<u64>) -> String {
    count(v.map(|v| v as f64))
}

/// A counter the server sends.
fn whole(v: u64) -> String {
    num(Some(v))
}

/// A latency, `-` when none was measured.
fn lat(v: Option<u64>) -> String {
    match v {
        Some(us) if us > 0 => micros(us as f64),
        _ => "-".into(),
    }
}

/// Requests, errors and in flight of a unit, transport, proxy or endpoint.
fn counters(c: &Counters) -> [Field; 3] {
    [
        plain("requests", num(c.requests)),
        plain("errors", num(c.errors)),
        plain("in flight", num(c.in_flight)),
    ]
}

/// Counters and latency of a proxy or endpoint.
fn traffic(c: &Counters, l: &Latency) -> Vec<Field> {
    let mut v = Vec::from(counters(c));
    v.push(plain(
        "p50 / p99",
        format!("{} / {}", lat(l.p50_micros), lat(l.p99_micros)),
    ));
    v
}

fn fields(o: &Obj, app: &App) -> (Vec<Field>, Vec<TLine<'static>>) {
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
                plain("path", p.path),
                plain("methods", or(p.methods.join(","), "any")),
                plain("transports", or(p.transports.join(","), "all")),
                plain("endpoint", or(p.endpoint.unwrap_or_default(), "-")),
                plain("revision", format!("r{}", whole(p.revision))),
            ];
            v.extend(traffic(&p.counters, &p.latency));
            v
        }
        RowKind::Object(Kind::Endpoint) => {
            let e: EndpointAttrs = o.typed();
            for a in e.addresses {
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
                plain("strategy", strategy_word(e.strategy)),
                plain("timeout", millis(e.timeout_millis as f64)),
            ];
            v.extend(traffic(&e.counters, &e.latency));
            v
        }
        RowKind::Object(Kind::Transport) => {
            let t: TransportAttrs = o.typed();
            let mut v = vec![state, plain("kind", t.kind), plain("bind", t.bind)];
            v.extend(counters(&t.counters));
            v
        }
        RowKind::Object(Kind::Task) => {
            let t: TaskAttrs = o.typed();
            let last = match t.last_run {
                Some(at) if at > 0 => ago(at, app.now_ms),
                _ => "never".into(),
            };
            let mut v = vec![
                state,
                plain("every", millis(t.every_millis as f64)),
                plain("sequence", t.sequence),
                plain("runs", whole(t.runs)),
                plain("failures", whole(t.failures)),
                plain("last run", last),
            ];
            if let Some(e) = t.last_error.filter(|e| !e.is_empty()) {
                v.push(("last error", TSpan::styled(e, style::tone(Tone::Bad))));
            }
            v
        }
        RowKind::Object(Kind::Sequence) => {
            let q: SequenceAttrs = o.typed();
            vec![
                plain("steps", whole(q.steps as u64)),
                plain("kinds", q.step_kinds.join(",")),
            ]
        }
        RowKind::Object(Kind::Consumer) => {
            let c: ConsumerAttrs = o.typed();
            let mut v = vec![
                state,
                plain("source", format!("{} {}", c.kind, c.source)),
                plain("received", whole(c.received)),
                plain("acked", whole(c.acked)),
                plain(
                    "recv/ack/s",
                    format!(
                        "{} / {}",
                        rate(o.rate()),
                        rate(o.num(crate::tui::model::ACKED_RATE))
                    ),
                ),
                plain("retried", whole(c.retried)),
                plain("dead-lettered", whole(c.dead_lettered)),
                plain("redelivered", whole(c.redelivered)),
                plain("in flight", whole(c.in_flight)),
                plain("queue depth", num(c.queue_depth)),
            ];
            if let Some(why) = c.reason.filter(|r| !r.is_empty()) {
                v.push(("reason", TSpan::styled(why, style::tone(Tone::Warn))));
            }
            v
        }
        // A draining revision's row carries its in-flight count as the counters do.
        RowKind::Draining => vec![
            state,
            plain("in flight", num(o.typed::<Counters>().in_flight)),
        ],
    };
    (f, extra)
}

/// A loaded unit's fields; its last errors go to `extra`.
fn unit_fields(o: &Obj, app: &App, state: Field, extra: &mut Vec<TLine<'static>>) -> Vec<Field> {
    let u: UnitAttrs = o.typed();
    let label = u.label.as_deref().unwrap_or("");
    let mut v = vec![
        state,
        plain("revision", format!("r{} {label}", num(u.revision))),
        plain(
            "hash",
            short_hash(u.hash.as_deref().unwrap_or("")).to_string(),
        ),
    ];
    if let Some(t) = u.deployed_at.filter(|t| *t > 0) {
        let took = u.deploy_millis.map(millis).unwrap_or_default();
        v.push(plain(
            "deployed",
            format!("{} in {took}", ago(t, app.now_ms)),
        ));
    }
    for (k, names) in [
        ("proxies", &u.proxies),
        ("endpoints", &u.endpoints),
        ("tasks", &u.tasks),
    ] {
        v.push(plain(k, names.len().to_string()));
    }
    v.extend(counters(&u.counters));
    if !u.origin.is_empty() {
        v.push(plain("origin", u.origin.clone()));
    }
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

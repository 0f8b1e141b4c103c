//! The object tables: Units, Proxies, Endpoints, Transports, Consumers and a unit's
//! drill-down. Per row state, revision/label, req/s, errors, p99, in flight and a sparkline
//! of recent rates (consumers: received and acked per second, counters, queue depth).
//! Columns have a priority: on a narrow terminal the least important go first, and what
//! room is left widens names and sparklines.

use deployments::protocol::attrs::{
    ConsumerAttrs, Counters, EndpointAttrs, ProxyAttrs, SequenceAttrs, TaskAttrs, TransportAttrs,
    UnitAttrs,
};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::style;
use crate::lang::kind::Kind;
use crate::present::output::{ago, micros, Tone};
use crate::tui::action::{SortBy, View};
use crate::tui::app::App;
use crate::tui::model::{strategy_word, Obj, RowKind, ACKED_RATE};
use crate::tui::text::{count, rate, spark};

/// A column: title, width range, right-aligned, priority (0 is kept longest).
#[derive(Clone, Copy)]
struct Col {
    title: &'static str,
    min: u16,
    max: u16,
    right: bool,
    prio: u8,
}

const fn col(title: &'static str, min: u16, max: u16, right: bool, prio: u8) -> Col {
    Col {
        title,
        min,
        max,
        right,
        prio,
    }
}

/// The sparkline: about 25 columns when there is room, after the text columns got theirs.
const RATE: Col = col("RATE", 10, 25, false, 1);
/// A path up to this long is shown whole (other columns are dropped first).
const PATH_KEPT: u16 = 32;
const REQS: Col = col("REQ/S", 5, 6, true, 0);
const ERRS: Col = col("ERR", 5, 6, true, 1);
const P99: Col = col("P99", 7, 7, true, 2);
const INFL: Col = col("INFL", 4, 5, true, 2);

fn columns(kind: Option<RowKind>) -> Vec<Col> {
    match kind {
        Some(RowKind::Object(Kind::Unit)) => vec![
            col("UNIT", 14, 28, false, 0),
            col("STATE", 10, 10, false, 0),
            col("REV", 9, 16, false, 1),
            REQS,
            ERRS,
            P99,
            INFL,
            RATE,
            col("NOTES", 12, 40, false, 3),
        ],
        Some(RowKind::Object(Kind::Proxy)) => vec![
            col("PROXY", 18, 40, false, 0),
            col("STATE", 8, 8, false, 0),
            col("PATH", 10, 48, false, 1),
            REQS,
            ERRS,
            P99,
            INFL,
            RATE,
        ],
        Some(RowKind::Object(Kind::Endpoint)) => vec![
            col("ENDPOINT", 18, 40, false, 0),
            col("STATE", 11, 11, false, 0),
            col("ADDRS", 7, 9, false, 1),
            col("STRATEGY", 11, 11, false, 3),
            REQS,
            ERRS,
            P99,
            INFL,
            RATE,
        ],
        Some(RowKind::Object(Kind::Transport)) => vec![
            col("TRANSPORT", 12, 24, false, 0),
            col("STATE", 8, 8, false, 0),
            col("BIND", 15, 21, false, 1),
            REQS,
            ERRS,
            INFL,
            RATE,
        ],
        Some(RowKind::Object(Kind::Consumer)) => vec![
            col("CONSUMER", 16, 40, false, 0),
            col("STATE", 12, 12, false, 0),
            col("SOURCE", 10, 36, false, 0),
            col("RECV/S", 6, 6, true, 0),
            col("ACK/S", 6, 6, true, 1),
            INFL,
            col("ACKED", 6, 8, true, 2),
            col("RETRY", 5, 7, true, 3),
            col("DEAD", 5, 6, true, 1),
            col("DEPTH", 5, 7, true, 1),
            col("RATE", 8, 25, false, 1),
        ],
        // A unit's drill-down: elements of every kind.
        _ => vec![
            col("KIND", 8, 8, false, 1),
            col("NAME", 14, 30, false, 0),
            col("STATE", 11, 11, false, 0),
            col("INFO", 10, 32, false, 3),
            REQS,
            ERRS,
            P99,
            INFL,
            RATE,
        ],
    }
}

/// The widths of the columns kept in `avail` cells (`None` for a dropped column).
fn fit(cols: &[Col], avail: u16) -> Vec<Option<u16>> {
    let mut keep: Vec<bool> = vec![true; cols.len()];
    let need = |keep: &[bool]| -> u16 {
        let n = keep.iter().filter(|k| **k).count() as u16;
        cols.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.min)
            .sum::<u16>()
            + n.saturating_sub(1)
    };
    while need(&keep) > avail {
        let drop = (0..cols.len())
            .filter(|&i| keep[i])
            .max_by_key(|&i| (cols[i].prio, i));
        match drop {
            Some(i) if cols[i].prio > 0 => keep[i] = false,
            _ => break,
        }
    }
    let mut widths: Vec<Option<u16>> = cols
        .iter()
        .zip(&keep)
        .map(|(c, k)| k.then_some(c.min))
        .collect();
    let mut extra = avail.saturating_sub(need(&keep));
    let mut order: Vec<usize> = (0..cols.len()).filter(|&i| keep[i]).collect();
    order.sort_by_key(|&i| cols[i].prio);
    for i in order {
        let grow = (cols[i].max - cols[i].min).min(extra);
        widths[i] = widths[i].map(|w| w + grow);
        extra -= grow;
    }
    widths
}

fn num_cell(v: Option<f64>, bad_if_positive: bool) -> Cell<'static> {
    let text = count(v);
    let st = if bad_if_positive && v.unwrap_or(0.0) > 0.0 {
        style::tone(Tone::Bad)
    } else {
        Style::default()
    };
    Cell::from(TLine::from(TSpan::styled(text, st)).right_aligned())
}

fn unit_notes(o: &Obj) -> String {
    let mut n = Vec::new();
    let u: UnitAttrs = o.typed();
    if u.degraded {
        n.push("degraded".to_string());
    }
    if u.origin == "pushed" {
        n.push("pushed".to_string());
    }
    if u.modified_on_disk {
        n.push("modified on disk".to_string());
    }
    if !u.draining.is_empty() {
        n.push(format!("draining {}", u.draining.len()));
    }
    if !u.last_errors.is_empty() && o.state() != "Failed" {
        let first = u.last_errors.first().map(|e| e.message.clone());
        n.push(match first.filter(|m| !m.is_empty()) {
            Some(m) => format!("last deploy rejected: {m}"),
            None => "last deploy rejected".into(),
        });
    }
    n.join(", ")
}

/// `active/all` addresses of an endpoint.
pub fn addresses_up(o: &Obj) -> String {
    let addrs = o.typed::<EndpointAttrs>().addresses;
    let up = addrs.iter().filter(|a| a.state == "Active").count();
    format!("{up}/{}", addrs.len())
}

/// A count as the cells show it.
fn n(v: u64) -> Option<f64> {
    Some(v as f64)
}

/// The INFO cell of a drill-down row.
fn info(o: &Obj) -> String {
    match o.kind {
        RowKind::Object(Kind::Proxy) => o.typed::<ProxyAttrs>().path,
        RowKind::Object(Kind::Endpoint) => format!(
            "{} {} up",
            strategy_word(o.typed::<EndpointAttrs>().strategy),
            addresses_up(o)
        ),
        RowKind::Object(Kind::Task) => {
            let t: TaskAttrs = o.typed();
            let every = format!(
                "every {}",
                crate::present::output::millis(t.every_millis as f64)
            );
            format!("{every}  runs {}", count(n(t.runs)))
        }
        RowKind::Object(Kind::Sequence) => match o.typed::<SequenceAttrs>().steps {
            1 => "1 step".to_string(),
            s => format!("{} steps", count(n(s as u64))),
        },
        RowKind::Object(Kind::Consumer) => {
            let c: ConsumerAttrs = o.typed();
            format!(
                "{} {} acked, {} dead, {} waiting",
                c.source,
                count(n(c.acked)),
                count(n(c.dead_lettered)),
                count(c.queue_depth.map(|d| d as f64))
            )
        }
        RowKind::Draining => format!("{} in flight", count(o.in_flight())),
        _ => String::new(),
    }
}

/// `text` cut to `width` characters, with `…` when cut.
fn fit_text(text: &str, width: u16) -> String {
    let w = width as usize;
    if text.chars().count() <= w {
        return text.to_string();
    }
    let mut s: String = text.chars().take(w.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// The text of a text column (`None` for numbers and sparklines).
fn cell_text(title: &str, o: &Obj) -> Option<String> {
    Some(match title {
        "UNIT" | "TRANSPORT" | "NAME" => o.name.clone(),
        "PROXY" | "ENDPOINT" | "CONSUMER" => o.label(),
        "KIND" => o.kind.word().to_string(),
        "REV" => {
            let u: UnitAttrs = o.typed();
            let rev = match u.revision {
                Some(r) if r > 0 => format!("r{r}"),
                _ => String::new(),
            };
            format!("{rev} {}", u.label.unwrap_or_default())
                .trim()
                .to_string()
        }
        "PATH" => o.typed::<ProxyAttrs>().path,
        "SOURCE" => o.typed::<ConsumerAttrs>().source,
        "REASON" => o.typed::<ConsumerAttrs>().reason.unwrap_or_default(),
        "BIND" => o.typed::<TransportAttrs>().bind,
        "STRATEGY" => strategy_word(o.typed::<EndpointAttrs>().strategy).to_string(),
        "ADDRS" => format!("{} up", addresses_up(o)),
        "INFO" => info(o),
        "NOTES" => unit_notes(o),
        _ => return None,
    })
}

/// `unit/name` in `width` characters: the unit is shortened first (`intern…/orders`),
/// the name only when it alone does not fit.
fn fit_label(o: &Obj, width: u16) -> String {
    let label = o.label();
    let (w, name_w) = (width as usize, o.name.chars().count());
    match &o.unit {
        Some(u) if label.chars().count() > w && name_w + 3 <= w => {
            let keep: String = u.chars().take(w - name_w - 2).collect();
            format!("{keep}…/{}", o.name)
        }
        _ => fit_text(&label, width),
    }
}

fn cell(c: &Col, o: &Obj, app: &App, width: u16) -> Cell<'static> {
    let na = || Cell::from(TLine::from("-").right_aligned());
    match c.title {
        "STATE" => Cell::from(TSpan::styled(
            o.state().to_string(),
            style::state(o.state()),
        )),
        "NOTES" => Cell::from(TSpan::styled(
            fit_text(&unit_notes(o), width),
            style::tone(Tone::Warn),
        )),
        "REASON" => Cell::from(TSpan::styled(
            fit_text(
                &o.typed::<ConsumerAttrs>().reason.unwrap_or_default(),
                width,
            ),
            style::tone(Tone::Warn),
        )),
        "RECV/S" | "ACK/S" => {
            let r = if c.title == "RECV/S" {
                o.rate()
            } else {
                o.num(ACKED_RATE)
            };
            match r {
                Some(r) => Cell::from(TLine::from(rate(Some(r))).right_aligned()),
                None => na(),
            }
        }
        "ACKED" | "RETRY" | "DEAD" | "DEPTH" => {
            let a: ConsumerAttrs = o.typed();
            let (v, bad) = match c.title {
                "ACKED" => (Some(a.acked), false),
                "RETRY" => (Some(a.retried), false),
                "DEAD" => (Some(a.dead_lettered), true),
                _ => (a.queue_depth, false),
            };
            match v.map(|v| v as f64) {
                Some(v) => num_cell(Some(v), bad),
                None => na(),
            }
        }
        "REQ/S" => match o.rate() {
            Some(r) => Cell::from(TLine::from(rate(Some(r))).right_aligned()),
            None => na(),
        },
        "ERR" => match o.typed::<Counters>().errors.map(|e| e as f64) {
            Some(e) => num_cell(Some(e), true),
            None => na(),
        },
        "INFL" => match o.in_flight() {
            Some(v) => num_cell(Some(v), false),
            None => na(),
        },
        "P99" => {
            let p = match o.kind {
                RowKind::Object(Kind::Unit) => {
                    app.snapshot.as_ref().and_then(|s| s.unit_p99(&o.name))
                }
                _ => o.p99(),
            };
            match p {
                Some(us) if us > 0.0 => Cell::from(TLine::from(micros(us)).right_aligned()),
                _ => na(),
            }
        }
        "RATE" => match o.rate() {
            Some(_) => Cell::from(TSpan::styled(
                spark(&app.rate_history(&o.key()), width as usize),
                Style::default().fg(Color::Cyan),
            )),
            None => Cell::from(""),
        },
        "PROXY" | "ENDPOINT" | "CONSUMER" => Cell::from(fit_label(o, width)),
        t => Cell::from(fit_text(&cell_text(t, o).unwrap_or_default(), width)),
    }
}

/// The kind of rows the current list shows (`None`: a drill-down of mixed kinds).
fn list_kind(app: &App) -> Option<RowKind> {
    if app.drill.is_some() {
        return None;
    }
    Some(match app.view {
        View::Units => RowKind::Object(Kind::Unit),
        View::Proxies => RowKind::Object(Kind::Proxy),
        View::Endpoints => RowKind::Object(Kind::Endpoint),
        View::Consumers => RowKind::Object(Kind::Consumer),
        _ => RowKind::Object(Kind::Transport),
    })
}

fn title(app: &App, shown: usize) -> TLine<'static> {
    let mut spans = vec![TSpan::raw(" ")];
    match &app.drill {
        Some((u, _)) => {
            let unit = app.snapshot.as_ref().and_then(|s| s.unit(u));
            spans.push(TSpan::styled(format!("Unit {u}"), style::title()));
            if let Some(o) = unit {
                spans.push(TSpan::raw("  "));
                spans.push(TSpan::styled(
                    o.state().to_string(),
                    style::state(o.state()),
                ));
                let u: UnitAttrs = o.typed();
                if let Some(r) = u.revision {
                    let label = u.label.as_deref().unwrap_or("");
                    spans.push(TSpan::raw(format!("  r{r} {label}")));
                }
                if let Some(t) = u.deployed_at.filter(|t| *t > 0) {
                    spans.push(TSpan::styled(
                        format!("  deployed {}", ago(t, app.now_ms)),
                        style::tone(Tone::Dim),
                    ));
                }
            } else {
                spans.push(TSpan::styled("  not loaded", style::tone(Tone::Bad)));
            }
            spans.push(TSpan::styled("  Esc back", style::tone(Tone::Dim)));
        }
        None => spans.push(TSpan::styled(
            format!("{} ({shown})", app.view.title()),
            style::title(),
        )),
    }
    if !app.filter().is_empty() {
        spans.push(TSpan::styled(
            format!("  /{}", app.filter()),
            style::tone(Tone::Warn),
        ));
    }
    spans.push(TSpan::raw(" "));
    TLine::from(spans)
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let rows = app.objects();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title(app, rows.len()));
    if rows.is_empty() {
        let what = match list_kind(app) {
            Some(k) => format!("no {}", k.kind().map(|k| k.plural()).unwrap_or("rows")),
            None => "nothing in this unit".into(),
        };
        let text = if app.filter().is_empty() {
            what
        } else {
            format!("{what} match /{}  (Esc clears the filter)", app.filter())
        };
        f.render_widget(
            Paragraph::new(TSpan::styled(format!(" {text}"), style::tone(Tone::Dim))).block(block),
            area,
        );
        return;
    }
    let sorted = app.sort.get(&app.list_id()).copied();
    // Text columns grow no wider than their longest text, leaving the room to the others.
    let cols: Vec<Col> = columns(list_kind(app))
        .into_iter()
        .map(|mut c| {
            // Room for the sort arrow after the title.
            if sorted.is_some_and(|(by, _)| by.titles().contains(&c.title)) {
                let w = c.title.chars().count() as u16 + 1;
                c.min = c.min.max(w);
                c.max = c.max.max(w);
            }
            let longest = rows
                .iter()
                .filter_map(|o| cell_text(c.title, o))
                .map(|t| t.chars().count() as u16)
                .max();
            if let Some(l) = longest {
                c.max = c.max.min(l.max(c.min));
                // Paths are not cut while less important columns could make room.
                if c.title == "PATH" {
                    c.min = c.max.min(PATH_KEPT);
                }
            }
            c
        })
        .collect();
    // Borders, and the selection marker.
    let widths = fit(&cols, area.width.saturating_sub(4));
    let kept: Vec<(usize, u16)> = widths
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.map(|w| (i, w)))
        .collect();
    let header = Row::new(kept.iter().map(|&(i, _)| {
        let title = match sorted {
            Some((by, rev)) if by.titles().contains(&cols[i].title) => {
                let words = matches!(by, SortBy::Name | SortBy::State);
                format!("{}{}", cols[i].title, if words != rev { "↑" } else { "↓" })
            }
            _ => cols[i].title.to_string(),
        };
        let t = TLine::from(title);
        Cell::from(if cols[i].right { t.right_aligned() } else { t })
    }))
    .style(style::title());
    let body: Vec<Row> = rows
        .iter()
        .map(|o| Row::new(kept.iter().map(|&(i, w)| cell(&cols[i], o, app, w))))
        .collect();
    let table = Table::new(body, kept.iter().map(|&(_, w)| Constraint::Length(w)))
        .header(header)
        .block(block)
        .row_highlight_style(style::selected())
        .highlight_symbol("▸ ")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(app.selected()));
    f.render_stateful_widget(table, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_drop_the_least_important_columns_first() {
        let cols = columns(Some(RowKind::Object(Kind::Unit)));
        let at = |w| -> Vec<&str> {
            fit(&cols, w)
                .iter()
                .zip(&cols)
                .filter(|(w, _)| w.is_some())
                .map(|(_, c)| c.title)
                .collect()
        };
        assert_eq!(at(200).len(), cols.len());
        assert!(!at(76).contains(&"NOTES"));
        assert!(at(76).contains(&"RATE"));
        assert_eq!(at(30), vec!["UNIT", "STATE", "REQ/S"]);
        let w = fit(&cols, 76);
        let used: u16 = w.iter().flatten().sum::<u16>() + w.iter().flatten().count() as u16 - 1;
        assert_eq!(used, 76, "the room left is given out");
        let o = Obj {
            kind: RowKind::Object(Kind::Proxy),
            unit: Some("internal-services".into()),
            name: "orders".into(),
            attrs: Default::default(),
        };
        assert_eq!(fit_label(&o, 16), "internal…/orders");
        assert_eq!(fit_label(&o, 40), "internal-services/orders");
        assert_eq!(fit_text("abcdef", 4), "abc…");
    }

    fn obj(kind: RowKind, attrs: serde_json::Value) -> Obj {
        Obj {
            kind,
            unit: Some("u".into()),
            name: "n".into(),
            attrs: serde_json::from_value(attrs).unwrap(),
        }
    }

    #[test]
    fn counts_agree_and_a_rejected_deploy_says_why() {
        let seq = |n: u32| {
            info(&obj(
                RowKind::Object(Kind::Sequence),
                serde_json::json!({"Steps": n}),
            ))
        };
        assert_eq!(seq(1), "1 step");
        assert_eq!(seq(3), "3 steps");
        let unit = obj(
            RowKind::Object(Kind::Unit),
            serde_json::json!({"State": "Active", "LastErrors": [
                {"file": "u/unit.toml", "line": 3, "col": 1, "message": "endpoint \"nope\" not found"}]}),
        );
        assert_eq!(
            unit_notes(&unit),
            "last deploy rejected: endpoint \"nope\" not found"
        );
    }
}

//! The Cluster view (key 7): the store's health (up / down / alarm, why, the applied store
//! revision), then one row per cluster unit with its revision and a column per node
//! (SYNCED, PENDING, FAILED, DOWN; the node's revision when it differs), then each node's
//! liveness and the errors of the nodes that failed. From the typed [`ClusterStatus`]; a
//! server without `[cluster]` gets one line saying so.

use deployments::protocol::cluster::{ClusterStatus, StoreState, SyncState};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::style;
use crate::present::output::{ago, short_hash, Tone};
use crate::tui::app::App;
use crate::tui::cluster::ClusterFeed;

/// What a server without `[cluster]` shows.
pub const NOT_IN_CLUSTER: &str = "this server is not in a cluster; see docs/cluster.md";

fn sync_tone(s: SyncState) -> Tone {
    match s {
        SyncState::Synced => Tone::Good,
        SyncState::Pending => Tone::Warn,
        SyncState::Failed | SyncState::Down => Tone::Bad,
    }
}

fn message(f: &mut Frame, area: Rect, text: &str, tone: Tone) {
    let p = Paragraph::new(text.to_string())
        .style(style::tone(tone))
        .wrap(Wrap { trim: false })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(TSpan::styled(" Cluster ", style::title())),
        );
    f.render_widget(p, area);
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    match &app.cluster {
        None => message(f, area, "reading the cluster status …", Tone::Dim),
        Some(ClusterFeed::NotInCluster) => message(f, area, NOT_IN_CLUSTER, Tone::Dim),
        Some(ClusterFeed::Failed(m)) => message(f, area, m, Tone::Bad),
        Some(ClusterFeed::Status(s)) => status(f, area, s, app.now_ms),
    }
}

/// The store's health, over the table.
fn store_lines(s: &ClusterStatus) -> Vec<TLine<'static>> {
    let tone = match s.store.state {
        StoreState::Up => Tone::Good,
        StoreState::Down | StoreState::Alarm => Tone::Bad,
    };
    let mut lines = vec![TLine::from(vec![
        TSpan::styled(
            format!("store {}", s.store.state.as_str().to_uppercase()),
            style::tone(tone),
        ),
        TSpan::raw(format!(
            "  {}  applied store revision {}  answered by {}",
            s.store.endpoints.join(","),
            s.store.applied_revision,
            s.node
        )),
    ])];
    if let Some(d) = &s.store.detail {
        lines.push(TLine::from(TSpan::styled(
            d.clone(),
            style::tone(Tone::Bad),
        )));
    }
    lines
}

/// Each node's liveness, then the errors of failed nodes.
fn node_lines(s: &ClusterStatus, now_ms: u64) -> Vec<TLine<'static>> {
    let mut nodes = vec![TSpan::styled("nodes ", style::title())];
    for n in &s.nodes {
        let (text, tone) = if n.live {
            (
                format!("{} up (r{})", n.node, n.applied_revision),
                Tone::Good,
            )
        } else {
            (format!("{} DOWN (lease expired)", n.node), Tone::Bad)
        };
        nodes.push(TSpan::styled(text, style::tone(tone)));
        nodes.push(TSpan::raw("  "));
    }
    let mut lines = vec![TLine::from(nodes)];
    for u in &s.units {
        for n in &s.nodes {
            let Some(nu) = n.units.get(&u.unit) else {
                continue;
            };
            if let (SyncState::Failed, Some(e)) = (nu.state, &nu.error) {
                let when = match nu.applied_at_ms {
                    0 => String::new(),
                    t => format!(" ({})", ago(t, now_ms)),
                };
                lines.push(TLine::from(vec![
                    TSpan::styled(format!("{} {}", n.node, u.unit), style::tone(Tone::Bad)),
                    TSpan::raw(format!(" FAILED revision {}{when}: {e}", nu.revision)),
                ]));
            }
        }
    }
    lines
}

fn status(f: &mut Frame, area: Rect, s: &ClusterStatus, now_ms: u64) {
    let block = Block::default().borders(Borders::ALL).title(TSpan::styled(
        format!(
            " Cluster {} · nodes {} · units {} ",
            s.cluster,
            s.nodes.len(),
            s.units.len()
        ),
        style::title(),
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let head = store_lines(s);
    let foot = node_lines(s, now_ms);
    // The table right below the store's health, the nodes and errors right below it.
    let table_height = (s.units.len().max(1) as u16 + 1).min(inner.height / 2);
    let [h, t, b] = Layout::vertical([
        Constraint::Length(head.len() as u16 + 1),
        Constraint::Length(table_height + 1),
        Constraint::Min(0),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(head).wrap(Wrap { trim: false }), h);
    f.render_widget(Paragraph::new(foot).wrap(Wrap { trim: false }), b);

    let mut header = vec!["UNIT".to_string(), "REV".into(), "HASH".into()];
    header.push("LABEL".into());
    header.extend(s.nodes.iter().map(|n| n.node.to_uppercase()));
    let mut widths = vec![
        Constraint::Min(8),
        Constraint::Length(4),
        Constraint::Length(12),
        Constraint::Length(8),
    ];
    widths.extend(
        s.nodes
            .iter()
            .map(|n| Constraint::Length(n.node.len().max(10) as u16)),
    );
    let rows: Vec<Row> = s
        .units
        .iter()
        .map(|u| {
            let mut cells = vec![
                Cell::from(u.unit.clone()),
                Cell::from(u.revision.to_string()),
                Cell::from(short_hash(&u.hash).to_string()),
                Cell::from(match (&u.label, u.paused) {
                    (_, true) => "paused".to_string(),
                    (l, false) => l.clone().unwrap_or_else(|| "-".into()),
                }),
            ];
            for n in &s.nodes {
                cells.push(match n.units.get(&u.unit) {
                    None => Cell::from("-"),
                    Some(nu) => {
                        let mut text = nu.state.as_str().to_string();
                        if nu.revision != u.revision
                            && nu.revision > 0
                            && nu.state == SyncState::Pending
                        {
                            text.push_str(&format!(" r{}", nu.revision));
                        }
                        Cell::from(text).style(style::tone(sync_tone(nu.state)))
                    }
                });
            }
            Row::new(cells)
        })
        .collect();
    if rows.is_empty() {
        f.render_widget(
            Paragraph::new("no cluster units: deploy one with `deploy U --file F --cluster`")
                .style(style::tone(Tone::Dim)),
            t,
        );
        return;
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(style::title()))
        .column_spacing(1);
    f.render_widget(table, t);
}

//! The Events view: what `/events` reported, newest first, one line each (as `uterm events`
//! prints them); Enter shows one in full.

use ratatui::layout::Rect;
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, HighlightSpacing, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

use super::style;
use crate::present::output::Tone;
use crate::tui::app::{App, Conn};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let rows = app.event_rows();
    let mut title = vec![TSpan::styled(
        format!(" Events ({})", rows.len()),
        style::title(),
    )];
    if !app.filter().is_empty() {
        title.push(TSpan::styled(
            format!("  /{}", app.filter()),
            style::tone(Tone::Warn),
        ));
    }
    title.push(TSpan::styled("  newest first ", style::tone(Tone::Dim)));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(TLine::from(title));
    if rows.is_empty() {
        let text = match (&app.events_conn, app.filter().is_empty()) {
            (_, false) => format!(" no events match /{}", app.filter()),
            (Conn::Down { message, .. }, _) => format!(" no events yet; {message}"),
            _ => " no events yet".to_string(),
        };
        f.render_widget(
            Paragraph::new(TSpan::styled(text, style::tone(Tone::Dim))).block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = rows
        .iter()
        .map(|e| {
            let mut line = e.lines.first().map(style::line).unwrap_or_default();
            let more = e.lines.len().saturating_sub(1);
            if more > 0 {
                line.push_span(TSpan::styled(
                    format!("  (+{more}, Enter)"),
                    style::tone(Tone::Dim),
                ));
            }
            ListItem::new(line)
        })
        .collect();
    let list = List::new(items)
        .block(block)
        .highlight_style(style::selected())
        .highlight_symbol("▸ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = ListState::default().with_selected(Some(app.selected()));
    f.render_stateful_widget(list, area, &mut state);
}

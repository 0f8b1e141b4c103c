//! Draws the [`App`] state, nothing else: a header (server, uptime, connection, totals), the
//! view tabs, the body (a table with a detail pane for the selection, or the events), the
//! status or input line, and popups on top. Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] a message
//! replaces the layout. The detail pane sits beside the table from [`WIDE`] columns, below it
//! otherwise (taller on tall terminals).

mod cluster;
mod detail;
mod events;
mod header;
mod popup;
mod status;
mod style;
mod table;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line as TLine;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::present::output::Tone;
use crate::tui::action::View;
use crate::tui::app::{App, Conn, Mode};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// From this width the detail pane sits beside the table (narrower, names need the room).
pub const WIDE: u16 = 150;
/// Width of the detail pane beside the table.
const DETAIL_WIDTH: u16 = 48;
/// Height of the detail pane below the table (more from a body of 30 rows).
const DETAIL_HEIGHT: u16 = 7;
const DETAIL_HEIGHT_TALL: u16 = 11;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area);
        return;
    }
    let hints = u16::from(app.mode == Mode::Command && !app.completions.is_empty());
    let [head, tabs, body, hint, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(hints),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(f, head, app);
    header::tabs(f, tabs, app);
    draw_body(f, body, app);
    if hints > 0 {
        status::completions(f, hint, app);
    }
    status::draw(f, foot, app);
    match &app.mode {
        Mode::Help { scroll } => popup::help(f, area, *scroll),
        Mode::Confirm(c) => popup::confirm(f, area, c),
        Mode::Popup(p) => popup::popup(f, area, p, app.opts.read_only),
        _ => {}
    }
}

fn draw_body(f: &mut Frame, body: Rect, app: &App) {
    if app.drill.is_none() && app.view == View::Cluster {
        cluster::draw(f, body, app);
        return;
    }
    let events = app.drill.is_none() && app.view == View::Events;
    if app.snapshot.is_none() && !events {
        not_connected(f, body, app);
        return;
    }
    if events {
        events::draw(f, body, app);
        return;
    }
    if body.width >= WIDE {
        let [t, d] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(DETAIL_WIDTH)]).areas(body);
        table::draw(f, t, app);
        detail::draw(f, d, app);
    } else if body.height >= 2 * DETAIL_HEIGHT {
        let h = if body.height >= 30 {
            DETAIL_HEIGHT_TALL
        } else {
            DETAIL_HEIGHT
        };
        let [t, d] = Layout::vertical([Constraint::Min(0), Constraint::Length(h)]).areas(body);
        table::draw(f, t, app);
        detail::draw(f, d, app);
    } else {
        table::draw(f, body, app);
    }
}

fn not_connected(f: &mut Frame, area: Rect, app: &App) {
    let (text, tone) = match &app.conn {
        Conn::Down { message, .. } => (
            format!(
                "No answer from {} yet.\n\n{message}\n\nuterm keeps trying; q quits.",
                app.opts.url
            ),
            Tone::Bad,
        ),
        _ => (format!("Connecting to {} …", app.opts.url), Tone::Dim),
    };
    let p = Paragraph::new(text)
        .style(style::tone(tone))
        .wrap(Wrap { trim: false })
        .alignment(Alignment::Center)
        .block(Block::default().borders(Borders::ALL));
    f.render_widget(p, area);
}

fn too_small(f: &mut Frame, area: Rect) {
    let lines = vec![
        TLine::from("Terminal too small"),
        TLine::from(format!("{}×{}", area.width, area.height)),
        TLine::from(format!("uterm needs at least {MIN_WIDTH}×{MIN_HEIGHT}")),
        TLine::from("q quits"),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let inner = Rect {
        y: area.y + top,
        height: area.height - top,
        ..area
    };
    f.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        inner,
    );
}

#[cfg(test)]
mod tests;

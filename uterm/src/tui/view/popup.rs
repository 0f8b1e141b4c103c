//! Popups over the views: the key help (every key, then the commands of the `:` line), a
//! confirmation, and scrollable text (a diff, a command's output, an object's attributes, a
//! history whose selected revision Enter rolls back to).

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::style;
use crate::present::output::Tone;
use crate::tui::app::{Confirm, Popup};
use crate::tui::text::KEYS;

/// A rectangle of `pw`% × `ph`% of `area`, centred, at least `min_w` wide.
fn centered(area: Rect, pw: u16, ph: u16, min_w: u16) -> Rect {
    let w = (area.width * pw / 100).max(min_w).min(area.width);
    let h = (area.height * ph / 100).max(5).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn frame<'a>(title: String, footer: &'a str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(TSpan::styled(format!(" {title} "), style::title()))
        .title_bottom(TLine::from(TSpan::styled(footer, style::tone(Tone::Dim))).right_aligned())
}

/// The lines of the key help.
pub fn help_lines() -> Vec<TLine<'static>> {
    let mut lines = Vec::new();
    for (section, keys) in KEYS {
        lines.push(TLine::styled(section.to_string(), style::title()));
        for (k, what) in *keys {
            lines.push(TLine::from(vec![
                TSpan::styled(format!("  {k:<18}"), style::key()),
                TSpan::raw(what.to_string()),
            ]));
        }
        lines.push(TLine::from(""));
    }
    lines.push(TLine::styled(
        "Commands of the : line (as in script mode; `help VERB` explains one)",
        style::title(),
    ));
    for e in crate::lang::help::ENTRIES {
        lines.push(TLine::from(vec![
            TSpan::styled(format!("  {:<18}", e.verb), style::key()),
            TSpan::raw(e.summary.to_string()),
        ]));
    }
    lines
}

pub fn help(f: &mut Frame, area: Rect, scroll: usize) {
    let r = centered(area, 90, 90, 60);
    let lines = help_lines();
    let text_w = r.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(text_w).max(1))
        .sum();
    let max = rows.saturating_sub(r.height.saturating_sub(2) as usize);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(frame("Keys".into(), " ↑↓ scroll  Esc close "))
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(max) as u16, 0)),
        r,
    );
}

/// `r` shrunk to `rows` inner rows (plus borders), kept centred.
fn fit_height(r: Rect, rows: usize) -> Rect {
    let h = (rows as u16).saturating_add(2).clamp(5, r.height);
    Rect {
        y: r.y + (r.height - h) / 2,
        height: h,
        ..r
    }
}

pub fn confirm(f: &mut Frame, area: Rect, c: &Confirm) {
    let r = centered(area, 60, 60, 50);
    let text_w = r.width.saturating_sub(2).max(1) as usize;
    let r = fit_height(r, c.prompt.chars().count().div_ceil(text_w) + 2);
    f.render_widget(Clear, r);
    let lines = vec![
        TLine::from(c.prompt.clone()),
        TLine::from(""),
        TLine::from(vec![
            TSpan::styled("y", style::key()),
            TSpan::raw(" yes   "),
            TSpan::styled("n", style::key()),
            TSpan::raw(" no"),
        ])
        .alignment(Alignment::Center),
    ];
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            frame(format!("Confirm: {}", c.label), "").border_style(style::tone(Tone::Warn)),
        ),
        r,
    );
}

pub fn popup(f: &mut Frame, area: Rect, p: &Popup, read_only: bool) {
    let r = centered(area, 90, 85, 60);
    let text_w = r.width.saturating_sub(2).max(1) as usize;
    let rows: usize = match p.history {
        Some(_) => p.lines.len(),
        None => p
            .lines
            .iter()
            .map(|l| {
                let w: usize = l.iter().map(|s| s.text.chars().count()).sum();
                w.div_ceil(text_w).max(1)
            })
            .sum(),
    };
    let r = fit_height(r, rows);
    f.render_widget(Clear, r);
    let mut lines = style::lines(&p.lines);
    let footer = match &p.history {
        Some(h) => {
            // Row 0 is the table's header.
            if let Some(l) = lines.get_mut(h.selected + 1) {
                *l = l.clone().patch_style(style::selected());
                l.spans.insert(0, TSpan::raw("▸ "));
            }
            for (i, l) in lines.iter_mut().enumerate() {
                if i != h.selected + 1 {
                    l.spans.insert(0, TSpan::raw("  "));
                }
            }
            if read_only {
                " ↑↓ select  Esc close "
            } else {
                " ↑↓ select  Enter roll back to it  Esc close "
            }
        }
        None => " ↑↓ PgUp PgDn scroll  Esc close ",
    };
    let inner_h = r.height.saturating_sub(2) as usize;
    let scroll = match &p.history {
        Some(h) => (h.selected + 2).saturating_sub(inner_h),
        None => p.scroll.min(rows.saturating_sub(inner_h)),
    };
    let mut para = Paragraph::new(lines)
        .block(frame(p.title.clone(), footer))
        .scroll((scroll as u16, 0));
    if p.history.is_none() {
        para = para.wrap(Wrap { trim: false });
    }
    f.render_widget(para, r);
}

//! The bottom line: the `:` or `/` input with its cursor, else the outcome of the last
//! action (or what is running), else the most useful keys. Completion candidates go on the
//! line above the `:` input.

use ratatui::layout::{Position, Rect};
use ratatui::text::{Line as TLine, Span as TSpan};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style;
use crate::present::output::Tone;
use crate::tui::app::{App, Mode};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let input = match app.mode {
        Mode::Command => Some((':', &app.command)),
        Mode::Filter => Some(('/', &app.filter_input)),
        _ => None,
    };
    if let Some((prompt, line)) = input {
        // Scroll the text so the cursor stays visible.
        let room = area.width.saturating_sub(2) as usize;
        let skip = line.cursor.saturating_sub(room);
        let text: String = line.text.chars().skip(skip).take(room).collect();
        f.render_widget(
            Paragraph::new(TLine::from(vec![
                TSpan::styled(prompt.to_string(), style::key()),
                TSpan::raw(text),
            ])),
            area,
        );
        let x = area.x + 1 + (line.cursor - skip) as u16;
        f.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
        return;
    }
    let line = match &app.status {
        Some(s) => TLine::from(TSpan::styled(format!(" {}", s.text), style::tone(s.tone))),
        None => {
            let mut spans = vec![TSpan::raw(" ")];
            let keys: &[(&str, &str)] = if app.opts.read_only {
                &[
                    ("?", "help"),
                    (":", "command"),
                    ("/", "filter"),
                    ("Enter", "drill"),
                    ("q", "quit"),
                ]
            } else {
                &[
                    ("?", "help"),
                    (":", "command"),
                    ("/", "filter"),
                    ("Enter", "drill"),
                    ("r", "reload"),
                    ("p", "pause"),
                    ("d", "diff"),
                    ("q", "quit"),
                ]
            };
            for (k, what) in keys {
                spans.push(TSpan::styled(k.to_string(), style::key()));
                spans.push(TSpan::styled(format!(" {what}  "), style::tone(Tone::Dim)));
            }
            TLine::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

pub fn completions(f: &mut Frame, area: Rect, app: &App) {
    let mut text = String::from(" ");
    let room = area.width as usize;
    for (i, c) in app.completions.iter().enumerate() {
        let next = if i == 0 { c.clone() } else { format!("  {c}") };
        if text.chars().count() + next.chars().count() + 2 > room {
            text.push_str("  …");
            break;
        }
        text.push_str(&next);
    }
    f.render_widget(
        Paragraph::new(TSpan::styled(text, style::tone(Tone::Dim))),
        area,
    );
}

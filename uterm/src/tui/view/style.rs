//! Tones to terminal styles, and the console's spans and lines to ratatui's.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as TLine, Span as TSpan};

use crate::present::output::{Line, Tone};

pub fn tone(t: Tone) -> Style {
    match t {
        Tone::Plain => Style::default(),
        Tone::Good => Style::default().fg(Color::Green),
        Tone::Warn => Style::default().fg(Color::Yellow),
        Tone::Bad => Style::default().fg(Color::Red),
        Tone::Dim => Style::default().add_modifier(Modifier::DIM),
        Tone::Bold => Style::default().add_modifier(Modifier::BOLD),
    }
}

/// The style of a state word (green serving, yellow held back, red broken).
pub fn state(s: &str) -> Style {
    match s {
        crate::tui::model::NOT_LOADED | "Draining" => tone(Tone::Dim),
        _ => tone(Tone::of_state(s)),
    }
}

pub fn line(l: &Line) -> TLine<'static> {
    TLine::from(
        l.iter()
            .map(|s| TSpan::styled(s.text.clone(), tone(s.tone)))
            .collect::<Vec<_>>(),
    )
}

pub fn lines(ls: &[Line]) -> Vec<TLine<'static>> {
    ls.iter().map(line).collect()
}

pub fn title() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

pub fn key() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

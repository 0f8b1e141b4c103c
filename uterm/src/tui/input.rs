//! Keys → [`Action`]s, by input mode (Normal, Command, Filter, Help, Confirm, Popup). Reads the
//! mode and never changes state: the reducer does. Ctrl-C quits from every mode.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::action::{Action, Edit, Op, SortBy, View};
use crate::tui::app::Mode;

/// The action of a key in `mode`, if it has one.
pub fn action_for(mode: &Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Normal => normal(key.code, ctrl),
        Mode::Command | Mode::Filter => line(mode, key.code, ctrl),
        // A popup is not modal for navigation: the view keys and `q` work as in Normal
        // (switching views closes it); Esc closes it.
        Mode::Popup(_) => Some(match key.code {
            KeyCode::Esc => Action::Back,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Char(c @ '1'..='7') => {
                Action::SwitchView(View::ALL[(c as u8 - b'1') as usize])
            }
            KeyCode::Tab => Action::NextView,
            KeyCode::BackTab => Action::PrevView,
            KeyCode::Char(':') => Action::OpenCommand,
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown | KeyCode::Char(' ') => Action::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Action::Top,
            KeyCode::End | KeyCode::Char('G') => Action::Bottom,
            KeyCode::Enter => Action::Enter,
            KeyCode::Char('b') => Action::Op(Op::Rollback),
            _ => return None,
        }),
        Mode::Help { .. } => Some(match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') => Action::Back,
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown | KeyCode::Char(' ') => Action::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Action::Top,
            KeyCode::End | KeyCode::Char('G') => Action::Bottom,
            KeyCode::Enter => Action::Enter,
            KeyCode::Char('b') => Action::Op(Op::Rollback),
            _ => return None,
        }),
        Mode::Confirm(_) => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Some(Action::Confirm(true)),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                Some(Action::Confirm(false))
            }
            _ => None,
        },
    }
}

fn normal(code: KeyCode, ctrl: bool) -> Option<Action> {
    if ctrl {
        return match code {
            KeyCode::Char('r') | KeyCode::Char('l') => Some(Action::Refresh),
            KeyCode::Char('d') | KeyCode::Char('f') => Some(Action::PageDown),
            KeyCode::Char('u') | KeyCode::Char('b') => Some(Action::PageUp),
            _ => None,
        };
    }
    Some(match code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char(c @ '1'..='7') => Action::SwitchView(View::ALL[(c as u8 - b'1') as usize]),
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char(':') => Action::OpenCommand,
        KeyCode::Char('/') => Action::OpenFilter,
        KeyCode::Char('?') => Action::OpenHelp,
        KeyCode::Char('o') => Action::LastOutput,
        KeyCode::F(5) => Action::Refresh,
        KeyCode::Char('r') => Action::Op(Op::Reload),
        KeyCode::Char('p') => Action::Op(Op::TogglePause),
        KeyCode::Char('s') => Action::Op(Op::ToggleStop),
        KeyCode::Char('m') => Action::Op(Op::Maintenance),
        KeyCode::Char('M') => Action::Op(Op::ServerMaintenance),
        KeyCode::Char('d') => Action::Op(Op::Diff),
        KeyCode::Char('h') => Action::Op(Op::History),
        KeyCode::Char('b') => Action::Op(Op::Rollback),
        KeyCode::Char('l') => Action::Op(Op::Load),
        KeyCode::Char('u') => Action::Op(Op::Unload),
        KeyCode::Char('t') => Action::Op(Op::RunTask),
        KeyCode::Char('w') => Action::Op(Op::Tap),
        KeyCode::Char('N') => Action::Sort(SortBy::Name),
        KeyCode::Char('S') => Action::Sort(SortBy::State),
        KeyCode::Char('R') => Action::Sort(SortBy::Rate),
        KeyCode::Char('E') => Action::Sort(SortBy::Errors),
        KeyCode::Char('P') => Action::Sort(SortBy::P99),
        KeyCode::Char('I') => Action::Sort(SortBy::InFlight),
        _ => return None,
    })
}

fn line(mode: &Mode, code: KeyCode, ctrl: bool) -> Option<Action> {
    let command = matches!(mode, Mode::Command);
    if ctrl {
        return Some(Action::Edit(match code {
            KeyCode::Char('u') => Edit::Clear,
            KeyCode::Char('w') | KeyCode::Backspace => Edit::DeleteWord,
            KeyCode::Char('a') => Edit::Home,
            KeyCode::Char('e') => Edit::End,
            KeyCode::Char('p') if command => Edit::Prev,
            KeyCode::Char('n') if command => Edit::Next,
            _ => return None,
        }));
    }
    Some(match code {
        KeyCode::Enter => Action::Submit,
        KeyCode::Esc => Action::Back,
        KeyCode::Up if command => Action::Edit(Edit::Prev),
        KeyCode::Down if command => Action::Edit(Edit::Next),
        // While filtering, the arrows still move the selection.
        KeyCode::Up => Action::Up,
        KeyCode::Down => Action::Down,
        KeyCode::Tab if command => Action::Edit(Edit::Complete),
        KeyCode::Char(c) => Action::Edit(Edit::Char(c)),
        KeyCode::Backspace => Action::Edit(Edit::Backspace),
        KeyCode::Delete => Action::Edit(Edit::Delete),
        KeyCode::Left => Action::Edit(Edit::Left),
        KeyCode::Right => Action::Edit(Edit::Right),
        KeyCode::Home => Action::Edit(Edit::Home),
        KeyCode::End => Action::Edit(Edit::End),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::Popup;

    fn k(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn keys_mean_different_things_by_mode() {
        assert_eq!(action_for(&Mode::Normal, k('q')), Some(Action::Quit));
        assert_eq!(
            action_for(&Mode::Command, k('q')),
            Some(Action::Edit(Edit::Char('q')))
        );
        let popup = Mode::Popup(Popup::new("x", vec![]));
        assert_eq!(action_for(&popup, k('q')), Some(Action::Quit));
        assert_eq!(
            action_for(&popup, k('2')),
            Some(Action::SwitchView(View::Proxies))
        );
        assert_eq!(
            action_for(&popup, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
            Some(Action::NextView)
        );
        assert_eq!(
            action_for(&popup, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
            Some(Action::Back)
        );
        assert_eq!(
            action_for(&Mode::Help { scroll: 0 }, k('q')),
            Some(Action::Back)
        );
        assert_eq!(
            action_for(&Mode::Normal, k('3')),
            Some(Action::SwitchView(View::Endpoints))
        );
        assert_eq!(
            action_for(&Mode::Normal, k('p')),
            Some(Action::Op(Op::TogglePause))
        );
        assert_eq!(
            action_for(&Mode::Filter, k('p')),
            Some(Action::Edit(Edit::Char('p')))
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for m in [
            Mode::Normal,
            Mode::Command,
            Mode::Filter,
            Mode::Help { scroll: 0 },
        ] {
            assert_eq!(action_for(&m, ctrl_c), Some(Action::Quit));
        }
        let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(action_for(&Mode::Normal, tab), Some(Action::NextView));
        assert_eq!(
            action_for(&Mode::Command, tab),
            Some(Action::Edit(Edit::Complete))
        );
        let up = KeyEvent::new(KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(
            action_for(&Mode::Command, up),
            Some(Action::Edit(Edit::Prev))
        );
        assert_eq!(action_for(&Mode::Filter, up), Some(Action::Up));
        assert_eq!(action_for(&Mode::Normal, k('x')), None);
        for c in [':', '/', '?'] {
            assert!(action_for(&Mode::Normal, k(c)).is_some());
        }
    }

    #[test]
    fn every_key_in_the_help_is_bound() {
        // Single-character keys of the Normal-mode sections of the help are bound.
        for (_, keys) in &crate::tui::text::KEYS[..2] {
            for (k_, _) in *keys {
                for word in k_.split_whitespace() {
                    let mut ch = word.chars();
                    if let (Some(c), None) = (ch.next(), ch.next()) {
                        if c.is_ascii_alphanumeric() {
                            assert!(
                                action_for(&Mode::Normal, k(c)).is_some(),
                                "key {c} is in the help but unbound"
                            );
                        }
                    }
                }
            }
        }
    }
}

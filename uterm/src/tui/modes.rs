//! What keys mean in each input mode once they are actions: Normal (views, selection,
//! operations), Command (`:` line with completion), Filter (`/`), Help, Confirm and Popup.
//! Part of the reducer: pure.

use crate::lang::command::Command;
use crate::lang::complete::complete;
use crate::lang::parse;
use crate::present::output::Tone;
use crate::tui::action::{Action, Edit, Effect, View};
use crate::tui::app::{App, Mode, Popup, Purpose};

impl App {
    pub(crate) fn key_action(&mut self, action: Action) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Command => {
                self.mode = Mode::Command;
                self.command_key(action)
            }
            Mode::Filter => {
                self.mode = Mode::Filter;
                self.filter_key(action)
            }
            Mode::Help { scroll } => {
                self.mode = match action {
                    Action::Up => Mode::Help {
                        scroll: scroll.saturating_sub(1),
                    },
                    Action::Down => Mode::Help { scroll: scroll + 1 },
                    Action::PageUp => Mode::Help {
                        scroll: scroll.saturating_sub(self.page()),
                    },
                    Action::PageDown => Mode::Help {
                        scroll: scroll + self.page(),
                    },
                    Action::Top => Mode::Help { scroll: 0 },
                    Action::Back | Action::OpenHelp => Mode::Normal,
                    _ => Mode::Help { scroll },
                };
                vec![]
            }
            Mode::Confirm(c) => match action {
                Action::Confirm(true) => self.run(c.command, c.label, Purpose::Status),
                Action::Confirm(false) | Action::Back => {
                    self.set_status(format!("cancelled: {}", c.label), Tone::Dim);
                    vec![]
                }
                _ => {
                    self.mode = Mode::Confirm(c);
                    vec![]
                }
            },
            Mode::Popup(p) => {
                let tap = p.tap;
                let mut effects = self.popup_key(p, action);
                // Leaving a tap's popup (however) stops the tap.
                let still = matches!(&self.mode, Mode::Popup(q) if q.tap == tap);
                if let (Some(id), false) = (tap, still) {
                    effects.insert(0, Effect::Untap { id });
                }
                effects
            }
            Mode::Normal => self.normal_key(action),
        }
    }

    pub(crate) fn normal_key(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::SwitchView(v) => {
                self.drill = None;
                self.view = v;
            }
            Action::NextView | Action::PrevView => {
                let n = View::ALL.len();
                let i = self.view.index();
                let i = if action == Action::NextView {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.drill = None;
                self.view = View::ALL[i];
            }
            Action::Up => self.select(self.selected().saturating_sub(1)),
            Action::Down => self.select(self.selected() + 1),
            Action::PageUp => self.select(self.selected().saturating_sub(self.page())),
            Action::PageDown => self.select(self.selected() + self.page()),
            Action::Top => self.select(0),
            Action::Bottom => self.select(usize::MAX),
            Action::Enter => return self.enter(),
            Action::Back => self.back(),
            Action::OpenCommand => {
                self.completions.clear();
                self.mode = Mode::Command;
            }
            Action::OpenFilter => {
                let f = self.filter().to_string();
                self.filter_input.set(&f);
                self.mode = Mode::Filter;
            }
            Action::OpenHelp => self.mode = Mode::Help { scroll: 0 },
            Action::LastOutput => match &self.last_output {
                Some((t, l)) => self.mode = Mode::Popup(Popup::new(t.clone(), l.clone())),
                None => self.set_status("no command has run yet", Tone::Dim),
            },
            Action::Op(op) => return self.op(op),
            Action::Sort(by) if !(self.drill.is_none() && self.view == View::Events) => {
                let id = self.list_id();
                let reversed = match self.sort.get(&id) {
                    Some((b, r)) if *b == by => !r,
                    _ => false,
                };
                self.sort.insert(id, (by, reversed));
                let order = match (by, reversed) {
                    (crate::tui::action::SortBy::Name, false) => "A→Z",
                    (crate::tui::action::SortBy::Name, true) => "Z→A",
                    (_, false) => "highest first",
                    (_, true) => "lowest first",
                };
                self.set_status(
                    format!("sorted by {} ({order}; again reverses)", by.word()),
                    Tone::Dim,
                );
            }
            _ => {}
        }
        vec![]
    }

    fn back(&mut self) {
        if !self.filter().is_empty() {
            self.filters.remove(&self.list_id());
        } else if let Some((_, from)) = self.drill.take() {
            self.view = from;
        }
    }

    fn command_key(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Edit(Edit::Complete) => {
                let c = complete(&self.command.text, self.command.cursor, &self.names);
                match c.candidates.len() {
                    0 => self.completions.clear(),
                    1 => {
                        // The whole word is replaced (also the part after the cursor),
                        // and one space follows it: the one already there, or a new one.
                        let after: Vec<char> = self.command.text.chars().skip(c.end).collect();
                        let rest = after.iter().take_while(|ch| !ch.is_whitespace()).count();
                        let space = usize::from(after.get(rest) == Some(&' '));
                        let w = format!("{} ", c.candidates[0]);
                        self.command.replace(c.start, c.end + rest + space, &w);
                        self.completions.clear();
                    }
                    _ => {
                        let p = c.common_prefix();
                        if p.chars().count() > c.end - c.start {
                            self.command.replace(c.start, c.end, &p);
                        }
                        self.completions = c.candidates;
                    }
                }
            }
            Action::Edit(e) => {
                self.command.edit(e);
                self.completions.clear();
            }
            Action::Back => {
                self.command.cancel();
                self.completions.clear();
                self.mode = Mode::Normal;
            }
            Action::Submit => return self.submit_command(),
            _ => {}
        }
        vec![]
    }

    fn submit_command(&mut self) -> Vec<Effect> {
        self.completions.clear();
        let line = self.command.submit().trim().to_string();
        self.mode = Mode::Normal;
        if line.is_empty() {
            return vec![];
        }
        if matches!(line.as_str(), "q" | "quit" | "exit") {
            return self.update(Action::Quit);
        }
        let cmd = match parse::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                // Keep the line so it can be fixed.
                self.command.set(&line);
                self.mode = Mode::Command;
                self.set_status(e.to_string().replace('\n', "  "), Tone::Bad);
                return vec![];
            }
        };
        if self.opts.read_only && cmd.changes_state() {
            self.set_status(
                format!("read-only: `{line}` changes server state (uterm --read-only)"),
                Tone::Warn,
            );
            return vec![];
        }
        if matches!(cmd, Command::Events { follow: true, .. }) {
            self.view = View::Events;
            self.drill = None;
            self.set_status("the Events view (5) follows events live", Tone::Dim);
            return vec![];
        }
        self.run(cmd, line.clone(), Purpose::Command(line))
    }

    fn filter_key(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Edit(e) => {
                self.filter_input.edit(e);
                let id = self.list_id();
                self.filters.insert(id, self.filter_input.text.clone());
                self.select(0);
            }
            Action::Submit => {
                if self.filter().is_empty() {
                    self.filters.remove(&self.list_id());
                }
                self.mode = Mode::Normal;
            }
            Action::Back => {
                self.filter_input.cancel();
                self.filters.remove(&self.list_id());
                self.mode = Mode::Normal;
            }
            Action::Up | Action::Down => {
                self.mode = Mode::Normal;
                self.normal_key(action);
                self.mode = Mode::Filter;
            }
            _ => {}
        }
        vec![]
    }

    fn popup_key(&mut self, mut p: Popup, action: Action) -> Vec<Effect> {
        let last = p.lines.len().saturating_sub(1);
        let page = self.page();
        if let Some(h) = &mut p.history {
            let n = h.revisions.len().saturating_sub(1);
            match action {
                Action::Up => h.selected = h.selected.saturating_sub(1),
                Action::Down => h.selected = (h.selected + 1).min(n),
                Action::Enter | Action::Op(crate::tui::action::Op::Rollback) => {
                    let (unit, rev) = (h.unit.clone(), h.revisions.get(h.selected).copied());
                    self.mode = Mode::Popup(p);
                    return self.rollback_to(unit, rev);
                }
                _ => {}
            }
        }
        match action {
            Action::Back | Action::Enter => return vec![],
            // Navigation leaves the popup and acts as in Normal mode.
            Action::SwitchView(_) | Action::NextView | Action::PrevView | Action::OpenCommand => {
                return self.normal_key(action)
            }
            Action::Up if p.history.is_none() => p.scroll = p.scroll.saturating_sub(1),
            Action::Down if p.history.is_none() => p.scroll = (p.scroll + 1).min(last),
            Action::PageUp => p.scroll = p.scroll.saturating_sub(page),
            Action::PageDown => p.scroll = (p.scroll + page).min(last),
            Action::Top => p.scroll = 0,
            Action::Bottom => p.scroll = last,
            _ => {}
        }
        self.mode = Mode::Popup(p);
        vec![]
    }
}

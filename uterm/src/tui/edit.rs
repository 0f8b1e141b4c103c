//! A one-line text input (the `:` command line and the `/` filter): a cursor counted in
//! characters, the usual editing keys, and a history of submitted lines walked with Up/Down.
//! Pure state; the reducer owns one per line.

use crate::tui::action::Edit;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineInput {
    pub text: String,
    /// Cursor position in characters (0..=len).
    pub cursor: usize,
    history: Vec<String>,
    /// Position while walking the history (`None`: editing the draft).
    walk: Option<usize>,
    draft: String,
}

impl LineInput {
    fn len(&self) -> usize {
        self.text.chars().count()
    }

    fn byte(&self, char_idx: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_idx)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    /// Replaces the whole line, cursor at the end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.len();
    }

    /// Applies an edit (everything but completion, which needs names).
    pub fn edit(&mut self, e: Edit) {
        match e {
            Edit::Char(c) => {
                let at = self.byte(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                let at = self.byte(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
            }
            Edit::Delete if self.cursor < self.len() => {
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(self.len()),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = self.len(),
            Edit::Clear => {
                self.text.clear();
                self.cursor = 0;
            }
            Edit::DeleteWord => {
                let chars: Vec<char> = self.text.chars().collect();
                let mut i = self.cursor;
                while i > 0 && chars[i - 1].is_whitespace() {
                    i -= 1;
                }
                while i > 0 && !chars[i - 1].is_whitespace() {
                    i -= 1;
                }
                let (a, b) = (self.byte(i), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = i;
            }
            Edit::Prev => self.walk_history(true),
            Edit::Next => self.walk_history(false),
            _ => {}
        }
    }

    fn walk_history(&mut self, back: bool) {
        if self.history.is_empty() {
            return;
        }
        let next = match (self.walk, back) {
            (None, true) => {
                self.draft = self.text.clone();
                Some(self.history.len() - 1)
            }
            (None, false) => None,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        self.walk = next;
        let text = match next {
            Some(i) => self.history[i].clone(),
            None => self.draft.clone(),
        };
        self.set(&text);
    }

    /// Replaces the characters `start..end` with `with`, cursor after it.
    pub fn replace(&mut self, start: usize, end: usize, with: &str) {
        let (a, b) = (self.byte(start), self.byte(end));
        self.text.replace_range(a..b, with);
        self.cursor = start + with.chars().count();
    }

    /// Takes the line (empties the input) and remembers it in the history.
    pub fn submit(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.walk = None;
        self.draft.clear();
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.history.last().map(String::as_str) != Some(trimmed) {
            self.history.push(trimmed.to_string());
        }
        line
    }

    /// Empties the input without remembering it.
    pub fn cancel(&mut self) {
        self.text.clear();
        self.cursor = 0;
        self.walk = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineInput {
        let mut l = LineInput::default();
        for c in s.chars() {
            l.edit(Edit::Char(c));
        }
        l
    }

    #[test]
    fn editing_keys() {
        let mut l = typed("reload örders");
        assert_eq!(l.cursor, 13);
        l.edit(Edit::Backspace);
        assert_eq!(l.text, "reload örder");
        l.edit(Edit::Home);
        l.edit(Edit::Delete);
        assert_eq!(l.text, "eload örder");
        l.edit(Edit::End);
        l.edit(Edit::DeleteWord);
        assert_eq!(l.text, "eload ");
        l.edit(Edit::Left);
        l.edit(Edit::Char('x'));
        assert_eq!(l.text, "eloadx ");
        l.edit(Edit::Clear);
        assert_eq!((l.text.as_str(), l.cursor), ("", 0));
        l.set("pause proxy ord");
        l.replace(12, 15, "orders/list ");
        assert_eq!(l.text, "pause proxy orders/list ");
        assert_eq!(l.cursor, 24);
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut l = typed("status");
        assert_eq!(l.submit(), "status");
        l.set("list");
        l.submit();
        l.set("list"); // a repeat is remembered once
        l.submit();
        l.set("dra");
        l.edit(Edit::Prev);
        assert_eq!(l.text, "list");
        l.edit(Edit::Prev);
        assert_eq!(l.text, "status");
        l.edit(Edit::Prev);
        assert_eq!(l.text, "status");
        l.edit(Edit::Next);
        l.edit(Edit::Next);
        assert_eq!(l.text, "dra");
    }
}

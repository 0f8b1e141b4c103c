//! Diagnostics: one configuration problem with file:line:col, the element it concerns,
//! what is wrong and a hint. Byte spans from the TOML parser are turned into line and
//! column here; "did you mean" suggestions come from [`suggest`].

use serde::Serialize;
use std::fmt;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// Path of the file as the operator knows it (unit directory joined with the file name);
    /// with `line` 0 the diagnostic concerns the unit as a whole and this names the unit.
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The element concerned, e.g. `proxy "orders"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub element: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, line: u32, col: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            col,
            element: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn element(mut self, element: impl Into<String>) -> Self {
        self.element = Some(element.into());
        self
    }

    pub fn hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: about the unit as a whole (its name, its history), not a place in a file.
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        }
        if let Some(element) = &self.element {
            write!(f, "{element}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Maps byte offsets of one source text to 1-based line and column (in characters).
/// Keeps the start of each line and where multi-byte characters are, not the text: a
/// running unit keeps the index of its files for messages about it (a warm restart's
/// pre-check), so it stays a small fraction of the text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of each line's start.
    starts: Vec<u32>,
    /// Byte offset of each character longer than one byte, and its extra bytes.
    wide: Vec<(u32, u8)>,
    len: u32,
}

/// Offsets past 4 GiB (no configuration file is that big) land on the last position.
fn offset32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| offset32(i + 1)));
        starts.shrink_to_fit();
        let mut wide: Vec<(u32, u8)> = text
            .char_indices()
            .filter(|(_, c)| c.len_utf8() > 1)
            .map(|(i, c)| (offset32(i), c.len_utf8() as u8 - 1))
            .collect();
        wide.shrink_to_fit();
        LineIndex {
            starts,
            wide,
            len: offset32(text.len()),
        }
    }

    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset32(offset).min(self.len);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let from = self.wide.partition_point(|&(i, _)| i < start);
        let to = self.wide.partition_point(|&(i, _)| i < offset);
        let extra: u32 = self.wide[from..to].iter().map(|&(_, e)| e as u32).sum();
        (line as u32 + 1, offset - start - extra + 1)
    }
}

/// The closest candidate to `word`, if one is close enough to be a plausible typo: at most
/// two edits (or a third of the candidate's length) away, counting a transposition as one,
/// and not wholly different; or one of the two (3+ characters) begins the other
/// (`execute` → `exec`). Case is ignored; of equally near candidates the one that shares
/// the longest start with the word wins (`of` → `off`, not `on`). The one "did you mean" of the project:
/// configuration errors and management errors alike.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            let d = strsim::damerau_levenshtein(&word, &lower);
            let near = d <= 2.max(c.len() / 3) && d < c.len().max(word.len());
            let (short, long) = if word.len() <= lower.len() {
                (&word, &lower)
            } else {
                (&lower, &word)
            };
            let begins = short.chars().count() >= 3 && long.starts_with(short.as_str());
            // Ties go to the candidate sharing the longest start with the word.
            let common = word
                .chars()
                .zip(lower.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (near || begins).then_some(((d, std::cmp::Reverse(common)), c))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| c)
}

/// `did you mean "x"?` for the closest candidate, if any.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(word, candidates).map(|c| format!("did you mean \"{c}\"?"))
}

/// `did you mean` for serde's "unknown field/variant `x`, expected one of `a`, `b`".
pub(crate) fn unknown_key_hint(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("unknown variant `"))?;
    let (word, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(word, candidates.iter().copied()).or_else(|| {
        (!candidates.is_empty()).then(|| format!("expected one of: {}", candidates.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_char_columns() {
        let idx = LineIndex::new("ab\nçd = 1\n\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(6), (2, 3));
        assert_eq!(idx.position(12), (4, 1));
        assert_eq!(idx.position(99), (4, 2));
        let idx = LineIndex::new("a = \"é€𝄞\" # ü\nb");
        let text = "a = \"é€𝄞\" # ü\nb";
        for (i, _) in text.char_indices() {
            let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
            let line = text[..i].matches('\n').count() as u32 + 1;
            let col = text[line_start..i].chars().count() as u32 + 1;
            assert_eq!(idx.position(i), (line, col), "offset {i}");
        }
    }

    #[test]
    fn suggestions_pick_near_names_only() {
        let names = ["orders-backend", "billing"];
        assert_eq!(suggest("orders-backnd", names), Some("orders-backend"));
        assert_eq!(suggest("zzz", names), None);
        assert_eq!(suggest("of", ["on", "off"]), Some("off"));
        assert_eq!(
            did_you_mean("biling", names).as_deref(),
            Some("did you mean \"billing\"?")
        );
    }

    #[test]
    fn suggestions_ignore_case_and_count_transpositions_as_one_edit() {
        assert_eq!(
            suggest("serach", crate::protocol::REQUEST_TYPES),
            Some("search")
        );
        assert_eq!(
            suggest("versoin", crate::protocol::REQUEST_TYPES),
            Some("version")
        );
        assert_eq!(suggest("lst", crate::protocol::REQUEST_TYPES), Some("list"));
        assert_eq!(suggest("foo", crate::protocol::REQUEST_TYPES), None);
        assert_eq!(suggest("x", Vec::<&str>::new()), None);
        assert_eq!(suggest("ebs", ["esb", "other"]), Some("esb"));
        assert_eq!(suggest("a", ["b"]), None);
        assert_eq!(
            suggest("heapmemoryusage", ["HeapMemoryUsage"]),
            Some("HeapMemoryUsage")
        );
    }

    #[test]
    fn display_has_location_element_and_hint() {
        let d = Diagnostic::new("conf/u/unit.toml", 14, 1, "endpoint \"ordrs\" not found")
            .element("proxy \"list\"")
            .hint(Some("did you mean \"orders\"?".into()));
        assert_eq!(
            d.to_string(),
            "conf/u/unit.toml:14:1: proxy \"list\": endpoint \"ordrs\" not found; did you mean \"orders\"?"
        );
    }
}

//! The help of the command language as text: the table of every verb (`help`) and the
//! usage, summary, details and examples of one (`help VERB`), from [`crate::lang::help`].

use serde_json::{json, Value};

use crate::lang::help::{entry, ENTRIES};
use crate::present::output::{Block, Line, Output, Span, Table, Tone};

/// `help` or `help VERB`.
pub fn render(topic: Option<&str>) -> Output {
    match topic.and_then(entry) {
        Some(e) => {
            let mut lines: Vec<Line> = Vec::new();
            for (i, u) in e.usage.lines().enumerate() {
                let label = if i == 0 { "usage: " } else { "       " };
                lines.push(vec![Span::new(label, Tone::Dim), Span::new(u, Tone::Bold)]);
            }
            lines.push(vec![]);
            lines.push(vec![Span::plain(e.summary)]);
            if !e.details.is_empty() {
                lines.push(vec![]);
                lines.extend(
                    wrap(e.details, 88)
                        .into_iter()
                        .map(|l| vec![Span::plain(l)]),
                );
            }
            if !e.examples.is_empty() {
                lines.push(vec![]);
                lines.push(vec![Span::new("examples:", Tone::Dim)]);
                for ex in e.examples {
                    lines.push(vec![Span::plain(format!("  {ex}"))]);
                }
            }
            let json = json!({
                "command": e.verb,
                "usage": e.usage.lines().collect::<Vec<_>>(),
                "summary": e.summary,
                "details": e.details,
                "examples": e.examples,
            });
            Output::new(json).with(Block::Lines(lines))
        }
        None => {
            let mut t = Table::new(&["COMMAND", "WHAT IT DOES"], "");
            for e in ENTRIES {
                for (i, u) in e.usage.lines().enumerate() {
                    t.push(vec![
                        Span::new(u, Tone::Bold),
                        if i == 0 { e.summary.into() } else { "".into() },
                    ]);
                }
            }
            let json = Value::Array(
                ENTRIES
                    .iter()
                    .map(|e| json!({ "command": e.verb, "usage": e.usage.lines().collect::<Vec<_>>(), "summary": e.summary }))
                    .collect(),
            );
            Output::new(json)
                .with(Block::Table(t))
                .with(Block::Lines(vec![vec![Span::new(
                    "A bare NAME is a unit; elements are UNIT/NAME. `help COMMAND` for details.",
                    Tone::Dim,
                )]]))
        }
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(o: &Output) -> String {
        o.render(crate::present::output::Style::PLAIN)
    }

    #[test]
    fn help_lists_every_command_and_details_one() {
        let h = plain(&render(None));
        assert!(
            h.contains("reload UNIT...") && h.contains("exec BEAN OPERATION [ARGUMENT...]"),
            "{h}"
        );
        let h = plain(&render(Some("pause")));
        assert!(
            h.starts_with("usage: pause [unit] UNIT [--hold MS]\n       pause proxy"),
            "{h}"
        );
        assert!(h.contains("examples:\n  pause orders\n"), "{h}");
        assert_eq!(render(Some("pause")).json["command"], "pause");
    }
}

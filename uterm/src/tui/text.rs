//! Text the console shows, as toned spans: command [`Output`]s as lines (laid out by
//! [`crate::present::output::block_lines`], as in script mode), sparklines as block characters, and
//! the key map ([`KEYS`]) that the help popup lists and docs/uterm.md follows.

use crate::present::output::{block_lines, plain, Line, Output, Span, Tone};

/// The lines of an output (its blocks), never empty: "ok" when it has nothing to show.
pub fn output_lines(out: &Output) -> Vec<Line> {
    let lines = block_lines(&out.blocks);
    if lines.iter().all(|l| plain(l).is_empty()) {
        return vec![vec![Span::new("ok", Tone::Good)]];
    }
    lines
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as a sparkline, scaled to the largest; right-aligned (newest at
/// the right), padded with spaces when there are fewer samples. All zero is a flat baseline.
pub fn spark(samples: &[f64], width: usize) -> String {
    let take = samples.len().min(width);
    let recent = &samples[samples.len() - take..];
    let max = recent.iter().cloned().fold(0.0_f64, f64::max);
    let mut s = " ".repeat(width - take);
    for v in recent {
        let i = if max <= 0.0 || *v <= 0.0 {
            0
        } else {
            ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize
        };
        s.push(BARS[i]);
    }
    s
}

/// A rate as a short cell: `0`, `0.4`, `12`, `1.2k`.
pub fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(r) if r <= 0.0 => "0".into(),
        Some(r) if r < 10.0 => format!("{r:.1}"),
        Some(r) if r < 10_000.0 => format!("{r:.0}"),
        Some(r) => format!("{:.1}k", r / 1000.0),
    }
}

/// A counter as a short cell: `12`, `45.2k`, `3.1M`.
pub fn count(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(n) if n < 100_000.0 => format!("{n:.0}"),
        Some(n) if n < 10_000_000.0 => format!("{:.1}k", n / 1000.0),
        Some(n) => format!("{:.1}M", n / 1_000_000.0),
    }
}

/// Every key of the console, by mode: `(section, [(keys, what)])`.
pub const KEYS: &[(&str, &[(&str, &str)])] = &[
    (
        "Views",
        &[
            ("1 2 3 4", "Units, Proxies, Endpoints, Transports"),
            ("5 6 7", "Events, Consumers, Cluster"),
            ("Tab / Shift-Tab", "next / previous view"),
            ("↑ ↓  j k", "move the selection"),
            ("PgUp PgDn  g G", "page up / down, first / last row"),
            ("Enter", "drill into a unit; on other rows, every attribute"),
            (
                "Esc",
                "back: close a popup, clear the filter, leave the unit",
            ),
            ("N S R E P I", "sort: Name State Req/s Err P99 Infl"),
            ("o", "the full output of the last command"),
            ("Ctrl-R", "refresh now"),
            ("q  Ctrl-C", "quit"),
        ],
    ),
    (
        "Actions on the selection (not with --read-only; * asks first)",
        &[
            ("r", "reload the unit (of the selected element)"),
            ("p", "pause* / resume the selection (not sequences)"),
            ("s", "stop* / start the proxy, transport or consumer"),
            ("m", "maintenance* on / off for the endpoint"),
            ("M", "maintenance* on / off for the whole server"),
            ("d", "diff: what a reload of the unit would change"),
            ("h", "history of the unit; Enter rolls back* to a revision"),
            ("b", "roll the unit back* to its previous revision"),
            ("l", "load the unit (units on disk that are not loaded)"),
            ("u", "unload* the unit"),
            ("t", "run the selected task now"),
            ("w", "watch the proxy's requests live (tap); Esc stops"),
        ],
    ),
    (
        "Command line  :",
        &[
            (
                ":",
                "any command of script mode (`help` lists them); q quits",
            ),
            ("Tab", "complete the command or object name"),
            ("↑ ↓", "previous / next command"),
            ("Ctrl-U  Ctrl-W", "clear the line / delete a word"),
            ("Enter  Esc", "run / cancel"),
        ],
    ),
    (
        "Filter  /",
        &[
            ("/", "filter the rows by a text (name, unit, state, path)"),
            ("Enter", "keep the filter; Esc clears it"),
        ],
    ),
    (
        "Popups and confirmations",
        &[
            ("↑ ↓ PgUp PgDn", "scroll (select in the history)"),
            ("y  Enter / n  Esc", "confirm / cancel"),
            ("Esc", "close (1-5, Tab, : and q work as in the views)"),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::present::output::{Block, Table};
    use serde_json::json;

    #[test]
    fn blocks_are_aligned_like_script_mode() {
        let mut t = Table::new(&["REV>", "HASH"], "none");
        t.push(vec!["3".into(), "abc".into()]);
        t.push(vec!["12".into(), Span::state("Active")]);
        let out = Output::new(json!(null))
            .with(Block::Lines(vec![vec![Span::plain("title")]]))
            .with(Block::Table(t));
        let text: Vec<String> = output_lines(&out).iter().map(plain).collect();
        let script = out.render(crate::present::output::Style::PLAIN);
        assert_eq!(text.join("\n") + "\n", script);
        assert_eq!(plain(&output_lines(&Output::new(json!(null)))[0]), "ok");
    }

    #[test]
    fn sparkline_scales_to_the_largest_sample() {
        assert_eq!(spark(&[0.0, 1.0, 2.0], 5), "  ▁▅█");
        assert_eq!(spark(&[0.0, 0.0], 2), "▁▁");
        assert_eq!(spark(&[1.0; 10], 3), "███");
        assert_eq!(rate(Some(0.25)), "0.2");
        assert_eq!(rate(Some(120.4)), "120");
        assert_eq!(rate(None), "-");
        assert_eq!(count(Some(123_456.0)), "123.5k");
    }
}

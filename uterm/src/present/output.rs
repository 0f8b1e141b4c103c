//! What a command produces: one JSON document (for `--json` and programs) and blocks for
//! people (aligned tables, key/value fields, lines of styled text). Rendering is pure; colour
//! is a [`Style`] decision made by the caller (a terminal and no `NO_COLOR`). Column widths
//! are computed on the visible text, so colour never breaks alignment.

use serde_json::Value;

/// The meaning of a piece of text, mapped to a colour on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
    Bold,
}

impl Tone {
    /// The tone of a state word: green for serving, yellow for held back, red for broken.
    pub fn of_state(state: &str) -> Tone {
        match state.to_ascii_lowercase().as_str() {
            "active" | "started" | "running" | "scheduled" | "up" | "activated" | "ok"
            | "connected" | "valid" | "unchanged" | "on" | "unloaded" => Tone::Good,
            "paused" | "maintenance" | "suspended" | "draining" | "degraded" | "modified"
            | "held" | "off" => Tone::Warn,
            "failed" | "stopped" | "rejected" | "error" | "invalid" | "down" | "disconnected" => {
                Tone::Bad
            }
            _ => Tone::Plain,
        }
    }

    fn ansi(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("32"),
            Tone::Warn => Some("33"),
            Tone::Bad => Some("31"),
            Tone::Dim => Some("2"),
            Tone::Bold => Some("1"),
        }
    }
}

/// A piece of text with a tone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    pub text: String,
    pub tone: Tone,
}

impl Span {
    pub fn plain(text: impl Into<String>) -> Span {
        Span {
            text: text.into(),
            tone: Tone::Plain,
        }
    }

    pub fn new(text: impl Into<String>, tone: Tone) -> Span {
        Span {
            text: text.into(),
            tone,
        }
    }

    /// A state word, toned by [`Tone::of_state`].
    pub fn state(text: impl Into<String>) -> Span {
        let text = text.into();
        let tone = Tone::of_state(&text);
        Span { text, tone }
    }

    fn width(&self) -> usize {
        self.text.chars().count()
    }
}

impl From<&str> for Span {
    fn from(s: &str) -> Span {
        Span::plain(s)
    }
}

impl From<String> for Span {
    fn from(s: String) -> Span {
        Span::plain(s)
    }
}

/// A line of spans.
pub type Line = Vec<Span>;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// An aligned table with a header row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<Span>>,
    /// Shown instead of an empty table, e.g. "no proxies".
    pub empty: String,
}

impl Table {
    /// A table with these columns; a header ending in `>` is right-aligned (the `>` is dropped).
    pub fn new(headers: &[&str], empty: impl Into<String>) -> Table {
        let align = headers
            .iter()
            .map(|h| {
                if h.ends_with('>') {
                    Align::Right
                } else {
                    Align::Left
                }
            })
            .collect();
        Table {
            headers: headers
                .iter()
                .map(|h| h.trim_end_matches('>').to_string())
                .collect(),
            align,
            rows: Vec::new(),
            empty: empty.into(),
        }
    }

    pub fn push(&mut self, row: Vec<Span>) {
        self.rows.push(row);
    }
}

/// One block of human output.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Lines(Vec<Line>),
    /// Aligned `key  value` pairs.
    Fields(Vec<(String, Span)>),
    Table(Table),
}

/// The result of one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The machine-readable result (the `result` of the `--json` document).
    pub json: Value,
    /// The human rendering, block by block.
    pub blocks: Vec<Block>,
}

impl Output {
    pub fn new(json: Value) -> Output {
        Output {
            json,
            blocks: Vec::new(),
        }
    }

    /// An output of a single line of text.
    pub fn line(json: Value, line: Line) -> Output {
        Output::new(json).with(Block::Lines(vec![line]))
    }

    pub fn with(mut self, block: Block) -> Output {
        self.blocks.push(block);
        self
    }

    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    /// Renders for people; blocks are separated by a blank line. Ends with a newline unless
    /// there is nothing to show.
    pub fn render(&self, style: Style) -> String {
        let mut out = String::new();
        for line in block_lines(&self.blocks) {
            out.push_str(style.line(&line).trim_end());
            out.push('\n');
        }
        out
    }
}

/// Whether to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style { color: false };
    pub const COLOR: Style = Style { color: true };

    /// Colour when `is_terminal` and `NO_COLOR` is unset or empty (https://no-color.org).
    pub fn detect(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color,
        }
    }

    /// `text` in `tone`.
    pub fn paint(self, text: &str, tone: Tone) -> String {
        match (self.color, tone.ansi()) {
            (true, Some(code)) if !text.is_empty() => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }

    pub fn span(self, s: &Span) -> String {
        self.paint(&s.text, s.tone)
    }

    pub fn line(self, line: &[Span]) -> String {
        line.iter().map(|s| self.span(s)).collect()
    }
}

/// The blocks of an output as lines: tables and fields aligned on the visible width of their
/// cells (tones kept, padding plain), a blank line between blocks. The one layout of both
/// script mode ([`Output::render`]) and the console.
pub fn block_lines(blocks: &[Block]) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for b in blocks {
        let lines = match b {
            Block::Lines(l) => l.clone(),
            Block::Fields(fields) => field_lines(fields),
            Block::Table(t) => table_lines(t),
        };
        if lines.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(Vec::new());
        }
        out.extend(lines);
    }
    out
}

/// Aligned `key  value` lines, the keys dim.
fn field_lines(fields: &[(String, Span)]) -> Vec<Line> {
    let w = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| {
            let pad = " ".repeat(w - k.chars().count() + 2);
            vec![Span::new(k.clone(), Tone::Dim), Span::plain(pad), v.clone()]
        })
        .collect()
}

/// A header row (bold) and the rows, every column as wide as its widest cell; the empty
/// text when there are no rows.
fn table_lines(t: &Table) -> Vec<Line> {
    if t.rows.is_empty() {
        return vec![vec![Span::new(t.empty.clone(), Tone::Dim)]];
    }
    let cols = t.headers.len();
    let mut widths: Vec<usize> = t.headers.iter().map(|h| h.chars().count()).collect();
    for row in &t.rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let header: Vec<Span> = t
        .headers
        .iter()
        .map(|h| Span::new(h.clone(), Tone::Bold))
        .collect();
    std::iter::once(&header)
        .chain(t.rows.iter())
        .map(|row| {
            let mut line = Vec::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = row.get(i).cloned().unwrap_or_default();
                let pad = Span::plain(" ".repeat(w - cell.width().min(*w)));
                if i > 0 {
                    line.push(Span::plain("  "));
                }
                if t.align.get(i) == Some(&Align::Right) {
                    line.extend([pad, cell]);
                } else {
                    line.extend([cell, pad]);
                }
            }
            line
        })
        .collect()
}

/// A line's text without tones, trailing blanks trimmed.
pub fn plain<L: AsRef<[Span]> + ?Sized>(line: &L) -> String {
    let s: String = line.as_ref().iter().map(|s| s.text.as_str()).collect();
    s.trim_end().to_string()
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers for values read from the server.
// ---------------------------------------------------------------------------------------------

/// A JSON value as a table cell: strings bare, arrays of scalars comma-joined, null empty.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_object() && !i.is_array()) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() => trim_float(f),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

fn trim_float(f: f64) -> String {
    if (f.fract() == 0.0 && f.abs() < 1e15) || f.abs() >= 100.0 {
        format!("{f:.0}")
    } else {
        format!("{f:.1}")
    }
}

/// Milliseconds as a short duration: `850 ms`, `3.1 ms`, `2.4 s`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// Microseconds as a latency cell: `850µs`, `3.1ms`, `2.4s`.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else {
        format!("{:.1}s", us / 1_000_000.0)
    }
}

/// Seconds as an uptime: `45s`, `12m 03s`, `5h 02m`, `3d 04h`.
pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// How long ago `then_ms` was, relative to `now_ms`: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
pub fn ago(then_ms: u64, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    if secs < 60 {
        format!("{secs}s ago")
    } else if secs < 3600 {
        format!("{}m ago", secs / 60)
    } else if secs < 86400 {
        format!("{}h ago", secs / 3600)
    } else {
        format!("{}d ago", secs / 86400)
    }
}

/// Milliseconds since the Unix epoch as UTC `2024-05-01 12:03:04`.
pub fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86400) as i64);
    let t = secs % 86400;
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Milliseconds since the Unix epoch as UTC time of day with milliseconds: `12:03:04.123`.
pub fn time_of_day(ms: u64) -> String {
    let t = ms / 1000 % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The first 12 characters of a content hash.
pub fn short_hash(h: &str) -> &str {
    let h = h.strip_prefix("sha256:").unwrap_or(h);
    h.get(..12).unwrap_or(h)
}

/// A JSON value shortened to at most `max` characters for one-line display.
pub fn compact(v: &Value, max: usize) -> String {
    deployments::diff::one_line(v, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_on_visible_width_with_and_without_colour() {
        let mut t = Table::new(&["NAME", "STATE", "REQUESTS>"], "no units");
        t.push(vec!["orders".into(), Span::state("Active"), "1234".into()]);
        t.push(vec![
            "internal-services".into(),
            Span::state("Paused"),
            "5".into(),
        ]);
        let out = Output::new(json!(null)).with(Block::Table(t));
        let plain = out.render(Style::PLAIN);
        assert_eq!(
            plain,
            "NAME               STATE   REQUESTS\n\
             orders             Active      1234\n\
             internal-services  Paused         5\n"
        );
        let coloured = out.render(Style::COLOR);
        assert!(coloured.contains("\x1b[32mActive\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains("\x1b[33mPaused\x1b[0m"));
        // Stripping the escapes gives the plain rendering back (header bold included).
        let stripped = strip_ansi(&coloured);
        assert_eq!(stripped, plain);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for n in it.by_ref() {
                    if n == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn empty_table_fields_and_blocks() {
        let out = Output::new(json!([]))
            .with(Block::Table(Table::new(&["A"], "no proxies")))
            .with(Block::Fields(vec![
                ("State".into(), Span::state("Active")),
                ("Revision".into(), "4".into()),
            ]));
        assert_eq!(
            out.render(Style::PLAIN),
            "no proxies\n\nState     Active\nRevision  4\n"
        );
        assert_eq!(Output::new(json!(1)).render(Style::PLAIN), "");
    }

    #[test]
    fn tones_of_states() {
        assert_eq!(Tone::of_state("Active"), Tone::Good);
        assert_eq!(Tone::of_state("Maintenance"), Tone::Warn);
        assert_eq!(Tone::of_state("Stopped"), Tone::Bad);
        assert_eq!(Tone::of_state("Failed"), Tone::Bad);
        assert_eq!(Tone::of_state("whatever"), Tone::Plain);
        assert_eq!(Style::COLOR.paint("", Tone::Bad), "");
    }

    #[test]
    fn value_formatting() {
        assert_eq!(cell(Some(&json!(["GET", "POST"]))), "GET,POST");
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(Some(&json!(3))), "3");
        assert_eq!(cell(Some(&json!(2.345))), "2.3");
        assert_eq!(cell(Some(&json!(2.0))), "2");
        assert_eq!(cell(Some(&json!({"a":1}))), "{\"a\":1}");
        assert_eq!(millis(3.12), "3.1 ms");
        assert_eq!(millis(250.4), "250 ms");
        assert_eq!(millis(2400.0), "2.4 s");
        assert_eq!(micros(850.0), "850µs");
        assert_eq!(micros(3100.0), "3.1ms");
        assert_eq!(uptime(45), "45s");
        assert_eq!(uptime(723), "12m 03s");
        assert_eq!(uptime(5 * 3600 + 120), "5h 02m");
        assert_eq!(uptime(3 * 86400 + 4 * 3600), "3d 04h");
        assert_eq!(ago(1_000, 61_000), "1m ago");
        assert_eq!(ago(5_000, 1_000), "0s ago");
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_714_565_584_000), "2024-05-01 12:13:04");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(time_of_day(1_714_565_584_123), "12:13:04.123");
        assert_eq!(short_hash("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
        assert_eq!(compact(&json!("/a"), 20), "\"/a\"");
        assert_eq!(compact(&json!("abcdefghij"), 6), "\"abcd…");
    }

    #[test]
    fn no_color_is_respected() {
        // Only the terminal flag is tested here; NO_COLOR is read from the environment.
        assert!(!Style::detect(false).color);
    }
}

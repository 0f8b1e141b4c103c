//! Lexing of the command language: splits script text into commands (at `;` and newlines
//! outside quotes) and each command into tokens. Quoting is shell-like: `'…'` is literal,
//! `"…"` knows `\"` and `\\`, a backslash outside quotes escapes the next character, and an
//! unquoted `#` at the start of a token comments out the rest of the line.

use crate::lang::error::UsageError;

/// One word of a command, after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// True when any part of the word was quoted or escaped (a quoted `--all` is no flag).
    pub quoted: bool,
}

impl Token {
    /// A token taken verbatim (e.g. one already split by the shell).
    pub fn verbatim(text: impl Into<String>) -> Token {
        Token {
            text: text.into(),
            quoted: false,
        }
    }
}

/// One command of a script: its tokens, the line it starts on (1-based) and its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub tokens: Vec<Token>,
    pub line: usize,
    pub text: String,
}

/// Splits `text` into commands; empty commands (blank lines, comments, `;;`) are dropped.
pub fn lex(text: &str) -> Result<Vec<Segment>, UsageError> {
    let mut segments = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    let mut cur: Option<Token> = None;
    let mut line = 1usize;
    let mut seg_line = 1usize;
    let mut seg_start = 0usize;
    let mut chars = text.char_indices().peekable();

    fn finish_token(cur: &mut Option<Token>, tokens: &mut Vec<Token>) {
        if let Some(t) = cur.take() {
            tokens.push(t);
        }
    }
    let finish_segment = |tokens: &mut Vec<Token>,
                          segments: &mut Vec<Segment>,
                          start: usize,
                          end: usize,
                          seg_line: usize| {
        if !tokens.is_empty() {
            segments.push(Segment {
                tokens: std::mem::take(tokens),
                line: seg_line,
                text: join_continuations(&strip_comment(text[start..end].trim())),
            });
        }
    };

    while let Some((i, c)) = chars.next() {
        match c {
            '\n' | ';' => {
                finish_token(&mut cur, &mut tokens);
                finish_segment(&mut tokens, &mut segments, seg_start, i, seg_line);
                if c == '\n' {
                    line += 1;
                }
                seg_start = i + 1;
                seg_line = line;
            }
            c if c.is_whitespace() => finish_token(&mut cur, &mut tokens),
            '#' if cur.is_none() => {
                // Comment to the end of the line.
                while let Some(&(_, n)) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '\'' | '"' => {
                let quote_line = line;
                let t = cur.get_or_insert_with(|| Token::verbatim(""));
                t.quoted = true;
                let mut closed = false;
                while let Some((_, n)) = chars.next() {
                    if n == c {
                        closed = true;
                        break;
                    }
                    if n == '\n' {
                        line += 1;
                    }
                    if c == '"' && n == '\\' {
                        match chars.peek() {
                            Some(&(_, e)) if e == '"' || e == '\\' => {
                                t.text.push(e);
                                chars.next();
                                continue;
                            }
                            _ => {}
                        }
                    }
                    t.text.push(n);
                }
                if !closed {
                    return Err(UsageError::new(format!(
                        "unterminated {} quote (opened on line {quote_line})",
                        if c == '"' { "double" } else { "single" }
                    ))
                    .with_hint("close the quote, or escape a literal quote with a backslash"));
                }
            }
            '\\' => {
                // A line continuation is removed, as in a shell: it neither starts nor ends a word.
                if matches!(chars.peek(), Some((_, '\n'))) {
                    chars.next();
                    line += 1;
                    continue;
                }
                let t = cur.get_or_insert_with(|| Token::verbatim(""));
                t.quoted = true;
                match chars.next() {
                    Some((_, n)) => t.text.push(n),
                    None => t.text.push('\\'),
                }
            }
            c => cur.get_or_insert_with(|| Token::verbatim("")).text.push(c),
        }
    }
    finish_token(&mut cur, &mut tokens);
    finish_segment(&mut tokens, &mut segments, seg_start, text.len(), seg_line);
    Ok(segments)
}

/// A command's text with its line continuations joined into single spaces.
fn join_continuations(s: &str) -> String {
    if !s.contains("\\\n") {
        return s.to_owned();
    }
    s.split("\\\n").map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The source text of a command without a trailing `# comment` (quotes respected).
fn strip_comment(s: &str) -> String {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' {
                escaped = true;
            }
        } else if c == '\\' {
            escaped = true;
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else if c == '#' && prev_space {
            return s[..i].trim_end().to_string();
        }
        prev_space = c.is_whitespace();
    }
    s.to_string()
}

/// Quotes `s` for the command language if it would not survive lexing as one plain word.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with('#')
        && s.chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '\\' | ';'));
    if plain {
        s.to_string()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Vec<String>> {
        lex(s)
            .unwrap()
            .into_iter()
            .map(|seg| seg.tokens.into_iter().map(|t| t.text).collect())
            .collect()
    }

    #[test]
    fn splits_commands_at_semicolons_and_newlines() {
        assert_eq!(
            words("reload a; status\n\n pause unit b ;; "),
            vec![
                vec!["reload", "a"],
                vec!["status"],
                vec!["pause", "unit", "b"]
            ]
        );
        let segs = lex("status\n# comment\nreload orders # why\n").unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].line, 3);
        assert_eq!(segs[1].text, "reload orders");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r#"set esb:type=Server HotDeploy 'a b;c' "x \"y\" \\z" e\ f"#),
            vec![vec![
                "set",
                "esb:type=Server",
                "HotDeploy",
                "a b;c",
                r#"x "y" \z"#,
                "e f"
            ]]
        );
        let segs = lex(r#"exec X op '["a","b"]' "--all" --all"#).unwrap();
        let t = &segs[0].tokens;
        assert_eq!(t[3].text, r#"["a","b"]"#);
        assert!(t[3].quoted);
        assert!(t[4].quoted && t[4].text == "--all");
        assert!(!t[5].quoted);
        // A '#' inside a word or quotes is no comment.
        assert_eq!(
            words("add address u/e http://h/#x '#y'"),
            vec![vec!["add", "address", "u/e", "http://h/#x", "#y"]]
        );
        // Empty quotes make an empty word.
        assert_eq!(words("get '' x"), vec![vec!["get", "", "x"]]);
    }

    #[test]
    fn unterminated_quote_is_a_usage_error() {
        let e = lex("status\nreload 'orders").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn quote_round_trips() {
        for s in ["plain", "a b", "it's", "x;y", "", "#c", r#"q"\"#] {
            let segs = lex(&quote(s)).unwrap();
            assert_eq!(segs[0].tokens[0].text, s, "{s}");
        }
    }
}

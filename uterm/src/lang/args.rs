//! The words of a command after its verb: [`Args`] splits them into positional words and
//! `--flags` (`--to 3`, `--to=3`, anywhere after the verb; an unknown flag gets the nearest
//! spelling), and the parsers of one word each (unit names, `[KIND] NAME` targets, bean
//! names, durations, shares, on/off), every error carrying the usage of its command.

use deployments::protocol::{did_you_mean, ObjectName};
use serde_json::Value;

use crate::lang::error::UsageError;
use crate::lang::kind::{Kind, Target};
use crate::lang::lex::{self, Token};

/// The words after the verb, split into positional words and `--flags`.
pub(crate) struct Args<'a> {
    pub(crate) verb: &'a str,
    pub(crate) words: Vec<&'a str>,
    pub(crate) flags: Vec<(&'static str, Option<&'a str>)>,
    /// The full command as typed, for suggestions.
    pub(crate) all: &'a [Token],
}

/// Splits `rest` into words and flags; `spec` lists the allowed flags and whether each takes
/// a value (`--to 3` or `--to=3`).
pub(crate) fn split_flags<'a>(
    verb: &'a str,
    all: &'a [Token],
    spec: &[(&'static str, bool)],
) -> Result<Args<'a>, UsageError> {
    let mut args = Args {
        verb,
        words: Vec::new(),
        flags: Vec::new(),
        all,
    };
    let mut it = all[1..].iter();
    while let Some(t) = it.next() {
        let is_flag = !t.quoted && t.text.starts_with("--") && t.text.len() > 2;
        if !is_flag {
            args.words.push(&t.text);
            continue;
        }
        let (name, inline) = match t.text.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (t.text.as_str(), None),
        };
        let Some(&(flag, takes_value)) = spec.iter().find(|(f, _)| *f == name) else {
            let known: Vec<&str> = spec.iter().map(|(f, _)| *f).collect();
            let mut e = UsageError::new(format!("{verb} has no option {name}"));
            if let Some(s) = did_you_mean(name, known.iter().copied()) {
                e = e.with_suggestion(replace_token(all, t, s));
            } else if known.is_empty() {
                e = e.with_hint(format!("{verb} takes no options"));
            } else {
                e = e.with_hint(format!("its options are {}", known.join(", ")));
            }
            return Err(e.with_usage_of(verb));
        };
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => match it.next() {
                Some(v) => Some(v.text.as_str()),
                None => {
                    return Err(UsageError::new(format!("{flag} needs a value")).with_usage_of(verb))
                }
            },
            (false, Some(_)) => {
                return Err(UsageError::new(format!("{flag} takes no value")).with_usage_of(verb))
            }
            (false, None) => None,
        };
        if args.flags.iter().any(|(f, _)| *f == flag) {
            return Err(UsageError::new(format!("{flag} given twice")).with_usage_of(verb));
        }
        args.flags.push((flag, value));
    }
    Ok(args)
}

impl<'a> Args<'a> {
    pub(crate) fn flag(&self, name: &str) -> Option<Option<&'a str>> {
        self.flags.iter().find(|(f, _)| *f == name).map(|(_, v)| *v)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.flag(name).is_some()
    }

    pub(crate) fn value(&self, name: &str) -> Option<&'a str> {
        self.flag(name).flatten()
    }

    pub(crate) fn usage(&self, message: impl Into<String>) -> UsageError {
        UsageError::new(message).with_usage_of(self.verb)
    }

    pub(crate) fn exactly(&self, n: usize, what: &str) -> Result<(), UsageError> {
        match self.words.len().cmp(&n) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Less => Err(self.usage(format!("{} needs {what}", self.verb))),
            std::cmp::Ordering::Greater => Err(self.usage(format!(
                "{} takes {what}, but got an extra \"{}\"",
                self.verb, self.words[n]
            ))),
        }
    }
}

/// The command as typed with `old` replaced by `new`, for suggestions.
pub(crate) fn replace_token(all: &[Token], old: &Token, new: &str) -> String {
    all.iter()
        .map(|t| {
            if std::ptr::eq(t, old) {
                new.to_string()
            } else {
                lex::quote(&t.text)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[KIND] NAME` where KIND is one of `allowed`; a bare name is a unit (when allowed).
pub(crate) fn target(a: &Args, allowed: &[Kind]) -> Result<Target, UsageError> {
    let kinds = allowed
        .iter()
        .map(|k| k.word())
        .collect::<Vec<_>>()
        .join("|");
    let (kind, name) = match a.words.as_slice() {
        [] => return Err(a.usage(format!("{} needs an object: {kinds} NAME", a.verb))),
        [name] => {
            if !allowed.contains(&Kind::Unit) {
                return Err(match Kind::from_word(name) {
                    Some(_) => a.usage(format!("{} needs a name after \"{name}\"", a.verb)),
                    None => a.usage(format!("{} needs the kind of object: {kinds} NAME", a.verb)),
                });
            }
            if let Some(k) = Kind::from_word(name) {
                return Err(a.usage(format!("{} {} needs a name", a.verb, k.word())));
            }
            if name.contains('/') {
                let options = allowed
                    .iter()
                    .filter(|k| k.in_unit())
                    .map(|k| format!("`{} {} {name}`", a.verb, k.word()))
                    .collect::<Vec<_>>();
                return Err(a.usage(format!(
                    "\"{name}\" names an element of a unit; say which kind: {}",
                    options.join(" or ")
                )));
            }
            (Kind::Unit, *name)
        }
        [kind_word, name] => {
            let kind = match Kind::from_word(kind_word) {
                Some(k) if allowed.contains(&k) => k,
                Some(k) => {
                    return Err(a.usage(format!(
                        "cannot {} a {}; {} works on {kinds}",
                        a.verb,
                        k.word(),
                        a.verb
                    )))
                }
                None => {
                    let words: Vec<&str> = allowed.iter().map(|k| k.word()).collect();
                    let e = a.usage(format!("unknown object kind \"{kind_word}\""));
                    return Err(match did_you_mean(kind_word, words) {
                        Some(s) => e.with_suggestion(replace_token(a.all, &a.all[1], s)),
                        None => e.with_hint(format!("use one of {kinds}")),
                    });
                }
            };
            (kind, *name)
        }
        [_, _, extra, ..] => {
            return Err(a.usage(format!(
                "{} takes one object, but got an extra \"{extra}\"",
                a.verb
            )))
        }
    };
    Ok(match kind {
        Kind::Unit => Target::Unit(unit_name(a, name)?),
        Kind::Transport => {
            if name.is_empty() || name.contains('/') {
                return Err(a.usage(format!("\"{name}\" is not a transport name")));
            }
            Target::Transport(name.to_string())
        }
        k => {
            let (unit, name) = element_name(a, k, name)?;
            Target::Element {
                kind: k,
                unit,
                name,
            }
        }
    })
}

/// `UNIT/NAME` for an element of `kind`.
pub(crate) fn element_name(a: &Args, kind: Kind, s: &str) -> Result<(String, String), UsageError> {
    match s.split_once('/') {
        Some((u, n)) if !n.is_empty() && !n.contains('/') => Ok((unit_name(a, u)?, n.to_string())),
        _ => Err(a
            .usage(format!("a {} is named UNIT/NAME, not \"{s}\"", kind.word()))
            .with_hint(format!("e.g. orders/{}", example_element(kind)))),
    }
}

pub(crate) fn example_element(kind: Kind) -> &'static str {
    match kind {
        Kind::Proxy => "list",
        Kind::Endpoint => "orders-backend",
        Kind::Task => "heartbeat",
        Kind::Consumer => "orders-in",
        _ => "orders-in",
    }
}

/// A share of requests: `10%`, `10` or `2.5%`, from 0 to 100.
pub(crate) fn percent(a: &Args<'_>, text: &str) -> Result<f64, UsageError> {
    text.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| {
            a.usage(format!(
                "\"{text}\" is not a share of requests; write e.g. 10%"
            ))
        })
}

pub(crate) fn unit_name(a: &Args, s: &str) -> Result<String, UsageError> {
    if deployments::validate::is_valid_unit_name(s) {
        Ok(s.to_string())
    } else {
        Err(a
            .usage(format!("\"{s}\" is not a unit name"))
            .with_hint("unit names are lowercase letters, digits, '-' and '_', like `orders`"))
    }
}

pub(crate) fn units(a: &Args) -> Result<Vec<String>, UsageError> {
    if a.words.is_empty() {
        let more = if a.verb == "reload" {
            " (or --all)"
        } else {
            ""
        };
        return Err(a.usage(format!("{} needs at least one unit name{more}", a.verb)));
    }
    let mut out: Vec<String> = Vec::new();
    for w in &a.words {
        let u = unit_name(a, w)?;
        if out.contains(&u) {
            return Err(a.usage(format!("unit \"{u}\" named twice")));
        }
        out.push(u);
    }
    Ok(out)
}

pub(crate) fn on_off(a: &Args, w: &str) -> Result<bool, UsageError> {
    match w.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "enable" => Ok(true),
        "off" | "false" | "no" | "disable" => Ok(false),
        _ => {
            let e = a.usage(format!("expected on or off, not \"{w}\""));
            Err(match did_you_mean(w, ["on", "off"]) {
                Some(s) => e.with_suggestion(format!("{} {s}", a.verb)),
                None => e,
            })
        }
    }
}

/// A bean name; the `esb:` domain may be left out (`type=Server`).
pub(crate) fn bean(a: &Args, s: &str, pattern_ok: bool) -> Result<ObjectName, UsageError> {
    let full = if s.contains(':') {
        s.to_string()
    } else {
        format!("esb:{s}")
    };
    let name = ObjectName::parse(&full).map_err(|e| a.usage(e.to_string()))?;
    if name.is_pattern() && !pattern_ok {
        return Err(a
            .usage(format!("\"{s}\" is a pattern; {} needs one bean", a.verb))
            .with_hint("list the matching names with `beans PATTERN`"));
    }
    Ok(name)
}

/// A `set`/`exec` value: a word that is valid JSON other than a string is that value
/// (numbers, true/false, null, arrays, objects); anything else is a string. Write a string
/// that looks like JSON in JSON string syntax: `'"42"'`.
pub fn json_arg(w: &str) -> Value {
    match serde_json::from_str::<Value>(w) {
        Ok(v) => v,
        Err(_) => Value::String(w.to_string()),
    }
}

/// A duration in milliseconds: `1500`, `1500ms`, `2s`, `1m`.
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let err = || format!("\"{s}\" is not a duration; use milliseconds (1500) or 500ms, 2s, 1m");
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1)
    };
    let n: u64 = num.trim().parse().map_err(|_| err())?;
    n.checked_mul(mult).ok_or_else(err)
}

pub(crate) fn parse_revision(s: &str) -> Result<u64, String> {
    s.trim_start_matches(['r', 'R'])
        .parse()
        .map_err(|_| format!("\"{s}\" is not a revision number; see `history UNIT`"))
}

//! Completion of the `:` line: verbs first, then what the verb takes next (kinds, units,
//! `UNIT/NAME` elements, transports, addresses, bean names and attributes, flags), with the
//! object names the caller knows ([`Names`]). Pure: text and cursor in, candidates out.

use crate::lang::command::VERBS;

/// The object names the `:` line completes (the console fills them from its latest
/// snapshot).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Names {
    pub units: Vec<String>,
    /// Units on disk that are not loaded.
    pub unloaded: Vec<String>,
    pub proxies: Vec<String>,
    pub endpoints: Vec<String>,
    pub tasks: Vec<String>,
    pub consumers: Vec<String>,
    pub sequences: Vec<String>,
    pub transports: Vec<String>,
    /// `(unit/endpoint, url)` of every address.
    pub addresses: Vec<(String, String)>,
    /// Every bean name and its attributes' names.
    pub beans: Vec<(String, Vec<String>)>,
}

/// The word being completed (char offsets into the line) and what it could become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub start: usize,
    pub end: usize,
    /// Candidates that start with the word, in a useful order, without duplicates.
    pub candidates: Vec<String>,
}

impl Completion {
    /// The longest prefix every candidate shares.
    pub fn common_prefix(&self) -> String {
        let mut it = self.candidates.iter();
        let Some(first) = it.next() else {
            return String::new();
        };
        let mut p: Vec<char> = first.chars().collect();
        for c in it {
            let n = p
                .iter()
                .zip(c.chars())
                .take_while(|(a, b)| **a == *b)
                .count();
            p.truncate(n);
        }
        p.into_iter().collect()
    }
}

const KINDS_PLURAL: [&str; 6] = [
    "units",
    "proxies",
    "endpoints",
    "transports",
    "tasks",
    "consumers",
];

fn names_of<'a>(kind: &str, n: &'a Names) -> Vec<&'a str> {
    let v: &Vec<String> = match kind {
        "unit" => &n.units,
        "proxy" => &n.proxies,
        "endpoint" => &n.endpoints,
        "task" => &n.tasks,
        "consumer" => &n.consumers,
        "sequence" => &n.sequences,
        "transport" => &n.transports,
        _ => return Vec::new(),
    };
    v.iter().map(String::as_str).collect()
}

/// What may follow `words` (the complete words before the cursor).
fn options<'a>(words: &[&str], n: &'a Names) -> Vec<&'a str> {
    let units = || n.units.iter().map(String::as_str).collect::<Vec<_>>();
    let Some(verb) = words.first() else {
        let mut v: Vec<&str> = VERBS.to_vec();
        v.push("quit");
        return v;
    };
    let at = words.len();
    let with = |mut a: Vec<&'a str>, b: &[&'a str]| {
        a.extend_from_slice(b);
        a
    };
    match (*verb, at) {
        ("help", 1) => VERBS.to_vec(),
        ("list", 1) => KINDS_PLURAL.to_vec(),
        ("list", 2) => units(),
        ("show", 1) => with(
            vec![
                "unit",
                "proxy",
                "endpoint",
                "task",
                "sequence",
                "transport",
                "consumer",
            ],
            &units(),
        ),
        ("pause" | "resume", 1) => with(
            vec!["unit", "proxy", "endpoint", "transport", "task", "consumer"],
            &units(),
        ),
        ("show" | "pause" | "resume" | "stop" | "start", 2) => names_of(words[1], n),
        ("pause", _) => vec!["--hold"],
        ("stop" | "start", 1) => vec!["proxy", "transport", "consumer"],
        ("tap", 1) => names_of("proxy", n),
        ("tap", _) => vec!["--unit", "--limit"],
        ("load", _) => {
            let mut v: Vec<&str> = n.unloaded.iter().map(String::as_str).collect();
            v.extend(units());
            v
        }
        ("reload", _) => with(units(), &["--all"]),
        ("unload" | "history", _) => units(),
        ("diff", _) => with(units(), &["--file"]),
        ("validate", _) => with(units(), &["--file", "--dir"]),
        ("rollback", _) => with(units(), &["--to"]),
        ("deploy", 1) => units(),
        ("deploy", _) => vec!["--file"],
        ("suspend" | "activate" | "remove" | "add", 1) => vec!["address"],
        ("suspend" | "activate" | "remove" | "add", 2) => names_of("endpoint", n),
        ("suspend" | "activate" | "remove", 3) => n
            .addresses
            .iter()
            .filter(|(e, _)| e == words[2])
            .map(|(_, u)| u.as_str())
            .collect(),
        ("run", 1) => vec!["task"],
        ("run", 2) => names_of("task", n),
        ("maintenance" | "hot-deploy", 1) => vec!["on", "off"],
        ("events", _) => vec!["--recent", "--follow"],
        ("beans" | "get" | "set" | "exec" | "info", 1) => {
            n.beans.iter().map(|(b, _)| b.as_str()).collect()
        }
        ("get" | "set", _) => {
            let bean = words[1].strip_prefix("esb:").unwrap_or(words[1]);
            n.beans
                .iter()
                .filter(|(b, _)| b.strip_prefix("esb:").unwrap_or(b) == bean)
                .flat_map(|(_, attrs)| attrs.iter().map(String::as_str))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Completes the word at `cursor` (a char offset) of `line`.
pub fn complete(line: &str, cursor: usize, names: &Names) -> Completion {
    let before: String = line.chars().take(cursor).collect();
    let start = before
        .char_indices()
        .rfind(|(_, c)| c.is_whitespace())
        .map(|(i, c)| before[..i + c.len_utf8()].chars().count())
        .unwrap_or(0);
    let word: String = before.chars().skip(start).collect();
    let prior: String = before.chars().take(start).collect();
    let words: Vec<&str> = prior.split_whitespace().collect();
    let mut candidates: Vec<String> = Vec::new();
    for c in options(&words, names) {
        if c.starts_with(word.as_str()) && !candidates.iter().any(|x| x == c) {
            candidates.push(c.to_string());
        }
    }
    Completion {
        start,
        end: cursor,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            units: vec!["orders".into(), "billing".into()],
            unloaded: vec!["new-unit".into()],
            proxies: vec!["orders/list".into(), "orders/create".into()],
            endpoints: vec!["orders/backend".into()],
            transports: vec!["http-8280".into()],
            addresses: vec![("orders/backend".into(), "http://127.0.0.1:9000".into())],
            beans: vec![(
                "esb:type=Server".into(),
                vec!["State".into(), "Name".into()],
            )],
            ..Names::default()
        }
    }

    fn cands(line: &str) -> Vec<String> {
        complete(line, line.chars().count(), &names()).candidates
    }

    #[test]
    fn verbs_then_arguments() {
        assert_eq!(cands("rel"), vec!["reload"]);
        assert!(cands("").contains(&"quit".to_string()));
        assert_eq!(cands("reload o"), vec!["orders"]);
        assert_eq!(cands("reload "), vec!["orders", "billing", "--all"]);
        assert_eq!(
            cands("pause proxy orders/"),
            vec!["orders/list", "orders/create"]
        );
        assert_eq!(cands("stop t"), vec!["transport"]);
        assert_eq!(cands("stop transport "), vec!["http-8280"]);
        assert_eq!(cands("load "), vec!["new-unit", "orders", "billing"]);
        assert_eq!(cands("list p"), vec!["proxies"]);
        assert_eq!(
            cands("suspend address orders/backend "),
            vec!["http://127.0.0.1:9000"]
        );
        assert_eq!(cands("get esb:type=Server S"), vec!["State"]);
        assert_eq!(cands("get type=Server N"), vec!["Name"]);
        assert_eq!(cands("maintenance o"), vec!["on", "off"]);
        assert!(cands("frobnicate x").is_empty());
    }

    #[test]
    fn word_bounds_and_common_prefix() {
        let c = complete("pause proxy orders/ xyz", 19, &names());
        assert_eq!((c.start, c.end), (12, 19));
        assert_eq!(c.common_prefix(), "orders/");
        let c = complete("re", 2, &names());
        assert_eq!(c.candidates, vec!["reload", "resume", "remove", "restart"]);
        assert_eq!(c.common_prefix(), "re");
    }
}

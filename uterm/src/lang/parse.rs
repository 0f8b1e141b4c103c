//! The parser of the command language: from tokens to a [`Command`]. Flags (`--to 3`,
//! `--to=3`) may come anywhere after the verb; unknown verbs, kinds and flags get the nearest
//! valid spelling as a suggestion; every error carries the usage of its command.

use std::path::PathBuf;

use deployments::protocol::{did_you_mean, ObjectName};
use serde_json::Value;

use crate::lang::command::{
    AddressOp, Command, DeployFrom, Kind, Target, UsageError, ValidateWhat, VERBS,
};
use crate::lang::help;
use crate::lang::lex::{self, Token};

/// The words after the verb, split into positional words and `--flags`.
struct Args<'a> {
    verb: &'a str,
    words: Vec<&'a str>,
    flags: Vec<(&'static str, Option<&'a str>)>,
    /// The full command as typed, for suggestions.
    all: &'a [Token],
}

/// Splits `rest` into words and flags; `spec` lists the allowed flags and whether each takes
/// a value (`--to 3` or `--to=3`).
fn split_flags<'a>(
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
    fn flag(&self, name: &str) -> Option<Option<&'a str>> {
        self.flags.iter().find(|(f, _)| *f == name).map(|(_, v)| *v)
    }

    fn has(&self, name: &str) -> bool {
        self.flag(name).is_some()
    }

    fn value(&self, name: &str) -> Option<&'a str> {
        self.flag(name).flatten()
    }

    fn usage(&self, message: impl Into<String>) -> UsageError {
        UsageError::new(message).with_usage_of(self.verb)
    }

    fn exactly(&self, n: usize, what: &str) -> Result<(), UsageError> {
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
fn replace_token(all: &[Token], old: &Token, new: &str) -> String {
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

/// Parses one command from its tokens (at least one).
pub(crate) fn parse_tokens(tokens: &[Token]) -> Result<Command, UsageError> {
    let first = &tokens[0];
    let verb = first.text.to_ascii_lowercase();
    let verb = match verb.as_str() {
        "?" => "help",
        "ls" => "list",
        "hotdeploy" | "hot_deploy" => "hot-deploy",
        v => v,
    };
    let Some(&verb) = VERBS.iter().find(|v| **v == verb) else {
        let mut e = UsageError::new(format!("unknown command \"{}\"", first.text));
        e = match did_you_mean(&first.text, VERBS) {
            Some(s) => e.with_suggestion(replace_token(tokens, first, s)),
            None => e.with_hint("type `help` for the commands"),
        };
        return Err(e);
    };
    match verb {
        "status" => {
            split_flags(verb, tokens, &[])?.exactly(0, "no arguments")?;
            Ok(Command::Status)
        }
        "list" => parse_list(split_flags(verb, tokens, &[])?),
        "show" => {
            let a = split_flags(verb, tokens, &[("--rev", true), ("--out", true)])?;
            if a.words.first() == Some(&"source") {
                if a.words.len() != 2 {
                    return Err(a.usage("show source needs one unit name"));
                }
                let revision = match a.value("--rev") {
                    Some(r) => Some(r.parse::<u64>().map_err(|_| {
                        a.usage(format!("--rev needs a revision number, got \"{r}\""))
                    })?),
                    None => None,
                };
                return Ok(Command::Source {
                    unit: unit_name(&a, a.words[1])?,
                    revision,
                    out: a.value("--out").map(PathBuf::from),
                });
            }
            if a.has("--rev") || a.has("--out") {
                return Err(a.usage("--rev and --out belong to `show source UNIT`"));
            }
            Ok(Command::Show(target(&a, &Kind::ALL)?))
        }
        "load" | "unload" => {
            let a = split_flags(verb, tokens, &[])?;
            let units = units(&a)?;
            Ok(if verb == "load" {
                Command::Load(units)
            } else {
                Command::Unload(units)
            })
        }
        "reload" => {
            let a = split_flags(verb, tokens, &[("--all", false)])?;
            if a.has("--all") {
                a.exactly(0, "no unit names with --all")?;
                return Ok(Command::ReloadAll);
            }
            Ok(Command::Reload(units(&a)?))
        }
        "deploy" => {
            let a = split_flags(
                verb,
                tokens,
                &[
                    ("--file", true),
                    ("--dir", true),
                    ("--from-disk", false),
                    ("--canary", true),
                    ("--canary-header", true),
                    ("--sticky", true),
                ],
            )?;
            a.exactly(1, "one unit name")?;
            if a.has("--canary") || a.has("--canary-header") {
                let percent = match a.value("--canary") {
                    Some(p) => percent(&a, p)?,
                    None => 0.0,
                };
                let from = match (a.value("--file"), a.value("--dir")) {
                    (Some(f), None) => DeployFrom::File(PathBuf::from(f)),
                    (None, Some(d)) => DeployFrom::Dir(PathBuf::from(d)),
                    (None, None) => DeployFrom::ServerDisk,
                    _ => return Err(a.usage("use one of --file and --dir")),
                };
                return Ok(Command::Canary {
                    unit: unit_name(&a, a.words[0])?,
                    from,
                    percent,
                    header: a.value("--canary-header").map(str::to_owned),
                    sticky: a.value("--sticky").map(str::to_owned),
                });
            }
            let from = match (a.value("--file"), a.value("--dir"), a.has("--from-disk")) {
                (Some(f), None, false) => DeployFrom::File(PathBuf::from(f)),
                (None, Some(d), false) => DeployFrom::Dir(PathBuf::from(d)),
                (None, None, true) => DeployFrom::ServerDisk,
                (None, None, false) => {
                    return Err(a.usage(
                        "deploy needs --file FILE (a unit.toml and its includes), --dir DIR (a unit directory) or --from-disk",
                    ))
                }
                _ => return Err(a.usage("use one of --file, --dir and --from-disk")),
            };
            Ok(Command::Deploy {
                unit: unit_name(&a, a.words[0])?,
                from,
            })
        }
        "validate" => {
            let a = split_flags(
                verb,
                tokens,
                &[("--dir", true), ("--file", true), ("--checks", false)],
            )?;
            if a.has("--checks") {
                if a.has("--dir") || a.has("--file") {
                    return Err(
                        a.usage("--checks runs a unit's checks on the server: no --dir or --file")
                    );
                }
                a.exactly(1, "one unit name")?;
                return Ok(Command::Validate(ValidateWhat::Checks {
                    unit: unit_name(&a, a.words[0])?,
                }));
            }
            if let Some(dir) = a.value("--dir") {
                if a.has("--file") {
                    return Err(a.usage("use either --dir or --file"));
                }
                a.exactly(0, "no unit name with --dir")?;
                return Ok(Command::Validate(ValidateWhat::Dir(PathBuf::from(dir))));
            }
            a.exactly(1, "one unit name (or --dir DIR)")?;
            Ok(Command::Validate(ValidateWhat::Unit {
                unit: unit_name(&a, a.words[0])?,
                file: a.value("--file").map(PathBuf::from),
            }))
        }
        "diff" => {
            let a = split_flags(verb, tokens, &[("--file", true)])?;
            a.exactly(1, "one unit name")?;
            Ok(Command::Diff {
                unit: unit_name(&a, a.words[0])?,
                file: a.value("--file").map(PathBuf::from),
            })
        }
        "history" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(1, "one unit name")?;
            Ok(Command::History(unit_name(&a, a.words[0])?))
        }
        "rollback" => {
            let a = split_flags(verb, tokens, &[("--to", true)])?;
            a.exactly(1, "one unit name")?;
            let to = match a.value("--to") {
                None => None,
                Some(v) => Some(parse_revision(v).map_err(|m| a.usage(m))?),
            };
            Ok(Command::Rollback {
                unit: unit_name(&a, a.words[0])?,
                to,
            })
        }
        "drain" => {
            let a = split_flags(verb, tokens, &[("--rev", true)])?;
            match a.words.first() {
                Some(&"cancel") => {}
                Some(w) => {
                    return Err(a.usage(format!(
                        "unknown drain action \"{w}\"; the action is `cancel`"
                    )))
                }
                None => return Err(a.usage("drain needs an action: `drain cancel UNIT`")),
            }
            if a.words.len() != 2 {
                return Err(a.usage("drain cancel needs one unit name"));
            }
            let revision = match a.value("--rev") {
                None => None,
                Some(v) => Some(parse_revision(v).map_err(|m| a.usage(m))?),
            };
            Ok(Command::DrainCancel {
                unit: unit_name(&a, a.words[1])?,
                revision,
            })
        }
        "pause" => {
            let a = split_flags(verb, tokens, &[("--hold", true)])?;
            let target = target(&a, &Kind::PAUSABLE)?;
            let hold_ms = match a.value("--hold") {
                None => None,
                Some(_) if target.kind() != Kind::Unit => {
                    return Err(a.usage("--hold applies to units only"))
                }
                Some(v) => Some(parse_millis(v).map_err(|m| a.usage(m))?),
            };
            Ok(Command::Pause { target, hold_ms })
        }
        "resume" => {
            let a = split_flags(verb, tokens, &[])?;
            Ok(Command::Resume(target(&a, &Kind::PAUSABLE)?))
        }
        "stop" | "start" => {
            let a = split_flags(verb, tokens, &[])?;
            let t = target(&a, &[Kind::Proxy, Kind::Transport, Kind::Consumer])?;
            Ok(if verb == "stop" {
                Command::Stop(t)
            } else {
                Command::Start(t)
            })
        }
        "suspend" | "activate" | "add" | "remove" => parse_address(split_flags(verb, tokens, &[])?),
        "run" => {
            let a = split_flags(verb, tokens, &[])?;
            match a.words.first() {
                Some(&"task") => {}
                Some(w) if w.contains('/') => {
                    return Err(a
                        .usage("run needs the word `task`")
                        .with_suggestion(format!("run task {}", lex::quote(w))))
                }
                _ => return Err(a.usage("run needs `task UNIT/TASK`")),
            }
            let t = target(&a, &[Kind::Task])?;
            let Target::Element { unit, name, .. } = t else {
                unreachable!("a task target is an element")
            };
            Ok(Command::RunTask { unit, task: name })
        }
        "maintenance" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(1, "on or off")?;
            Ok(Command::Maintenance(on_off(&a, a.words[0])?))
        }
        "restart" => {
            split_flags(verb, tokens, &[])?.exactly(0, "no arguments")?;
            Ok(Command::Restart)
        }
        "promote" | "abort" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(1, "one unit name")?;
            let unit = unit_name(&a, a.words[0])?;
            Ok(if verb == "promote" {
                Command::Promote(unit)
            } else {
                Command::Abort(unit)
            })
        }
        "canary" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(2, "a unit name and a share, e.g. canary orders 50%")?;
            Ok(Command::CanaryWeight {
                unit: unit_name(&a, a.words[0])?,
                percent: percent(&a, a.words[1])?,
            })
        }
        "flag" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(3, "a unit, a flag name and on or off")?;
            Ok(Command::Flag {
                unit: unit_name(&a, a.words[0])?,
                flag: a.words[1].to_owned(),
                on: on_off(&a, a.words[2])?,
            })
        }
        "upgrade" => {
            split_flags(verb, tokens, &[])?.exactly(0, "no arguments")?;
            Ok(Command::Upgrade)
        }
        "hot-deploy" => {
            let a = split_flags(verb, tokens, &[])?;
            if a.words.is_empty() {
                return Ok(Command::HotDeploy(None));
            }
            a.exactly(1, "on or off")?;
            Ok(Command::HotDeploy(Some(on_off(&a, a.words[0])?)))
        }
        "events" => {
            let a = split_flags(verb, tokens, &[("--follow", false), ("--recent", true)])?;
            a.exactly(0, "no arguments")?;
            let recent = match a.value("--recent") {
                None => 50,
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| a.usage(format!("--recent needs a count, not \"{v}\"")))?,
            };
            Ok(Command::Events {
                follow: a.has("--follow"),
                recent,
            })
        }
        "tap" => {
            let a = split_flags(verb, tokens, &[("--unit", true), ("--limit", true)])?;
            // `tap PROXY`, `tap proxy PROXY`, `tap consumer CONSUMER` (UNIT/NAME or --unit).
            let (consumer, word) = match a.words.as_slice() {
                [k, w] if matches!(*k, "consumer" | "proxy") => (*k == "consumer", w.to_string()),
                _ => {
                    a.exactly(
                        1,
                        "the proxy (PROXY or UNIT/PROXY) or consumer UNIT/CONSUMER",
                    )?;
                    (false, a.words[0].to_string())
                }
            };
            let what = if consumer { "CONSUMER" } else { "PROXY" };
            let (mut unit, proxy) = match word.split_once('/') {
                Some((u, p)) if !u.is_empty() && !p.is_empty() => {
                    (Some(u.to_string()), p.to_string())
                }
                Some(_) => return Err(a.usage(format!("\"{word}\" is not UNIT/{what}"))),
                None => (None, word.to_string()),
            };
            if let Some(u) = a.value("--unit") {
                if unit.as_deref().is_some_and(|x| x != u) {
                    return Err(a.usage(format!(
                        "the {} names unit \"{}\", --unit \"{u}\"",
                        what.to_lowercase(),
                        unit.unwrap_or_default()
                    )));
                }
                unit = Some(u.to_string());
            }
            let limit = match a.value("--limit") {
                None => None,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        return Err(a.usage(format!("--limit needs a positive count, not \"{v}\"")))
                    }
                },
            };
            Ok(Command::Tap {
                name: proxy,
                unit,
                limit,
                consumer,
            })
        }
        "beans" => {
            let a = split_flags(verb, tokens, &[])?;
            if a.words.len() > 1 {
                return Err(a.usage("beans takes at most one pattern"));
            }
            if let Some(p) = a.words.first().filter(|p| p.contains(':')) {
                ObjectName::parse(p).map_err(|e| a.usage(e.to_string()))?;
            }
            Ok(Command::Beans(a.words.first().map(|s| s.to_string())))
        }
        "get" => {
            let a = split_flags(verb, tokens, &[])?;
            if a.words.is_empty() {
                return Err(a.usage("get needs a bean name such as esb:type=Server"));
            }
            Ok(Command::Get {
                bean: bean(&a, a.words[0], true)?,
                attributes: a.words[1..].iter().map(|s| s.to_string()).collect(),
            })
        }
        "set" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(3, "a bean, an attribute and a value")?;
            Ok(Command::Set {
                bean: bean(&a, a.words[0], false)?,
                attribute: a.words[1].to_string(),
                value: json_arg(a.words[2]),
            })
        }
        "exec" => {
            // Arguments are values: nothing after the bean is a flag.
            let words: Vec<&str> = tokens[1..].iter().map(|t| t.text.as_str()).collect();
            let a = Args {
                verb,
                words,
                flags: vec![],
                all: tokens,
            };
            if a.words.len() < 2 {
                return Err(a.usage("exec needs a bean and an operation"));
            }
            Ok(Command::Exec {
                bean: bean(&a, a.words[0], false)?,
                operation: a.words[1].to_string(),
                arguments: a.words[2..].iter().map(|w| json_arg(w)).collect(),
            })
        }
        "info" => {
            let a = split_flags(verb, tokens, &[])?;
            a.exactly(1, "one bean name")?;
            Ok(Command::Info(bean(&a, a.words[0], false)?))
        }
        "help" => {
            let a = split_flags(verb, tokens, &[])?;
            if a.words.len() > 1 {
                return Err(a.usage("help takes at most one command name"));
            }
            match a.words.first() {
                None => Ok(Command::Help(None)),
                Some(w) if help::entry(w).is_some() => Ok(Command::Help(Some(w.to_string()))),
                Some(w) => {
                    let e = UsageError::new(format!("no command \"{w}\""));
                    Err(match did_you_mean(w, VERBS) {
                        Some(s) => e.with_suggestion(format!("help {s}")),
                        None => e.with_hint("type `help` for the commands"),
                    })
                }
            }
        }
        _ => unreachable!("every verb is handled"),
    }
}

fn parse_list(a: Args) -> Result<Command, UsageError> {
    let Some(&word) = a.words.first() else {
        return Ok(Command::List {
            kind: Kind::Unit,
            unit: None,
        });
    };
    let kind = match Kind::from_word(word) {
        Some(k) if k != Kind::Sequence => k,
        _ => {
            let plurals = [
                "units",
                "proxies",
                "endpoints",
                "transports",
                "tasks",
                "consumers",
            ];
            let e = a.usage(format!("cannot list \"{word}\""));
            let first = &a.all[1];
            return Err(match did_you_mean(word, plurals) {
                Some(s) => e.with_suggestion(replace_token(a.all, first, s)),
                None => e.with_hint(format!("list one of {}", plurals.join(", "))),
            });
        }
    };
    match (kind, a.words.len()) {
        (_, 1) => Ok(Command::List { kind, unit: None }),
        (Kind::Unit | Kind::Transport, _) => Err(a.usage(format!(
            "{} are not inside a unit; `list {}` takes no unit name",
            kind.plural(),
            kind.plural()
        ))),
        (_, 2) => Ok(Command::List {
            kind,
            unit: Some(unit_name(&a, a.words[1])?),
        }),
        _ => Err(a.usage(format!(
            "list {} takes at most one unit name",
            kind.plural()
        ))),
    }
}

fn parse_address(a: Args) -> Result<Command, UsageError> {
    let op = match a.verb {
        "add" => AddressOp::Add,
        "remove" => AddressOp::Remove,
        "suspend" => AddressOp::Suspend,
        _ => AddressOp::Activate,
    };
    match a.words.first() {
        Some(&"address") => {}
        Some(w) if w.contains('/') || Kind::from_word(w) == Some(Kind::Endpoint) => {
            let rest: Vec<String> = a
                .words
                .iter()
                .filter(|w| Kind::from_word(w) != Some(Kind::Endpoint))
                .map(|w| lex::quote(w))
                .collect();
            return Err(a
                .usage(format!("{} works on endpoint addresses", a.verb))
                .with_suggestion(format!("{} address {}", a.verb, rest.join(" "))));
        }
        _ => return Err(a.usage(format!("{} needs `address UNIT/ENDPOINT URL`", a.verb))),
    }
    if a.words.len() != 3 {
        return Err(a.usage(format!("{} address needs UNIT/ENDPOINT and URL", a.verb)));
    }
    let (unit, endpoint) = element_name(&a, Kind::Endpoint, a.words[1])?;
    let url = a.words[2];
    if !url.contains("://") {
        return Err(a
            .usage(format!("\"{url}\" is not a URL"))
            .with_hint("give the address as a URL such as http://127.0.0.1:9000"));
    }
    Ok(Command::Address {
        op,
        unit,
        endpoint,
        url: url.to_string(),
    })
}

/// `[KIND] NAME` where KIND is one of `allowed`; a bare name is a unit (when allowed).
fn target(a: &Args, allowed: &[Kind]) -> Result<Target, UsageError> {
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
fn element_name(a: &Args, kind: Kind, s: &str) -> Result<(String, String), UsageError> {
    match s.split_once('/') {
        Some((u, n)) if !n.is_empty() && !n.contains('/') => Ok((unit_name(a, u)?, n.to_string())),
        _ => Err(a
            .usage(format!("a {} is named UNIT/NAME, not \"{s}\"", kind.word()))
            .with_hint(format!("e.g. orders/{}", example_element(kind)))),
    }
}

fn example_element(kind: Kind) -> &'static str {
    match kind {
        Kind::Proxy => "list",
        Kind::Endpoint => "orders-backend",
        Kind::Task => "heartbeat",
        Kind::Consumer => "orders-in",
        _ => "orders-in",
    }
}

/// A share of requests: `10%`, `10` or `2.5%`, from 0 to 100.
fn percent(a: &Args<'_>, text: &str) -> Result<f64, UsageError> {
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

fn unit_name(a: &Args, s: &str) -> Result<String, UsageError> {
    if deployments::validate::is_valid_unit_name(s) {
        Ok(s.to_string())
    } else {
        Err(a
            .usage(format!("\"{s}\" is not a unit name"))
            .with_hint("unit names are lowercase letters, digits, '-' and '_', like `orders`"))
    }
}

fn units(a: &Args) -> Result<Vec<String>, UsageError> {
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

fn on_off(a: &Args, w: &str) -> Result<bool, UsageError> {
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
fn bean(a: &Args, s: &str, pattern_ok: bool) -> Result<ObjectName, UsageError> {
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

fn parse_revision(s: &str) -> Result<u64, String> {
    s.trim_start_matches(['r', 'R'])
        .parse()
        .map_err(|_| format!("\"{s}\" is not a revision number; see `history UNIT`"))
}

//! The parser of the command language: from text or words to a [`Command`]. A script is
//! lexed into commands, every command parsed before any runs; each verb has its own small
//! parser over its [`Args`] (flags may come anywhere after the verb). Unknown verbs, kinds and
//! flags get the nearest valid spelling as a suggestion; every error carries the usage of its
//! command.

use std::path::PathBuf;

use deployments::protocol::{did_you_mean, ObjectName};

use crate::lang::args::{
    bean, element_name, json_arg, on_off, parse_millis, parse_revision, percent, replace_token,
    split_flags, target, unit_name, units, Args,
};
use crate::lang::command::{AddressOp, Command, DeployFrom, ValidateWhat, VERBS};
use crate::lang::error::UsageError;
use crate::lang::help;
use crate::lang::kind::{Kind, Target};
use crate::lang::lex::{self, Segment, Token};

/// Parses one command line (the TUI's `:` line, or one `-c` command).
pub fn parse(line: &str) -> Result<Command, UsageError> {
    let mut segments = lex::lex(line)?;
    match segments.len() {
        0 => Err(UsageError::new("empty command").with_hint("type `help` for the commands")),
        1 => parse_tokens(&segments.remove(0).tokens),
        _ => Err(UsageError::new("one command expected, found several")
            .with_hint("run them one at a time, or as a script with `uterm -c \"a; b\"`")),
    }
}

/// A command of a script with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCommand {
    pub command: Command,
    /// Line of the script it starts on (1-based).
    pub line: usize,
    /// Its source text, without comments.
    pub text: String,
}

/// A command of a script that could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    pub error: UsageError,
    /// Line of the script (1-based).
    pub line: usize,
    /// The command's source text (empty when the script could not be split at all).
    pub text: String,
}

/// Parses a whole script (commands separated by `;` or newlines, `#` comments). Every command
/// is parsed before any runs, so a typo late in a script is reported before anything changes;
/// all usage errors are returned, each with its line.
pub fn parse_script(text: &str) -> Result<Vec<ScriptCommand>, Vec<ScriptError>> {
    let segments = lex::lex(text).map_err(|error| {
        vec![ScriptError {
            error,
            line: 1,
            text: String::new(),
        }]
    })?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for Segment { tokens, line, text } in segments {
        match parse_tokens(&tokens) {
            Ok(command) => ok.push(ScriptCommand {
                command,
                line,
                text,
            }),
            Err(error) => errors.push(ScriptError { error, line, text }),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

/// Parses a command already split into words (e.g. `uterm reload orders` from the shell).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Command, UsageError> {
    let tokens: Vec<Token> = args.iter().map(|a| Token::verbatim(a.as_ref())).collect();
    if tokens.is_empty() {
        return Err(UsageError::new("empty command").with_hint("type `help` for the commands"));
    }
    parse_tokens(&tokens)
}

/// Parses one command from its tokens (at least one): the verb, its flags, then the verb's
/// own parser.
fn parse_tokens(tokens: &[Token]) -> Result<Command, UsageError> {
    let verb = verb(tokens)?;
    if verb == "exec" {
        return exec(verb, tokens);
    }
    let a = split_flags(verb, tokens, flags_of(verb))?;
    if let Some(cluster) = crate::lang::cluster::parse(verb, &a) {
        return cluster;
    }
    match verb {
        "status" => no_arguments(a, Command::Status),
        "restart" => no_arguments(a, Command::Restart),
        "upgrade" => no_arguments(a, Command::Upgrade),
        "list" => list(a),
        "show" => show(a),
        "load" => Ok(Command::Load(units(&a)?)),
        "unload" => Ok(Command::Unload(units(&a)?)),
        "reload" => reload(a),
        "deploy" => deploy(a),
        "validate" => validate(a),
        "diff" => diff(a),
        "history" => one_unit(&a).map(Command::History),
        "promote" => one_unit(&a).map(Command::Promote),
        "abort" => one_unit(&a).map(Command::Abort),
        "rollback" => rollback(a),
        "drain" => drain(a),
        "pause" => pause(a),
        "resume" => Ok(Command::Resume(target(&a, &Kind::PAUSABLE)?)),
        "stop" => Ok(Command::Stop(target(&a, &STOPPABLE)?)),
        "start" => Ok(Command::Start(target(&a, &STOPPABLE)?)),
        "suspend" | "activate" | "add" | "remove" => address(a),
        "run" => run_task(a),
        "maintenance" => {
            a.exactly(1, "on or off")?;
            Ok(Command::Maintenance(on_off(&a, a.words[0])?))
        }
        "canary" => canary_weight(a),
        "flag" => flag(a),
        "hot-deploy" => hot_deploy(a),
        "events" => events(a),
        "tap" => tap(a),
        "beans" => beans(a),
        "get" => get(a),
        "set" => set(a),
        "info" => {
            a.exactly(1, "one bean name")?;
            Ok(Command::Info(bean(&a, a.words[0], false)?))
        }
        "help" => help(a),
        _ => unreachable!("every verb is handled"),
    }
}

/// The kinds `stop` and `start` work on.
const STOPPABLE: [Kind; 3] = [Kind::Proxy, Kind::Transport, Kind::Consumer];

/// The verb of a command (aliases resolved), or "unknown command" with the nearest verb.
fn verb(tokens: &[Token]) -> Result<&'static str, UsageError> {
    let first = &tokens[0];
    let verb = first.text.to_ascii_lowercase();
    let verb = match verb.as_str() {
        "?" => "help",
        "ls" => "list",
        "hotdeploy" | "hot_deploy" => "hot-deploy",
        v => v,
    };
    if let Some(&verb) = VERBS.iter().find(|v| **v == verb) {
        return Ok(verb);
    }
    let e = UsageError::new(format!("unknown command \"{}\"", first.text));
    Err(match did_you_mean(&first.text, VERBS) {
        Some(s) => e.with_suggestion(replace_token(tokens, first, s)),
        None => e.with_hint("type `help` for the commands"),
    })
}

/// The flags a verb takes, and whether each takes a value.
fn flags_of(verb: &str) -> &'static [(&'static str, bool)] {
    match verb {
        "show" => &[("--rev", true), ("--out", true)],
        "reload" => &[("--all", false)],
        "deploy" => &[
            ("--file", true),
            ("--dir", true),
            ("--from-disk", false),
            ("--canary", true),
            ("--canary-header", true),
            ("--sticky", true),
            ("--cluster", false),
            ("--wait", true),
        ],
        "unload" | "resume" => &crate::lang::cluster::FLAGS,
        "publish" => &[("--wait", true)],
        "validate" => &[("--dir", true), ("--file", true), ("--checks", false)],
        "diff" => &[("--file", true)],
        "rollback" => &[("--to", true), ("--cluster", false), ("--wait", true)],
        "drain" => &[("--rev", true)],
        "pause" => &[("--hold", true), ("--cluster", false), ("--wait", true)],
        "events" => &[("--follow", false), ("--recent", true)],
        "tap" => &[("--unit", true), ("--limit", true)],
        _ => &[],
    }
}

fn no_arguments(a: Args, command: Command) -> Result<Command, UsageError> {
    a.exactly(0, "no arguments")?;
    Ok(command)
}

fn one_unit(a: &Args) -> Result<String, UsageError> {
    a.exactly(1, "one unit name")?;
    unit_name(a, a.words[0])
}

/// A `--rev`/`--to` revision number, if given.
fn revision_flag(a: &Args, flag: &str) -> Result<Option<u64>, UsageError> {
    a.value(flag)
        .map(|v| parse_revision(v).map_err(|m| a.usage(m)))
        .transpose()
}

fn show(a: Args) -> Result<Command, UsageError> {
    if a.words.first() == Some(&"source") {
        if a.words.len() != 2 {
            return Err(a.usage("show source needs one unit name"));
        }
        let revision = match a.value("--rev") {
            Some(r) => Some(
                r.parse::<u64>()
                    .map_err(|_| a.usage(format!("--rev needs a revision number, got \"{r}\"")))?,
            ),
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

fn reload(a: Args) -> Result<Command, UsageError> {
    if a.has("--all") {
        a.exactly(0, "no unit names with --all")?;
        return Ok(Command::ReloadAll);
    }
    Ok(Command::Reload(units(&a)?))
}

fn deploy(a: Args) -> Result<Command, UsageError> {
    a.exactly(1, "one unit name")?;
    if a.has("--canary") || a.has("--canary-header") {
        return canary(a);
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

/// `deploy UNIT --canary P% | --canary-header NAME=VALUE [--sticky HEADER] [--file | --dir]`.
fn canary(a: Args) -> Result<Command, UsageError> {
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
    Ok(Command::Canary {
        unit: unit_name(&a, a.words[0])?,
        from,
        percent,
        header: a.value("--canary-header").map(str::to_owned),
        sticky: a.value("--sticky").map(str::to_owned),
    })
}

fn validate(a: Args) -> Result<Command, UsageError> {
    if a.has("--checks") {
        if a.has("--dir") || a.has("--file") {
            return Err(a.usage("--checks runs a unit's checks on the server: no --dir or --file"));
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

fn diff(a: Args) -> Result<Command, UsageError> {
    Ok(Command::Diff {
        unit: one_unit(&a)?,
        file: a.value("--file").map(PathBuf::from),
    })
}

fn rollback(a: Args) -> Result<Command, UsageError> {
    a.exactly(1, "one unit name")?;
    let to = revision_flag(&a, "--to")?;
    Ok(Command::Rollback {
        unit: unit_name(&a, a.words[0])?,
        to,
    })
}

fn drain(a: Args) -> Result<Command, UsageError> {
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
    let revision = revision_flag(&a, "--rev")?;
    Ok(Command::DrainCancel {
        unit: unit_name(&a, a.words[1])?,
        revision,
    })
}

fn pause(a: Args) -> Result<Command, UsageError> {
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

fn run_task(a: Args) -> Result<Command, UsageError> {
    match a.words.first() {
        Some(&"task") => {}
        Some(w) if w.contains('/') => {
            return Err(a
                .usage("run needs the word `task`")
                .with_suggestion(format!("run task {}", lex::quote(w))))
        }
        _ => return Err(a.usage("run needs `task UNIT/TASK`")),
    }
    let Target::Element { unit, name, .. } = target(&a, &[Kind::Task])? else {
        unreachable!("a task target is an element")
    };
    Ok(Command::RunTask { unit, task: name })
}

fn canary_weight(a: Args) -> Result<Command, UsageError> {
    a.exactly(2, "a unit name and a share, e.g. canary orders 50%")?;
    Ok(Command::CanaryWeight {
        unit: unit_name(&a, a.words[0])?,
        percent: percent(&a, a.words[1])?,
    })
}

fn flag(a: Args) -> Result<Command, UsageError> {
    a.exactly(3, "a unit, a flag name and on or off")?;
    Ok(Command::Flag {
        unit: unit_name(&a, a.words[0])?,
        flag: a.words[1].to_owned(),
        on: on_off(&a, a.words[2])?,
    })
}

fn hot_deploy(a: Args) -> Result<Command, UsageError> {
    if a.words.is_empty() {
        return Ok(Command::HotDeploy(None));
    }
    a.exactly(1, "on or off")?;
    Ok(Command::HotDeploy(Some(on_off(&a, a.words[0])?)))
}

fn events(a: Args) -> Result<Command, UsageError> {
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

/// `tap PROXY`, `tap proxy PROXY`, `tap consumer CONSUMER` (UNIT/NAME or --unit).
fn tap(a: Args) -> Result<Command, UsageError> {
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
    let (mut unit, name) = match word.split_once('/') {
        Some((u, p)) if !u.is_empty() && !p.is_empty() => (Some(u.to_string()), p.to_string()),
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
            _ => return Err(a.usage(format!("--limit needs a positive count, not \"{v}\""))),
        },
    };
    Ok(Command::Tap {
        name,
        unit,
        limit,
        consumer,
    })
}

fn beans(a: Args) -> Result<Command, UsageError> {
    if a.words.len() > 1 {
        return Err(a.usage("beans takes at most one pattern"));
    }
    if let Some(p) = a.words.first().filter(|p| p.contains(':')) {
        ObjectName::parse(p).map_err(|e| a.usage(e.to_string()))?;
    }
    Ok(Command::Beans(a.words.first().map(|s| s.to_string())))
}

fn get(a: Args) -> Result<Command, UsageError> {
    if a.words.is_empty() {
        return Err(a.usage("get needs a bean name such as esb:type=Server"));
    }
    Ok(Command::Get {
        bean: bean(&a, a.words[0], true)?,
        attributes: a.words[1..].iter().map(|s| s.to_string()).collect(),
    })
}

fn set(a: Args) -> Result<Command, UsageError> {
    a.exactly(3, "a bean, an attribute and a value")?;
    Ok(Command::Set {
        bean: bean(&a, a.words[0], false)?,
        attribute: a.words[1].to_string(),
        value: json_arg(a.words[2]),
    })
}

/// `exec BEAN OPERATION [ARGUMENT...]`: arguments are values, so nothing after the bean is a
/// flag.
fn exec<'a>(verb: &'a str, tokens: &'a [Token]) -> Result<Command, UsageError> {
    let a = Args {
        verb,
        words: tokens[1..].iter().map(|t| t.text.as_str()).collect(),
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

fn help(a: Args) -> Result<Command, UsageError> {
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

fn list(a: Args) -> Result<Command, UsageError> {
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

fn address(a: Args) -> Result<Command, UsageError> {
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

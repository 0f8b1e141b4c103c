//! The operator command language (DESIGN §7): one parser shared by script mode and the TUI's
//! `:` line. Verb first; where a command takes an object, a bare name means a unit.
//! Parsing is pure: it never talks to the server, and every error is a [`UsageError`] that
//! says what is wrong, suggests the nearest valid command and shows the usage.

use std::fmt;
use std::path::PathBuf;

use deployments::protocol::ObjectName;
use serde_json::Value;

use crate::lang::help;
use crate::lang::lex::{self, Segment, Token};
use crate::lang::parse::parse_tokens;

pub use crate::lang::parse::{json_arg, parse_millis};

/// A kind of managed object that commands can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Unit,
    Proxy,
    Sequence,
    Endpoint,
    Transport,
    Task,
    Consumer,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Unit,
        Kind::Proxy,
        Kind::Sequence,
        Kind::Endpoint,
        Kind::Transport,
        Kind::Task,
        Kind::Consumer,
    ];

    /// Kinds that can be paused and resumed.
    pub const PAUSABLE: [Kind; 6] = [
        Kind::Unit,
        Kind::Proxy,
        Kind::Endpoint,
        Kind::Transport,
        Kind::Task,
        Kind::Consumer,
    ];

    /// Singular word as typed in commands (`proxy`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Unit => "unit",
            Kind::Proxy => "proxy",
            Kind::Sequence => "sequence",
            Kind::Endpoint => "endpoint",
            Kind::Transport => "transport",
            Kind::Task => "task",
            Kind::Consumer => "consumer",
        }
    }

    /// Plural word (`proxies`), as in `list proxies`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Unit => "units",
            Kind::Proxy => "proxies",
            Kind::Sequence => "sequences",
            Kind::Endpoint => "endpoints",
            Kind::Transport => "transports",
            Kind::Task => "tasks",
            Kind::Consumer => "consumers",
        }
    }

    /// The `type=` of the MBeans of this kind (`Proxy`).
    pub fn bean_type(self) -> &'static str {
        match self {
            Kind::Unit => "Unit",
            Kind::Proxy => "Proxy",
            Kind::Sequence => "Sequence",
            Kind::Endpoint => "Endpoint",
            Kind::Transport => "Transport",
            Kind::Task => "Task",
            Kind::Consumer => "Consumer",
        }
    }

    /// True for kinds that live inside a unit and are named `UNIT/NAME`.
    pub fn in_unit(self) -> bool {
        !matches!(self, Kind::Unit | Kind::Transport)
    }

    /// The MBean pattern of all objects of this kind, optionally inside one unit.
    pub fn pattern(self, unit: Option<&str>) -> ObjectName {
        let mut props = vec![("type", self.bean_type())];
        if let (Some(u), true) = (unit, self.in_unit()) {
            props.push(("unit", u));
        }
        ObjectName::new("esb", &props).with_property_wildcard()
    }

    /// The kind named by its singular or plural word.
    pub fn from_word(w: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.word() == w || k.plural() == w)
    }
}

/// What `deploy` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployFrom {
    /// A local unit.toml, with the files it includes (read beside it).
    File(PathBuf),
    /// Every file of a local unit directory.
    Dir(PathBuf),
    /// The server's own directory of the unit (a pushed unit becomes a disk unit again).
    ServerDisk,
}

/// One managed object named in a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Unit(String),
    Transport(String),
    /// An element of a unit: proxy, sequence, endpoint or task.
    Element {
        kind: Kind,
        unit: String,
        name: String,
    },
}

impl Target {
    pub fn kind(&self) -> Kind {
        match self {
            Target::Unit(_) => Kind::Unit,
            Target::Transport(_) => Kind::Transport,
            Target::Element { kind, .. } => *kind,
        }
    }

    /// The object's name as typed: `orders`, `http-8280` or `orders/list`.
    pub fn name(&self) -> String {
        match self {
            Target::Unit(n) | Target::Transport(n) => n.clone(),
            Target::Element { unit, name, .. } => format!("{unit}/{name}"),
        }
    }

    /// The MBean of this object.
    pub fn bean(&self) -> ObjectName {
        match self {
            Target::Unit(n) => ObjectName::new("esb", &[("type", "Unit"), ("name", n)]),
            Target::Transport(n) => ObjectName::new("esb", &[("type", "Transport"), ("name", n)]),
            Target::Element { kind, unit, name } => ObjectName::new(
                "esb",
                &[("type", kind.bean_type()), ("unit", unit), ("name", name)],
            ),
        }
    }
}

impl fmt::Display for Target {
    /// `proxy orders/list`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind().word(), self.name())
    }
}

/// What `validate` checks.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidateWhat {
    /// A unit's files on the server's disk, or (`--file`) the given `unit.toml` content.
    Unit { unit: String, file: Option<PathBuf> },
    /// A conf directory (with `esb.toml`) or one unit directory, offline.
    Dir(PathBuf),
    /// `validate UNIT --checks`: also build the revision and run its checks (nothing is
    /// deployed).
    Checks { unit: String },
}

/// The address operations of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressOp {
    Add,
    Remove,
    Suspend,
    Activate,
}

impl AddressOp {
    pub fn word(self) -> &'static str {
        match self {
            AddressOp::Add => "add",
            AddressOp::Remove => "remove",
            AddressOp::Suspend => "suspend",
            AddressOp::Activate => "activate",
        }
    }

    /// The Endpoint MBean operation.
    pub fn operation(self) -> &'static str {
        match self {
            AddressOp::Add => "addAddress",
            AddressOp::Remove => "removeAddress",
            AddressOp::Suspend => "suspendAddress",
            AddressOp::Activate => "activateAddress",
        }
    }
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Status,
    List {
        kind: Kind,
        unit: Option<String>,
    },
    Show(Target),
    /// Several units = one atomic batch.
    Load(Vec<String>),
    Unload(Vec<String>),
    Reload(Vec<String>),
    ReloadAll,
    Deploy {
        unit: String,
        from: DeployFrom,
    },
    /// `deploy UNIT --canary P% | --canary-header NAME=VALUE [--sticky HEADER] [--file F | --dir D]`
    Canary {
        unit: String,
        from: DeployFrom,
        percent: f64,
        header: Option<String>,
        sticky: Option<String>,
    },
    /// `promote UNIT`: the canary becomes the running revision.
    Promote(String),
    /// `abort UNIT`: the canary is dropped.
    Abort(String),
    /// `canary UNIT P%`: a new share for the canary.
    CanaryWeight {
        unit: String,
        percent: f64,
    },
    /// `show source UNIT [--rev N] [--out DIR]`: the exact files of a revision.
    Source {
        unit: String,
        revision: Option<u64>,
        out: Option<PathBuf>,
    },
    Validate(ValidateWhat),
    Diff {
        unit: String,
        file: Option<PathBuf>,
    },
    History(String),
    Rollback {
        unit: String,
        to: Option<u64>,
    },
    /// `drain cancel UNIT [--rev N]`: end a drain now (`None`: every draining revision).
    DrainCancel {
        unit: String,
        revision: Option<u64>,
    },
    /// `hold_ms` only for units: hold new requests up to that long instead of answering 503.
    Pause {
        target: Target,
        hold_ms: Option<u64>,
    },
    Resume(Target),
    Stop(Target),
    Start(Target),
    Address {
        op: AddressOp,
        unit: String,
        endpoint: String,
        url: String,
    },
    RunTask {
        unit: String,
        task: String,
    },
    Maintenance(bool),
    /// `flag UNIT NAME on|off`: flip a runtime flag.
    Flag {
        unit: String,
        flag: String,
        on: bool,
    },
    Restart,
    Upgrade,
    /// `None`: show whether hot deployment is on.
    HotDeploy(Option<bool>),
    Events {
        follow: bool,
        recent: usize,
    },
    /// One line per finished request of a proxy, live (`tap PROXY [--unit U] [--limit N]`);
    /// with `consumer`, one per attempt of a consumer at a message (`tap consumer U/C`).
    Tap {
        name: String,
        unit: Option<String>,
        limit: Option<u64>,
        consumer: bool,
    },
    /// MBean names matching a pattern (`esb:type=Proxy,*`) or containing a text.
    Beans(Option<String>),
    Get {
        bean: ObjectName,
        attributes: Vec<String>,
    },
    Set {
        bean: ObjectName,
        attribute: String,
        value: Value,
    },
    Exec {
        bean: ObjectName,
        operation: String,
        arguments: Vec<Value>,
    },
    /// The attributes and operations of a bean (its `list` metadata).
    Info(ObjectName),
    Help(Option<String>),
}

impl Command {
    /// The verb, as in `help VERB`.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::List { .. } => "list",
            Command::Show(_) => "show",
            Command::Load(_) => "load",
            Command::Unload(_) => "unload",
            Command::Reload(_) | Command::ReloadAll => "reload",
            Command::Deploy { .. } | Command::Canary { .. } => "deploy",
            Command::Promote(_) => "promote",
            Command::Abort(_) => "abort",
            Command::CanaryWeight { .. } => "canary",
            Command::Source { .. } => "show",
            Command::Validate(_) => "validate",
            Command::Diff { .. } => "diff",
            Command::History(_) => "history",
            Command::Rollback { .. } => "rollback",
            Command::DrainCancel { .. } => "drain",
            Command::Pause { .. } => "pause",
            Command::Resume(_) => "resume",
            Command::Stop(_) => "stop",
            Command::Start(_) => "start",
            Command::Address { op, .. } => op.word(),
            Command::RunTask { .. } => "run",
            Command::Maintenance(_) => "maintenance",
            Command::Flag { .. } => "flag",
            Command::Restart => "restart",
            Command::Upgrade => "upgrade",
            Command::HotDeploy(_) => "hot-deploy",
            Command::Events { .. } => "events",
            Command::Tap { .. } => "tap",
            Command::Beans(_) => "beans",
            Command::Get { .. } => "get",
            Command::Set { .. } => "set",
            Command::Exec { .. } => "exec",
            Command::Info(_) => "info",
            Command::Help(_) => "help",
        }
    }

    /// True when the command may change server state (a read-only TUI refuses these).
    /// A generic `exec` counts as changing state.
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Command::Status
                | Command::List { .. }
                | Command::Show(_)
                | Command::Source { .. }
                | Command::Validate(_)
                | Command::Diff { .. }
                | Command::History(_)
                | Command::HotDeploy(None)
                | Command::Events { .. }
                | Command::Tap { .. }
                | Command::Beans(_)
                | Command::Get { .. }
                | Command::Info(_)
                | Command::Help(_)
        )
    }

    /// True when the command works without a server (help, offline validation).
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Command::Help(_) | Command::Validate(ValidateWhat::Dir(_))
        )
    }
}

/// A command that cannot be understood as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    /// The nearest valid command line, when one can be guessed.
    pub suggestion: Option<String>,
    /// A free-form hint (used when there is no single suggestion).
    pub hint: Option<String>,
    /// The usage of the command concerned.
    pub usage: Option<String>,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            suggestion: None,
            hint: None,
            usage: None,
        }
    }

    pub fn with_suggestion(mut self, s: impl Into<String>) -> UsageError {
        self.suggestion = Some(s.into());
        self
    }

    pub fn with_hint(mut self, s: impl Into<String>) -> UsageError {
        self.hint = Some(s.into());
        self
    }

    pub fn with_usage_of(mut self, verb: &str) -> UsageError {
        self.usage = help::usage(verb).map(str::to_string);
        self
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        } else if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        if let Some(u) = &self.usage {
            write!(f, "\nusage: {}", u.replace('\n', "\n       "))?;
        }
        Ok(())
    }
}

impl std::error::Error for UsageError {}

/// Every verb of the language, for help and "did you mean".
pub const VERBS: [&str; 37] = [
    "status",
    "list",
    "show",
    "load",
    "unload",
    "reload",
    "deploy",
    "validate",
    "diff",
    "history",
    "rollback",
    "drain",
    "pause",
    "resume",
    "stop",
    "start",
    "suspend",
    "activate",
    "add",
    "remove",
    "run",
    "maintenance",
    "flag",
    "promote",
    "abort",
    "canary",
    "restart",
    "upgrade",
    "hot-deploy",
    "events",
    "tap",
    "beans",
    "get",
    "set",
    "exec",
    "info",
    "help",
];

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

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;

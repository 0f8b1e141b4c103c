//! The operator command language (DESIGN §7) as data: one [`Command`] per verb with what it
//! names, shared by script mode and the TUI's `:` line, and [`VERBS`], every verb.

use std::path::PathBuf;

use deployments::protocol::ObjectName;
use serde_json::Value;

use crate::lang::kind::{Kind, Target};

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
    /// A cluster-wide operation (`--cluster`, `publish`, `cluster status`).
    Cluster(crate::lang::cluster::ClusterCmd),
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
            Command::Cluster(c) => c.verb(),
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
                | Command::Cluster(crate::lang::cluster::ClusterCmd::Status)
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

/// Every verb of the language, for help and "did you mean".
pub const VERBS: [&str; 39] = [
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
    "publish",
    "cluster",
];

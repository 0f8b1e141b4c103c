//! The vocabulary between the console's parts: [`Action`]s go into the reducer (from keys, via
//! [`crate::tui::input`], and from the network threads), [`Effect`]s come out of it (commands
//! to run, a refresh to do, quitting). Plain data: nothing here does anything.

use std::time::Duration;

use crate::conn::sse::Event;
use crate::lang::command::Command;
use crate::present::output::Output;
use crate::tui::model::Snapshot;

/// The top-level views, in the order of their number keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Units,
    Proxies,
    Endpoints,
    Transports,
    Events,
    Consumers,
    Cluster,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Units,
        View::Proxies,
        View::Endpoints,
        View::Transports,
        View::Events,
        View::Consumers,
        View::Cluster,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Units => "Units",
            View::Proxies => "Proxies",
            View::Endpoints => "Endpoints",
            View::Transports => "Transports",
            View::Events => "Events",
            View::Consumers => "Consumers",
            View::Cluster => "Cluster",
        }
    }

    /// Position in [`View::ALL`] (its number key minus one).
    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// A single-key operation on the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Reload the selection's unit.
    Reload,
    /// Pause, or resume what is paused (endpoints: maintenance).
    TogglePause,
    /// Stop, or start what is stopped (proxies, transports).
    ToggleStop,
    /// Maintenance of the selected endpoint.
    Maintenance,
    /// Maintenance of the whole server (/health answers 503).
    ServerMaintenance,
    /// What a reload of the selection's unit would change.
    Diff,
    /// The unit's revisions, to roll back to one.
    History,
    /// Roll the unit back to its previous revision.
    Rollback,
    Load,
    Unload,
    /// Run the selected task now.
    RunTask,
    /// Watch the selected proxy's requests live (`tap`).
    Tap,
}

/// A column to sort the rows by (k9s-style Shift+letter keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortBy {
    Name,
    State,
    Rate,
    Errors,
    P99,
    InFlight,
}

impl SortBy {
    /// The column titles it sorts (the name column has one per view).
    pub fn titles(self) -> &'static [&'static str] {
        match self {
            SortBy::Name => &["UNIT", "PROXY", "ENDPOINT", "TRANSPORT", "CONSUMER", "NAME"],
            SortBy::State => &["STATE"],
            SortBy::Rate => &["REQ/S", "RECV/S"],
            SortBy::Errors => &["ERR", "DEAD"],
            SortBy::P99 => &["P99"],
            SortBy::InFlight => &["INFL"],
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::State => "state",
            SortBy::Rate => "req/s",
            SortBy::Errors => "errors",
            SortBy::P99 => "p99",
            SortBy::InFlight => "in flight",
        }
    }
}

/// An edit of the `:` or `/` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Char(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    /// Ctrl-U: clear the line.
    Clear,
    /// Ctrl-W: delete the word before the cursor.
    DeleteWord,
    /// Up / Down: the previous / next line typed.
    Prev,
    Next,
    /// Tab: complete the word at the cursor.
    Complete,
}

/// How a command ended, as the worker thread reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Ok(Output),
    /// The message, and what the command still had to show (a rejected reload's errors).
    Failed {
        message: String,
        output: Option<Output>,
    },
}

/// Everything that can happen to the console's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    SwitchView(View),
    NextView,
    PrevView,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Drill into a unit, or open the selection's details.
    Enter,
    /// Esc: close what is open, clear the filter, leave the drill-down.
    Back,
    OpenCommand,
    OpenFilter,
    OpenHelp,
    /// The full output of the last command.
    LastOutput,
    /// Sort the rows by this column; the same column again reverses the order.
    Sort(SortBy),
    Edit(Edit),
    /// Enter on the `:` or `/` line.
    Submit,
    /// Answer to a confirmation.
    Confirm(bool),
    Op(Op),
    /// Refresh now instead of at the next tick.
    Refresh,
    // ---- from the terminal and the network threads ----
    Resize {
        width: u16,
        height: u16,
    },
    /// The clock moved (ages and the stale marker are relative to it).
    Tick {
        now_ms: u64,
    },
    Snapshot(Box<Snapshot>),
    /// A read of the cluster status.
    Cluster(Box<crate::tui::cluster::ClusterFeed>),
    /// The refresh failed; the next attempt is in `retry_in`.
    PollFailed {
        message: String,
        retry_in: Duration,
    },
    /// The `/events` stream is (re)connected.
    EventsLive,
    /// The `/events` stream broke; reconnecting.
    EventsDown(String),
    Event(Box<Event>),
    JobDone {
        id: u64,
        result: JobResult,
    },
    /// A request record of the tap `id` (`/tap`'s JSON).
    TapRecord {
        id: u64,
        record: serde_json::Value,
    },
    /// The tap `id` ended (the server went away, or refused).
    TapEnded {
        id: u64,
        message: String,
    },
}

/// What the reducer asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run a command off the UI thread; its result comes back as [`Action::JobDone`].
    Run {
        id: u64,
        command: Command,
    },
    /// Refresh now.
    Refresh,
    /// Start streaming a proxy's requests (a consumer's messages); records come back as
    /// [`Action::TapRecord`].
    Tap {
        id: u64,
        unit: String,
        name: String,
        consumer: bool,
    },
    /// Stop the tap `id` (its popup closed).
    Untap {
        id: u64,
    },
    Quit,
}

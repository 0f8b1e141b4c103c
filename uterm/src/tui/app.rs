//! The console's state and its one reducer: [`App::update`] takes an [`Action`] (a key's
//! meaning, a snapshot, an event, a finished command) and returns the [`Effect`]s to carry
//! out. Pure and deterministic (the clock comes in as [`Action::Tick`]), so keys → actions →
//! state is tested without a terminal or a server. The reducer's parts: key handling per
//! mode in [`crate::tui::modes`], operations on the selection in [`crate::tui::ops`],
//! commands and their results in [`crate::tui::jobs`].

use deployments::protocol::attrs::{ConsumerAttrs, Counters, Rate, ServerAttrs};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use crate::conn::sse::Event;
use crate::lang::command::Command;
use crate::lang::complete::Names;
use crate::lang::kind::Kind;
use crate::present::event::event_lines;
use crate::present::output::plain;
use crate::present::output::{Line, Tone};
use crate::tui::action::{Action, Effect, SortBy, View};
use crate::tui::edit::LineInput;
use crate::tui::model::{Obj, RowKind, Snapshot};

/// Samples of rate history kept per row (one per refresh).
pub const RATE_SAMPLES: usize = 60;
/// Events kept for the Events view.
pub const EVENTS_KEPT: usize = 1000;
/// Lines kept in a tap popup.
pub const TAP_LINES: usize = 500;
/// The first line of a tap popup until a request comes.
pub const TAP_WAITING: &str = "waiting for requests… (Esc stops the tap)";
/// The same, for a consumer's tap.
pub const TAP_WAITING_MESSAGES: &str = "waiting for messages… (Esc stops the tap)";

/// How the console was started.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub url: String,
    pub read_only: bool,
    pub refresh: Duration,
}

/// The state of a connection (the refresh, or the `/events` stream).
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting,
    Up,
    Down {
        message: String,
        /// When the next attempt is due (client clock, ms), if known.
        retry_at_ms: Option<u64>,
    },
}

/// A question before a destructive command.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub prompt: String,
    pub command: Command,
    pub label: String,
}

/// Revisions of a unit shown in a popup, one selectable.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPick {
    pub unit: String,
    /// `(revision, active)` in the order of the popup's table rows.
    pub revisions: Vec<(u64, bool)>,
    pub selected: usize,
}

/// A scrollable popup: a diff, a command's output, a history, an object's attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Popup {
    pub title: String,
    pub lines: Vec<Line>,
    pub scroll: usize,
    /// The command whose output will fill it (shown as loading until then).
    pub job: Option<u64>,
    pub history: Option<HistoryPick>,
    /// The object whose attributes it shows (its key, and its unit): redrawn from every
    /// snapshot while open.
    pub live: Option<(String, Option<String>)>,
    /// The tap whose records it shows, newest last.
    pub tap: Option<u64>,
}

impl Popup {
    /// Whether the popup still shows only the tap's waiting line.
    pub fn tap_waiting(&self) -> bool {
        self.lines.first().is_some_and(|l| {
            let t = crate::present::output::plain(l);
            t == TAP_WAITING || t == TAP_WAITING_MESSAGES
        })
    }

    pub fn new(title: impl Into<String>, lines: Vec<Line>) -> Popup {
        Popup {
            title: title.into(),
            lines,
            scroll: 0,
            job: None,
            history: None,
            live: None,
            tap: None,
        }
    }
}

/// Input modes: what keys mean.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Command,
    Filter,
    Help { scroll: usize },
    Confirm(Confirm),
    Popup(Popup),
}

/// The one-line outcome of the last thing done.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub tone: Tone,
}

/// An event as the Events view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Arrival order, the row's identity.
    pub seq: u64,
    pub event: Event,
    pub lines: Vec<Line>,
    /// Lower-cased text the filter matches.
    pub haystack: String,
}

/// Which list a selection or filter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListId {
    View(View),
    Drill,
}

/// What to do with a command's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Purpose {
    /// A single-key action: the status line (a popup when it failed with details).
    Status,
    /// Fill the popup waiting for this job.
    Popup,
    /// Fill the history popup of this unit.
    History(String),
    /// A `:` command: the status line if it is one line, else a popup.
    Command(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    pub label: String,
    pub purpose: Purpose,
}

/// Everything the console shows, owned by the reducer.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub opts: Options,
    pub now_ms: u64,
    pub width: u16,
    pub height: u16,
    pub view: View,
    /// The unit drilled into, and the view to return to.
    pub drill: Option<(String, View)>,
    pub mode: Mode,
    pub snapshot: Option<Snapshot>,
    /// The last read of the cluster status (the Cluster view).
    pub cluster: Option<crate::tui::cluster::ClusterFeed>,
    pub conn: Conn,
    pub events_conn: Conn,
    /// Recent `RequestsPerSecond` samples per row key, oldest first.
    pub rates: HashMap<String, VecDeque<f64>>,
    pub server_rates: VecDeque<f64>,
    /// Newest first.
    pub events: VecDeque<EventRow>,
    next_seq: u64,
    sel: HashMap<ListId, (Option<String>, usize)>,
    pub filters: HashMap<ListId, String>,
    /// The sort of each list (column, reversed); unsorted lists keep the server's order.
    pub sort: HashMap<ListId, (SortBy, bool)>,
    pub filter_input: LineInput,
    pub command: LineInput,
    /// Candidates of the last Tab, shown above the `:` line.
    pub completions: Vec<String>,
    pub status: Option<Status>,
    /// Title and lines of the last command's full output (`o`).
    pub last_output: Option<(String, Vec<Line>)>,
    pub(crate) jobs: BTreeMap<u64, Job>,
    pub(crate) next_job: u64,
    pub names: Names,
    pub quit: bool,
}

impl App {
    pub fn new(opts: Options, now_ms: u64) -> App {
        App {
            opts,
            now_ms,
            width: 80,
            height: 24,
            view: View::Units,
            drill: None,
            mode: Mode::Normal,
            snapshot: None,
            cluster: None,
            conn: Conn::Connecting,
            events_conn: Conn::Connecting,
            rates: HashMap::new(),
            server_rates: VecDeque::new(),
            events: VecDeque::new(),
            next_seq: 0,
            sel: HashMap::new(),
            filters: HashMap::new(),
            sort: HashMap::new(),
            filter_input: LineInput::default(),
            command: LineInput::default(),
            completions: Vec::new(),
            status: None,
            last_output: None,
            jobs: BTreeMap::new(),
            next_job: 1,
            names: Names::default(),
            quit: false,
        }
    }

    // ---------------------------------------------------------------------------------------
    // What is shown
    // ---------------------------------------------------------------------------------------

    pub fn list_id(&self) -> ListId {
        match self.drill {
            Some(_) => ListId::Drill,
            None => ListId::View(self.view),
        }
    }

    /// The filter of the current list ("" for none).
    pub fn filter(&self) -> &str {
        self.filters
            .get(&self.list_id())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The object rows of the current view or drill-down, filtered (none in Events).
    pub fn objects(&self) -> Vec<&Obj> {
        let Some(s) = &self.snapshot else {
            return Vec::new();
        };
        let all: Vec<&Obj> = match (&self.drill, self.view) {
            (Some((u, _)), _) => s.unit_items(u),
            (None, View::Units) => s.units.iter().collect(),
            (None, View::Proxies) => s.proxies.iter().collect(),
            (None, View::Endpoints) => s.endpoints.iter().collect(),
            (None, View::Transports) => s.transports.iter().collect(),
            (None, View::Consumers) => s.consumers.iter().collect(),
            (None, View::Events | View::Cluster) => Vec::new(),
        };
        let f = self.filter().to_lowercase();
        let mut rows: Vec<&Obj> = all
            .into_iter()
            .filter(|o| f.is_empty() || o.haystack().contains(&f))
            .collect();
        if let Some(&(by, reversed)) = self.sort.get(&self.list_id()) {
            sort_rows(&mut rows, by, reversed, s);
        }
        rows
    }

    /// The event rows, filtered, newest first.
    pub fn event_rows(&self) -> Vec<&EventRow> {
        let f = self.filter().to_lowercase();
        self.events
            .iter()
            .filter(|e| f.is_empty() || e.haystack.contains(&f))
            .collect()
    }

    fn showing_events(&self) -> bool {
        self.drill.is_none() && self.view == View::Events
    }

    fn keys(&self) -> Vec<String> {
        if self.showing_events() {
            self.event_rows()
                .iter()
                .map(|e| e.seq.to_string())
                .collect()
        } else {
            self.objects().iter().map(|o| o.key()).collect()
        }
    }

    /// The index of the selected row of the current list (0 when empty).
    pub fn selected(&self) -> usize {
        let keys = self.keys();
        let (key, idx) = self.sel.get(&self.list_id()).cloned().unwrap_or_default();
        if let Some(i) = key.and_then(|k| keys.iter().position(|x| *x == k)) {
            return i;
        }
        idx.min(keys.len().saturating_sub(1))
    }

    pub fn selected_obj(&self) -> Option<&Obj> {
        if self.showing_events() {
            return None;
        }
        self.objects().get(self.selected()).copied()
    }

    pub fn selected_event(&self) -> Option<&EventRow> {
        if !self.showing_events() {
            return None;
        }
        self.event_rows().get(self.selected()).copied()
    }

    pub(crate) fn select(&mut self, idx: usize) {
        let keys = self.keys();
        let idx = idx.min(keys.len().saturating_sub(1));
        self.sel
            .insert(self.list_id(), (keys.get(idx).cloned(), idx));
    }

    /// Selects the row with this key in the current list, if present.
    pub(crate) fn select_key(&mut self, key: &str) {
        if let Some(i) = self.keys().iter().position(|k| k == key) {
            self.select(i);
        }
    }

    pub(crate) fn page(&self) -> usize {
        (self.height as usize).saturating_sub(12).max(1)
    }

    /// Rate samples of a row, oldest first.
    pub fn rate_history(&self, key: &str) -> Vec<f64> {
        self.rates
            .get(key)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Labels of the commands still running.
    pub fn running(&self) -> Vec<&str> {
        self.jobs.values().map(|j| j.label.as_str()).collect()
    }

    pub(crate) fn set_status(&mut self, text: impl Into<String>, tone: Tone) {
        self.status = Some(Status {
            text: text.into(),
            tone,
        });
    }

    // ---------------------------------------------------------------------------------------
    // The reducer
    // ---------------------------------------------------------------------------------------

    /// Applies one action; returns what the outside world must do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Action::Resize { width, height } => {
                self.width = width;
                self.height = height;
                vec![]
            }
            Action::Tick { now_ms } => {
                self.now_ms = now_ms;
                vec![]
            }
            Action::Snapshot(s) => {
                self.apply_snapshot(*s);
                vec![]
            }
            Action::PollFailed { message, retry_in } => {
                self.conn = Conn::Down {
                    message,
                    retry_at_ms: Some(self.now_ms + retry_in.as_millis() as u64),
                };
                vec![]
            }
            Action::EventsLive => {
                self.events_conn = Conn::Up;
                vec![]
            }
            Action::EventsDown(message) => {
                self.events_conn = Conn::Down {
                    message,
                    retry_at_ms: None,
                };
                vec![]
            }
            Action::Cluster(c) => {
                self.cluster = Some(*c);
                vec![]
            }
            Action::Event(e) => {
                self.push_event(*e);
                vec![]
            }
            Action::JobDone { id, result } => self.job_done(id, result),
            Action::TapRecord { id, record } => {
                self.tap_record(id, &record);
                vec![]
            }
            Action::TapEnded { id, message } => {
                if let Mode::Popup(p) = &mut self.mode {
                    if p.tap == Some(id) {
                        p.lines.push(vec![crate::present::output::Span::new(
                            format!("tap ended: {message}"),
                            Tone::Bad,
                        )]);
                        p.tap = None;
                    }
                }
                vec![]
            }
            Action::Refresh => vec![Effect::Refresh],
            other => self.key_action(other),
        }
    }

    fn apply_snapshot(&mut self, mut s: Snapshot) {
        self.now_ms = self.now_ms.max(s.taken_ms);
        // Names first: the rates the console adds are no attributes of the beans.
        self.names = Names::of(&s);
        s.rate_consumers(self.snapshot.as_ref());
        let mut seen = std::collections::HashSet::new();
        for o in s.all() {
            if let Some(r) = o.rate() {
                let key = o.key();
                let v = self.rates.entry(key.clone()).or_default();
                v.push_back(r);
                while v.len() > RATE_SAMPLES {
                    v.pop_front();
                }
                seen.insert(key);
            }
        }
        self.rates.retain(|k, _| seen.contains(k));
        let server: ServerAttrs = crate::present::view::typed(&s.server);
        if let Some(Rate(r)) = server.counters.requests_per_second {
            self.server_rates.push_back(r);
            while self.server_rates.len() > RATE_SAMPLES {
                self.server_rates.pop_front();
            }
        }
        if let Mode::Popup(p) = &mut self.mode {
            if let Some((key, unit)) = &p.live {
                let found = s.all().find(|o| o.key() == *key).or_else(|| {
                    unit.as_deref()
                        .and_then(|u| s.unit_items(u).into_iter().find(|o| o.key() == *key))
                });
                match found {
                    Some(o) => p.lines = o.attr_lines(self.now_ms),
                    None => {
                        p.lines.insert(
                            0,
                            vec![crate::present::output::Span::new(
                                "gone from the server",
                                Tone::Bad,
                            )],
                        );
                        p.live = None;
                    }
                }
            }
        }
        self.snapshot = Some(s);
        self.conn = Conn::Up;
    }

    /// A tap record goes to the bottom of its popup, which follows it while scrolled to
    /// the end; the oldest lines go past [`TAP_LINES`].
    fn tap_record(&mut self, id: u64, record: &serde_json::Value) {
        let page = self.page();
        let Mode::Popup(p) = &mut self.mode else {
            return;
        };
        if p.tap != Some(id) {
            return;
        }
        if p.lines.len() == 1 && p.tap_waiting() {
            p.lines.clear();
        }
        let at_end = p.scroll + page >= p.lines.len();
        p.lines.push(crate::present::tap::tap_line(record));
        if p.lines.len() > TAP_LINES {
            let cut = p.lines.len() - TAP_LINES;
            p.lines.drain(..cut);
            p.scroll = p.scroll.saturating_sub(cut);
        }
        if at_end {
            p.scroll = p.lines.len().saturating_sub(page);
        }
    }

    fn push_event(&mut self, event: Event) {
        let lines = event_lines(&event);
        let haystack = lines
            .iter()
            .map(plain)
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        self.next_seq += 1;
        self.events.push_front(EventRow {
            seq: self.next_seq,
            event,
            lines,
            haystack,
        });
        self.events.truncate(EVENTS_KEPT);
    }
}

/// Sorts rows by a column, stably: names A→Z, states by name, numbers highest first (rows
/// without the number last); `reversed` turns it around.
fn sort_rows(rows: &mut [&Obj], by: SortBy, reversed: bool, s: &Snapshot) {
    let num = |o: &Obj| -> Option<f64> {
        match by {
            SortBy::Rate => o.rate(),
            SortBy::Errors => match o.kind {
                RowKind::Object(Kind::Consumer) => {
                    Some(o.typed::<ConsumerAttrs>().dead_lettered as f64)
                }
                _ => o.typed::<Counters>().errors.map(|e| e as f64),
            },
            SortBy::InFlight => o.in_flight(),
            SortBy::P99 => match o.kind {
                RowKind::Object(Kind::Unit) => s.unit_p99(&o.name),
                _ => o.p99(),
            },
            SortBy::Name | SortBy::State => None,
        }
    };
    rows.sort_by(|a, b| {
        let ord = match by {
            SortBy::Name => a.label().cmp(&b.label()),
            SortBy::State => a.state().cmp(b.state()),
            _ => {
                let (x, y) = (num(a), num(b));
                // Highest first; a row without the number goes last.
                y.unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&x.unwrap_or(f64::NEG_INFINITY))
            }
        };
        if reversed {
            ord.reverse()
        } else {
            ord
        }
    });
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

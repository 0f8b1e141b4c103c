//! Operator state of a unit and what a request needs of its revision: [`UnitControl`]
//! (paused, proxy states, task states, flags; it outlives revisions until the unit is
//! unloaded), [`RevisionInfo`] with its in-flight count and drain end, and [`ProxyState`].
//! Proxies, tasks and consumers read these; revisions are built around them.

use crate::template::{Flag, UnitVars};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The operator state of one proxy, stored in an `AtomicU8` shared by its revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyState {
    Active = 0,
    Paused = 1,
    Stopped = 2,
}

impl ProxyState {
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => ProxyState::Paused,
            2 => ProxyState::Stopped,
            _ => ProxyState::Active,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyState::Active => "Active",
            ProxyState::Paused => "Paused",
            ProxyState::Stopped => "Stopped",
        }
    }
}

/// Operator state of a unit: survives reloads, cleared by an unload.
#[derive(Default)]
pub struct UnitControl {
    pub paused: AtomicBool,
    /// While paused, new requests wait up to this long (ms) for a resume; 0 rejects at once.
    pub hold_ms: AtomicU64,
    pub resumed: tokio::sync::Notify,
    pub proxies: Mutex<HashMap<String, Arc<AtomicU8>>>,
    pub paused_tasks: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// One lock per task name, held for the length of a run: runs of a task never overlap,
    /// whichever revision they belong to.
    pub task_runs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set while a deploy of the unit is in progress: its tasks start no new run.
    pub tasks_held: Arc<AtomicBool>,
    pub flags: Mutex<HashMap<String, Arc<Flag>>>,
}

impl UnitControl {
    pub fn proxy_state(&self, name: &str) -> Arc<AtomicU8> {
        self.proxies
            .lock()
            .expect("proxy states")
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(AtomicU8::new(ProxyState::Active as u8)))
            .clone()
    }

    /// The flag `name` (shared by every revision of the unit).
    pub fn flag(&self, name: &str) -> Arc<Flag> {
        self.flags
            .lock()
            .expect("flags")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn task_run_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.task_runs
            .lock()
            .expect("task locks")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn task_paused(&self, name: &str) -> Arc<AtomicBool> {
        self.paused_tasks
            .lock()
            .expect("task states")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }
}

/// What a request needs of its revision; held by proxies.
pub struct RevisionInfo {
    pub unit: String,
    pub number: u64,
    pub vars: UnitVars,
    /// Requests running on this revision; only changed through [`InFlight`] guards.
    pub in_flight: AtomicU64,
    pub control: Arc<UnitControl>,
    pub max_body: u64,
    /// Set once when a drain ends the revision's leftover requests.
    drain_end: tokio::sync::watch::Sender<Option<DrainEnd>>,
}

/// Why a draining revision's leftover requests were ended (answered 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// `[server] drain_timeout` passed.
    Timeout(Duration),
    /// An operator cancelled the drain (`cancelDrain`, `uterm drain cancel`).
    Cancelled,
}

impl DrainEnd {
    /// The value of the `reason` field of `revision_drained`.
    pub fn reason(self) -> &'static str {
        match self {
            DrainEnd::Timeout(_) => "timeout",
            DrainEnd::Cancelled => "cancelled",
        }
    }
}

/// One request in flight on a revision: counted from creation until dropped, however the
/// request ends (answered, failed, or abandoned by a client that went away).
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl RevisionInfo {
    pub fn new(
        unit: String,
        number: u64,
        vars: UnitVars,
        control: Arc<UnitControl>,
        max_body: u64,
    ) -> RevisionInfo {
        RevisionInfo {
            unit,
            number,
            vars,
            in_flight: AtomicU64::new(0),
            control,
            max_body,
            drain_end: tokio::sync::watch::channel(None).0,
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(&self.in_flight)
    }

    /// Ends every request still running on this revision (each answers 503 naming the
    /// drain); returns how many there were. Requests that start later end at once.
    pub fn end_requests(&self, why: DrainEnd) -> u64 {
        let left = self.in_flight.load(Relaxed);
        self.drain_end.send_if_modified(|v| {
            let first = v.is_none();
            if first {
                *v = Some(why);
            }
            first
        });
        left
    }

    /// Resolves when the revision's leftover requests are ended (never, for a revision
    /// that drains on its own or is still current).
    pub fn drain_ended(&self) -> impl std::future::Future<Output = DrainEnd> + Send + 'static {
        let mut rx = self.drain_end.subscribe();
        async move {
            let ended = rx.wait_for(Option::is_some).await.map(|v| *v);
            match ended {
                Ok(why) => why.expect("waited for Some"),
                // The revision is gone: nothing can end it any more.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

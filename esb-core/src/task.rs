//! Scheduled tasks: each runs its sequence every period. Runs of a task are single-flight
//! across revisions: every run holds the task's run lock (kept in the unit's control, which
//! outlives revisions), so a reload lets a running run finish — bounded by the drain
//! timeout, then cancelled and reported — and the new revision's first run waits for it.
//! While a deploy of the unit is in progress, no new run starts. Paused state is operator
//! state and survives reloads.

use crate::body::Payload;
use crate::control::RevisionInfo;
use crate::mediation::{CompiledSequence, Ctx};
use crate::message::Message;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub const SCHEDULED: u8 = 0;
pub const RUNNING: u8 = 1;

pub struct TaskRuntime {
    pub name: String,
    pub every: Duration,
    pub sequence: String,
    pub paused: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    /// The engine-wide hold (binary upgrade).
    engine_hold: Arc<AtomicBool>,
    run_lock: Arc<tokio::sync::Mutex<()>>,
    /// Set when the task's revision was replaced: the loop ends after the current run.
    retired: AtomicBool,
    retired_now: Notify,
    pub state: AtomicU8,
    pub runs: AtomicU64,
    pub failures: AtomicU64,
    /// Total time spent in runs, in microseconds (for `/metrics`).
    pub run_micros: AtomicU64,
    pub last_run_ms: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    run_now: Notify,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl TaskRuntime {
    pub fn new(
        name: &str,
        every: Duration,
        sequence: &str,
        control: &crate::control::UnitControl,
        engine_hold: Arc<AtomicBool>,
    ) -> Arc<Self> {
        Arc::new(TaskRuntime {
            name: name.to_owned(),
            every,
            sequence: sequence.to_owned(),
            paused: control.task_paused(name),
            held: control.tasks_held.clone(),
            engine_hold,
            run_lock: control.task_run_lock(name),
            retired: AtomicBool::new(false),
            retired_now: Notify::new(),
            state: AtomicU8::new(SCHEDULED),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            run_micros: AtomicU64::new(0),
            last_run_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            run_now: Notify::new(),
            handle: Mutex::new(None),
        })
    }

    pub fn state_name(&self) -> &'static str {
        if self.state.load(Relaxed) == RUNNING {
            "Running"
        } else if self.paused.load(Relaxed) {
            "Paused"
        } else {
            "Scheduled"
        }
    }

    pub fn run_now(&self) {
        self.run_now.notify_one();
    }

    pub fn start(self: &Arc<Self>, seq: Arc<CompiledSequence>, info: Arc<RevisionInfo>) {
        let me = self.clone();
        let handle = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + me.every, me.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let forced = tokio::select! {
                    _ = tick.tick() => false,
                    _ = me.run_now.notified() => true,
                    _ = me.retired_now.notified() => return,
                };
                if me.retired.load(Relaxed) {
                    return;
                }
                if (me.paused.load(Relaxed) && !forced)
                    || me.held.load(Relaxed)
                    || me.engine_hold.load(Relaxed)
                {
                    continue;
                }
                let _run = tokio::select! {
                    guard = me.run_lock.clone().lock_owned() => guard,
                    _ = me.retired_now.notified() => return,
                };
                if me.retired.load(Relaxed) {
                    return;
                }
                me.run_once(&seq, &info).await;
            }
        });
        *self.handle.lock().expect("task handle") = Some(handle);
    }

    async fn run_once(&self, seq: &CompiledSequence, info: &RevisionInfo) {
        self.state.store(RUNNING, Relaxed);
        let uri: http::Uri = format!("/tasks/{}", self.name).parse().unwrap_or_default();
        let mut msg = Message::new(
            http::Method::GET,
            uri,
            http::HeaderMap::new(),
            Payload::Full(bytes::Bytes::new()),
        );
        let mut ctx = Ctx {
            unit: &info.vars,
            max_body: info.max_body,
            client_addr: None,
            scheme: "http",
            route: None,
            trace: None,
        };
        let started = std::time::Instant::now();
        let result = seq.run(&mut msg, &mut ctx).await;
        self.run_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        self.runs.fetch_add(1, Relaxed);
        self.last_run_ms.store(crate::events::epoch_ms(), Relaxed);
        let err = result.err().map(|e| e.to_string());
        if let Some(e) = &err {
            self.failures.fetch_add(1, Relaxed);
            tracing::warn!(unit = %info.unit, task = %self.name, "task run failed: {e}");
        }
        *self.last_error.lock().expect("task error") = err;
        self.state.store(SCHEDULED, Relaxed);
    }

    /// The task's revision was replaced or unloaded: no new run starts, a run in progress
    /// may finish within `grace` and is cancelled (and reported) after it.
    pub fn retire(self: &Arc<Self>, grace: Duration) {
        self.retired.store(true, Relaxed);
        self.retired_now.notify_one();
        let Some(mut handle) = self.handle.lock().expect("task handle").take() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(grace, &mut handle).await.is_err() {
                handle.abort();
                let _ = handle.await;
                me.failures.fetch_add(1, Relaxed);
                let msg = format!(
                    "run cancelled: still running {grace:?} after its revision was replaced"
                );
                tracing::warn!(task = %me.name, "{msg}");
                *me.last_error.lock().expect("task error") = Some(msg);
            }
            me.state.store(SCHEDULED, Relaxed);
        });
    }

    /// Stops the task and waits until its loop has ended.
    pub async fn stop(&self) {
        let handle = self.handle.lock().expect("task handle").take();
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
        self.state.store(SCHEDULED, Relaxed);
    }
}

//! Consumers: the per-unit background activities that take messages from an AMQP queue
//! (`amqp`) or files from an inbox directory (`inbox`) and run each through the unit's
//! pipeline (sequence and/or endpoint). A consumer belongs to the unit slot, not to a
//! revision: a reload swaps the pipeline it runs (one atomic store; a message loads it once
//! and finishes on it), so there is exactly one consumer per binding across revisions and a
//! reload neither re-delivers nor drops anything. Only a change of the binding itself
//! (queue, transport, prefetch, directories…) ends the current session — in-flight
//! messages finish and are acknowledged first — and opens a new one. Operator state
//! (paused, stopped) lives here and survives reloads; an unload retires the consumer.

pub mod amqp;
pub mod inbox;

use crate::amqp::{AmqpLink, AmqpLinks};
use crate::body::Payload;
use crate::endpoint::EndpointRuntime;
use crate::mediation::{CompiledSequence, Ctx, Flow};
use crate::message::Message;
use crate::revision::{Revision, RevisionInfo, UnitControl};
use crate::tap::{Outcome, Trace};
use arc_swap::ArcSwap;
use deployments::model::{Consumer as ConsumerDef, OnFailure};
use http_body_util::BodyExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What a message runs through: resolved from one revision.
pub struct Pipeline {
    pub info: Arc<RevisionInfo>,
    pub sequence: Option<Arc<CompiledSequence>>,
    pub endpoint: Option<Arc<EndpointRuntime>>,
    pub on_failure: OnFailure,
}

impl Pipeline {
    pub fn of(rev: &Revision, def: &ConsumerDef) -> Pipeline {
        Pipeline {
            info: rev.info.clone(),
            sequence: def
                .sequence
                .as_ref()
                .and_then(|s| rev.sequences.get(s.get_ref()).cloned()),
            endpoint: def
                .endpoint
                .as_ref()
                .and_then(|e| rev.endpoints.get(e.get_ref()).cloned()),
            on_failure: def.on_failure.clone(),
        }
    }
}

/// Where a consumer takes its messages from. Two bindings that compare equal are the same
/// consumer: a reload that keeps the binding keeps the session.
#[derive(Clone)]
pub enum Binding {
    Amqp {
        link: Arc<AmqpLink>,
        queue: String,
        declare: bool,
        prefetch: u16,
        concurrency: u16,
    },
    Inbox(inbox::Dirs),
}

impl PartialEq for Binding {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Binding::Amqp {
                    link: a,
                    queue: qa,
                    declare: da,
                    prefetch: pa,
                    concurrency: ca,
                },
                Binding::Amqp {
                    link: b,
                    queue: qb,
                    declare: db,
                    prefetch: pb,
                    concurrency: cb,
                },
            ) => a.name == b.name && qa == qb && da == db && pa == pb && ca == cb,
            (Binding::Inbox(a), Binding::Inbox(b)) => a == b,
            _ => false,
        }
    }
}

impl Binding {
    pub fn of(def: &ConsumerDef, links: &AmqpLinks, base: &Path) -> Result<Binding, String> {
        if let Some(dir) = &def.dir {
            let resolve = |p: &str| -> PathBuf { base.join(p) };
            let dir = resolve(dir.get_ref());
            return Ok(Binding::Inbox(inbox::Dirs {
                done: def
                    .done_dir
                    .as_ref()
                    .map(|d| resolve(d.get_ref()))
                    .unwrap_or_else(|| dir.join("done")),
                failed: def
                    .failed_dir
                    .as_ref()
                    .map(|d| resolve(d.get_ref()))
                    .unwrap_or_else(|| dir.join("failed")),
                processing: dir.join(".processing"),
                dir,
                pattern: def.pattern.clone(),
                poll: def.poll,
            }));
        }
        let t = def.transport.as_ref().ok_or("consumer without a source")?;
        Ok(Binding::Amqp {
            link: links
                .get(t.get_ref())
                .cloned()
                .ok_or_else(|| format!("amqp transport \"{}\" not found", t.get_ref()))?,
            queue: def
                .queue
                .as_ref()
                .map(|q| q.get_ref().clone())
                .unwrap_or_default(),
            declare: def.declare,
            prefetch: def.prefetch,
            concurrency: def.concurrency.max(1),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Binding::Amqp { .. } => "amqp",
            Binding::Inbox(_) => "file",
        }
    }

    /// `transport/queue` or the inbox directory, as operators see it.
    pub fn source(&self) -> String {
        match self {
            Binding::Amqp { link, queue, .. } => format!("{}/{queue}", link.name),
            Binding::Inbox(d) => d.dir.display().to_string(),
        }
    }

    fn link(&self) -> Option<&Arc<AmqpLink>> {
        match self {
            Binding::Amqp { link, .. } => Some(link),
            Binding::Inbox(_) => None,
        }
    }
}

#[derive(Default, Serialize, Clone, Debug)]
pub struct Counters {
    pub received: u64,
    pub acked: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub redelivered: u64,
    pub in_flight: u64,
    pub reconnects: u64,
    /// Messages (or files) waiting, when known (-1: unknown).
    pub queue_depth: i64,
}

/// A message as taken from its source, before each attempt builds a [`Message`] from it.
pub struct Input {
    pub body: bytes::Bytes,
    pub headers: http::HeaderMap,
    pub props: Vec<(String, String)>,
}

/// How a message ended.
pub enum Handled {
    Done,
    /// Every attempt failed; the cause of the last one.
    Failed {
        cause: String,
        attempts: u32,
    },
    /// The consumer is being stopped in the middle of the retries: leave the message to
    /// the broker / the inbox.
    Abandoned,
}

pub struct ConsumerRuntime {
    pub unit: String,
    pub name: String,
    binding: Mutex<Binding>,
    binding_gen: AtomicU64,
    pipeline: ArcSwap<Pipeline>,
    control: Arc<UnitControl>,
    drain: Duration,
    events: Arc<crate::events::EventBus>,
    pub paused: AtomicBool,
    pub stopped: AtomicBool,
    retired: AtomicBool,
    wake: Notify,
    /// (state, reason) of the current session.
    session: Mutex<(&'static str, Option<String>)>,
    /// Why the consumer stopped by itself (an inbox whose done/ directory is unwritable).
    fault: Mutex<Option<String>>,
    pub received: AtomicU64,
    pub acked: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub redelivered: AtomicU64,
    pub in_flight: AtomicU64,
    pub reconnects: AtomicU64,
    pub depth: AtomicI64,
    ended: watch::Sender<bool>,
}

impl ConsumerRuntime {
    pub fn start(
        unit: &str,
        name: &str,
        control: Arc<UnitControl>,
        binding: Binding,
        pipeline: Pipeline,
        drain: Duration,
        events: Arc<crate::events::EventBus>,
    ) -> Arc<Self> {
        let rt = Arc::new(ConsumerRuntime {
            unit: unit.to_owned(),
            name: name.to_owned(),
            binding: Mutex::new(binding),
            binding_gen: AtomicU64::new(0),
            pipeline: ArcSwap::from_pointee(pipeline),
            control,
            drain,
            events,
            paused: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            wake: Notify::new(),
            session: Mutex::new(("Starting", None)),
            fault: Mutex::new(None),
            received: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            depth: AtomicI64::new(-1),
            ended: watch::channel(false).0,
        });
        tokio::spawn(rt.clone().run());
        rt
    }

    /// A reload: the new revision's pipeline, and its binding (a changed binding ends the
    /// session after its in-flight messages and opens a new one).
    pub fn update(&self, binding: Binding, pipeline: Pipeline) {
        self.pipeline.store(Arc::new(pipeline));
        let mut b = self.binding.lock().expect("binding");
        if *b != binding {
            *b = binding;
            self.binding_gen.fetch_add(1, Relaxed);
            self.wake.notify_waiters();
        }
    }

    pub fn binding(&self) -> Binding {
        self.binding.lock().expect("binding").clone()
    }

    /// The consumer's revision was unloaded or it was removed from its unit: the session
    /// ends (in-flight messages finish within the drain timeout) and the loop stops.
    pub fn retire(&self) {
        self.retired.store(true, Relaxed);
        self.wake.notify_waiters();
    }

    /// Waits until the consumer's loop has ended (after [`ConsumerRuntime::retire`]).
    pub async fn ended(&self) {
        let mut rx = self.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    /// Paused or stopped by an operator (operator state, kept across restarts).
    pub fn operator_state(&self) -> (bool, bool) {
        (self.paused.load(Relaxed), self.stopped.load(Relaxed))
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Relaxed);
        self.wake.notify_waiters();
    }

    pub fn set_stopped(&self, stopped: bool) {
        if !stopped {
            *self.fault.lock().expect("fault") = None;
        }
        self.stopped.store(stopped, Relaxed);
        self.wake.notify_waiters();
    }

    /// Wakes the loop to look at its flags again (unit or transport paused/resumed).
    pub fn poke(&self) {
        self.wake.notify_waiters();
    }

    /// State and reason, as the Consumer bean shows them.
    pub fn state(&self) -> (&'static str, Option<String>) {
        if let Some(f) = self.fault.lock().expect("fault").clone() {
            return ("Stopped", Some(f));
        }
        if self.stopped.load(Relaxed) {
            return ("Stopped", Some("stopped by an operator".into()));
        }
        if self
            .binding()
            .link()
            .is_some_and(|l| l.stopped.load(Relaxed))
        {
            return ("Stopped", Some("transport stopped".into()));
        }
        if let Some(why) = self.pause_reason() {
            return ("Paused", Some(why.into()));
        }
        self.session.lock().expect("session").clone()
    }

    fn pause_reason(&self) -> Option<&'static str> {
        if self.paused.load(Relaxed) {
            Some("paused by an operator")
        } else if self.control.paused.load(Relaxed) {
            Some("unit paused")
        } else if self
            .binding()
            .link()
            .is_some_and(|l| l.paused.load(Relaxed) || l.stopped.load(Relaxed))
        {
            Some("transport paused")
        } else {
            None
        }
    }

    pub fn counters(&self) -> Counters {
        Counters {
            received: self.received.load(Relaxed),
            acked: self.acked.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            redelivered: self.redelivered.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            queue_depth: self.depth.load(Relaxed),
        }
    }

    /// The session's state; a change to Connected, Disconnected or Running (or a file
    /// consumer stopping on an error) is an event (`state_changed`).
    fn set_session(&self, state: &'static str, reason: Option<String>) {
        let old = std::mem::replace(&mut *self.session.lock().expect("session"), (state, reason));
        if old.0 != state && matches!(state, "Connected" | "Disconnected" | "Running") {
            self.emit(state);
        }
    }

    fn emit(&self, state: &str) {
        let object = deployments::protocol::ObjectName::new(
            "esb",
            &[
                ("type", "Consumer"),
                ("unit", &self.unit),
                ("name", &self.name),
            ],
        )
        .canonical();
        self.events.emit(crate::events::EventKind::StateChanged {
            object,
            state: state.to_owned(),
        });
    }

    fn should_run(&self) -> bool {
        !self.retired.load(Relaxed)
            && !self.stopped.load(Relaxed)
            && self.fault.lock().expect("fault").is_none()
            && self.pause_reason().is_none()
    }

    /// The session that started at binding generation `gen` must end.
    fn session_over(&self, gen: u64) -> bool {
        !self.should_run() || self.binding_gen.load(Relaxed) != gen
    }

    /// Until something may have changed: a poke, or at most `max`.
    async fn wait_change(&self, max: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(max) => {}
        }
    }

    async fn run(self: Arc<Self>) {
        let mut backoff: Option<Duration> = None;
        while !self.retired.load(Relaxed) {
            if !self.should_run() {
                self.depth.store(-1, Relaxed);
                self.wait_change(Duration::from_millis(200)).await;
                continue;
            }
            let binding = self.binding();
            let gen = self.binding_gen.load(Relaxed);
            match &binding {
                Binding::Amqp { link, .. } => {
                    match amqp::session(&self, link, &binding, gen).await {
                        Ok(()) => backoff = None,
                        Err(reason) => {
                            tracing::warn!(unit = %self.unit, consumer = %self.name, "consumer disconnected: {reason}");
                            self.set_session("Disconnected", Some(reason));
                            self.reconnects.fetch_add(1, Relaxed);
                            let wait = backoff
                                .map(|b| (b * 2).min(link.reconnect_max))
                                .unwrap_or(link.reconnect_initial);
                            backoff = Some(wait);
                            let until = tokio::time::Instant::now() + wait;
                            while tokio::time::Instant::now() < until && !self.session_over(gen) {
                                self.wait_change(until - tokio::time::Instant::now()).await;
                            }
                        }
                    }
                }
                Binding::Inbox(dirs) => {
                    if let Err(reason) = inbox::session(&self, dirs, gen).await {
                        tracing::error!(unit = %self.unit, consumer = %self.name, "file consumer stopped: {reason}");
                        *self.fault.lock().expect("fault") = Some(reason);
                        self.set_session("Stopped", None);
                        self.emit("Stopped");
                    }
                }
            }
        }
        self.set_session("Stopped", Some("unloaded".into()));
        self.ended.send_replace(true);
    }

    /// Runs a message through the pipeline, retrying with back-off, until it succeeded or
    /// every attempt failed. While someone taps, each attempt is a tap record (its outcome
    /// ack, retry or dead-letter); otherwise the tap costs one relaxed load per attempt.
    pub async fn handle(&self, input: &mut Input, gen: u64) -> Handled {
        let of = self.pipeline.load().on_failure.clone();
        let mut delay = of.backoff;
        let mut attempt = 1;
        loop {
            input.props.retain(|(k, _)| k != "consumer.attempt");
            input
                .props
                .push(("consumer.attempt".into(), attempt.to_string()));
            let tapped = crate::tap::tapping().then(std::time::Instant::now);
            let mut trace = tapped.map(|_| Box::<Trace>::default());
            let mut revision = 0;
            let result = self.run_once(input, &mut trace, &mut revision).await;
            let last = attempt >= of.max_attempts.max(1);
            if let Some(at) = tapped {
                let outcome = match &result {
                    Ok(()) => Outcome::Ack,
                    Err(_) if last => Outcome::DeadLetter,
                    Err(_) => Outcome::Retry,
                };
                self.tap(at, input, attempt, outcome, revision, trace);
            }
            match result {
                Ok(()) => return Handled::Done,
                Err(cause) if last => {
                    return Handled::Failed {
                        cause,
                        attempts: attempt,
                    }
                }
                Err(cause) => {
                    tracing::warn!(unit = %self.unit, consumer = %self.name, attempt, "message failed, retrying in {delay:?}: {cause}");
                    self.retried.fetch_add(1, Relaxed);
                    let until = tokio::time::Instant::now() + delay;
                    while tokio::time::Instant::now() < until {
                        if self.session_over(gen) {
                            return Handled::Abandoned;
                        }
                        self.wait_change(until - tokio::time::Instant::now()).await;
                    }
                    delay = (delay * 2).min(of.max_backoff.max(of.backoff));
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt at a message, to the tappers.
    fn tap(
        &self,
        at: std::time::Instant,
        input: &Input,
        attempt: u32,
        outcome: Outcome,
        revision: u64,
        trace: Option<Box<Trace>>,
    ) {
        let prop = |k: &str| {
            input
                .props
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let message = prop("amqp.message_id")
            .or_else(|| prop("file.name"))
            .unwrap_or_default();
        crate::tap::publish_consumer(
            at,
            &self.unit,
            revision,
            crate::tap::ConsumerTap {
                consumer: self.name.clone(),
                source: self.binding().source(),
                message,
                outcome,
                attempt,
            },
            trace.map(|t| *t).unwrap_or_default(),
        );
    }

    /// One attempt: the pipeline is loaded once and the message finishes on it (its
    /// revision goes to `revision`; the steps, the address that answered and the fault to
    /// `trace`, if tapped).
    async fn run_once(
        &self,
        input: &Input,
        trace: &mut Option<Box<Trace>>,
        revision: &mut u64,
    ) -> Result<(), String> {
        // A deploy of the unit in progress: wait for its pipeline.
        while self.control.tasks_held.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let pipe = self.pipeline.load_full();
        *revision = pipe.info.number;
        pipe.info.in_flight.fetch_add(1, Relaxed);
        let _guard = InFlight(&pipe.info.in_flight);
        let uri: http::Uri = format!("/consumers/{}", self.name)
            .parse()
            .unwrap_or_default();
        let mut msg = Message::new(
            http::Method::POST,
            uri,
            input.headers.clone(),
            Payload::Full(input.body.clone()),
        );
        for (k, v) in &input.props {
            msg.set_prop(k, v.clone());
        }
        let mut ctx = Ctx {
            unit: &pipe.info.vars,
            max_body: pipe.info.max_body,
            client_addr: None,
            scheme: "http",
            route: None,
            trace: trace.take(),
        };
        let result = Self::pipeline(&pipe, &mut msg, &mut ctx).await;
        *trace = ctx.trace.take();
        if let (Some(t), Err(cause)) = (trace.as_deref_mut(), &result) {
            t.fault = Some(cause.clone());
        }
        result
    }

    async fn pipeline(pipe: &Pipeline, msg: &mut Message, ctx: &mut Ctx<'_>) -> Result<(), String> {
        if let Some(seq) = &pipe.sequence {
            match seq.run(msg, ctx).await {
                Err(e) => return Err(format!("sequence \"{}\": {e}", seq.name)),
                Ok(Flow::Respond(r)) if r.status().as_u16() >= 400 => {
                    return Err(format!(
                        "sequence \"{}\" responded {}",
                        seq.name,
                        r.status()
                    ))
                }
                Ok(Flow::Respond(_)) => return Ok(()),
                Ok(Flow::Continue) => {}
            }
        }
        let Some(ep) = ctx.route.clone().or_else(|| pipe.endpoint.clone()) else {
            return Ok(());
        };
        let sent = ctx.trace.is_some().then(std::time::Instant::now);
        let resp = ep
            .send(msg, None, "http", true, crate::outbound::Fields::Map)
            .await
            .map_err(|e| format!("endpoint \"{}\": {e}", ep.name))?;
        if let (Some(t), Some(sent)) = (ctx.trace.as_deref_mut(), sent) {
            let by = resp.extensions().get::<crate::tap::AnsweredBy>();
            t.answered = Some(crate::tap::Answered {
                endpoint: ep.name.clone(),
                address: by.map(|a| a.0.clone()).unwrap_or_default(),
                latency_us: sent.elapsed().as_micros() as u64,
            });
        }
        let status = resp.status();
        let _ = http_body_util::Limited::new(resp.into_body(), pipe.info.max_body as usize)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("endpoint \"{}\" answered {status}", ep.name))
        }
    }
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    //! The engine in-process, with a file consumer (no broker needed): the consumer is the
    //! unit's, a reload swaps its pipeline, an unload retires it.
    use crate::engine::{Change, Engine, Outcome, Source};
    use crate::events::EventBus;
    use deployments::RootConfig;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn unit(label: &str, inbox: &std::path::Path) -> String {
        format!(
            r#"
version = "{label}"

[[sequence]]
name = "take"
steps = [
  {{ filter = {{ on = "${{unit.version}}", equals = "refuse", then = [{{ respond = {{ status = 500 }} }}] }} }},
]

[[consumer]]
name = "inbox"
dir = "{}"
poll = "20ms"
sequence = "take"
on_failure = {{ max_attempts = 1 }}
"#,
            inbox.display()
        )
    }

    async fn deploy(engine: &Engine, text: String) -> Outcome {
        engine
            .apply(vec![Change::Deploy {
                unit: "files".into(),
                source: Source::unit_toml(text),
            }])
            .await
            .remove(0)
    }

    async fn wait_file(path: std::path::PathBuf) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_keeps_the_consumer_and_swaps_its_pipeline_and_an_unload_retires_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = RootConfig::parse(
            "[server]\nstate_dir = \"state\"\n[management]\nenabled = false\n[hot_deploy]\nwatch = false\n",
            "esb.toml",
            tmp.path(),
        )
        .unwrap();
        let engine = Engine::new(Arc::new(root), Arc::new(EventBus::default()));
        let inbox = tmp.path().join("in");
        assert!(matches!(
            deploy(&engine, unit("a", &inbox)).await,
            Outcome::Activated { .. }
        ));
        let first = engine.snapshot()["files"].consumers["inbox"].clone();
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(inbox.join("one"), "1").unwrap();
        wait_file(inbox.join("done/one")).await;

        // A new revision with the same binding: the same consumer, the new pipeline.
        assert!(matches!(
            deploy(&engine, unit("refuse", &inbox)).await,
            Outcome::Activated { .. }
        ));
        let second = engine.snapshot()["files"].consumers["inbox"].clone();
        assert!(
            Arc::ptr_eq(&first, &second),
            "one consumer across revisions"
        );
        std::fs::write(inbox.join("two"), "2").unwrap();
        wait_file(inbox.join("failed/two")).await;
        let reason = std::fs::read_to_string(inbox.join("failed/two.reason")).unwrap();
        assert!(reason.contains("responded 500"), "{reason}");
        let c = second.counters();
        assert_eq!((c.received, c.acked, c.dead_lettered), (2, 1, 1));

        // Unloaded: the consumer ends, new files wait in the inbox.
        engine
            .apply(vec![Change::Unload {
                unit: "files".into(),
            }])
            .await;
        tokio::time::timeout(Duration::from_secs(10), second.ended())
            .await
            .expect("the consumer ends after an unload");
        std::fs::write(inbox.join("three"), "3").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(inbox.join("three").exists(), "left in the inbox");
    }
}

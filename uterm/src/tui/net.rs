//! The console's network side, off the UI thread. A poller sends ONE bulk Jolokia request per
//! refresh tick and leaves the [`Snapshot`] in a [`Latest`] slot (latest wins: a slow UI never
//! queues old snapshots), backing off while the server is unreachable. A follower reads
//! `/events` from the server's ring onwards and resumes after the last id when the stream
//! breaks. Commands run on their own threads through the shared [`Executor`]; every result
//! comes back to the UI as a [`Msg`].

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::client::{Client, ClientConfig};
use crate::conn::error::ClientError;
use crate::conn::sse::Event;
use crate::exec::executor::Executor;
use crate::lang::command::Command;
use crate::present::output::now_ms;
use crate::tui::action::{Action, JobResult};
use crate::tui::model::{self, Snapshot};

/// What reaches the UI thread.
#[derive(Debug)]
pub enum Msg {
    Input(crossterm::event::Event),
    /// A new snapshot is in the [`Latest`] slot.
    Snapshot,
    Action(Action),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(i32),
}

/// A slot holding only the newest value.
#[derive(Debug)]
pub struct Latest<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Latest<T> {
    fn clone(&self) -> Self {
        Latest(self.0.clone())
    }
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest(Arc::new(Mutex::new(None)))
    }
}

impl<T> Latest<T> {
    /// Replaces whatever was there.
    pub fn set(&self, v: T) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The running network side.
pub struct Net {
    pub snapshot: Latest<Snapshot>,
    wake: Sender<()>,
    exec: Arc<Executor>,
    tx: Sender<Msg>,
    /// Stop flags of the taps running.
    taps: Mutex<std::collections::HashMap<u64, Arc<std::sync::atomic::AtomicBool>>>,
}

/// How long to wait before the next refresh after `failures` failures in a row: the refresh
/// interval, doubling up to 5 s (never below the interval).
pub fn backoff(failures: u32, refresh: Duration) -> Duration {
    if failures == 0 {
        return refresh;
    }
    let d = refresh.saturating_mul(1 << (failures - 1).min(6));
    d.min(Duration::from_secs(5)).max(refresh)
}

impl Net {
    /// Starts the poller and the events follower; commands run with `config`'s timeout.
    pub fn start(config: ClientConfig, refresh: Duration, tx: Sender<Msg>) -> Net {
        let snapshot = Latest::default();
        let (wake, wake_rx) = std::sync::mpsc::channel();
        let poll_client = Client::new(ClientConfig {
            timeout: refresh.max(Duration::from_secs(5)),
            ..config.clone()
        });
        let (slot, ptx) = (snapshot.clone(), tx.clone());
        std::thread::Builder::new()
            .name("uterm-poll".into())
            .spawn(move || poll(poll_client, refresh, slot, wake_rx, ptx))
            .expect("spawn the poller thread");
        let (cluster_client, ctx) = (Client::new(config.clone()), tx.clone());
        std::thread::Builder::new()
            .name("uterm-cluster".into())
            .spawn(move || poll_cluster(cluster_client, refresh, ctx))
            .expect("spawn the cluster poller thread");
        let events_client = Client::new(config.clone());
        let etx = tx.clone();
        std::thread::Builder::new()
            .name("uterm-events".into())
            .spawn(move || follow(events_client, etx))
            .expect("spawn the events thread");
        Net {
            snapshot,
            wake,
            exec: Arc::new(Executor::new(Client::new(config))),
            tx,
            taps: Mutex::default(),
        }
    }

    /// Streams the requests of a proxy (the messages of a consumer) on a thread of its own, as [`Action::TapRecord`]s,
    /// until [`Net::untap`] (the thread notices at the next record, and the server stops
    /// recording when the connection closes).
    pub fn tap(&self, id: u64, unit: String, name: String, consumer: bool) {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let stop = Arc::new(AtomicBool::new(false));
        if let Ok(mut t) = self.taps.lock() {
            t.insert(id, stop.clone());
        }
        let (exec, tx) = (self.exec.clone(), self.tx.clone());
        let _ = std::thread::Builder::new()
            .name(format!("uterm-tap-{id}"))
            .spawn(move || {
                let r = exec.tap(&name, Some(&unit), None, consumer, |record| {
                    !stop.load(Relaxed)
                        && tx
                            .send(Msg::Action(Action::TapRecord {
                                id,
                                record: record.clone(),
                            }))
                            .is_ok()
                });
                if !stop.load(Relaxed) {
                    let message = match r {
                        Ok(()) => "the server closed the stream".to_string(),
                        Err(e) => e.to_string(),
                    };
                    let _ = tx.send(Msg::Action(Action::TapEnded { id, message }));
                }
            });
    }

    pub fn untap(&self, id: u64) {
        if let Some(stop) = self.taps.lock().ok().and_then(|mut t| t.remove(&id)) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Refreshes now instead of at the next tick.
    pub fn refresh_now(&self) {
        let _ = self.wake.send(());
    }

    /// Runs a command on its own thread; the result comes back as [`Action::JobDone`].
    pub fn run(&self, id: u64, command: Command) {
        let (exec, tx) = (self.exec.clone(), self.tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("uterm-job-{id}"))
            .spawn(move || {
                let result = run_job(&exec, &command);
                let _ = tx.send(Msg::Action(Action::JobDone { id, result }));
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Msg::Action(Action::JobDone {
                id,
                result: JobResult::Failed {
                    message: format!("cannot start a thread for the command: {e}"),
                    output: None,
                },
            }));
        }
    }
}

/// Runs one command and shapes its result for the reducer.
pub fn run_job(exec: &Executor, command: &Command) -> JobResult {
    match exec.run(command) {
        Ok(out) => JobResult::Ok(out),
        Err(e) => JobResult::Failed {
            message: e.to_string().replace('\n', "  "),
            output: e.output().cloned(),
        },
    }
}

/// Reads the server once: the snapshot, or why not.
pub fn read_snapshot(client: &Client) -> Result<Snapshot, String> {
    let rs = client.bulk(&model::requests()).map_err(|e| e.to_string())?;
    model::snapshot(&rs, now_ms())
}

fn poll(
    client: Client,
    refresh: Duration,
    slot: Latest<Snapshot>,
    wake: Receiver<()>,
    tx: Sender<Msg>,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let delay = match read_snapshot(&client) {
            Ok(s) => {
                failures = 0;
                slot.set(s);
                if tx.send(Msg::Snapshot).is_err() {
                    return;
                }
                refresh
            }
            Err(message) => {
                failures += 1;
                let retry_in = backoff(failures, refresh);
                let a = Action::PollFailed { message, retry_in };
                if tx.send(Msg::Action(a)).is_err() {
                    return;
                }
                retry_in
            }
        };
        match wake.recv_timeout(delay.saturating_sub(started.elapsed())) {
            // Several wake-ups while reading count as one.
            Ok(()) => while wake.try_recv().is_ok() {},
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Reads the cluster status every `refresh` (every 5 s from a server that is not in a
/// cluster, or while it fails: it may join one after a restart).
fn poll_cluster(client: Client, refresh: Duration, tx: Sender<Msg>) {
    loop {
        let started = Instant::now();
        let feed = crate::tui::cluster::read(&client);
        let delay = match feed {
            crate::tui::cluster::ClusterFeed::Status(_) => refresh,
            _ => refresh.max(Duration::from_secs(5)),
        };
        if tx
            .send(Msg::Action(Action::Cluster(Box::new(feed))))
            .is_err()
        {
            return;
        }
        std::thread::sleep(delay.saturating_sub(started.elapsed()));
    }
}

/// The id of the newest event the server keeps.
fn newest_id(client: &Client) -> Option<u64> {
    client
        .events(Some(1), None)
        .ok()?
        .filter_map(Result::ok)
        .last()?
        .id?
        .parse()
        .ok()
}

fn follow(client: Client, tx: Sender<Msg>) {
    let send = |a: Action| tx.send(Msg::Action(a)).is_ok();
    // From the start of the server's ring (`Last-Event-ID: 0`): the Events view opens with
    // the recent past, and nothing falls between a read of the past and the live stream.
    let mut last: u64 = 0;
    let mut backoff = Duration::from_millis(250);
    loop {
        // A server that restarted numbers its events afresh: start again from its ring.
        if last > 0 && newest_id(&client).is_some_and(|n| n < last) {
            last = 0;
        }
        let reason = match client.events(None, Some(&last.to_string())) {
            Ok(stream) => {
                if !send(Action::EventsLive) {
                    return;
                }
                let mut reason = "the server closed the stream".to_string();
                for item in stream {
                    match item {
                        Ok(sse) => {
                            backoff = Duration::from_millis(250);
                            if let Some(id) = sse.id.as_deref().and_then(|i| i.parse().ok()) {
                                last = id;
                            }
                            let ev = Event::from(sse);
                            let stopping = ev.is_server_stopping();
                            if !send(Action::Event(Box::new(ev))) {
                                return;
                            }
                            // A stopping server's stream may outlive it (warm restart).
                            if stopping {
                                reason = "the server is stopping".into();
                                break;
                            }
                        }
                        Err(e) => {
                            reason = e.to_string();
                            break;
                        }
                    }
                }
                reason
            }
            Err(e @ ClientError::Unauthorized { .. }) => {
                backoff = Duration::from_secs(5);
                e.to_string()
            }
            Err(e) => e.to_string(),
        };
        if !send(Action::EventsDown(reason)) {
            return;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::token::TokenSpec;
    use crate::fake::{self, Fake};
    use serde_json::{json, Value};

    fn handler(r: &Value) -> Value {
        match fake::key(r) {
            (_, m, _) if m == "esb:type=Server" => {
                fake::ok(json!({"Name": "fake", "State": "Running", "RequestsPerSecond": 1.5}))
            }
            (_, m, _) if m == "esb:type=Unit,*" => {
                fake::ok(json!({"esb:name=a,type=Unit": {"State": "Active"}}))
            }
            _ => fake::ok(json!({})),
        }
    }

    const EVENTS: &str = "id: 7\nevent: unit_activated\ndata: {\"id\":7,\"type\":\"unit_activated\",\"unit\":\"a\",\"revision\":2}\n\n";

    #[test]
    fn one_bulk_request_per_tick_and_events_followed() {
        let f = Fake::start(EVENTS, handler);
        let (tx, rx) = std::sync::mpsc::channel();
        let config = ClientConfig {
            url: f.url.clone(),
            token: TokenSpec::Given(fake::TOKEN.into()),
            timeout: Duration::from_secs(5),
        };
        let net = Net::start(config, Duration::from_millis(50), tx);
        let (mut snapshots, mut event, mut live) = (0, None, false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while (snapshots < 3 || event.is_none() || !live) && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Snapshot) => {
                    if let Some(s) = net.snapshot.take() {
                        assert_eq!(s.units[0].name, "a");
                        snapshots += 1;
                    }
                }
                Ok(Msg::Action(Action::Event(e))) => event = Some(e),
                Ok(Msg::Action(Action::EventsLive)) => live = true,
                _ => {}
            }
        }
        assert!(snapshots >= 3 && live, "snapshots {snapshots}, live {live}");
        let e = event.expect("the event of the stream");
        assert_eq!(
            (e.id.as_deref(), e.kind.as_str()),
            (Some("7"), "unit_activated")
        );
        // Every POST is one bulk request of the whole refresh, or the cluster status (its
        // poller's own: a slow store does not hold the other views up).
        let posts = f.posts.lock().unwrap().clone();
        let cluster = serde_json::to_value(crate::tui::cluster::request()).unwrap();
        let (status, refresh): (Vec<&Value>, Vec<&Value>) = posts.iter().partition(|p| {
            p.as_array()
                .is_some_and(|a| a.len() == 1 && a[0] == cluster)
        });
        assert!(refresh.len() >= 3 && !status.is_empty(), "{posts:?}");
        assert!(refresh
            .iter()
            .all(|p| p.as_array().map(Vec::len) == Some(model::requests().len())));
    }

    #[test]
    fn failures_back_off_and_report_the_next_try() {
        let (tx, rx) = std::sync::mpsc::channel();
        let config = ClientConfig {
            url: "127.0.0.1:1".into(),
            token: TokenSpec::Given("t".into()),
            timeout: Duration::from_secs(2),
        };
        let _net = Net::start(config, Duration::from_millis(100), tx);
        let msg = loop {
            match rx.recv_timeout(Duration::from_secs(10)).expect("a report") {
                Msg::Action(Action::PollFailed { message, retry_in }) => break (message, retry_in),
                _ => continue,
            }
        };
        assert!(
            msg.0.contains("cannot connect to http://127.0.0.1:1"),
            "{}",
            msg.0
        );
        assert_eq!(msg.1, Duration::from_millis(100));
        assert_eq!(backoff(3, Duration::from_secs(1)), Duration::from_secs(4));
        assert_eq!(backoff(9, Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(backoff(2, Duration::from_secs(10)), Duration::from_secs(10));
    }

    #[test]
    fn a_job_reports_failure_with_its_message() {
        let f = Fake::start("", |_| fake::not_found("esb:type=Unit,name=x"));
        let r = run_job(&f.executor(), &Command::Reload(vec!["x".into()]));
        assert!(matches!(r, JobResult::Failed { .. }), "{r:?}");
    }
}

//! Tapping proxies and consumers: one [`TapRecord`] per finished request (method, path,
//! status, latency, revision, the steps that ran with their decisions, the address that
//! answered, the fault) for operators watching a proxy live (`GET /tap`, `uterm -c "tap
//! PROXY"`); for a consumer, one per attempt at a message ([`ConsumerTap`]: where it came
//! from, its message id or file name, and its outcome: ack, retry, dead-letter) in place of
//! method, path and status (`GET /tap?consumer=C`, `uterm -c "tap consumer UNIT/C"`).
//! Invariant: nothing is recorded while nobody taps — a request pays one relaxed atomic
//! load ([`tapping`]) to learn that. Records go into a bounded ring (a broadcast channel of
//! [`CAPACITY`]); a tapper that falls behind loses the oldest, never slows the traffic.

pub use deployments::protocol::tap::{Answered, ConsumerTap, Lost, Outcome, StepTrace, TapRecord};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Records kept for a tapper that has not read them yet.
pub const CAPACITY: usize = 1024;

/// How many tap right now.
static TAPPERS: AtomicUsize = AtomicUsize::new(0);

/// The ring the tappers read (one per process).
fn ring() -> &'static broadcast::Sender<Arc<TapRecord>> {
    static RING: OnceLock<broadcast::Sender<Arc<TapRecord>>> = OnceLock::new();
    RING.get_or_init(|| broadcast::channel(CAPACITY).0)
}

/// Whether anyone taps: the only cost of the tap on the hot path.
#[inline]
pub fn tapping() -> bool {
    TAPPERS.load(Relaxed) > 0
}

/// Which address answered: put on an endpoint's response only while someone taps.
#[derive(Debug, Clone)]
pub struct AnsweredBy(pub String);

/// What one request did, collected while it runs (only while someone taps).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub steps: Vec<StepTrace>,
    pub answered: Option<Answered>,
    pub fault: Option<String>,
}

impl Trace {
    pub fn step(&mut self, sequence: &str, step: impl Into<String>, decision: Option<String>) {
        self.steps.push(StepTrace {
            sequence: sequence.to_owned(),
            step: step.into(),
            decision,
        });
    }
}

/// Publishes one attempt of a consumer at a message to the tappers.
pub fn publish_consumer(
    at: Instant,
    unit: &str,
    revision: u64,
    message: ConsumerTap,
    trace: Trace,
) {
    let rec = TapRecord {
        time: now_ms(),
        unit: unit.to_owned(),
        proxy: String::new(),
        consumer: Some(message),
        revision,
        method: String::new(),
        path: String::new(),
        status: 0,
        latency_us: at.elapsed().as_micros() as u64,
        steps: trace.steps,
        answered: trace.answered,
        fault: trace.fault,
    };
    let _ = ring().send(Arc::new(rec));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The start of a request that is being traced.
pub struct Started {
    pub at: Instant,
    pub method: String,
    pub path: String,
}

impl Started {
    pub fn new(method: &http::Method, uri: &http::Uri) -> Started {
        Started {
            at: Instant::now(),
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
        }
    }
}

/// Publishes a finished request to the tappers.
pub fn publish(
    started: Started,
    unit: &str,
    proxy: &str,
    revision: u64,
    status: u16,
    trace: Trace,
) {
    let rec = TapRecord {
        time: now_ms(),
        unit: unit.to_owned(),
        proxy: proxy.to_owned(),
        consumer: None,
        revision,
        method: started.method,
        path: started.path,
        status,
        latency_us: started.at.elapsed().as_micros() as u64,
        steps: trace.steps,
        answered: trace.answered,
        fault: trace.fault,
    };
    // No receiver (the last tapper just left): the record is simply dropped.
    let _ = ring().send(Arc::new(rec));
}

/// Which records a tapper wants: a proxy's (or with `consumer`, a consumer's) by name,
/// optionally of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub unit: Option<String>,
    pub consumer: bool,
}

impl Filter {
    pub fn matches(&self, r: &TapRecord) -> bool {
        let name = match (&r.consumer, self.consumer) {
            (Some(c), true) => &c.consumer,
            (None, false) => &r.proxy,
            _ => return false,
        };
        *name == self.name && self.unit.as_ref().is_none_or(|u| *u == r.unit)
    }
}

/// A tapper: records flow while it lives.
pub struct Tapper {
    rx: broadcast::Receiver<Arc<TapRecord>>,
    pub filter: Filter,
}

impl Tapper {
    pub fn new(filter: Filter) -> Tapper {
        let rx = ring().subscribe();
        TAPPERS.fetch_add(1, Relaxed);
        Tapper { rx, filter }
    }

    /// The next matching record; `Err(n)` when `n` records were lost (the tapper fell
    /// behind); `None` never happens while the process runs.
    pub async fn next(&mut self) -> Option<Result<Arc<TapRecord>, u64>> {
        loop {
            match self.rx.recv().await {
                Ok(r) if self.filter.matches(&r) => return Some(Ok(r)),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(Err(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Tapper {
    fn drop(&mut self) {
        TAPPERS.fetch_sub(1, Relaxed);
    }
}

/// Tappers now (for the management endpoint and tests).
pub fn tappers() -> usize {
    TAPPERS.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(unit: &str, proxy: &str) -> Trace {
        let mut t = Trace::default();
        t.step("in", "switch", Some(format!("{unit}/{proxy}")));
        t
    }

    #[tokio::test]
    async fn records_flow_only_to_matching_tappers_while_they_tap() {
        let mut t = Tapper::new(Filter {
            name: "tap-test-orders".into(),
            unit: Some("tap-test-shop".into()),
            consumer: false,
        });
        assert!(tapping());
        let s = || Started::new(&http::Method::GET, &"/orders/1".parse().unwrap());
        publish(s(), "other", "tap-test-orders", 1, 200, rec("x", "y"));
        publish(s(), "tap-test-shop", "list", 1, 200, rec("x", "y"));
        publish(
            s(),
            "tap-test-shop",
            "tap-test-orders",
            3,
            502,
            rec("shop", "orders"),
        );
        let r = t.next().await.unwrap().unwrap();
        assert_eq!(
            (r.unit.as_str(), r.proxy.as_str(), r.revision, r.status),
            ("tap-test-shop", "tap-test-orders", 3, 502)
        );
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/orders/1"));
        assert_eq!(r.steps[0].decision.as_deref(), Some("shop/orders"));
        let before = tappers();
        drop(t);
        assert_eq!(tappers(), before - 1);
    }

    #[tokio::test]
    async fn consumer_records_go_to_consumer_tappers_only() {
        let mut t = Tapper::new(Filter {
            name: "tap-test-in".into(),
            unit: None,
            consumer: true,
        });
        let msg = |outcome| ConsumerTap {
            consumer: "tap-test-in".into(),
            source: "/inbox".into(),
            message: "a.json".into(),
            outcome,
            attempt: 1,
        };
        // A proxy of the same name is not the consumer.
        let s = Started::new(&http::Method::GET, &"/x".parse().unwrap());
        publish(s, "u", "tap-test-in", 1, 200, Trace::default());
        publish_consumer(
            Instant::now(),
            "u",
            2,
            msg(Outcome::DeadLetter),
            rec("u", "in"),
        );
        let r = t.next().await.unwrap().unwrap();
        let c = r.consumer.as_ref().unwrap();
        assert_eq!((c.outcome, r.revision), (Outcome::DeadLetter, 2));
        let json = serde_json::to_value(&*r).unwrap();
        assert_eq!(json["consumer"], "tap-test-in");
        assert_eq!(json["outcome"], "dead-letter");
        assert_eq!(json["message"], "a.json");
        assert!(json.get("proxy").is_none() && json.get("status").is_none());
    }
}

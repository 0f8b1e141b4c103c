//! Tapping proxies: one [`TapRecord`] per finished request (method, path, status, latency,
//! revision, the steps that ran with their decisions, the address that answered, the fault)
//! for operators watching a proxy live (`GET /tap`, `uterm -c "tap PROXY"`).
//! Invariant: nothing is recorded while nobody taps — a request pays one relaxed atomic
//! load ([`tapping`]) to learn that. Records go into a bounded ring (a broadcast channel of
//! [`CAPACITY`]); a tapper that falls behind loses the oldest, never slows the traffic.

use serde::Serialize;
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

/// A step that ran, and what it decided (a filter's branch, a switch's case).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepTrace {
    pub sequence: String,
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// The address that answered and how long it took.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answered {
    pub endpoint: String,
    pub address: String,
    pub latency_us: u64,
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

/// One finished request of a tapped proxy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TapRecord {
    /// Milliseconds since the epoch, when the request ended.
    pub time: u64,
    pub unit: String,
    pub proxy: String,
    pub revision: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_us: u64,
    pub steps: Vec<StepTrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<Answered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
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
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let rec = TapRecord {
        time,
        unit: unit.to_owned(),
        proxy: proxy.to_owned(),
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

/// Which requests a tapper wants: a proxy by name, optionally of one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub proxy: String,
    pub unit: Option<String>,
}

impl Filter {
    pub fn matches(&self, r: &TapRecord) -> bool {
        r.proxy == self.proxy && self.unit.as_ref().is_none_or(|u| *u == r.unit)
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
            proxy: "tap-test-orders".into(),
            unit: Some("tap-test-shop".into()),
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
}

//! Runtime counters kept cheaply with atomics: requests, errors, in-flight and a latency
//! histogram with fixed logarithmic buckets (p50/p99 are read from the buckets, accurate to
//! the bucket width of ~19%). Shared by proxies, endpoints, addresses and transports. The
//! histogram (1 KB) is allocated at the first recorded latency: a unit of thousands of
//! proxies that see no traffic costs a few words per proxy, and reads as zeros.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

/// Latencies below `LINEAR` µs get a bucket each; above, four buckets per power of two
/// (width ≤ 25%), up to 2^34 µs (4.7 h).
const SUB: usize = 4;
const LINEAR: usize = 8;
const BUCKETS: usize = LINEAR + 31 * SUB;

/// Upper bound (µs, exclusive) of bucket `i`.
fn bucket_bound(i: usize) -> u64 {
    if i < LINEAR {
        return i as u64 + 1;
    }
    let exp = (i - LINEAR) / SUB + 3;
    let sub = ((i - LINEAR) % SUB) as u64;
    (1u64 << exp) + ((sub + 1) << exp) / SUB as u64
}

/// Integer-only bucket of a latency: no floating point on the request path.
fn bucket_of(micros: u64) -> usize {
    let micros = micros.min(1 << 40);
    if micros < LINEAR as u64 {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros() as usize;
    let sub = (((micros - (1 << exp)) * SUB as u64) >> exp) as usize;
    (LINEAR + (exp - 3) * SUB + sub).min(BUCKETS - 1)
}

#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A [`Histogram`] allocated when the first latency is recorded; until then every read
/// is what an empty histogram reads.
#[derive(Debug, Default)]
pub struct LazyHistogram(OnceLock<Box<Histogram>>);

impl LazyHistogram {
    pub fn record(&self, d: Duration) {
        self.0.get_or_init(Box::default).record(d);
    }

    /// See [`Histogram::quantile`]; 0 before the first record.
    pub fn quantile(&self, q: f64) -> u64 {
        self.0.get().map_or(0, |h| h.quantile(q))
    }

    /// See [`Histogram::counts`]; all zeros before the first record.
    pub fn counts(&self) -> Vec<u64> {
        match self.0.get() {
            Some(h) => h.counts(),
            None => vec![0; BUCKETS],
        }
    }

    /// Whether anything was recorded (the histogram exists).
    pub fn is_allocated(&self) -> bool {
        self.0.get().is_some()
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        self.buckets[bucket_of(d.as_micros() as u64)].fetch_add(1, Relaxed);
    }

    /// The latency below which `q` (0..1) of the recorded values fall, in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        Self::quantile_between(&[], &self.counts(), q)
    }

    /// The count of every bucket (for quantiles of what was recorded since).
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }

    /// The `q` quantile (µs) of what was recorded between `before` and `after` (counts).
    pub fn quantile_between(before: &[u64], after: &[u64], q: f64) -> u64 {
        let counts: Vec<u64> = after
            .iter()
            .zip(before.iter().chain(std::iter::repeat(&0)))
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return bucket_bound(i);
            }
        }
        bucket_bound(BUCKETS - 1)
    }

    /// Cumulative counts at the given bounds (µs), for Prometheus histograms.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut seen = 0;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                seen += b.load(Relaxed);
                (bucket_bound(i), seen)
            })
            .collect()
    }
}

/// Counters of one managed object.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    pub latency: LazyHistogram,
    pub latency_sum_us: AtomicU64,
    /// Requests counted at the last rate sample, and the rate then (requests/s).
    rate_base: AtomicU64,
    rate: AtomicU64,
}

/// Counts one request in flight; records its outcome when dropped or finished.
pub struct InFlight<'a> {
    stats: &'a Stats,
    start: std::time::Instant,
    done: bool,
}

impl Stats {
    pub fn begin(&self) -> InFlight<'_> {
        self.begin_at(std::time::Instant::now())
    }

    /// [`Stats::begin`] with a start read from the clock already (one read for nested
    /// counters of one request).
    pub fn begin_at(&self, start: std::time::Instant) -> InFlight<'_> {
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        InFlight {
            stats: self,
            start,
            done: false,
        }
    }

    /// Called once a second: the requests since the last call become the current rate.
    pub fn sample_rate(&self) {
        let now = self.requests.load(Relaxed);
        let before = self.rate_base.swap(now, Relaxed);
        self.rate.store(now.saturating_sub(before), Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            rate: self.rate.load(Relaxed),
            requests: self.requests.load(Relaxed),
            errors: self.errors.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            p50_us: self.latency.quantile(0.50),
            p99_us: self.latency.quantile(0.99),
        }
    }
}

impl InFlight<'_> {
    pub fn finish(mut self, error: bool) {
        self.complete(error, std::time::Instant::now());
    }

    /// [`InFlight::finish`] at a time read from the clock already.
    pub fn finish_at(mut self, error: bool, now: std::time::Instant) {
        self.complete(error, now);
    }

    pub fn started(&self) -> std::time::Instant {
        self.start
    }

    fn complete(&mut self, error: bool, now: std::time::Instant) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = now.saturating_duration_since(self.start);
        self.stats.in_flight.fetch_sub(1, Relaxed);
        if error {
            self.stats.errors.fetch_add(1, Relaxed);
        }
        self.stats.latency.record(elapsed);
        self.stats
            .latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // Dropped without an outcome: the client went away mid-request. (Finished ones are
        // dropped too: no clock read for them.)
        if !self.done {
            self.complete(true, std::time::Instant::now());
        }
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests per second over the last full second.
    pub rate: u64,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_contain_their_values() {
        for v in [0u64, 1, 3, 4, 5, 7, 8, 100, 1000, 123_456, 10_000_000] {
            let b = bucket_of(v);
            assert!(
                v < bucket_bound(b),
                "{v} not below bound {} of bucket {b}",
                bucket_bound(b)
            );
            assert!(b == 0 || v >= bucket_bound(b - 1), "{v} below bucket {b}");
        }
        for i in 1..BUCKETS {
            assert!(bucket_bound(i) > bucket_bound(i - 1));
        }
    }

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(100));
        }
        h.record(Duration::from_millis(50));
        h.record(Duration::from_millis(50));
        let p50 = h.quantile(0.5);
        assert!((100..=120).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((50_000..=60_000).contains(&p99), "{p99}");
    }

    #[test]
    fn in_flight_is_counted_and_errors_recorded() {
        let s = Stats::default();
        let g = s.begin();
        assert_eq!(s.snapshot().in_flight, 1);
        g.finish(false);
        drop(s.begin());
        let snap = s.snapshot();
        assert_eq!((snap.requests, snap.errors, snap.in_flight), (2, 1, 0));
    }

    #[test]
    fn stats_without_requests_read_as_zeros_and_allocate_no_histogram() {
        let s = Stats::default();
        assert_eq!(s.snapshot(), StatsSnapshot::default());
        assert_eq!(s.latency.counts(), vec![0; BUCKETS]);
        assert_eq!(s.latency.quantile(0.99), 0);
        assert!(!s.latency.is_allocated());
        // The histogram is what keeps a stats object big: without it, a few words.
        assert!(
            std::mem::size_of::<Stats>() <= 80,
            "{}",
            std::mem::size_of::<Stats>()
        );

        let g = s.begin_at(std::time::Instant::now() - Duration::from_micros(300));
        g.finish(false);
        let snap = s.snapshot();
        assert!(s.latency.is_allocated());
        assert_eq!((snap.requests, snap.errors, snap.in_flight), (1, 0, 0));
        assert!((300..=400).contains(&snap.p99_us), "{}", snap.p99_us);
        assert_eq!(s.latency.counts().iter().sum::<u64>(), 1);
    }
}

/// Connections of one transport, counted at accept and at close (refused: closed without
/// being served, e.g. a failed TLS handshake or an accept error).
#[derive(Debug, Default)]
pub struct ConnCounts {
    pub accepted: AtomicU64,
    /// Taken over from the process a binary upgrade replaced.
    pub adopted: AtomicU64,
    /// Passed on to the process of a binary upgrade (counted closed here too).
    pub handed_over: AtomicU64,
    pub closed: AtomicU64,
    pub refused: AtomicU64,
}

impl ConnCounts {
    /// Connections accepted or adopted and not yet closed.
    pub fn open(&self) -> u64 {
        (self.accepted.load(Relaxed) + self.adopted.load(Relaxed))
            .saturating_sub(self.closed.load(Relaxed))
    }
}

/// Upper bounds (seconds) of the deploy duration histogram.
pub const DEPLOY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Deployment outcomes per unit and a histogram of activation durations, fed from the
/// typed events of [`crate::events`] (the bus calls [`DeployStats::record`] for each).
#[derive(Debug, Default)]
pub struct DeployStats {
    inner: std::sync::Mutex<DeployInner>,
}

#[derive(Debug, Default, Clone)]
pub struct DeployInner {
    /// (unit, outcome) → count; outcome is activated, unchanged, rejected, failed, unloaded.
    pub outcomes: std::collections::BTreeMap<(String, &'static str), u64>,
    /// Non-cumulative counts per bucket of [`DEPLOY_BUCKETS`], then the overflow.
    pub buckets: [u64; DEPLOY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl DeployStats {
    pub fn record(&self, kind: &crate::events::EventKind) {
        use crate::events::EventKind as K;
        let (unit, outcome, duration_ms) = match kind {
            K::UnitActivated {
                unit, duration_ms, ..
            } => (unit, "activated", Some(*duration_ms)),
            K::UnitUnchanged { unit, .. } => (unit, "unchanged", None),
            K::UnitRejected { unit, .. } => (unit, "rejected", None),
            K::UnitFailed { unit, .. } => (unit, "failed", None),
            K::UnitUnloaded { unit, .. } => (unit, "unloaded", None),
            _ => return,
        };
        let mut s = self.inner.lock().expect("deploy stats");
        *s.outcomes.entry((unit.clone(), outcome)).or_default() += 1;
        if let Some(ms) = duration_ms {
            let secs = ms / 1000.0;
            let i = DEPLOY_BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(DEPLOY_BUCKETS.len());
            s.buckets[i] += 1;
            s.sum_seconds += secs;
            s.count += 1;
        }
    }

    pub fn snapshot(&self) -> DeployInner {
        self.inner.lock().expect("deploy stats").clone()
    }
}

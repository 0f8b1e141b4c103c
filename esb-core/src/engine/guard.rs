//! Guards: after a unit's revision is activated from new content, the unit's `[guard]` is
//! watched for its `window`. Once at least `min_requests` requests were answered by the new
//! revision's proxies, a share of 5xx answers above `max_error_rate` or a p99 above
//! `max_p99` trips it: the engine rolls the unit back to its previous revision by itself,
//! emits `guard_tripped` with the reason, and the server audits it (`by: "guard"`).

use super::*;
use crate::metrics::{Histogram, Stats};
use deployments::model::Guard;

pub(super) struct Watch {
    unit: String,
    revision: u64,
    /// A canary's guard is watched for as long as the canary runs.
    canary: bool,
    guard: Guard,
    until: Instant,
    /// Each proxy's counters as they were at the activation.
    baseline: Vec<(Arc<Stats>, u64, u64, Vec<u64>)>,
}

/// A guard that tripped and what was done about it.
pub struct Trip {
    pub unit: String,
    pub revision: u64,
    pub reason: String,
    pub outcome: Outcome,
}

impl Watch {
    fn new(rev: &Revision, guard: &Guard, canary: bool) -> Watch {
        Watch {
            unit: rev.info.unit.clone(),
            revision: rev.info.number,
            canary,
            guard: guard.clone(),
            until: Instant::now() + guard.window,
            baseline: rev
                .proxies
                .iter()
                .map(|p| {
                    let s = p.stats.clone();
                    let (r, e) = (s.requests.load(Relaxed), s.errors.load(Relaxed));
                    let h = s.latency.counts();
                    (s, r, e, h)
                })
                .collect(),
        }
    }

    /// Why the guard trips now, if it does.
    fn verdict(&self) -> Option<String> {
        let mut requests = 0;
        let mut errors = 0;
        let mut before = vec![0u64; 0];
        let mut after = vec![0u64; 0];
        for (s, r, e, h) in &self.baseline {
            requests += s.requests.load(Relaxed).saturating_sub(*r);
            errors += s.errors.load(Relaxed).saturating_sub(*e);
            let now = s.latency.counts();
            if after.len() < now.len() {
                after.resize(now.len(), 0);
                before.resize(now.len(), 0);
            }
            for (i, c) in now.iter().enumerate() {
                after[i] += c;
                before[i] += h.get(i).copied().unwrap_or(0);
            }
        }
        let g = &self.guard;
        if requests < g.min_requests.max(1) {
            return None;
        }
        let rate = errors as f64 * 100.0 / requests as f64;
        if let Some(max) = g.max_error_rate {
            if rate > max {
                return Some(format!(
                    "{errors} of {requests} requests answered 5xx ({rate:.1} %, the guard allows {max} %)"
                ));
            }
        }
        if let Some(max) = g.max_p99 {
            let p99 = Histogram::quantile_between(&before, &after, 0.99);
            if p99 as u128 > max.as_micros() {
                return Some(format!(
                    "p99 latency {} ms over {requests} requests (the guard allows {})",
                    p99 as f64 / 1000.0,
                    deployments::model::duration::format(&max)
                ));
            }
        }
        None
    }
}

impl Engine {
    /// Starts watching the guard of a revision just activated from new content (or started
    /// as a canary).
    pub(super) fn watch_guard(&self, rev: &Revision, canary: bool) {
        self.unwatch_guard(&rev.info.unit);
        if let Some(g) = &rev.parsed.unit.guard {
            let w = Watch::new(rev, g, canary);
            self.guards.lock().expect("guards").push(w);
        }
    }

    pub(super) fn unwatch_guard(&self, unit: &str) {
        self.guards
            .lock()
            .expect("guards")
            .retain(|w| w.unit != unit);
    }

    /// Checks every watched guard (called periodically); rolls back the units whose guard
    /// tripped and says which.
    pub async fn check_guards(&self) -> Vec<Trip> {
        let tripped: Vec<(String, u64, String)> = {
            let mut watches = self.guards.lock().expect("guards");
            let now = Instant::now();
            let mut out = Vec::new();
            watches.retain(|w| match w.verdict() {
                Some(reason) => {
                    out.push((w.unit.clone(), w.revision, reason));
                    false
                }
                None => w.canary || now < w.until,
            });
            out
        };
        let mut trips = Vec::new();
        for (unit, revision, reason) in tripped {
            let mut units = self.lock().await;
            let canary = units
                .get(&unit)
                .and_then(|s| s.canary.as_ref())
                .is_some_and(|c| c.revision.info.number == revision);
            let current = units
                .get(&unit)
                .and_then(|s| s.current.as_ref())
                .map(|c| c.info.number);
            let (outcome, rolled_back_to, note) = if canary {
                drop(units);
                let _ = self.abort_canary(&unit, &format!("guard: {reason}")).await;
                units = self.lock().await;
                let stable = current.unwrap_or(0);
                (
                    Outcome::Unchanged {
                        unit: unit.clone(),
                        revision: stable,
                    },
                    current,
                    format!("canary revision {revision} aborted: {reason}"),
                )
            } else if current == Some(revision) {
                let outcome = self
                    .transact(
                        &mut units,
                        vec![Change::Deploy {
                            unit: unit.clone(),
                            source: Source::Revision(None),
                        }],
                        Mode::Normal,
                    )
                    .await
                    .remove(0);
                let to = match &outcome {
                    Outcome::Activated { revision, .. } => Some(*revision),
                    _ => None,
                };
                let note = match to {
                    Some(to) => format!("revision {revision} rolled back to {to}: {reason}"),
                    None => format!("revision {revision} tripped its guard ({reason}) but could not be rolled back"),
                };
                (outcome, to, note)
            } else {
                continue;
            };
            if let Some(slot) = units.get_mut(&unit) {
                slot.guard_trip = Some(note);
            }
            drop(units);
            self.events.emit(EventKind::GuardTripped {
                unit: unit.clone(),
                revision,
                reason: reason.clone(),
                rolled_back_to,
            });
            trips.push(Trip {
                unit,
                revision,
                reason,
                outcome,
            });
        }
        trips
    }
}

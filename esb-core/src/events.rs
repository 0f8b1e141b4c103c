//! The event bus. The events themselves are the protocol's ([`deployments::protocol::event`]),
//! one typed event per deployment step and state change. One bus: each event is logged,
//! counted for `/metrics`, kept in a bounded ring (so `/events` clients can resume with
//! `Last-Event-ID`) and broadcast to live subscribers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

pub use deployments::protocol::event::{Event, EventKind};

const RING: usize = 1024;

pub struct EventBus {
    /// Deployment counters for `/metrics`, fed from every event emitted.
    pub deploys: crate::metrics::DeployStats,
    next: AtomicU64,
    ring: Mutex<VecDeque<Arc<Event>>>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        // Ids start at the start time in milliseconds, so they keep increasing across
        // process restarts and a client resuming with an old `Last-Event-ID` gets every
        // event of the new process instead of nothing.
        EventBus {
            deploys: Default::default(),
            next: AtomicU64::new(epoch_ms().max(1)),
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            tx: broadcast::channel(RING).0,
        }
    }
}

pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl EventBus {
    pub fn emit(&self, kind: EventKind) -> Arc<Event> {
        log(&kind);
        self.deploys.record(&kind);
        let mut ring = self.ring.lock().expect("event ring");
        let event = Arc::new(Event {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            time: epoch_ms(),
            kind,
        });
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        let _ = self.tx.send(event.clone());
        event
    }

    /// Events after `last_id` still in the ring, and a receiver for what follows.
    /// Taken under one lock so nothing falls between the two.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let ring = self.ring.lock().expect("event ring");
        let rx = self.tx.subscribe();
        let past = match last_id {
            Some(id) => ring.iter().filter(|e| e.id > id).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }

    pub fn recent(&self, n: usize) -> Vec<Arc<Event>> {
        let ring = self.ring.lock().expect("event ring");
        ring.iter().rev().take(n).rev().cloned().collect()
    }
}

/// One log record per event, with the event's fields as structured fields (`event` names
/// the kind), so the JSON log format carries the same fields as `/events`.
fn log(kind: &EventKind) {
    let event = kind.name();
    match kind {
        EventKind::ServerStarted { name } => {
            tracing::info!(event, name = name.as_str(), "server started")
        }
        EventKind::ServerStopping => tracing::info!(event, "server stopping"),
        EventKind::UnitActivated {
            unit,
            revision,
            hash,
            label,
            duration_ms,
            changes,
            degraded,
        } => {
            let label = label.as_deref().unwrap_or("");
            if *degraded {
                tracing::warn!(
                    event,
                    unit,
                    revision,
                    hash,
                    label,
                    degraded,
                    "unit activated from last-good copy (degraded): files on disk are invalid"
                );
            } else {
                tracing::info!(
                    event,
                    unit,
                    revision,
                    hash,
                    label,
                    duration_ms,
                    changes,
                    "unit activated"
                );
            }
        }
        EventKind::UnitUnchanged { unit, revision } => {
            tracing::info!(event, unit, revision, "unit unchanged")
        }
        EventKind::UnitRejected { unit, errors } | EventKind::UnitFailed { unit, errors } => {
            for e in errors {
                tracing::error!(event, unit, "{e}");
            }
        }
        EventKind::UnitUnloaded { unit, revision } => {
            tracing::info!(event, unit, revision, "unit unloaded")
        }
        EventKind::RevisionDrained {
            unit,
            revision,
            in_flight_left,
            ended,
            reason,
        } => tracing::info!(
            event,
            unit,
            revision,
            in_flight_left,
            ended,
            reason,
            "revision drained"
        ),
        EventKind::StateChanged { object, state } => {
            tracing::info!(event, object, state, "state changed")
        }
        EventKind::HotDeploy { enabled } => tracing::info!(event, enabled, "hot deploy switched"),
        EventKind::GuardTripped {
            unit,
            revision,
            reason,
            rolled_back_to,
        } => tracing::warn!(
            event,
            unit,
            revision,
            rolled_back_to,
            "guard tripped: {reason}; rolled back"
        ),
        EventKind::ClusterChange {
            action,
            unit,
            revision,
            accepted_by,
        } => tracing::info!(event, action, unit, revision, accepted_by, "cluster change"),
        EventKind::ClusterStore { state, detail } => {
            tracing::info!(event, state, detail, "cluster store")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_outcomes_are_counted_from_the_events() {
        let bus = EventBus::default();
        bus.emit(EventKind::UnitActivated {
            unit: "a".into(),
            revision: 1,
            hash: "h".into(),
            label: None,
            duration_ms: 27.8,
            changes: String::new(),
            degraded: false,
        });
        bus.emit(EventKind::UnitRejected {
            unit: "a".into(),
            errors: Vec::new(),
        });
        let s = bus.deploys.snapshot();
        assert_eq!(s.outcomes[&("a".to_string(), "activated")], 1);
        assert_eq!(s.outcomes[&("a".to_string(), "rejected")], 1);
        assert_eq!(s.count, 1);
        assert!((s.sum_seconds - 0.0278).abs() < 1e-9);
        // 27.8 ms falls in the 0.05 s bucket.
        let i = crate::metrics::DEPLOY_BUCKETS
            .iter()
            .position(|b| *b == 0.05)
            .unwrap();
        assert_eq!(s.buckets[i], 1);
    }
}

//! What the engine publishes for readers: an immutable view of every unit, swapped in
//! (arc-swap) after each change, so management reads, `/metrics` and the rate sampler
//! never wait for a deploy in progress. Runtime counters and operator flags are shared
//! atomics inside the view, so they are live; what a change replaces (revisions, tasks,
//! consumers, history, errors) is as of the last published change. Revisions still
//! draining are read from the drain list, which no deploy holds.

use super::*;

/// One unit as readers see it.
#[derive(Clone)]
pub struct UnitView {
    pub origin: Origin,
    pub current: Option<Arc<Revision>>,
    /// Recent revisions, newest last, the current one included.
    pub history: Vec<Kept>,
    pub control: Arc<UnitControl>,
    /// Set when the unit could not start at all (no valid files, no last-good).
    pub failed: Option<Vec<Diagnostic>>,
    /// Errors of the last rejected deploy, until the next success.
    pub last_errors: Vec<Diagnostic>,
    pub tasks: Vec<Arc<TaskRuntime>>,
    pub consumers: BTreeMap<String, Arc<ConsumerRuntime>>,
    /// Set when the unit's guard rolled a revision back.
    pub guard_trip: Option<String>,
    pub canary: Option<canary::Canary>,
}

impl UnitView {
    fn of(slot: &UnitSlot) -> UnitView {
        UnitView {
            origin: slot.origin,
            current: slot.current.clone(),
            history: slot.history.iter().cloned().collect(),
            control: slot.control.clone(),
            failed: slot.failed.clone(),
            last_errors: slot.last_errors.clone(),
            tasks: slot.tasks.clone(),
            consumers: slot.consumers.clone(),
            guard_trip: slot.guard_trip.clone(),
            canary: slot.canary.clone(),
        }
    }

    /// The active revision's number.
    pub fn revision(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.info.number)
    }
}

/// Every loaded unit, by name.
pub type Snapshot = BTreeMap<String, UnitView>;

/// A revision still finishing its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainingView {
    pub unit: String,
    pub revision: u64,
    pub in_flight: u64,
}

pub(super) fn snapshot_of(units: &BTreeMap<String, UnitSlot>) -> Snapshot {
    units
        .iter()
        .map(|(n, s)| (n.clone(), UnitView::of(s)))
        .collect()
}

/// The engine's unit slots while one change holds them. Dropping it publishes what the
/// change made of them, so readers never see a state older than the last change.
pub(super) struct Locked<'a> {
    engine: &'a Engine,
    units: tokio::sync::MutexGuard<'a, BTreeMap<String, UnitSlot>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = BTreeMap<String, UnitSlot>;
    fn deref(&self) -> &Self::Target {
        &self.units
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.units
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.engine.publish(&self.units);
    }
}

impl Engine {
    /// The unit slots, for one change at a time (deploys, control operations).
    pub(super) async fn lock(&self) -> Locked<'_> {
        Locked {
            engine: self,
            units: self.units.lock().await,
        }
    }

    /// Publishes the view of `units` (also called mid-change, before a change's events
    /// are emitted, so whoever reacts to an event reads what it announced).
    pub(super) fn publish(&self, units: &BTreeMap<String, UnitSlot>) {
        self.view.store(Arc::new(snapshot_of(units)));
    }

    /// The units as of the last change; never waits.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.view.load_full()
    }

    /// Revisions of loaded units still finishing requests, by unit name; never waits for
    /// a deploy.
    pub fn draining(&self) -> Vec<DrainingView> {
        let list = self.draining.lock().expect("drain list");
        let mut out: Vec<(bool, DrainingView)> = list
            .iter()
            .map(|d| {
                (
                    d.orphan,
                    DrainingView {
                        unit: d.revision.info.unit.clone(),
                        revision: d.revision.info.number,
                        in_flight: d.revision.info.in_flight.load(Relaxed),
                    },
                )
            })
            .collect();
        drop(list);
        out.retain(|(orphan, _)| !orphan);
        out.sort_by(|a, b| a.1.unit.cmp(&b.1.unit));
        out.into_iter().map(|(_, d)| d).collect()
    }

    /// Revisions of `unit` (loaded) still finishing requests, oldest first.
    pub fn draining_of(&self, unit: &str) -> Vec<DrainingView> {
        let mut all = self.draining();
        all.retain(|d| d.unit == unit);
        all
    }
}

//! What a transaction commits to the durable state: the history each activated unit will
//! have (ordered by revision, one entry per content hash, never dropping the current one)
//! and the manifest of every unit after the change, derived from the unit slots so it
//! cannot drift from what runs.

use super::plan::Plan;
use super::*;
use crate::state::{Manifest, RevisionRecord, UnitRecord};
use std::time::{Duration, UNIX_EPOCH};

/// The history of a unit once `rev` is active. `keep_entry`: a start-up restore, which keeps
/// the entry the durable state already has for that revision.
pub(super) fn next_history(
    old: Option<&VecDeque<Kept>>,
    rev: &Revision,
    duration: Duration,
    keep_entry: bool,
    keep: usize,
) -> VecDeque<Kept> {
    let number = rev.info.number;
    let kept_entry = old
        .filter(|_| keep_entry)
        .and_then(|h| h.iter().find(|k| k.number == number && k.hash == rev.hash))
        .cloned();
    let mut entry = kept_entry.unwrap_or_else(|| {
        let mut k = Kept::of(rev);
        k.deploy_time = duration;
        k
    });
    entry.degraded = rev.degraded;
    let mut history: Vec<Kept> = old
        .map(|h| {
            h.iter()
                .filter(|k| k.number != number && k.hash != rev.hash)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    history.push(entry);
    history.sort_by_key(|k| k.number);
    while history.len() > keep {
        let oldest_other = history
            .iter()
            .position(|k| k.number != number)
            .expect("more than one entry");
        history.remove(oldest_other);
    }
    history.into()
}

fn record_of(k: &Kept) -> RevisionRecord {
    RevisionRecord {
        number: k.number,
        hash: k.hash.clone(),
        label: k.label.clone(),
        deployed_at_ms: k
            .deployed_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        deploy_ms: crate::revision::millis(k.deploy_time),
    }
}

pub(super) fn kept_of(r: &RevisionRecord, sources: UnitSources) -> Kept {
    Kept {
        number: r.number,
        hash: r.hash.clone(),
        label: r.label.clone(),
        deployed_at: UNIX_EPOCH + Duration::from_millis(r.deployed_at_ms),
        deploy_time: Duration::from_secs_f64(r.deploy_ms.max(0.0) / 1000.0),
        degraded: false,
        sources: Arc::new(sources),
    }
}

fn unit_record(
    origin: Origin,
    current: u64,
    next: u64,
    history: &VecDeque<Kept>,
    disk_hash: Option<String>,
) -> UnitRecord {
    UnitRecord {
        origin,
        current,
        next_revision: next.max(current + 1),
        history: history.iter().map(record_of).collect(),
        disk_hash,
    }
}

impl Engine {
    /// The manifest as it stands for the running units: the stored one with every active
    /// unit's record brought up to date. Records leave it only by an unload (`commit`) or
    /// when their unit vanished while esb was down (`commit_running`) — never because a
    /// unit is not loaded yet (start-up loads them one by one).
    pub(super) fn manifest_of(&self, units: &BTreeMap<String, UnitSlot>) -> Manifest {
        let mut m = self.store.manifest();
        for (name, slot) in units {
            let Some(cur) = slot.current.as_ref() else {
                continue;
            };
            m.units.insert(
                name.clone(),
                unit_record(
                    slot.origin,
                    cur.info.number,
                    slot.next_revision,
                    &slot.history,
                    slot.disk_hash.clone(),
                ),
            );
        }
        m
    }

    /// Persists what the plan will make of the durable state: the sources of new
    /// revisions, then the manifest in one atomic replace (a batch commits in one step).
    pub(super) fn persist(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        plan: &Plan,
    ) -> std::io::Result<()> {
        let (built, histories) = (&plan.built, &plan.histories);
        for (name, rev) in built {
            self.store
                .write_revision(name, rev.info.number, &rev.sources)?;
        }
        let mut m = self.manifest_of(units);
        for p in &plan.units {
            if let Some(rev) = built.get(&p.unit) {
                let next = units
                    .get(&p.unit)
                    .map(|s| s.next_revision)
                    .unwrap_or_else(|| m.next_revision(&p.unit))
                    .max(rev.info.number + 1);
                m.retired.remove(&p.unit);
                let disk_hash = p
                    .disk_hash
                    .clone()
                    .or_else(|| units.get(&p.unit).and_then(|s| s.disk_hash.clone()));
                m.units.insert(
                    p.unit.clone(),
                    unit_record(
                        p.origin,
                        rev.info.number,
                        next,
                        &histories[&p.unit],
                        disk_hash,
                    ),
                );
            } else if let Some(r) = m.units.get_mut(&p.unit) {
                if p.unchanged {
                    r.origin = p.origin;
                }
                if p.disk_hash.is_some() {
                    r.disk_hash = p.disk_hash.clone();
                }
            }
        }
        for c in &plan.changes {
            if let Change::Unload { unit } = c {
                if let Some(r) = m.units.remove(unit) {
                    m.retired.insert(unit.clone(), r.next_revision);
                } else if let Some(slot) = units.get(unit) {
                    m.retired.insert(unit.clone(), slot.next_revision);
                }
            }
        }
        self.store.commit(m)
    }

    /// Commits the manifest of what runs after start-up: units whose directory vanished
    /// while esb was down are retired (their numbering is kept).
    pub(super) fn commit_running(&self, units: &BTreeMap<String, UnitSlot>) {
        let mut m = self.manifest_of(units);
        let gone: Vec<String> = m
            .units
            .keys()
            .filter(|n| !units.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = m.units.remove(&name) {
                tracing::info!(unit = %name, "unit directory is gone: unit retired");
                m.retired.insert(name, r.next_revision);
            }
        }
        if let Err(e) = self.store.commit(m) {
            tracing::error!(
                "cannot persist the deployment state in {}: {e}",
                self.root.state_dir().display()
            );
        }
    }
}

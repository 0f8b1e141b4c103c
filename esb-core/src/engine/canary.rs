//! Canaries: a new revision of a unit activated *beside* the current one. Each of the
//! current revision's proxies gets a route to the canary's proxy of the same name, and a
//! [`Split`] (a weight, a header, or a sticky key) decides per request which of the two
//! answers; while a canary runs every answer carries `x-esb-revision`. The canary is built
//! with its own counters and pools (so its error rate and p99 are its own), its checks run
//! first, and its guard is watched — a trip aborts it. `promote` makes it the current
//! revision through the normal commit and swap (the old one drains); `abort` drops it.
//! A canary is not persisted: after a restart the current revision serves alone.

use super::plan::{Plan, UnitPlan};
use super::*;
use crate::proxy::{CanaryRoute, Split};

fn no_canary(unit: &str) -> String {
    format!("unit \"{unit}\" runs no canary; start one with `deploy {unit} --canary 10%`")
}

#[derive(Clone)]
pub struct Canary {
    pub revision: Arc<Revision>,
    pub split: Arc<Split>,
    pub origin: Origin,
    pub disk_hash: Option<String>,
    pub started: Instant,
}

fn install(current: &Revision, canary: &Arc<Revision>, split: &Arc<Split>) {
    for p in &current.proxies {
        let route = canary.proxies.iter().find(|c| c.name == p.name).map(|c| {
            Arc::new(CanaryRoute {
                proxy: c.clone(),
                split: split.clone(),
            })
        });
        p.canary.store(route);
    }
}

fn uninstall(current: &Revision) {
    for p in &current.proxies {
        p.canary.store(None);
    }
}

impl Engine {
    /// Builds `unit` from `source` and starts it as a canary beside the current revision.
    pub async fn deploy_canary(&self, unit: &str, source: Source, split: Split) -> Outcome {
        let started = Instant::now();
        let mut units = self.lock().await;
        let changes = vec![Change::Deploy {
            unit: unit.to_owned(),
            source,
        }];
        let fail = |msg: String| Outcome::Rejected {
            unit: unit.to_owned(),
            errors: vec![name_diag(unit, msg)],
        };
        match units.get(unit) {
            None => return fail(format!("unit \"{unit}\" is not loaded; load it first")),
            Some(s) if s.current.is_none() => {
                return fail(format!(
                    "unit \"{unit}\" has no running revision to canary against"
                ))
            }
            Some(s) if s.canary.is_some() => {
                return fail(format!(
                    "unit \"{unit}\" runs a canary already; promote or abort it first"
                ))
            }
            _ => {}
        }
        let mut plan = tokio::task::block_in_place(|| {
            let mut plan = self.plan(&units, changes, Mode::Canary, started);
            self.build(&units, &mut plan);
            plan
        });
        self.check(&mut plan).await;
        if !plan.is_ok() {
            return self.reject(&mut units, plan).remove(0);
        }
        let Some(rev) = plan.built.remove(unit) else {
            let revision = units[unit]
                .current
                .as_ref()
                .map(|c| c.info.number)
                .unwrap_or(0);
            return Outcome::Unchanged {
                unit: unit.to_owned(),
                revision,
            };
        };
        let p = plan.units.remove(0);
        let split = Arc::new(split);
        let slot = units.get_mut(unit).expect("checked above");
        let current = slot.current.clone().expect("checked above");
        install(&current, &rev, &split);
        slot.next_revision = slot.next_revision.max(rev.info.number + 1);
        let diff = p.diff.unwrap_or_default();
        let percent = split.percent();
        let header = split
            .header
            .as_ref()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("")));
        slot.canary = Some(Canary {
            revision: rev.clone(),
            split,
            origin: p.origin,
            disk_hash: p.disk_hash,
            started,
        });
        let m = self.manifest_of(&units);
        if let Err(e) = self.store.commit(m) {
            tracing::error!("cannot persist the revision numbering: {e}");
        }
        drop(units);
        self.watch_guard(&rev, true);
        let duration_ms = crate::revision::millis(started.elapsed());
        self.events.emit(EventKind::StateChanged {
            object: format!("esb:type=Unit,name={unit}"),
            state: match &header {
                Some(h) => format!("canary r{} for requests with {h}", rev.info.number),
                None => format!("canary r{} at {percent}%", rev.info.number),
            },
        });
        Outcome::Canary {
            unit: unit.to_owned(),
            revision: rev.info.number,
            stable: current.info.number,
            hash: rev.hash.clone(),
            label: rev.label.clone(),
            percent,
            header,
            duration_ms,
            diff,
        }
    }

    /// Makes the canary the current revision (the old one drains).
    pub async fn promote(&self, unit: &str) -> Outcome {
        let started = Instant::now();
        let mut units = self.lock().await;
        let Some(c) = units.get_mut(unit).and_then(|s| s.canary.take()) else {
            return Outcome::Rejected {
                unit: unit.to_owned(),
                errors: vec![name_diag(unit, no_canary(unit))],
            };
        };
        if let Some(cur) = units[unit].current.clone() {
            uninstall(&cur);
        }
        let changes = vec![Change::Deploy {
            unit: unit.to_owned(),
            source: Source::Revision(Some(c.revision.info.number)),
        }];
        let mut plan = Plan::new(changes, Mode::Normal, started);
        let mut p = UnitPlan::failed(unit.to_owned(), vec![]);
        p.origin = c.origin;
        p.disk_hash = c.disk_hash.clone();
        let running = units[unit].current.as_ref().map(|r| &r.parsed.unit);
        p.diff = Some(diff_from(running, &c.revision.parsed.unit));
        plan.units.push(p);
        plan.built.insert(unit.to_owned(), c.revision.clone());
        tokio::task::block_in_place(|| self.commit(&units, &mut plan));
        if !plan.is_ok() {
            // Nothing changed: the canary goes on.
            if let Some(cur) = units[unit].current.clone() {
                install(&cur, &c.revision, &c.split);
            }
            units.get_mut(unit).expect("slot").canary = Some(c);
            return self.reject(&mut units, plan).remove(0);
        }
        let outcome = self.activate(&mut units, plan).remove(0);
        // The promoted revision is watched as a fresh activation.
        if let Some(rev) = units.get(unit).and_then(|s| s.current.clone()) {
            self.watch_guard(&rev, false);
        }
        outcome
    }

    /// Drops the canary; the current revision serves alone again.
    pub async fn abort_canary(&self, unit: &str, why: &str) -> Result<u64, String> {
        let mut units = self.lock().await;
        let slot = units
            .get_mut(unit)
            .ok_or_else(|| format!("unit \"{unit}\" is not loaded"))?;
        let c = slot.canary.take().ok_or_else(|| no_canary(unit))?;
        if let Some(cur) = &slot.current {
            uninstall(cur);
        }
        let n = c.revision.info.number;
        self.unwatch_guard(unit);
        self.start_drain(c.revision, false);
        drop(units);
        self.events.emit(EventKind::StateChanged {
            object: format!("esb:type=Unit,name={unit}"),
            state: format!("canary r{n} aborted ({why})"),
        });
        Ok(n)
    }

    /// Changes the canary's share of requests.
    pub async fn set_canary_weight(&self, unit: &str, percent: f64) -> Result<(), String> {
        let units = self.lock().await;
        let c = units
            .get(unit)
            .and_then(|s| s.canary.as_ref())
            .ok_or_else(|| no_canary(unit))?;
        if c.split.header.is_some() {
            return Err("this canary is chosen by a header, not by weight".into());
        }
        c.split
            .permille
            .store((percent * 10.0).round().clamp(0.0, 1000.0) as u32, Relaxed);
        Ok(())
    }
}

//! The engine's lifecycle around single deployments: loading every unit at start-up (with
//! last-good fallback), syncing with disk (SIGHUP, hot deployer), and draining replaced
//! revisions.

use super::*;

impl Engine {
    /// Loads every unit on disk at start-up. A unit with invalid files falls back to its
    /// last-good copy (degraded); with none it is Failed while the others serve. With
    /// `strict`, any failure is returned as an error.
    pub async fn start(&self, strict: bool) -> Result<(), Vec<Outcome>> {
        let mut units = self.units.lock().await;
        let mut failures = Vec::new();
        for name in self.units_on_disk() {
            // Revision numbers continue across restarts: the last-good copy knows the last one.
            if let Some((lg, n)) = self.last_good.load(&name) {
                let same = UnitSources::read_dir(&self.unit_dir(&name))
                    .is_ok_and(|s| s.content_hash() == lg.content_hash());
                let slot = units.entry(name.clone()).or_insert_with(UnitSlot::new);
                slot.next_revision = if same { n } else { n + 1 };
            }
            let mut outcomes = self
                .apply_locked(
                    &mut units,
                    vec![Change::Deploy {
                        unit: name.clone(),
                        source: Source::Disk,
                    }],
                    false,
                )
                .await;
            let outcome = outcomes.remove(0);
            let Outcome::Rejected { errors, .. } = &outcome else {
                continue;
            };
            if strict {
                failures.push(outcome);
                continue;
            }
            self.events.emit(EventKind::UnitFailed {
                unit: name.clone(),
                errors: errors.clone(),
            });
            let fallback = self.last_good.load(&name);
            let restored = match fallback {
                Some((sources, number)) => {
                    let slot = units.entry(name.clone()).or_insert_with(UnitSlot::new);
                    slot.next_revision = number;
                    let mut o = self
                        .deploy_sources_locked(&mut units, sources, number)
                        .await;
                    !o.remove(0).is_rejected()
                }
                None => false,
            };
            let slot = units.entry(name.clone()).or_insert_with(UnitSlot::new);
            slot.last_errors = errors.clone();
            if !restored {
                slot.failed = Some(errors.clone());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    async fn deploy_sources_locked(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        sources: UnitSources,
        number: u64,
    ) -> Vec<Outcome> {
        // Last-good sources are deployed through history so the transaction stays the same
        // (the entry is replaced by the activated revision's own).
        let name = sources.name.clone();
        let slot = units.entry(name.clone()).or_insert_with(UnitSlot::new);
        slot.history.push_back(Kept {
            number,
            hash: sources.content_hash(),
            label: None,
            deployed_at: std::time::SystemTime::now(),
            deploy_time: std::time::Duration::ZERO,
            degraded: true,
            sources,
        });
        self.apply_locked(
            units,
            vec![Change::Deploy {
                unit: name,
                source: Source::Revision(Some(number)),
            }],
            true,
        )
        .await
    }

    /// Reload every unit from disk: new directories load, removed ones unload, changed ones
    /// reload.
    pub async fn reload_all(&self) -> Vec<Outcome> {
        self.sync_from_disk(None).await
    }

    /// Brings `only` (or every unit) in line with disk. Each unit stands on its own, so one
    /// invalid unit does not hold back the others — except that unloads and loads seen
    /// together (a renamed directory) are first tried as one batch, so the renamed unit's
    /// paths are released and claimed in the same swap.
    pub async fn sync_from_disk(
        &self,
        only: Option<&std::collections::BTreeSet<String>>,
    ) -> Vec<Outcome> {
        let on_disk = self.units_on_disk();
        let loaded: Vec<String> = self.units.lock().await.keys().cloned().collect();
        let wanted = |n: &String| only.is_none_or(|o| o.contains(n));
        let deploys: Vec<Change> = on_disk
            .iter()
            .filter(|n| wanted(n))
            .map(|n| Change::Deploy {
                unit: n.clone(),
                source: Source::Disk,
            })
            .collect();
        let unloads: Vec<Change> = loaded
            .iter()
            .filter(|n| !on_disk.contains(n) && wanted(n))
            .map(|n| Change::Unload { unit: n.clone() })
            .collect();
        if !deploys.is_empty() && !unloads.is_empty() {
            let together = self
                .apply(unloads.iter().chain(deploys.iter()).cloned().collect())
                .await;
            if !together.iter().any(Outcome::is_rejected) {
                return together;
            }
        }
        let mut outcomes = Vec::new();
        for change in unloads.into_iter().chain(deploys) {
            outcomes.extend(self.apply(vec![change]).await);
        }
        outcomes
    }

    /// Drops drained revisions: those with no request in flight, and those past the drain
    /// timeout, whose leftover requests are ended (answered 503 naming the drain).
    pub async fn reap_drained(&self) {
        let timeout = self.root.server.drain_timeout;
        let mut units = self.units.lock().await;
        let mut lists: Vec<&mut Vec<Draining>> =
            units.values_mut().map(|s| &mut s.draining).collect();
        let mut orphans = self.orphans.lock().expect("orphans");
        lists.push(&mut orphans);
        for list in lists {
            list.retain(|d| {
                let left = d.revision.info.in_flight.load(Relaxed);
                if left == 0 {
                    self.drained(d, 0, None);
                    return false;
                }
                if d.since.elapsed() >= timeout {
                    let ended = d.revision.info.end_requests(DrainEnd::Timeout(timeout));
                    self.drained(d, ended, Some(DrainEnd::Timeout(timeout)));
                    return false;
                }
                true
            });
        }
    }

    /// Ends the drain of `revision` (or of every draining revision) of `unit` now, also of
    /// an unloaded unit; returns each revision ended with the number of requests it ended.
    pub async fn cancel_drain(
        &self,
        unit: &str,
        revision: Option<u64>,
    ) -> Result<Vec<(u64, u64)>, String> {
        let mut units = self.units.lock().await;
        let mut orphans = self.orphans.lock().expect("orphans");
        let mut lists: Vec<&mut Vec<Draining>> = vec![&mut orphans];
        if let Some(slot) = units.get_mut(unit) {
            lists.push(&mut slot.draining);
        }
        let draining: Vec<u64> = lists
            .iter()
            .flat_map(|l| l.iter())
            .filter(|d| d.revision.info.unit == unit)
            .map(|d| d.revision.info.number)
            .collect();
        let chosen = |d: &Draining| {
            d.revision.info.unit == unit && revision.is_none_or(|r| r == d.revision.info.number)
        };
        if !draining.iter().any(|n| revision.is_none_or(|r| r == *n)) {
            return Err(match (revision, draining.is_empty()) {
                (_, true) => format!("unit \"{unit}\" has no revision draining"),
                (Some(r), false) => format!(
                    "revision {r} of unit \"{unit}\" is not draining; draining: {}",
                    draining
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (None, false) => unreachable!("something is draining"),
            });
        }
        let mut ended = Vec::new();
        for list in lists {
            list.retain(|d| {
                if !chosen(d) {
                    return true;
                }
                let n = d.revision.info.end_requests(DrainEnd::Cancelled);
                self.drained(d, n, Some(DrainEnd::Cancelled));
                ended.push((d.revision.info.number, n));
                false
            });
        }
        ended.sort_unstable();
        Ok(ended)
    }

    fn drained(&self, d: &Draining, ended: u64, why: Option<DrainEnd>) {
        self.events.emit(EventKind::RevisionDrained {
            unit: d.revision.info.unit.clone(),
            revision: d.revision.info.number,
            in_flight_left: ended,
            ended,
            reason: why.map_or("finished", DrainEnd::reason).into(),
        });
    }

    /// Revisions of unloaded units still finishing requests.
    pub fn orphans_draining(&self) -> Vec<(String, u64, u64)> {
        self.orphans
            .lock()
            .expect("orphans")
            .iter()
            .map(|d| {
                (
                    d.revision.info.unit.clone(),
                    d.revision.info.number,
                    d.revision.info.in_flight.load(Relaxed),
                )
            })
            .collect()
    }

    /// Stops every task (shutdown).
    pub async fn stop_tasks(&self) {
        let mut units = self.units.lock().await;
        for slot in units.values_mut() {
            for t in slot.tasks.drain(..) {
                t.stop().await;
            }
        }
    }
}

//! The engine's lifecycle around single deployments: loading every unit at start-up (with
//! last-good fallback), syncing with disk (SIGHUP, hot deployer), and draining replaced
//! revisions.

use super::*;

impl Engine {
    /// Loads every unit at start-up: pushed units from the durable state, disk units from
    /// their directories. A disk unit with invalid files falls back to its last good
    /// revision (degraded); with none it is Failed while the others serve. History and
    /// revision numbering continue from the durable state. With `strict`, any failure is
    /// returned as an error.
    pub async fn start(&self, strict: bool) -> Result<(), Vec<Outcome>> {
        let mut units = self.lock().await;
        let manifest = self.store.manifest();
        let on_disk = self.units_on_disk();
        let mut names: Vec<String> = on_disk.clone();
        names.extend(
            manifest
                .units
                .iter()
                .filter(|(n, r)| r.origin.is_stored() && !on_disk.contains(n))
                .map(|(n, _)| n.clone()),
        );
        names.sort();
        let mut failures = Vec::new();
        for name in names {
            let (change, last_good) = self.restore_slot(&mut units, &name, &manifest);
            let outcome = self
                .transact(&mut units, vec![change], Mode::Restore)
                .await
                .remove(0);
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
            let restored = match last_good {
                Some(number) => {
                    tracing::error!(unit = %name, revision = number, "unit files are invalid; serving its last good revision (degraded)");
                    let fallback = Change::Deploy {
                        unit: name.clone(),
                        source: Source::Revision(Some(number)),
                    };
                    !self
                        .transact(&mut units, vec![fallback], Mode::Degraded)
                        .await
                        .remove(0)
                        .is_rejected()
                }
                None => false,
            };
            let slot = units.entry(name.clone()).or_insert_with(UnitSlot::new);
            slot.last_errors = errors.clone();
            if !restored {
                slot.failed = Some(errors.clone());
            }
        }
        self.commit_running(&units);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// Fills `name`'s slot from the durable state (origin, numbering, kept revisions) and
    /// says what start-up deploys for it: its kept current revision for a pushed unit or
    /// a disk unit whose files did not change since they were last read (a rollback
    /// survives a restart), its directory otherwise. Also the last good revision a disk
    /// unit falls back to if its files are invalid.
    fn restore_slot(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        name: &str,
        manifest: &crate::state::Manifest,
    ) -> (Change, Option<u64>) {
        let record = manifest.units.get(name);
        if let Some(r) = record {
            let slot = units.entry(name.to_owned()).or_insert_with(UnitSlot::new);
            slot.origin = r.origin;
            slot.next_revision = r.next_revision;
            for h in &r.history {
                match self.store.read_revision(name, h.number, &h.hash) {
                    Some(sources) => slot.history.push_back(durable::kept_of(h, sources)),
                    None => {
                        tracing::error!(unit = %name, revision = h.number, "kept revision is missing or damaged in the state directory; it is left out of history")
                    }
                }
            }
        } else if let Some(n) = manifest.retired.get(name) {
            units
                .entry(name.to_owned())
                .or_insert_with(UnitSlot::new)
                .next_revision = *n;
        }
        let kept_current = record.map(|r| r.current).filter(|n| {
            units
                .get(name)
                .is_some_and(|s| s.history.iter().any(|k| k.number == *n))
        });
        let pushed = record.is_some_and(|r| r.origin.is_stored());
        let disk_unchanged = !pushed
            && kept_current.is_some()
            && record
                .and_then(|r| r.disk_hash.clone())
                .is_some_and(|h| self.disk_hash(name).as_ref() == Some(&h));
        let source = if pushed || disk_unchanged {
            Source::Revision(kept_current)
        } else {
            Source::Disk
        };
        if disk_unchanged {
            let slot = units.get_mut(name).expect("slot made above");
            slot.disk_hash = record.and_then(|r| r.disk_hash.clone());
        }
        let change = Change::Deploy {
            unit: name.to_owned(),
            source,
        };
        (change, kept_current.filter(|_| !pushed))
    }

    /// Every running revision checked against a new root config (a warm restart's
    /// pre-check): transports they name must exist, paths must not collide under the new
    /// transports. Errors name the unit, file:line:col and the element.
    pub async fn check_root(&self, root: &RootConfig) -> Vec<Diagnostic> {
        let units = self.lock().await;
        let running: Vec<&ParsedUnit> = units
            .values()
            .filter_map(|s| s.current.as_ref().map(|c| &c.parsed))
            .collect();
        deployments::validate::validate_set(root, &running)
            .into_values()
            .flatten()
            .collect()
    }

    /// Reload every disk unit from disk: new directories load, removed ones unload, changed
    /// ones reload. Pushed units are left alone.
    pub async fn reload_all(&self) -> Vec<Outcome> {
        self.sync_from_disk(None, false).await
    }

    /// Brings `only` (or every disk unit) in line with disk. Pushed units are left alone.
    /// With `settled_changes_only` (the hot deployer), a unit is touched only when its
    /// files differ from what was last read of them — a touch, or a rollback followed by a
    /// touch, changes nothing. Each unit stands on its own, so one invalid unit does not
    /// hold back the others — except that unloads and loads seen together (a renamed
    /// directory) are first tried as one batch, so the renamed unit's paths are released and
    /// claimed in the same swap.
    pub async fn sync_from_disk(
        &self,
        only: Option<&std::collections::BTreeSet<String>>,
        settled_changes_only: bool,
    ) -> Vec<Outcome> {
        let on_disk = self.units_on_disk();
        let (pushed, disk_loaded, seen): (
            Vec<String>,
            Vec<String>,
            BTreeMap<String, Option<String>>,
        ) = {
            let units = self.lock().await;
            (
                units
                    .iter()
                    .filter(|(_, s)| s.origin.is_stored())
                    .map(|(n, _)| n.clone())
                    .collect(),
                units
                    .iter()
                    .filter(|(_, s)| s.origin == Origin::Disk)
                    .map(|(n, _)| n.clone())
                    .collect(),
                units
                    .iter()
                    .map(|(n, s)| (n.clone(), s.disk_hash.clone()))
                    .collect(),
            )
        };
        let wanted = |n: &String| only.is_none_or(|o| o.contains(n));
        let deploys: Vec<Change> = on_disk
            .iter()
            .filter(|n| wanted(n) && !pushed.contains(n))
            .filter(|n| {
                !settled_changes_only
                    || seen
                        .get(*n)
                        .is_none_or(|h| h.is_none() || *h != self.disk_hash(n))
            })
            .map(|n| Change::Deploy {
                unit: n.clone(),
                source: Source::Disk,
            })
            .collect();
        let unloads: Vec<Change> = disk_loaded
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

    /// `revision` was replaced (or its unit unloaded: `orphan`): it finishes its requests.
    pub(super) fn start_drain(&self, revision: Arc<Revision>, orphan: bool) {
        self.draining.lock().expect("drain list").push(Draining {
            revision,
            since: Instant::now(),
            orphan,
        });
    }

    /// `unit` is unloaded: its revisions still draining go on as those of an unloaded unit.
    pub(super) fn orphan_drains(&self, unit: &str) {
        for d in self.draining.lock().expect("drain list").iter_mut() {
            if d.revision.info.unit == unit {
                d.orphan = true;
            }
        }
    }

    /// Drops drained revisions: those with no request in flight, and those past the drain
    /// timeout, whose leftover requests are ended (answered 503 naming the drain). Never
    /// waits for a deploy.
    pub async fn reap_drained(&self) {
        let timeout = self.root.server.drain_timeout;
        self.draining.lock().expect("drain list").retain(|d| {
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

    /// Ends the drain of `revision` (or of every draining revision) of `unit` now, also of
    /// an unloaded unit; returns each revision ended with the number of requests it ended.
    pub async fn cancel_drain(
        &self,
        unit: &str,
        revision: Option<u64>,
    ) -> Result<Vec<(u64, u64)>, String> {
        let mut list = self.draining.lock().expect("drain list");
        let draining: Vec<u64> = list
            .iter()
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
        list.retain(|d| {
            if !chosen(d) {
                return true;
            }
            let n = d.revision.info.end_requests(DrainEnd::Cancelled);
            self.drained(d, n, Some(DrainEnd::Cancelled));
            ended.push((d.revision.info.number, n));
            false
        });
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
    pub fn orphans_draining(&self) -> Vec<DrainingView> {
        self.draining
            .lock()
            .expect("drain list")
            .iter()
            .filter(|d| d.orphan)
            .map(|d| DrainingView {
                unit: d.revision.info.unit.clone(),
                revision: d.revision.info.number,
                in_flight: d.revision.info.in_flight.load(Relaxed),
            })
            .collect()
    }

    /// Stops every task and consumer (shutdown): consumers finish their in-flight
    /// messages (within the drain timeout) and leave the rest in the queue or inbox.
    pub async fn stop_tasks(&self) {
        let mut units = self.lock().await;
        let mut consumers = Vec::new();
        for slot in units.values_mut() {
            for t in slot.tasks.drain(..) {
                t.stop().await;
            }
            for (_, c) in std::mem::take(&mut slot.consumers) {
                c.retire();
                consumers.push(c);
            }
        }
        drop(units);
        let drain = self.root.server.drain_timeout + std::time::Duration::from_secs(1);
        for c in consumers {
            let _ = tokio::time::timeout(drain, c.ended()).await;
        }
    }
}

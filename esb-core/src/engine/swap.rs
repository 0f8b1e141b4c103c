//! The end of a transaction: `activate` retires the tasks of replaced and unloaded units,
//! installs the new revisions in their slots (the old ones start draining), unloads,
//! swaps the routing table once, starts the new tasks and consumers, publishes the view
//! and reports one outcome and one event per unit; `reject` records why nothing changed.

use super::plan::{Plan, UnitPlan};
use super::*;

impl Engine {
    /// Phase 5 of a plan that passed every check and was committed.
    pub(super) fn activate(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        mut plan: Plan,
    ) -> Vec<Outcome> {
        self.retire_tasks(units, &plan);
        self.install(units, &mut plan);
        let unloaded = self.unload(units, &plan);
        self.swap_table(units);
        self.spawn(units, &plan);
        self.publish(units);
        self.report(units, plan, unloaded)
    }

    /// The tasks of replaced and unloaded units stop before any new task starts (never
    /// two copies of a task).
    fn retire_tasks(&self, units: &mut BTreeMap<String, UnitSlot>, plan: &Plan) {
        for p in &plan.units {
            if plan.built.contains_key(&p.unit) || plan.is_unload(&p.unit) {
                if let Some(slot) = units.get_mut(&p.unit) {
                    for t in slot.tasks.drain(..) {
                        t.retire(self.root.server.drain_timeout);
                    }
                }
            }
        }
    }

    /// Each built revision becomes its unit's current one; the replaced one drains.
    fn install(&self, units: &mut BTreeMap<String, UnitSlot>, plan: &mut Plan) {
        for p in &plan.units {
            let Some(rev) = plan.built.get(&p.unit) else {
                continue;
            };
            let slot = units
                .entry(p.unit.clone())
                .or_insert_with(|| UnitSlot::with_control(rev.info.control.clone()));
            rev.deploy_time.get_or_init(|| plan.duration);
            if let Some(old) = slot.current.replace(rev.clone()) {
                self.start_drain(old, false);
            }
            slot.history = plan.histories.remove(&p.unit).unwrap_or_default();
            slot.next_revision = slot.next_revision.max(rev.info.number + 1);
            slot.origin = p.origin;
            slot.failed = None;
            slot.last_errors.clear();
        }
        for p in &plan.units {
            if let Some(slot) = units.get_mut(&p.unit) {
                if p.disk_hash.is_some() {
                    slot.disk_hash = p.disk_hash.clone();
                }
                // A fixed or restored file clears the note of the edit that was rejected.
                if p.unchanged {
                    slot.last_errors.clear();
                    slot.origin = p.origin;
                }
            }
        }
    }

    /// Unloads: the slot goes, its revisions drain as those of an unloaded unit, its
    /// operator state is cleared. Returns each unit unloaded with its last revision.
    fn unload(&self, units: &mut BTreeMap<String, UnitSlot>, plan: &Plan) -> Vec<(String, u64)> {
        let mut unloaded = Vec::new();
        for change in &plan.changes {
            let Change::Unload { unit } = change else {
                continue;
            };
            let Some(mut slot) = units.remove(unit) else {
                continue;
            };
            self.orphan_drains(unit);
            if let Some(c) = slot.canary.take() {
                self.start_drain(c.revision, true);
            }
            // Messages waiting in the queue or the inbox stay there.
            for c in slot.consumers.values() {
                c.retire();
            }
            slot.control.paused.store(false, Relaxed);
            slot.control.resumed.notify_waiters();
            let number = slot.current.as_ref().map(|c| c.info.number).unwrap_or(0);
            if let Some(old) = slot.current {
                self.start_drain(old, true);
            }
            unloaded.push((unit.clone(), number));
        }
        unloaded
    }

    /// After the swap: the new revisions' tasks and consumers start, and new content is
    /// watched by its unit's guard (not rollbacks, not start-up).
    fn spawn(&self, units: &mut BTreeMap<String, UnitSlot>, plan: &Plan) {
        for name in plan.built.keys() {
            let slot = units.get_mut(name).expect("slot exists");
            let rev = slot.current.clone().expect("just activated");
            slot.tasks = start_tasks(&rev, &slot.control, &self.hold_tasks);
            self.sync_consumers(slot, &rev);
            if plan.mode == Mode::Normal && plan.new_content(name) {
                slot.guard_trip = None;
                self.watch_guard(&rev, false);
            }
        }
    }

    /// One outcome and one event per unit of the plan.
    fn report(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        plan: Plan,
        unloaded: Vec<(String, u64)>,
    ) -> Vec<Outcome> {
        // Tenths of a millisecond: what an operator reads, without float noise in the logs.
        let duration_ms = crate::revision::millis(plan.duration);
        let mut outcomes = Vec::new();
        for p in plan.units {
            let (event, outcome) = if let Some(rev) = plan.built.get(&p.unit) {
                let diff = p.diff.unwrap_or_default();
                let event = EventKind::UnitActivated {
                    unit: p.unit.clone(),
                    revision: rev.info.number,
                    hash: rev.hash.clone(),
                    label: rev.label.clone(),
                    duration_ms,
                    changes: diff.summary(),
                    degraded: rev.degraded,
                };
                let outcome = Outcome::Activated {
                    unit: p.unit,
                    revision: rev.info.number,
                    hash: rev.hash.clone(),
                    label: rev.label.clone(),
                    duration_ms,
                    diff,
                };
                (event, outcome)
            } else if let Some((u, n)) = unloaded.iter().find(|(u, _)| *u == p.unit) {
                let (unit, revision) = (u.clone(), *n);
                (
                    EventKind::UnitUnloaded {
                        unit: unit.clone(),
                        revision,
                    },
                    Outcome::Unloaded { unit, revision },
                )
            } else {
                let revision = units
                    .get(&p.unit)
                    .and_then(|s| s.current.as_ref())
                    .map(|c| c.info.number)
                    .unwrap_or(0);
                (
                    EventKind::UnitUnchanged {
                        unit: p.unit.clone(),
                        revision,
                    },
                    Outcome::Unchanged {
                        unit: p.unit,
                        revision,
                    },
                )
            };
            self.events.emit(event);
            outcomes.push(outcome);
        }
        outcomes
    }

    /// A plan that failed: nothing changed; each unit's errors are kept for operators (a
    /// unit directory that never deployed is shown as Failed) and reported.
    pub(super) fn reject(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        plan: Plan,
    ) -> Vec<Outcome> {
        let failed = plan.failed();
        let outcomes: Vec<Outcome> = plan
            .units
            .iter()
            .map(|p| {
                let errors = if p.errors.is_empty() {
                    vec![name_diag(
                        &p.unit,
                        format!(
                            "not applied: the batch was rejected because of errors in {}",
                            failed.join(", ")
                        ),
                    )]
                } else {
                    p.errors.clone()
                };
                self.note_rejected(units, &plan, p, &errors);
                Outcome::Rejected {
                    unit: p.unit.clone(),
                    errors,
                }
            })
            .collect();
        self.publish(units);
        for o in &outcomes {
            if let Outcome::Rejected { unit, errors } = o {
                self.events.emit(EventKind::UnitRejected {
                    unit: unit.clone(),
                    errors: errors.clone(),
                });
            }
        }
        outcomes
    }

    fn note_rejected(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        plan: &Plan,
        p: &UnitPlan,
        errors: &[Diagnostic],
    ) {
        match units.get_mut(&p.unit) {
            Some(slot) => {
                slot.last_errors = errors.to_vec();
                if p.disk_hash.is_some() {
                    slot.disk_hash = p.disk_hash.clone();
                }
            }
            None if !p.errors.is_empty()
                && plan.on_disk_deploy(&p.unit)
                && self.unit_dir(&p.unit).is_ok_and(|d| d.is_dir()) =>
            {
                let mut slot = UnitSlot::new();
                slot.failed = Some(errors.to_vec());
                slot.last_errors = errors.to_vec();
                slot.disk_hash = p.disk_hash.clone();
                slot.next_revision = self.store.manifest().next_revision(&p.unit);
                units.insert(p.unit.clone(), slot);
            }
            None => {}
        }
    }

    /// The unit's consumers after a swap: one per consumer element, kept across revisions
    /// (the new revision's pipeline is swapped in), started for new elements, retired for
    /// removed ones.
    fn sync_consumers(&self, slot: &mut UnitSlot, rev: &Arc<Revision>) {
        let defs = &rev.parsed.unit.consumers;
        slot.consumers.retain(|name, c| {
            let keep = defs.iter().any(|d| d.name.get_ref() == name);
            if !keep {
                c.retire();
            }
            keep
        });
        for def in defs {
            let name = def.name.get_ref();
            let binding = match Binding::of(def, &self.amqp, &self.root.base_dir) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(unit = %rev.info.unit, consumer = %name, "consumer not started: {e}");
                    continue;
                }
            };
            let pipeline = Pipeline::of(rev, def);
            match slot.consumers.get(name) {
                Some(c) => c.update(binding, pipeline),
                None => {
                    let c = ConsumerRuntime::start(
                        &rev.info.unit,
                        name,
                        slot.control.clone(),
                        binding,
                        pipeline,
                        self.root.server.drain_timeout,
                        self.events.clone(),
                    );
                    slot.consumers.insert(name.clone(), c);
                }
            }
        }
    }

    pub(super) fn swap_table(&self, units: &BTreeMap<String, UnitSlot>) {
        let proxies = units
            .values()
            .filter_map(|s| s.current.as_ref())
            .flat_map(|r| r.proxies.iter());
        self.table
            .store(Arc::new(RoutingTable::build(proxies, &self.all_transports)));
    }
}

fn start_tasks(
    rev: &Arc<Revision>,
    control: &UnitControl,
    hold: &Arc<AtomicBool>,
) -> Vec<Arc<TaskRuntime>> {
    rev.parsed
        .unit
        .tasks
        .iter()
        .filter_map(|def| {
            let seq = rev.sequences.get(def.sequence.get_ref())?.clone();
            let name = def.name.get_ref();
            let t = TaskRuntime::new(
                name,
                def.every,
                def.sequence.get_ref(),
                control,
                hold.clone(),
            );
            t.start(seq, rev.info.clone());
            Some(t)
        })
        .collect()
}

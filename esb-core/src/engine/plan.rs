//! The phases of a transaction before the swap, over one [`Plan`]: `plan` reads, parses and
//! validates each unit, checks it against what will run beside it and diffs it against
//! its running revision; `build` makes runtime objects for what that diff says changed
//! (elements it leaves alone are carried over with their state); `check` runs the unit's
//! checks against the new build; `commit` records history and persists the durable state.
//! A phase only adds errors to the plan: nothing that serves requests changes before the
//! swap (see `swap`).

use super::*;
use std::time::Duration;

/// One unit's part in a transaction.
pub(super) struct UnitPlan {
    pub(super) unit: String,
    pub(super) parsed: Option<(ParsedUnit, UnitSources, Option<u64>)>,
    pub(super) errors: Vec<Diagnostic>,
    /// The same content as the running revision: nothing is built.
    pub(super) unchanged: bool,
    pub(super) origin: Origin,
    /// The hash of the disk files this change read, if it read the unit's directory.
    pub(super) disk_hash: Option<String>,
    /// What the change does to the running revision (every element added when none runs):
    /// the one diff that decides what is rebuilt and what is reported.
    pub(super) diff: Option<UnitDiff>,
}

impl UnitPlan {
    pub(super) fn failed(unit: String, errors: Vec<Diagnostic>) -> UnitPlan {
        UnitPlan {
            unit,
            parsed: None,
            errors,
            unchanged: false,
            origin: Origin::Disk,
            disk_hash: None,
            diff: None,
        }
    }
}

/// One transaction, filled in phase by phase.
pub(super) struct Plan {
    pub(super) changes: Vec<Change>,
    pub(super) mode: Mode,
    pub(super) started: Instant,
    pub(super) units: Vec<UnitPlan>,
    /// The revisions built for changed units.
    pub(super) built: BTreeMap<String, Arc<Revision>>,
    /// The history each activated unit will have.
    pub(super) histories: BTreeMap<String, VecDeque<Kept>>,
    /// From the start of the transaction until its commit begins (the commit records it):
    /// the one duration reported.
    pub(super) duration: Duration,
}

impl Plan {
    pub(super) fn new(changes: Vec<Change>, mode: Mode, started: Instant) -> Plan {
        Plan {
            changes,
            mode,
            started,
            units: Vec::new(),
            built: BTreeMap::new(),
            histories: BTreeMap::new(),
            duration: started.elapsed(),
        }
    }

    pub(super) fn is_ok(&self) -> bool {
        self.units.iter().all(|u| u.errors.is_empty())
    }

    /// Bytes of sources parsed for this transaction.
    pub(super) fn parsed_bytes(&self) -> usize {
        self.units
            .iter()
            .filter_map(|u| u.parsed.as_ref())
            .flat_map(|(_, sources, _)| sources.files.values())
            .map(String::len)
            .sum()
    }

    /// The units with errors of their own.
    pub(super) fn failed(&self) -> Vec<String> {
        self.units
            .iter()
            .filter(|u| !u.errors.is_empty())
            .map(|u| u.unit.clone())
            .collect()
    }

    /// True when `unit` is deployed from new content (files or pushed), not re-activated.
    pub(super) fn new_content(&self, unit: &str) -> bool {
        self.changes.iter().any(|c| match c {
            Change::Deploy { unit: u, source } => {
                u == unit && !matches!(source, Source::Revision(_))
            }
            Change::Unload { .. } => false,
        })
    }

    pub(super) fn on_disk_deploy(&self, unit: &str) -> bool {
        self.changes.iter().any(|c| {
            matches!(c, Change::Deploy { unit: u, source: Source::Disk | Source::FromDisk } if u == unit)
        })
    }

    pub(super) fn is_unload(&self, unit: &str) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::Unload { unit: u } if u == unit))
    }
}

impl Engine {
    /// Phase 1: each unit read, parsed and validated on its own, then against what will
    /// run beside it, then diffed against its running revision.
    pub(super) fn plan(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        changes: Vec<Change>,
        mode: Mode,
        started: Instant,
    ) -> Plan {
        let mut plan = Plan::new(changes, mode, started);
        let mut seen: Vec<&str> = Vec::new();
        for change in &plan.changes {
            let unit = change.unit();
            let twice = seen.contains(&unit);
            seen.push(unit);
            plan.units.push(match self.unit_dir(unit) {
                Err(d) => UnitPlan::failed(unit.to_owned(), vec![d]),
                Ok(_) if twice => {
                    let d = name_diag(unit, format!("unit \"{unit}\" named twice in one batch"));
                    UnitPlan::failed(unit.to_owned(), vec![d])
                }
                Ok(_) => self.plan_unit(units.get(unit), change, mode),
            });
        }
        self.check_conflicts(units, &mut plan.units);
        for p in plan.units.iter_mut().filter(|p| p.errors.is_empty()) {
            if let (Some((parsed, _, _)), false) = (&p.parsed, p.unchanged) {
                let running = units.get(&p.unit).and_then(|s| s.current.as_ref());
                p.diff = Some(diff_from(running.map(|c| &c.parsed.unit), &parsed.unit));
            }
        }
        plan
    }

    /// One unit's change, read, parsed and validated on its own.
    fn plan_unit(&self, slot: Option<&UnitSlot>, change: &Change, mode: Mode) -> UnitPlan {
        let unit = change.unit();
        let source = match change {
            Change::Unload { .. } => {
                let errors = match slot {
                    Some(_) => vec![],
                    None => vec![name_diag(unit, format!("unit \"{unit}\" is not loaded"))],
                };
                return UnitPlan::failed(unit.to_owned(), errors);
            }
            Change::Deploy { source, .. } => source,
        };
        if let Some(c) = slot
            .and_then(|s| s.canary.as_ref())
            .filter(|_| mode != Mode::Canary)
        {
            let n = c.revision.info.number;
            let d = name_diag(
                unit,
                format!("unit \"{unit}\" runs a canary (revision {n}); promote or abort it first"),
            );
            return UnitPlan::failed(unit.to_owned(), vec![d]);
        }
        let origin = match source {
            Source::Content(_) => Origin::Pushed,
            Source::Cluster { .. } => Origin::Cluster,
            Source::FromDisk => Origin::Disk,
            Source::Disk | Source::Revision(_) => slot.map(|s| s.origin).unwrap_or(Origin::Disk),
        };
        let reads_disk = matches!(source, Source::FromDisk)
            || (matches!(source, Source::Disk) && origin == Origin::Disk);
        let mut p = UnitPlan::failed(unit.to_owned(), vec![]);
        p.origin = origin;
        let result = self.read_sources(unit, source, slot).and_then(|(s, n)| {
            check_unit(&self.root, &s).map(|parsed| {
                let s = keep_used(s, &parsed);
                (parsed, s, n)
            })
        });
        match result {
            Ok((parsed, sources, number)) => {
                let hash = sources.content_hash();
                p.disk_hash = reads_disk.then(|| hash.clone());
                // At start-up, content the durable state already holds keeps its revision
                // number.
                let number = number.or_else(|| {
                    (mode != Mode::Normal)
                        .then(|| slot?.history.iter().find(|k| k.hash == hash))
                        .flatten()
                        .map(|k| k.number)
                });
                p.unchanged = slot
                    .and_then(|sl| sl.current.as_ref())
                    .is_some_and(|c| c.hash == hash && !c.degraded);
                p.parsed = Some((parsed, sources, number));
            }
            Err(errors) => {
                if reads_disk {
                    p.disk_hash = self.disk_hash(unit);
                }
                p.errors = errors;
            }
        }
        p
    }

    /// Cross-unit rules: each unit against the units staying as they are and the units
    /// before it in the batch.
    fn check_conflicts(&self, units: &BTreeMap<String, UnitSlot>, plans: &mut [UnitPlan]) {
        let changing: Vec<&str> = plans.iter().map(|p| p.unit.as_str()).collect();
        let staying: Vec<&ParsedUnit> = units
            .iter()
            .filter(|(n, _)| !changing.contains(&n.as_str()))
            .filter_map(|(_, s)| s.current.as_ref().map(|c| &c.parsed))
            .collect();
        let mut conflict_errors = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            if let Some((parsed, _, _)) = &p.parsed {
                let mut others = staying.clone();
                others.extend(
                    plans[..i]
                        .iter()
                        .filter_map(|q| q.parsed.as_ref().map(|x| &x.0)),
                );
                conflict_errors.push((i, check_conflicts(&self.root, parsed, &others)));
            }
        }
        for (i, errs) in conflict_errors {
            plans[i].errors.extend(errs);
        }
    }

    /// Phase 2: runtime objects for every changed unit. Elements the plan's diff leaves
    /// alone are carried over from the running revision (not for a canary, which has its
    /// own counters and pools).
    pub(super) fn build(&self, units: &BTreeMap<String, UnitSlot>, plan: &mut Plan) {
        if !plan.is_ok() {
            return;
        }
        let manifest = self.store.manifest();
        let mode = plan.mode;
        for p in plan.units.iter_mut().filter(|p| !p.unchanged) {
            let Some((parsed, sources, number)) = p.parsed.take() else {
                continue;
            };
            let slot = units.get(&p.unit);
            let number = number.unwrap_or_else(|| {
                slot.map(|s| s.next_revision)
                    .unwrap_or_else(|| manifest.next_revision(&p.unit))
            });
            let previous = slot
                .filter(|_| mode != Mode::Canary)
                .and_then(|s| s.current.as_deref())
                .zip(p.diff.as_ref());
            let input = BuildInput {
                parsed,
                sources,
                number,
                control: slot.map(|s| s.control.clone()).unwrap_or_default(),
                previous,
                clients: &self.clients,
                links: &self.amqp,
                max_body: self.root.server.max_body,
                degraded: mode == Mode::Degraded,
            };
            match build(input) {
                Ok(rev) => {
                    plan.built.insert(p.unit.clone(), Arc::new(rev));
                }
                Err(e) => p.errors.push(diag(&p.unit, e)),
            }
        }
    }

    /// Phase 3: the checks of every unit built from new content run against its new
    /// revision (not for rollbacks and start-up restores, which re-activate what ran
    /// before).
    pub(super) async fn check(&self, plan: &mut Plan) {
        if !plan.is_ok() || !matches!(plan.mode, Mode::Normal | Mode::Canary) {
            return;
        }
        let due: Vec<(String, Arc<Revision>)> = plan
            .built
            .iter()
            .filter(|(name, rev)| !rev.parsed.unit.checks.is_empty() && plan.new_content(name))
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        for (name, rev) in due {
            let errors = crate::checks::run(&rev, &self.all_transports).await;
            if let Some(q) = plan.units.iter_mut().find(|q| q.unit == name) {
                q.errors.extend(errors);
            }
        }
    }

    /// Phase 4: the history each activated unit will have, then the durable commit:
    /// revision copies first, then the manifest in one rename — only once nothing else can
    /// reject the change (a degraded start commits nothing: what it runs is stored).
    pub(super) fn commit(&self, units: &BTreeMap<String, UnitSlot>, plan: &mut Plan) {
        if !plan.is_ok() {
            return;
        }
        plan.duration = plan.started.elapsed();
        let keep = self.root.server.history.max(1);
        let restore = plan.mode != Mode::Normal;
        plan.histories = plan
            .built
            .iter()
            .map(|(name, rev)| {
                let old = units.get(name).map(|s| &s.history);
                let h = durable::next_history(old, rev, plan.duration, restore, keep);
                (name.clone(), h)
            })
            .collect();
        if plan.mode == Mode::Degraded {
            return;
        }
        if let Err(e) = self.persist(units, plan) {
            let dir = self.root.state_dir();
            let msg = format!(
                "cannot persist the deployment state in {}: {e}; nothing was changed",
                dir.display()
            );
            for q in plan.units.iter_mut() {
                q.errors.push(name_diag(&q.unit, msg.clone()));
            }
        }
    }
}

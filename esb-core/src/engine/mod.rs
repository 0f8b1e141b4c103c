//! The deployment engine. Every change is a transaction: read → parse → validate (also
//! against every other running unit) → build runtime objects → persist last-good → stop the
//! old tasks → one atomic swap of the routing table → start the new tasks → drain the old
//! revision. Any failure before the swap changes nothing and yields `Rejected`. Deploys
//! are serialized by one lock; requests never take it. Start-up, syncing with disk and
//! draining live in `lifecycle`.

mod lifecycle;

use crate::client::Clients;
use crate::events::{EventBus, EventKind};
use crate::lastgood::LastGood;
use crate::revision::{build, BuildInput, DrainEnd, Kept, Revision, UnitControl};
use crate::router::RoutingTable;
use crate::task::TaskRuntime;
use arc_swap::ArcSwap;
use deployments::diff::{diff_from, diff_units, UnitDiff};
use deployments::validate::{check_conflicts, check_unit};
use deployments::{Diagnostic, ParsedUnit, RootConfig, UnitSources};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The closed outcome of one unit's part in a deployment.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Activated {
        unit: String,
        revision: u64,
        hash: String,
        label: Option<String>,
        duration_ms: f64,
        diff: UnitDiff,
    },
    Unchanged {
        unit: String,
        revision: u64,
    },
    Rejected {
        unit: String,
        errors: Vec<Diagnostic>,
    },
    Unloaded {
        unit: String,
        revision: u64,
    },
}

impl Outcome {
    pub fn is_rejected(&self) -> bool {
        matches!(self, Outcome::Rejected { .. })
    }
    pub fn unit(&self) -> &str {
        match self {
            Outcome::Activated { unit, .. }
            | Outcome::Unchanged { unit, .. }
            | Outcome::Rejected { unit, .. }
            | Outcome::Unloaded { unit, .. } => unit,
        }
    }
}

/// Where a unit's new revision comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `conf/deployments/<unit>`.
    Disk,
    /// TOML content of `unit.toml`, sent over the management endpoint.
    Content(String),
    /// A revision kept in history (rollback); `None` = the previous one.
    Revision(Option<u64>),
}

#[derive(Debug, Clone)]
pub enum Change {
    Deploy { unit: String, source: Source },
    Unload { unit: String },
}

impl Change {
    fn unit(&self) -> &str {
        match self {
            Change::Deploy { unit, .. } | Change::Unload { unit } => unit,
        }
    }
}

/// One unit's part of a transaction while it is prepared.
struct Pending {
    unit: String,
    parsed: Option<(ParsedUnit, UnitSources, Option<u64>)>,
    errors: Vec<Diagnostic>,
    unchanged: bool,
}

pub struct Draining {
    pub revision: Arc<Revision>,
    pub since: Instant,
}

pub struct UnitSlot {
    pub current: Option<Arc<Revision>>,
    /// Recent revisions, newest last, the current one included.
    pub history: VecDeque<Kept>,
    pub control: Arc<UnitControl>,
    pub next_revision: u64,
    /// Set when the unit could not start at all (no valid files, no last-good).
    pub failed: Option<Vec<Diagnostic>>,
    /// Errors of the last rejected deploy, kept for operators until the next success.
    pub last_errors: Vec<Diagnostic>,
    pub tasks: Vec<Arc<TaskRuntime>>,
    pub draining: Vec<Draining>,
}

impl UnitSlot {
    fn new() -> Self {
        Self::with_control(Arc::new(UnitControl::default()))
    }

    fn with_control(control: Arc<UnitControl>) -> Self {
        UnitSlot {
            current: None,
            history: VecDeque::new(),
            control,
            next_revision: 1,
            failed: None,
            last_errors: Vec::new(),
            tasks: Vec::new(),
            draining: Vec::new(),
        }
    }
}

pub struct Engine {
    pub root: Arc<RootConfig>,
    pub table: ArcSwap<RoutingTable>,
    pub units: tokio::sync::Mutex<BTreeMap<String, UnitSlot>>,
    pub events: Arc<EventBus>,
    pub hot_deploy: AtomicBool,
    clients: Clients,
    last_good: LastGood,
    all_transports: Vec<String>,
    /// Revisions of unloaded units still finishing requests.
    orphans: std::sync::Mutex<Vec<Draining>>,
    /// Next revision number of units that were unloaded, so a later load continues the
    /// numbering instead of reusing numbers.
    retired: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

fn diag(unit: &str, msg: String) -> Diagnostic {
    Diagnostic::new(format!("{unit}/unit.toml"), 1, 1, msg)
}

impl Engine {
    pub fn new(root: Arc<RootConfig>, events: Arc<EventBus>) -> Self {
        let all_transports = root.transport_names().map(str::to_owned).collect();
        Engine {
            last_good: LastGood::new(&root.state_dir()),
            hot_deploy: AtomicBool::new(root.hot_deploy.watch),
            root,
            table: ArcSwap::from_pointee(RoutingTable::default()),
            units: tokio::sync::Mutex::new(BTreeMap::new()),
            events,
            clients: Clients::default(),
            all_transports,
            orphans: Default::default(),
            retired: Default::default(),
        }
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.root.deployments_dir().join(unit)
    }

    /// Unit directories present on disk.
    pub fn units_on_disk(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.deployments_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !deployments::source::is_ignored_file(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn read_sources(
        &self,
        unit: &str,
        source: &Source,
        slot: Option<&UnitSlot>,
    ) -> Result<(UnitSources, Option<u64>), Vec<Diagnostic>> {
        match source {
            Source::Disk => {
                let dir = self.unit_dir(unit);
                if !dir.is_dir() {
                    return Err(vec![diag(
                        unit,
                        format!("unit directory {} does not exist", dir.display()),
                    )]);
                }
                UnitSources::read_dir(&dir)
                    .map(|s| (s, None))
                    .map_err(|e| vec![diag(unit, e.to_string())])
            }
            Source::Content(text) => Ok((UnitSources::from_content(unit, text), None)),
            Source::Revision(which) => {
                let slot =
                    slot.ok_or_else(|| vec![diag(unit, format!("unit \"{unit}\" is not loaded"))])?;
                let current = slot.current.as_ref().map(|c| c.info.number);
                let found = match which {
                    Some(n) => slot.history.iter().find(|r| r.number == *n),
                    None => slot
                        .history
                        .iter()
                        .rev()
                        .find(|r| Some(r.number) != current),
                };
                let kept: Vec<String> = slot.history.iter().map(|r| r.number.to_string()).collect();
                let rev = found.ok_or_else(|| {
                    vec![diag(
                        unit,
                        match which {
                            Some(n) => format!(
                                "revision {n} of unit \"{unit}\" is not in history (kept: {})",
                                kept.join(", ")
                            ),
                            None => {
                                format!("unit \"{unit}\" has no previous revision to roll back to")
                            }
                        },
                    )]
                })?;
                Ok((rev.sources.clone(), Some(rev.number)))
            }
        }
    }

    /// Parses, validates and diffs without applying anything.
    pub async fn preview(
        &self,
        unit: &str,
        source: Source,
    ) -> Result<(ParsedUnit, Option<UnitDiff>), Vec<Diagnostic>> {
        let units = self.units.lock().await;
        // CPU work, off the async worker like a deploy's.
        tokio::task::block_in_place(|| {
            let (sources, _) = self.read_sources(unit, &source, units.get(unit))?;
            let parsed = check_unit(&self.root, &sources)?;
            let others: Vec<&ParsedUnit> = units
                .iter()
                .filter(|(n, _)| *n != unit)
                .filter_map(|(_, s)| s.current.as_ref().map(|c| &c.parsed))
                .collect();
            let conflicts = check_conflicts(&self.root, &parsed, &others);
            if !conflicts.is_empty() {
                return Err(conflicts);
            }
            let diff = units
                .get(unit)
                .and_then(|s| s.current.as_ref())
                .map(|c| diff_units(&c.parsed.unit, &parsed.unit));
            Ok((parsed, diff))
        })
    }

    /// Applies changes as one transaction: all succeed with one swap, or nothing changes.
    pub async fn apply(&self, changes: Vec<Change>) -> Vec<Outcome> {
        let mut units = self.units.lock().await;
        self.apply_locked(&mut units, changes, false).await
    }

    /// Steps 1–4 of a transaction: read, parse and validate each unit, check it against
    /// what will run beside it, build its runtime objects and persist last-good (only when
    /// nothing failed). Changes nothing that serves requests.
    fn prepare(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        changes: &[Change],
        allow_degraded: bool,
    ) -> (Vec<Pending>, BTreeMap<String, Arc<Revision>>, Vec<String>) {
        // 1. Read, parse and validate each unit on its own.
        let mut pending = Vec::new();
        let mut seen = Vec::new();
        for change in changes {
            let unit = change.unit().to_owned();
            if seen.contains(&unit) {
                pending.push(Pending {
                    unit: unit.clone(),
                    parsed: None,
                    errors: vec![diag(
                        &unit,
                        format!("unit \"{unit}\" named twice in one batch"),
                    )],
                    unchanged: false,
                });
                continue;
            }
            seen.push(unit.clone());
            match change {
                Change::Unload { .. } => {
                    let errors = if units.get(&unit).is_some() {
                        vec![]
                    } else {
                        vec![diag(&unit, format!("unit \"{unit}\" is not loaded"))]
                    };
                    pending.push(Pending {
                        unit,
                        parsed: None,
                        errors,
                        unchanged: false,
                    });
                }
                Change::Deploy { source, .. } => {
                    let slot = units.get(&unit);
                    let result = self
                        .read_sources(&unit, source, slot)
                        .and_then(|(s, n)| check_unit(&self.root, &s).map(|p| (p, s, n)));
                    match result {
                        Ok((p, s, n)) => {
                            let unchanged = slot
                                .and_then(|sl| sl.current.as_ref())
                                .is_some_and(|c| c.hash == s.content_hash() && !c.degraded);
                            pending.push(Pending {
                                unit,
                                parsed: Some((p, s, n)),
                                errors: vec![],
                                unchanged,
                            });
                        }
                        Err(errors) => pending.push(Pending {
                            unit,
                            parsed: None,
                            errors,
                            unchanged: false,
                        }),
                    }
                }
            }
        }
        // 2. Cross-unit rules against what will run beside each unit.
        let changing: Vec<&str> = pending.iter().map(|p| p.unit.as_str()).collect();
        let staying: Vec<&ParsedUnit> = units
            .iter()
            .filter(|(n, _)| !changing.contains(&n.as_str()))
            .filter_map(|(_, s)| s.current.as_ref().map(|c| &c.parsed))
            .collect();
        let mut conflict_errors = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            if let Some((parsed, _, _)) = &p.parsed {
                let mut others = staying.clone();
                others.extend(
                    pending[..i]
                        .iter()
                        .filter_map(|q| q.parsed.as_ref().map(|x| &x.0)),
                );
                conflict_errors.push((i, check_conflicts(&self.root, parsed, &others)));
            }
        }
        for (i, errs) in conflict_errors {
            pending[i].errors.extend(errs);
        }
        // 3. Build runtime objects for the changed units.
        let mut built: BTreeMap<String, Arc<Revision>> = BTreeMap::new();
        for p in pending
            .iter_mut()
            .filter(|p| p.errors.is_empty() && !p.unchanged)
        {
            let Some((parsed, sources, number)) = p.parsed.take() else {
                continue;
            };
            let slot = units.get(&p.unit);
            let retired = || {
                self.retired
                    .lock()
                    .expect("retired")
                    .get(&p.unit)
                    .copied()
                    .unwrap_or(1)
            };
            let number =
                number.unwrap_or_else(|| slot.map(|s| s.next_revision).unwrap_or_else(retired));
            let input = BuildInput {
                parsed,
                sources,
                number,
                control: slot.map(|s| s.control.clone()).unwrap_or_default(),
                previous: slot.and_then(|s| s.current.as_deref()),
                clients: &self.clients,
                max_body: self.root.server.max_body,
                degraded: allow_degraded,
            };
            match build(input) {
                Ok(rev) => {
                    built.insert(p.unit.clone(), Arc::new(rev));
                }
                Err(e) => p.errors.push(diag(&p.unit, e)),
            }
        }
        // 4. Persist last-good before the swap, only once nothing else can reject the change
        //    (skipped for degraded starts: that copy is the last-good).
        let failed_units = |pending: &[Pending]| -> Vec<String> {
            pending
                .iter()
                .filter(|p| !p.errors.is_empty())
                .map(|p| p.unit.clone())
                .collect()
        };
        let mut failed = failed_units(&pending);
        if failed.is_empty() && !allow_degraded {
            let mut saved: Vec<&String> = Vec::new();
            for (name, rev) in &built {
                if let Err(e) = self.last_good.save(&rev.sources, rev.info.number) {
                    if let Some(p) = pending.iter_mut().find(|p| &p.unit == name) {
                        let dir = self.root.state_dir();
                        p.errors.push(diag(
                            name,
                            format!("cannot persist last-good copy in {}: {e}", dir.display()),
                        ));
                    }
                    // Put back the last-good copies of the revisions that keep running.
                    for name in saved {
                        if let Some(cur) = units.get(name).and_then(|s| s.current.as_ref()) {
                            let _ = self.last_good.save(&cur.sources, cur.info.number);
                        }
                    }
                    break;
                }
                saved.push(name);
            }
            failed = failed_units(&pending);
        }
        (pending, built, failed)
    }

    async fn apply_locked(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        changes: Vec<Change>,
        allow_degraded: bool,
    ) -> Vec<Outcome> {
        let started = Instant::now();
        // Parsing, validation and building are CPU work that can take a while for big units:
        // done off the async worker, so the data plane keeps serving meanwhile.
        let (pending, built, failed) =
            tokio::task::block_in_place(|| self.prepare(units, &changes, allow_degraded));
        if !failed.is_empty() {
            let outcomes: Vec<Outcome> = pending
                .into_iter()
                .map(|p| {
                    let own_errors = !p.errors.is_empty();
                    let errors = if p.errors.is_empty() {
                        vec![diag(
                            &p.unit,
                            format!(
                                "not applied: the batch was rejected because of errors in {}",
                                failed.join(", ")
                            ),
                        )]
                    } else {
                        p.errors
                    };
                    match units.get_mut(&p.unit) {
                        Some(slot) => slot.last_errors = errors.clone(),
                        // A unit directory that never deployed is shown as Failed.
                        None if own_errors
                            && on_disk_deploy(&changes, &p.unit)
                            && self.unit_dir(&p.unit).is_dir() =>
                        {
                            let mut slot = UnitSlot::new();
                            slot.failed = Some(errors.clone());
                            slot.last_errors = errors.clone();
                            units.insert(p.unit.clone(), slot);
                        }
                        None => {}
                    }
                    Outcome::Rejected {
                        unit: p.unit,
                        errors,
                    }
                })
                .collect();
            for o in &outcomes {
                if let Outcome::Rejected { unit, errors } = o {
                    self.events.emit(EventKind::UnitRejected {
                        unit: unit.clone(),
                        errors: errors.clone(),
                    });
                }
            }
            return outcomes;
        }
        // 5. Stop the tasks of replaced and unloaded units, swap once, start the new tasks.
        let mut outcomes = Vec::new();
        for p in &pending {
            if built.contains_key(&p.unit)
                || matches!(
                    changes.iter().find(|c| c.unit() == p.unit),
                    Some(Change::Unload { .. })
                )
            {
                if let Some(slot) = units.get_mut(&p.unit) {
                    for t in slot.tasks.drain(..) {
                        t.stop().await;
                    }
                }
            }
        }
        let mut diffs = BTreeMap::new();
        for (name, rev) in &built {
            let slot = units
                .entry(name.clone())
                .or_insert_with(|| UnitSlot::with_control(rev.info.control.clone()));
            let diff = diff_from(
                slot.current.as_ref().map(|c| &c.parsed.unit),
                &rev.parsed.unit,
            );
            diffs.insert(name.clone(), diff);
            if let Some(old) = slot.current.replace(rev.clone()) {
                slot.draining.push(Draining {
                    revision: old,
                    since: Instant::now(),
                });
            }
            slot.history.retain(|r| r.number != rev.info.number);
            slot.history.push_back(Kept::of(rev));
            while slot.history.len() > self.root.server.history.max(1) {
                slot.history.pop_front();
            }
            slot.next_revision = slot.next_revision.max(rev.info.number + 1);
            slot.failed = None;
            slot.last_errors.clear();
        }
        let mut unloaded = Vec::new();
        for change in &changes {
            if let Change::Unload { unit } = change {
                if let Some(mut slot) = units.remove(unit) {
                    self.retired
                        .lock()
                        .expect("retired")
                        .insert(unit.clone(), slot.next_revision);
                    slot.control.paused.store(false, Relaxed);
                    slot.control.resumed.notify_waiters();
                    let number = slot.current.as_ref().map(|c| c.info.number).unwrap_or(0);
                    if let Some(old) = slot.current.take() {
                        self.orphans.lock().expect("orphans").push(Draining {
                            revision: old,
                            since: Instant::now(),
                        });
                    }
                    unloaded.push((unit.clone(), number));
                }
            }
        }
        self.swap_table(units);
        for (name, rev) in &built {
            let slot = units.get_mut(name).expect("slot exists");
            slot.tasks = start_tasks(rev, &slot.control);
        }
        for p in pending {
            if let Some(rev) = built.get(&p.unit) {
                let diff = diffs.remove(&p.unit).unwrap_or_default();
                let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                self.events.emit(EventKind::UnitActivated {
                    unit: p.unit.clone(),
                    revision: rev.info.number,
                    hash: rev.hash.clone(),
                    label: rev.label.clone(),
                    duration_ms,
                    changes: diff.summary(),
                    degraded: rev.degraded,
                });
                outcomes.push(Outcome::Activated {
                    unit: p.unit,
                    revision: rev.info.number,
                    hash: rev.hash.clone(),
                    label: rev.label.clone(),
                    duration_ms,
                    diff,
                });
            } else if let Some((u, n)) = unloaded.iter().find(|(u, _)| *u == p.unit) {
                self.events.emit(EventKind::UnitUnloaded {
                    unit: u.clone(),
                    revision: *n,
                });
                outcomes.push(Outcome::Unloaded {
                    unit: u.clone(),
                    revision: *n,
                });
            } else {
                let revision = units
                    .get(&p.unit)
                    .and_then(|s| s.current.as_ref())
                    .map(|c| c.info.number)
                    .unwrap_or(0);
                self.events.emit(EventKind::UnitUnchanged {
                    unit: p.unit.clone(),
                    revision,
                });
                outcomes.push(Outcome::Unchanged {
                    unit: p.unit,
                    revision,
                });
            }
        }
        outcomes
    }

    fn swap_table(&self, units: &BTreeMap<String, UnitSlot>) {
        let proxies = units
            .values()
            .filter_map(|s| s.current.as_ref())
            .flat_map(|r| r.proxies.iter());
        self.table
            .store(Arc::new(RoutingTable::build(proxies, &self.all_transports)));
    }
}

fn on_disk_deploy(changes: &[Change], unit: &str) -> bool {
    changes
        .iter()
        .any(|c| matches!(c, Change::Deploy { unit: u, source: Source::Disk } if u == unit))
}

fn start_tasks(rev: &Arc<Revision>, control: &UnitControl) -> Vec<Arc<TaskRuntime>> {
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
                control.task_paused(name),
            );
            t.start(seq, rev.info.clone());
            Some(t)
        })
        .collect()
}

//! The deployment engine. Every change is a transaction: read → parse → validate (also
//! against every other running unit) → build runtime objects → commit the durable state
//! (revision copies, then one manifest rename) → retire the old tasks → one atomic swap of
//! the routing table → start the new tasks → drain the old revision. Any failure before the
//! commit changes nothing and yields `Rejected`. Deploys are serialized by one lock;
//! requests never take it. Start-up, syncing with disk and draining live in `lifecycle`;
//! what the durable state records lives in `durable`.

mod canary;
mod command;
mod durable;
mod guard;
mod lifecycle;
mod view;

pub use command::{AddressAction, Command, CommandError, Run, TaskAction};
pub use guard::Trip;
pub use view::{DrainingView, Snapshot, UnitView};

use crate::amqp::AmqpLinks;
use crate::client::Clients;
use crate::consumer::{Binding, ConsumerRuntime, Pipeline};
use crate::events::{EventBus, EventKind};
use crate::revision::{build, BuildInput, DrainEnd, Kept, Revision, UnitControl};
use crate::router::RoutingTable;
use crate::state::StateStore;
use crate::task::TaskRuntime;
use arc_swap::ArcSwap;
use deployments::diff::{diff_from, diff_units, UnitDiff};
use deployments::source::Origin;
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
    /// A canary started beside the `stable` revision.
    Canary {
        unit: String,
        revision: u64,
        stable: u64,
        hash: String,
        label: Option<String>,
        percent: f64,
        header: Option<String>,
        duration_ms: f64,
        diff: UnitDiff,
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
            | Outcome::Unloaded { unit, .. }
            | Outcome::Canary { unit, .. } => unit,
        }
    }
}

/// Where a unit's new revision comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The unit's own origin: `conf/deployments/<unit>` for a disk unit; for a pushed unit
    /// its stored current revision (a reload of a pushed unit changes nothing).
    Disk,
    /// `conf/deployments/<unit>`, also for a pushed unit, which becomes a disk unit again.
    FromDisk,
    /// Files sent over the management endpoint (relative path → text): a `unit.toml` and
    /// the files it includes. The unit becomes a pushed unit.
    Content(BTreeMap<String, String>),
    /// A revision kept in history (rollback); `None` = the previous one.
    Revision(Option<u64>),
}

impl Source {
    /// A pushed `unit.toml` alone.
    pub fn unit_toml(text: String) -> Source {
        Source::Content(BTreeMap::from([(
            deployments::source::UNIT_FILE.to_owned(),
            text,
        )]))
    }
}

/// How a transaction treats what it activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An operator's or the hot deployer's change: new revisions, committed durably.
    Normal,
    /// Start-up re-activating what the durable state holds: revision numbers and history
    /// entries of content already stored are kept as they were.
    Restore,
    /// Start-up falling back to the last good revision because the disk files are invalid.
    Degraded,
    /// A canary: built beside the running revision with its own counters and pools, its
    /// checks run, nothing committed or swapped (see `canary`).
    Canary,
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

/// The files of one revision, as `show source` returns them.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionSource {
    pub unit: String,
    pub revision: u64,
    pub hash: String,
    pub label: Option<String>,
    pub origin: Origin,
    pub active: bool,
    pub files: BTreeMap<String, String>,
}

/// One unit's part of a transaction while it is prepared.
struct Pending {
    unit: String,
    parsed: Option<(ParsedUnit, UnitSources, Option<u64>)>,
    errors: Vec<Diagnostic>,
    unchanged: bool,
    origin: Origin,
    /// The hash of the disk files this change read, if it read the unit's directory.
    disk_hash: Option<String>,
}

impl Pending {
    fn failed(unit: String, errors: Vec<Diagnostic>) -> Pending {
        Pending {
            unit,
            parsed: None,
            errors,
            unchanged: false,
            origin: Origin::Disk,
            disk_hash: None,
        }
    }
}

/// A replaced revision finishing its requests.
struct Draining {
    revision: Arc<Revision>,
    since: Instant,
    /// Its unit was unloaded.
    orphan: bool,
}

struct UnitSlot {
    pub origin: Origin,
    /// Hash of the disk files as last read for this unit (by a deploy from disk or the hot
    /// deployer): the hot deployer acts only when the files differ from it.
    pub disk_hash: Option<String>,
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
    /// One per consumer of the current revision, by name: they outlive revisions.
    pub consumers: BTreeMap<String, Arc<ConsumerRuntime>>,
    /// Set when the unit's guard rolled a revision back (until the next deploy of new content).
    pub guard_trip: Option<String>,
    /// A canary revision serving a share of the unit's requests beside the current one.
    pub canary: Option<canary::Canary>,
}

impl UnitSlot {
    fn new() -> Self {
        Self::with_control(Arc::new(UnitControl::default()))
    }

    fn with_control(control: Arc<UnitControl>) -> Self {
        UnitSlot {
            origin: Origin::Disk,
            disk_hash: None,
            current: None,
            history: VecDeque::new(),
            control,
            next_revision: 1,
            failed: None,
            last_errors: Vec::new(),
            tasks: Vec::new(),
            consumers: BTreeMap::new(),
            guard_trip: None,
            canary: None,
        }
    }
}

pub struct Engine {
    pub root: Arc<RootConfig>,
    pub table: ArcSwap<RoutingTable>,
    /// The unit slots: changed only by the engine, one change at a time.
    units: tokio::sync::Mutex<BTreeMap<String, UnitSlot>>,
    /// What readers see of the units, republished after every change.
    view: ArcSwap<Snapshot>,
    pub events: Arc<EventBus>,
    pub hot_deploy: AtomicBool,
    /// While set, no task starts a run (a process started by a binary upgrade, until the
    /// old one has stopped its tasks).
    pub hold_tasks: Arc<AtomicBool>,
    /// The amqp transports of the root config: they outlive every revision.
    pub amqp: AmqpLinks,
    /// Outbound clients and their connection pools; shared with the next generation of a
    /// warm restart, so its endpoints reuse the open backend connections.
    clients: Arc<Clients>,
    store: StateStore,
    all_transports: Vec<String>,
    /// Replaced revisions (and those of unloaded units) still finishing requests.
    draining: std::sync::Mutex<Vec<Draining>>,
    /// Hash of a directory's files → hash of the files the unit is made of.
    used_hashes: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Guards watched after activations.
    guards: std::sync::Mutex<Vec<guard::Watch>>,
}

fn diag(unit: &str, msg: String) -> Diagnostic {
    Diagnostic::new(format!("{unit}/unit.toml"), 1, 1, msg)
}

/// An error about a unit name itself: no file location can be trusted to exist.
fn name_diag(unit: &str, msg: String) -> Diagnostic {
    let shown: String = unit.chars().take(80).collect();
    Diagnostic::new(format!("unit {shown:?}"), 0, 0, msg)
}

/// Only the files a unit is made of (what `unit.toml` includes, and CA files its endpoints
/// name) count: a README or a sample payload beside them is not part of a revision.
fn keep_used(mut sources: UnitSources, parsed: &ParsedUnit) -> UnitSources {
    let mut used = parsed.files.clone();
    used.extend(
        parsed
            .unit
            .endpoints
            .iter()
            .filter_map(|e| e.ca_file.as_ref().map(|f| f.get_ref().clone())),
    );
    sources.retain_used(&used);
    sources
}

/// Sources as [`keep_used`] leaves them, for sources not parsed yet.
fn used_sources(sources: UnitSources) -> UnitSources {
    match deployments::parse_unit(&sources) {
        Ok(parsed) => keep_used(sources, &parsed),
        Err(_) => sources,
    }
}

impl Engine {
    pub fn new(root: Arc<RootConfig>, events: Arc<EventBus>) -> Self {
        Self::with_clients(root, events, Default::default())
    }

    /// An engine whose endpoints take their clients (and pools) from `clients`.
    pub fn with_clients(
        root: Arc<RootConfig>,
        events: Arc<EventBus>,
        clients: Arc<Clients>,
    ) -> Self {
        let all_transports = root.http_transport_names().map(str::to_owned).collect();
        Engine {
            amqp: crate::amqp::links(&root),
            store: StateStore::open(&root.state_dir()),
            hot_deploy: AtomicBool::new(root.hot_deploy.watch),
            hold_tasks: Default::default(),
            root,
            table: ArcSwap::from_pointee(RoutingTable::default()),
            units: tokio::sync::Mutex::new(BTreeMap::new()),
            view: Default::default(),
            events,
            clients,
            all_transports,
            draining: Default::default(),
            used_hashes: Default::default(),
            guards: Default::default(),
        }
    }

    /// The directory of `unit`, once its name is known to be safe: every way from a unit
    /// name to the file system goes through here.
    pub fn unit_dir(&self, unit: &str) -> Result<PathBuf, Diagnostic> {
        deployments::source::unit_dir(&self.root.deployments_dir(), unit)
            .map_err(|e| name_diag(unit, e.to_string()))
    }

    /// The content hash of `unit`'s files on disk (the files it is made of), if they can be
    /// read. Parsing tells which files those are; the answer is cached by the hash of all
    /// the directory's files, so status reads of big units do not parse them again.
    pub fn disk_hash(&self, unit: &str) -> Option<String> {
        let dir = self.unit_dir(unit).ok()?;
        let sources = UnitSources::read_dir(&dir).ok()?;
        let raw = sources.content_hash();
        let mut cache = self.used_hashes.lock().expect("hash cache");
        if let Some(h) = cache.get(&raw) {
            return Some(h.clone());
        }
        let used = used_sources(sources).content_hash();
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(raw, used.clone());
        Some(used)
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

    /// The sources a change deploys, the revision number they keep (rollback), and the
    /// hash of the disk files when the unit's directory was read.
    fn read_sources(
        &self,
        unit: &str,
        source: &Source,
        slot: Option<&UnitSlot>,
    ) -> Result<(UnitSources, Option<u64>), Vec<Diagnostic>> {
        let dir = self.unit_dir(unit).map_err(|d| vec![d])?;
        match source {
            Source::Disk if slot.is_some_and(|s| s.origin == Origin::Pushed) => {
                let current = slot.and_then(|s| s.current.as_ref());
                let number = current.map(|c| c.info.number);
                self.read_sources(unit, &Source::Revision(number), slot)
            }
            Source::Disk | Source::FromDisk => {
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
            Source::Content(files) => UnitSources::from_files(unit, files.clone())
                .map(|s| (s, None))
                .map_err(|e| vec![diag(unit, e.to_string())]),
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
                    vec![name_diag(
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
                Ok(((*rev.sources).clone(), Some(rev.number)))
            }
        }
    }

    /// The exact files of the active revision of `unit`, or of kept revision `revision`.
    pub async fn source_of(
        &self,
        unit: &str,
        revision: Option<u64>,
    ) -> Result<RevisionSource, String> {
        let units = self.lock().await;
        let slot = units
            .get(unit)
            .ok_or_else(|| format!("unit \"{unit}\" is not loaded"))?;
        let active = slot.current.as_ref().map(|c| c.info.number);
        let number = revision
            .or(active)
            .ok_or_else(|| format!("unit \"{unit}\" has no active revision"))?;
        let kept = slot
            .history
            .iter()
            .find(|k| k.number == number)
            .ok_or_else(|| {
                let all: Vec<String> = slot.history.iter().map(|k| k.number.to_string()).collect();
                format!(
                    "revision {number} of unit \"{unit}\" is not kept (kept: {})",
                    all.join(", ")
                )
            })?;
        Ok(RevisionSource {
            unit: unit.to_owned(),
            revision: number,
            hash: kept.hash.clone(),
            label: kept.label.clone(),
            origin: slot.origin,
            active: Some(number) == active,
            files: kept.sources.files.clone(),
        })
    }

    /// Builds `unit` from its files (as a reload would) and runs its checks against that
    /// build, deploying nothing. Errors of the files, or of the checks that failed.
    pub async fn run_checks_of(&self, unit: &str) -> Result<usize, Vec<Diagnostic>> {
        let units = self.lock().await;
        let changes = [Change::Deploy {
            unit: unit.to_owned(),
            source: Source::Disk,
        }];
        let p = tokio::task::block_in_place(|| {
            self.prepare(&units, &changes, Mode::Normal, Instant::now())
        });
        if !p.failed.is_empty() {
            return Err(p.pending.into_iter().flat_map(|q| q.errors).collect());
        }
        // Unchanged files: the running revision is that build.
        let rev = match p.built.get(unit) {
            Some(r) => r.clone(),
            None => units
                .get(unit)
                .and_then(|s| s.current.clone())
                .ok_or_else(|| vec![name_diag(unit, format!("unit \"{unit}\" is not loaded"))])?,
        };
        drop(units);
        let errors = crate::checks::run(&rev, &self.all_transports).await;
        if errors.is_empty() {
            Ok(rev.parsed.unit.checks.len())
        } else {
            Err(errors)
        }
    }

    /// Parses, validates and diffs without applying anything.
    pub async fn preview(
        &self,
        unit: &str,
        source: Source,
    ) -> Result<(ParsedUnit, Option<UnitDiff>), Vec<Diagnostic>> {
        let units = self.lock().await;
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
        let mut units = self.lock().await;
        self.apply_locked(&mut units, changes, Mode::Normal).await
    }

    /// Reads, parses and validates each unit on its own.
    fn read_all(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        changes: &[Change],
        mode: Mode,
    ) -> Vec<Pending> {
        let mut pending = Vec::new();
        let mut seen = Vec::new();
        for change in changes {
            let unit = change.unit().to_owned();
            if let Err(d) = self.unit_dir(&unit) {
                pending.push(Pending::failed(unit, vec![d]));
                continue;
            }
            if seen.contains(&unit) {
                let d = name_diag(&unit, format!("unit \"{unit}\" named twice in one batch"));
                pending.push(Pending::failed(unit, vec![d]));
                continue;
            }
            seen.push(unit.clone());
            let slot = units.get(&unit);
            match change {
                Change::Unload { .. } => {
                    let errors = if slot.is_some() {
                        vec![]
                    } else {
                        vec![name_diag(&unit, format!("unit \"{unit}\" is not loaded"))]
                    };
                    pending.push(Pending::failed(unit, errors));
                }
                Change::Deploy { .. }
                    if mode != Mode::Canary && slot.is_some_and(|s| s.canary.is_some()) =>
                {
                    let n = slot
                        .and_then(|s| s.canary.as_ref())
                        .map(|c| c.revision.info.number)
                        .unwrap_or(0);
                    let d = name_diag(
                        &unit,
                        format!("unit \"{unit}\" runs a canary (revision {n}); promote or abort it first"),
                    );
                    pending.push(Pending::failed(unit, vec![d]));
                }
                Change::Deploy { source, .. } => {
                    let origin = match source {
                        Source::Content(_) => Origin::Pushed,
                        Source::FromDisk => Origin::Disk,
                        Source::Disk | Source::Revision(_) => {
                            slot.map(|s| s.origin).unwrap_or(Origin::Disk)
                        }
                    };
                    let reads_disk = matches!(source, Source::FromDisk)
                        || (matches!(source, Source::Disk) && origin == Origin::Disk);
                    let result = self.read_sources(&unit, source, slot).and_then(|(s, n)| {
                        check_unit(&self.root, &s).map(|p| {
                            let s = keep_used(s, &p);
                            (p, s, n)
                        })
                    });
                    let mut p = Pending::failed(unit, vec![]);
                    p.origin = origin;
                    match result {
                        Ok((parsed, sources, number)) => {
                            let hash = sources.content_hash();
                            p.disk_hash = reads_disk.then(|| hash.clone());
                            // At start-up, content the durable state already holds keeps its
                            // revision number.
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
                                p.disk_hash = self.disk_hash(&p.unit);
                            }
                            p.errors = errors;
                        }
                    }
                    pending.push(p);
                }
            }
        }
        pending
    }

    /// Steps 1–3 of a transaction: read, parse and validate each unit, check it against
    /// what will run beside it and build its runtime objects. Changes nothing that serves
    /// requests and nothing durable.
    fn prepare(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        changes: &[Change],
        mode: Mode,
        started: Instant,
    ) -> Prepared {
        // 1. Read, parse and validate each unit on its own.
        let mut pending = self.read_all(units, changes, mode);
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
        let manifest = self.store.manifest();
        let mut built: BTreeMap<String, Arc<Revision>> = BTreeMap::new();
        for p in pending
            .iter_mut()
            .filter(|p| p.errors.is_empty() && !p.unchanged)
        {
            let Some((parsed, sources, number)) = p.parsed.take() else {
                continue;
            };
            let slot = units.get(&p.unit);
            let number = number.unwrap_or_else(|| {
                slot.map(|s| s.next_revision)
                    .unwrap_or_else(|| manifest.next_revision(&p.unit))
            });
            let input = BuildInput {
                parsed,
                sources,
                number,
                control: slot.map(|s| s.control.clone()).unwrap_or_default(),
                previous: slot
                    .filter(|_| mode != Mode::Canary)
                    .and_then(|s| s.current.as_deref()),
                clients: &self.clients,
                links: &self.amqp,
                max_body: self.root.server.max_body,
                degraded: mode == Mode::Degraded,
            };
            match build(input) {
                Ok(rev) => {
                    built.insert(p.unit.clone(), Arc::new(rev));
                }
                Err(e) => p.errors.push(diag(&p.unit, e)),
            }
        }
        let failed = failed_units(&pending);
        Prepared {
            pending,
            built,
            histories: BTreeMap::new(),
            failed,
            duration: started.elapsed(),
        }
    }

    /// Step 4: the history each activated unit will have, then the durable commit:
    /// revision copies first, then the manifest in one rename — only once nothing else can
    /// reject the change (a degraded start commits nothing: what it runs is stored).
    fn commit_prepared(
        &self,
        units: &BTreeMap<String, UnitSlot>,
        changes: &[Change],
        mode: Mode,
        started: Instant,
        p: &mut Prepared,
    ) {
        p.duration = started.elapsed();
        let keep = self.root.server.history.max(1);
        p.histories = p
            .built
            .iter()
            .map(|(name, rev)| {
                let old = units.get(name).map(|s| &s.history);
                (
                    name.clone(),
                    durable::next_history(old, rev, p.duration, mode != Mode::Normal, keep),
                )
            })
            .collect();
        if mode == Mode::Degraded {
            return;
        }
        if let Err(e) = self.commit(units, &p.pending, &p.built, &p.histories, changes) {
            let dir = self.root.state_dir();
            let msg = format!(
                "cannot persist the deployment state in {}: {e}; nothing was changed",
                dir.display()
            );
            for q in p.pending.iter_mut().filter(|q| q.errors.is_empty()) {
                q.errors.push(name_diag(&q.unit, msg.clone()));
            }
            p.failed = failed_units(&p.pending);
        }
    }

    /// Step 3b: the checks of every unit built from new content run against its new
    /// revision, before anything is committed or swapped (not for rollbacks and start-up
    /// restores, which re-activate what ran before).
    async fn run_checks(&self, changes: &[Change], mode: Mode, p: &mut Prepared) {
        if !matches!(mode, Mode::Normal | Mode::Canary) {
            return;
        }
        let due: Vec<(String, Arc<Revision>)> = p
            .built
            .iter()
            .filter(|(name, rev)| {
                !rev.parsed.unit.checks.is_empty() && new_content(changes, name.as_str())
            })
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        for (name, rev) in due {
            let errors = crate::checks::run(&rev, &self.all_transports).await;
            if let Some(q) = p.pending.iter_mut().find(|q| q.unit == name) {
                q.errors.extend(errors);
            }
        }
        p.failed = failed_units(&p.pending);
    }

    async fn apply_locked(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        changes: Vec<Change>,
        mode: Mode,
    ) -> Vec<Outcome> {
        let started = Instant::now();
        // The tasks of units being deployed start no run until the deploy has ended.
        let held: Vec<Arc<UnitControl>> = changes
            .iter()
            .filter_map(|c| units.get(c.unit()))
            .map(|s| s.control.clone())
            .collect();
        for c in &held {
            c.tasks_held.store(true, Relaxed);
        }
        // Parsing, validation and building are CPU work that can take a while for big units:
        // done off the async worker, so the data plane keeps serving meanwhile.
        let mut prepared =
            tokio::task::block_in_place(|| self.prepare(units, &changes, mode, started));
        if prepared.failed.is_empty() {
            self.run_checks(&changes, mode, &mut prepared).await;
        }
        if prepared.failed.is_empty() {
            tokio::task::block_in_place(|| {
                self.commit_prepared(units, &changes, mode, started, &mut prepared)
            });
        }
        let outcomes = if prepared.failed.is_empty() {
            self.activate(units, &changes, mode, prepared)
        } else {
            self.reject(units, &changes, prepared)
        };
        for c in &held {
            c.tasks_held.store(false, Relaxed);
        }
        outcomes
    }

    fn reject(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        changes: &[Change],
        prepared: Prepared,
    ) -> Vec<Outcome> {
        let failed = prepared.failed;
        let outcomes: Vec<Outcome> = prepared
            .pending
            .into_iter()
            .map(|p| {
                let own_errors = !p.errors.is_empty();
                let errors = if p.errors.is_empty() {
                    vec![name_diag(
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
                    Some(slot) => {
                        slot.last_errors = errors.clone();
                        if p.disk_hash.is_some() {
                            slot.disk_hash = p.disk_hash;
                        }
                    }
                    // A unit directory that never deployed is shown as Failed.
                    None if own_errors
                        && on_disk_deploy(changes, &p.unit)
                        && self.unit_dir(&p.unit).is_ok_and(|d| d.is_dir()) =>
                    {
                        let mut slot = UnitSlot::new();
                        slot.failed = Some(errors.clone());
                        slot.last_errors = errors.clone();
                        slot.disk_hash = p.disk_hash;
                        slot.next_revision = self.store.manifest().next_revision(&p.unit);
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

    /// Step 5: retire the tasks of replaced and unloaded units, swap once, start the new
    /// tasks, report.
    fn activate(
        &self,
        units: &mut BTreeMap<String, UnitSlot>,
        changes: &[Change],
        mode: Mode,
        prepared: Prepared,
    ) -> Vec<Outcome> {
        let Prepared {
            pending,
            built,
            mut histories,
            duration,
            ..
        } = prepared;
        let is_unload = |unit: &str| {
            matches!(
                changes.iter().find(|c| c.unit() == unit),
                Some(Change::Unload { .. })
            )
        };
        for p in &pending {
            if built.contains_key(&p.unit) || is_unload(&p.unit) {
                if let Some(slot) = units.get_mut(&p.unit) {
                    for t in slot.tasks.drain(..) {
                        t.retire(self.root.server.drain_timeout);
                    }
                }
            }
        }
        let mut diffs = BTreeMap::new();
        for p in &pending {
            let Some(rev) = built.get(&p.unit) else {
                continue;
            };
            let slot = units
                .entry(p.unit.clone())
                .or_insert_with(|| UnitSlot::with_control(rev.info.control.clone()));
            let diff = diff_from(
                slot.current.as_ref().map(|c| &c.parsed.unit),
                &rev.parsed.unit,
            );
            diffs.insert(p.unit.clone(), diff);
            rev.deploy_time.get_or_init(|| duration);
            if let Some(old) = slot.current.replace(rev.clone()) {
                self.start_drain(old, false);
            }
            slot.history = histories.remove(&p.unit).unwrap_or_default();
            slot.next_revision = slot.next_revision.max(rev.info.number + 1);
            slot.origin = p.origin;
            slot.failed = None;
            slot.last_errors.clear();
        }
        for p in &pending {
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
        let mut unloaded = Vec::new();
        for change in changes {
            if let Change::Unload { unit } = change {
                if let Some(mut slot) = units.remove(unit) {
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
            }
        }
        self.swap_table(units);
        for name in built.keys() {
            let slot = units.get_mut(name).expect("slot exists");
            let rev = slot.current.clone().expect("just activated");
            slot.tasks = start_tasks(&rev, &slot.control, &self.hold_tasks);
            self.sync_consumers(slot, &rev);
            // New content is watched by the unit's guard (not rollbacks, not start-up).
            if mode == Mode::Normal && new_content(changes, name) {
                slot.guard_trip = None;
                self.watch_guard(&rev, false);
            }
        }
        self.publish(units);
        // Tenths of a millisecond: what an operator reads, without float noise in the logs.
        let duration_ms = crate::revision::millis(duration);
        let mut outcomes = Vec::new();
        for p in pending {
            if let Some(rev) = built.get(&p.unit) {
                let diff = diffs.remove(&p.unit).unwrap_or_default();
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

    fn swap_table(&self, units: &BTreeMap<String, UnitSlot>) {
        let proxies = units
            .values()
            .filter_map(|s| s.current.as_ref())
            .flat_map(|r| r.proxies.iter());
        self.table
            .store(Arc::new(RoutingTable::build(proxies, &self.all_transports)));
    }
}

/// What `prepare` hands to the swap.
struct Prepared {
    pending: Vec<Pending>,
    built: BTreeMap<String, Arc<Revision>>,
    histories: BTreeMap<String, VecDeque<Kept>>,
    failed: Vec<String>,
    /// From the start of the transaction until its commit begins (the commit records it):
    /// the one duration reported.
    duration: std::time::Duration,
}

fn failed_units(pending: &[Pending]) -> Vec<String> {
    pending
        .iter()
        .filter(|p| !p.errors.is_empty())
        .map(|p| p.unit.clone())
        .collect()
}

/// True when `unit` is deployed from new content (files or pushed), not re-activated.
fn new_content(changes: &[Change], unit: &str) -> bool {
    changes.iter().any(|c| match c {
        Change::Deploy { unit: u, source } => u == unit && !matches!(source, Source::Revision(_)),
        Change::Unload { .. } => false,
    })
}

fn on_disk_deploy(changes: &[Change], unit: &str) -> bool {
    changes.iter().any(|c| {
        matches!(c, Change::Deploy { unit: u, source: Source::Disk | Source::FromDisk } if u == unit)
    })
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

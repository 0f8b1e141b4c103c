//! The deployment engine: it owns every unit slot and every change to them. A deploy is a
//! transaction over one plan (`plan`: read → parse → validate, also against every other
//! running unit → diff; build; check), committed durably (revision copies, then one
//! manifest rename), then activated (`swap`: retire the old tasks → one atomic swap of the
//! routing table → start the new tasks → drain the old revision). Any failure before the
//! commit changes nothing and yields `Rejected`. Changes — deploys and operator commands
//! (`command`) — take the slots one at a time; requests never do, and readers use the
//! view published after each change (`view`). Start-up, syncing with disk and draining
//! live in `lifecycle`; what the durable state records lives in `durable`.

mod canary;
pub mod cluster;
mod command;
mod durable;
mod guard;
mod lifecycle;
mod memory;
mod plan;
mod swap;
mod view;

#[cfg(test)]
mod tests;

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

/// The closed outcome of one unit's part in a deployment: the protocol's own type, so
/// what the engine decides is what management answers.
pub use deployments::protocol::Outcome;

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
    /// A cluster revision from the store (see `cluster`): its files and its cluster
    /// revision number, which becomes the local one. The unit becomes a cluster unit.
    Cluster {
        files: BTreeMap<String, String>,
        revision: u64,
    },
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

/// The files of one revision, as `show source` returns them (the protocol's type).
pub use deployments::protocol::outcome::RevisionSource;

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

    /// The outbound clients and their connection pools.
    pub fn clients(&self) -> &Clients {
        &self.clients
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
            Source::Disk if slot.is_some_and(|s| s.origin.is_stored()) => {
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
            Source::Cluster { files, revision } => UnitSources::from_files(unit, files.clone())
                .map(|s| (s, Some(*revision)))
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
        let changes = vec![Change::Deploy {
            unit: unit.to_owned(),
            source: Source::Disk,
        }];
        let p = tokio::task::block_in_place(|| {
            let mut p = self.plan(&units, changes, Mode::Normal, Instant::now());
            self.build(&units, &mut p);
            p
        });
        if !p.is_ok() {
            return Err(p.units.into_iter().flat_map(|q| q.errors).collect());
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
        // Cluster units change only through the store (`cluster::apply_cluster`).
        if let Some(refused) = cluster::refuse_local(&units, &changes) {
            return refused;
        }
        self.transact(&mut units, changes, Mode::Normal).await
    }

    /// One transaction: plan → build → check → commit, then activate (swap, drain) or
    /// reject. Parsing, validation and building are CPU work that can take a while for big
    /// units: done off the async worker, so the data plane keeps serving meanwhile.
    async fn transact(
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
        let (mut plan, parsed_bytes) = tokio::task::block_in_place(|| {
            let mut plan = self.plan(units, changes, mode, started);
            let parsed_bytes = plan.parsed_bytes();
            self.build(units, &mut plan);
            (plan, parsed_bytes)
        });
        self.check(&mut plan).await;
        tokio::task::block_in_place(|| self.commit(units, &mut plan));
        let outcomes = if plan.is_ok() {
            self.activate(units, plan)
        } else {
            self.reject(units, plan)
        };
        for c in &held {
            c.tasks_held.store(false, Relaxed);
        }
        if parsed_bytes >= memory::TRIM_AFTER {
            memory::trim_soon();
        }
        outcomes
    }
}

//! Cluster mode (docs/cluster.md): nodes converge on unit revisions held in etcd. This
//! node's [`Node`] accepts cluster operations from the management endpoint (validated by a
//! dry run first, written compare-and-swap on the unit's key), watches the store and
//! applies every change through the engine's transactional deploy (`sync`), and reports
//! per unit `{revision, hash, error}` under its lease. When the store is unreachable the
//! node serves what it applied and refuses cluster operations with "cluster store
//! unreachable …; nothing changed". A wiped prefix raises an alarm and unloads nothing.

pub mod store;
mod sync;

use crate::audit::Audit;
use crate::engine::cluster::LocalCopy;
use crate::engine::Engine;
use crate::events::{EventBus, EventKind};
use deployments::protocol::cluster::{
    Action, ChangeResult, ClusterStatus, NodeError, StoreHealth, StoreState, SyncState, UnitReport,
    UnitStatus, WaitResult,
};
use deployments::root::ClusterConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{now_ms, ControlDoc, Store, StoreError, UnitDoc};

/// Why a cluster operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}; nothing changed")]
    Store(#[from] StoreError),
    #[error("concurrent deploy of {0}, retry")]
    Concurrent(String),
    #[error("rejected {unit}: {} error(s); nothing changed, the store was not written\n{}", .errors.len(), .errors.iter().map(|e| format!("    {e}")).collect::<Vec<_>>().join("\n"))]
    Rejected { unit: String, errors: Vec<String> },
    #[error("{0}")]
    Refused(String),
}

/// What this node knows, shared by the sync task and the management operations.
struct NodeState {
    health: StoreState,
    detail: Option<String>,
    local: LocalCopy,
    /// The cluster revision (number, hash) of each unit as last seen in the store.
    desired: BTreeMap<String, (u64, String)>,
    /// This node's lease (0: none yet).
    lease: i64,
}

pub struct Node {
    pub name: String,
    pub cluster: String,
    config: ClusterConfig,
    store: Store,
    engine: Arc<Engine>,
    events: Arc<EventBus>,
    audit: Arc<Audit>,
    state: Mutex<NodeState>,
    /// Poked when this node's report changed and must be written.
    report_due: tokio::sync::Notify,
}

impl Node {
    pub async fn new(
        engine: Arc<Engine>,
        events: Arc<EventBus>,
        audit: Arc<Audit>,
    ) -> Result<Option<Arc<Node>>, String> {
        let root = engine.root.clone();
        let Some(config) = root.cluster.clone() else {
            return Ok(None);
        };
        let cluster = config.name.get_ref().clone();
        let name = config.node_name(&root.server).to_owned();
        let store = Store::new(&cluster, config.store.get_ref(), config.timeout)
            .await
            .map_err(|e| e.to_string())?;
        let mut local = LocalCopy::load(&root.state_dir(), &cluster);
        // Reports of units that are no longer here (unloaded while the copy was written).
        let running = engine.cluster_units().await;
        local.units.retain(|u, _| running.contains_key(u));
        tracing::info!(cluster = %cluster, node = %name, store = %config.store.get_ref().join(","), applied_revision = local.applied_revision, "cluster mode");
        Ok(Some(Arc::new(Node {
            name,
            cluster,
            config,
            store,
            engine,
            events,
            audit,
            state: Mutex::new(NodeState {
                health: StoreState::Down,
                detail: Some("not connected yet".into()),
                local,
                desired: BTreeMap::new(),
                lease: 0,
            }),
            report_due: tokio::sync::Notify::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NodeState> {
        self.state.lock().expect("cluster state")
    }

    fn keep(&self) -> usize {
        self.engine.root.server.history.max(1)
    }

    /// Health of the store as this node sees it.
    pub fn health(&self) -> StoreHealth {
        let s = self.lock();
        StoreHealth {
            state: s.health,
            endpoints: self.config.store.get_ref().clone(),
            detail: s.detail.clone(),
            applied_revision: s.local.applied_revision,
        }
    }

    fn set_health(&self, health: StoreState, detail: Option<String>) {
        let changed = {
            let mut s = self.lock();
            let changed = s.health != health;
            s.health = health;
            s.detail = detail.clone();
            changed
        };
        if changed {
            match health {
                StoreState::Up => {
                    tracing::info!(cluster = %self.cluster, "cluster store reachable")
                }
                StoreState::Down => {
                    tracing::warn!(cluster = %self.cluster, "cluster store unreachable: {}; serving what was last applied", detail.as_deref().unwrap_or(""))
                }
                StoreState::Alarm => {
                    tracing::error!(cluster = %self.cluster, "cluster alarm: {}", detail.as_deref().unwrap_or(""))
                }
            }
            self.events.emit(EventKind::ClusterStore {
                state: health.as_str().into(),
                detail,
            });
        }
    }

    /// Prometheus lines of this node's view: store up, applied revision, per unit the
    /// cluster revision wanted and this node's sync state.
    pub fn metrics(&self) -> String {
        use std::fmt::Write;
        let s = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP esb_cluster_store_up Whether the cluster store is reachable (1) or not (0).\n# TYPE esb_cluster_store_up gauge\nesb_cluster_store_up {}",
            u8::from(s.health == StoreState::Up)
        );
        let _ = writeln!(
            out,
            "# HELP esb_cluster_alarm Whether the cluster's keys vanished and the node waits for an operator.\n# TYPE esb_cluster_alarm gauge\nesb_cluster_alarm {}",
            u8::from(s.health == StoreState::Alarm)
        );
        let _ = writeln!(
            out,
            "# HELP esb_cluster_applied_revision The last store revision this node applied.\n# TYPE esb_cluster_applied_revision gauge\nesb_cluster_applied_revision {}",
            s.local.applied_revision
        );
        let mut revisions = String::from("# HELP esb_cluster_unit_revision Per cluster unit, the revision this node applied (or tried).\n# TYPE esb_cluster_unit_revision gauge\n");
        let _ = writeln!(out, "# HELP esb_cluster_unit_sync Per cluster unit and sync state, 1 for this node's state.\n# TYPE esb_cluster_unit_sync gauge");
        for (unit, wanted) in &s.desired {
            let r = s.local.units.get(unit);
            let now = deployments::protocol::cluster::sync_state((wanted.0, &wanted.1), r, true);
            for state in [SyncState::Synced, SyncState::Pending, SyncState::Failed] {
                let _ = writeln!(
                    out,
                    "esb_cluster_unit_sync{{unit=\"{unit}\",state=\"{}\"}} {}",
                    state.as_str().to_ascii_lowercase(),
                    u8::from(state == now)
                );
            }
            let _ = writeln!(
                revisions,
                "esb_cluster_unit_revision{{unit=\"{unit}\"}} {}",
                r.map(|r| r.revision).unwrap_or(0)
            );
        }
        out.push_str(&revisions);
        out
    }

    /// While the sync task has no session, the store is asked once more (within the
    /// timeout) before an operation is refused.
    async fn check_up(&self) -> Result<(), ClusterError> {
        if self.lock().health != StoreState::Down {
            return Ok(());
        }
        self.store
            .meta()
            .await
            .map(|_| ())
            .map_err(ClusterError::Store)
    }

    /// `deploy U --file F --cluster` and `publish U`: a dry run here, then a new revision
    /// written compare-and-swap on the unit's key.
    pub async fn deploy(
        &self,
        unit: &str,
        files: BTreeMap<String, String>,
        action: Action,
        wait: Duration,
    ) -> Result<ChangeResult, ClusterError> {
        let publishing = action == Action::Publish;
        self.engine
            .cluster_name_free(unit, publishing)
            .await
            .map_err(ClusterError::Refused)?;
        let checked = self
            .engine
            .preview_cluster(unit, files)
            .await
            .map_err(|errors| ClusterError::Rejected {
                unit: unit.to_owned(),
                errors: errors.iter().map(|d| d.to_string()).collect(),
            })?;
        self.check_up().await?;
        let (current, at) = self.store.unit(unit).await?;
        if let Some(cur) = current.as_ref().filter(|c| c.hash == checked.hash) {
            // The content already is the cluster revision: nothing to write.
            return Ok(self.result(action, unit, cur, 0, None));
        }
        let doc = UnitDoc {
            revision: self.next_revision(unit, current.as_ref()).await?,
            hash: checked.hash,
            label: checked.label,
            files: checked.files,
            by: self.name.clone(),
            at_ms: now_ms(),
            published_from: publishing.then(|| self.name.clone()),
        };
        self.commit_unit(action, unit, doc, at, wait).await
    }

    /// `publish U`: this node's disk files of `unit` become its cluster revision.
    pub async fn publish(&self, unit: &str, wait: Duration) -> Result<ChangeResult, ClusterError> {
        let files = self
            .engine
            .disk_files(unit)
            .map_err(ClusterError::Refused)?;
        self.deploy(unit, files, Action::Publish, wait).await
    }

    /// `rollback U --cluster [--to N]`: the content of kept revision N (default: the one
    /// before the current) becomes a new revision.
    pub async fn rollback(
        &self,
        unit: &str,
        to: Option<u64>,
        wait: Duration,
    ) -> Result<ChangeResult, ClusterError> {
        self.check_up().await?;
        let (current, at) = self.store.unit(unit).await?;
        let current = current.ok_or_else(|| not_cluster_unit(unit))?;
        let kept = self.store.history(unit).await?;
        let target = match to {
            Some(n) => kept.iter().find(|d| d.revision == n),
            None => kept
                .iter()
                .rev()
                .find(|d| d.revision < current.revision && d.hash != current.hash),
        };
        let Some(target) = target else {
            let numbers: Vec<String> = kept.iter().map(|d| d.revision.to_string()).collect();
            return Err(ClusterError::Refused(match to {
                Some(n) => format!(
                    "revision {n} of cluster unit \"{unit}\" is not kept (kept: {})",
                    numbers.join(", ")
                ),
                None => format!("cluster unit \"{unit}\" has no previous revision to roll back to"),
            }));
        };
        if target.hash == current.hash {
            return Ok(self.result(Action::Rollback, unit, &current, 0, None));
        }
        let doc = UnitDoc {
            revision: self.next_revision(unit, Some(&current)).await?,
            by: self.name.clone(),
            at_ms: now_ms(),
            published_from: None,
            ..target.clone()
        };
        self.commit_unit(Action::Rollback, unit, doc, at, wait)
            .await
    }

    /// The unit's next revision number: past the store's, and past what this node last
    /// applied (numbers are not reused after a wiped prefix).
    async fn next_revision(
        &self,
        unit: &str,
        current: Option<&UnitDoc>,
    ) -> Result<u64, StoreError> {
        let stored = self.store.next_revision(unit, current).await?;
        let seen = self.lock().desired.get(unit).map(|d| d.0 + 1).unwrap_or(1);
        Ok(stored.max(seen))
    }

    async fn commit_unit(
        &self,
        action: Action,
        unit: &str,
        doc: UnitDoc,
        at: i64,
        wait: Duration,
    ) -> Result<ChangeResult, ClusterError> {
        let revision = self
            .store
            .put_unit(unit, &doc, at, self.keep())
            .await?
            .ok_or_else(|| ClusterError::Concurrent(unit.to_owned()))?;
        self.accepted(action, unit, doc.revision);
        let waited = self
            .wait(unit, wait, |r: Option<&UnitReport>| match r {
                Some(r) if r.revision == doc.revision && r.hash == doc.hash => {
                    Some(r.error.clone())
                }
                _ => None,
            })
            .await?;
        Ok(self.result(action, unit, &doc, revision, waited))
    }

    /// `unload U --cluster`.
    pub async fn unload(&self, unit: &str, wait: Duration) -> Result<ChangeResult, ClusterError> {
        self.check_up().await?;
        let (current, at) = self.store.unit(unit).await?;
        let current = current.ok_or_else(|| not_cluster_unit(unit))?;
        let revision = self
            .store
            .delete_unit(unit, at)
            .await?
            .ok_or_else(|| ClusterError::Concurrent(unit.to_owned()))?;
        self.accepted(Action::Unload, unit, current.revision);
        let waited = self
            .wait(unit, wait, |r: Option<&UnitReport>| {
                r.is_none().then_some(None)
            })
            .await?;
        Ok(self.result(Action::Unload, unit, &current, revision, waited))
    }

    /// `pause|resume U --cluster`: desired operator state in the store.
    pub async fn set_paused(
        &self,
        unit: &str,
        paused: bool,
        wait: Duration,
    ) -> Result<ChangeResult, ClusterError> {
        self.check_up().await?;
        let (current, _) = self.store.unit(unit).await?;
        let current = current.ok_or_else(|| not_cluster_unit(unit))?;
        let doc = ControlDoc {
            paused,
            by: self.name.clone(),
            at_ms: now_ms(),
        };
        let revision = self
            .store
            .put_control(unit, &doc)
            .await?
            .ok_or_else(|| not_cluster_unit(unit))?;
        let action = if paused {
            Action::Pause
        } else {
            Action::Resume
        };
        self.accepted(action, unit, current.revision);
        let waited = self
            .wait(unit, wait, |r: Option<&UnitReport>| match r {
                Some(r) if r.paused == paused => Some(None),
                _ => None,
            })
            .await?;
        Ok(self.result(action, unit, &current, revision, waited))
    }

    fn accepted(&self, action: Action, unit: &str, revision: u64) {
        tracing::info!(unit, revision, node = %self.name, "cluster {} accepted", action.as_str());
        self.events.emit(EventKind::ClusterChange {
            action: action.as_str().into(),
            unit: unit.to_owned(),
            revision,
            accepted_by: self.name.clone(),
        });
    }

    fn result(
        &self,
        action: Action,
        unit: &str,
        doc: &UnitDoc,
        store_revision: i64,
        wait: Option<WaitResult>,
    ) -> ChangeResult {
        ChangeResult {
            action,
            unit: unit.to_owned(),
            revision: doc.revision,
            hash: Some(doc.hash.clone()),
            label: doc.label.clone(),
            store_revision,
            accepted_by: self.name.clone(),
            wait,
        }
    }

    /// Waits up to `limit` until every live node's report of `unit` is decided by
    /// `decided` (`Some(None)`: applied, `Some(Some(error))`: failed). `None`: no wait.
    async fn wait(
        &self,
        unit: &str,
        limit: Duration,
        decided: impl Fn(Option<&UnitReport>) -> Option<Option<String>>,
    ) -> Result<Option<WaitResult>, ClusterError> {
        if limit.is_zero() {
            return Ok(None);
        }
        let started = Instant::now();
        loop {
            let reports = self.store.reports().await?;
            let mut out = WaitResult::default();
            let mut pending = Vec::new();
            for (node, report) in &reports {
                match decided(report.units.get(unit)) {
                    Some(None) => out.synced.push(node.clone()),
                    Some(Some(error)) => out.failed.push(NodeError {
                        node: node.clone(),
                        error,
                    }),
                    None => pending.push(node.clone()),
                }
            }
            if pending.is_empty() || started.elapsed() >= limit {
                out.timed_out = pending;
                out.waited_ms = started.elapsed().as_millis() as u64;
                return Ok(Some(out));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `cluster status`: nodes × units. With the store down, this node's own view.
    pub async fn status(&self) -> ClusterStatus {
        let health = self.health();
        let snapshot = match self.store.snapshot().await {
            Ok(s) => Some(s),
            Err(e) => {
                if health.state == StoreState::Up {
                    self.set_health(StoreState::Down, Some(e.to_string()));
                }
                None
            }
        };
        let health = self.health();
        let Some(snap) = snapshot else {
            let local = self.lock().local.clone();
            let desired = self.lock().desired.clone();
            let units: Vec<UnitStatus> = local
                .units
                .iter()
                .map(|(u, r)| UnitStatus {
                    unit: u.clone(),
                    revision: desired.get(u).map(|d| d.0).unwrap_or(r.revision),
                    hash: r.hash.clone(),
                    label: None,
                    by: String::new(),
                    at_ms: 0,
                    paused: r.paused,
                })
                .collect();
            let reports = BTreeMap::from([(
                self.name.clone(),
                (true, local.applied_revision, local.units.clone()),
            )]);
            return ClusterStatus {
                cluster: self.cluster.clone(),
                node: self.name.clone(),
                store: health,
                nodes: ClusterStatus::matrix(&units, &reports),
                units,
            };
        };
        let units: Vec<UnitStatus> = snap
            .units
            .iter()
            .map(|(u, (d, _))| UnitStatus {
                unit: u.clone(),
                revision: d.revision,
                hash: d.hash.clone(),
                label: d.label.clone(),
                by: d.by.clone(),
                at_ms: d.at_ms,
                paused: snap.control.get(u).is_some_and(|c| c.paused),
            })
            .collect();
        let mut reports: BTreeMap<String, (bool, i64, BTreeMap<String, UnitReport>)> = snap
            .known
            .iter()
            .map(|n| (n.clone(), (false, 0, BTreeMap::new())))
            .collect();
        for (n, r) in snap.reports {
            reports.insert(n, (true, r.applied_revision, r.units));
        }
        ClusterStatus {
            cluster: self.cluster.clone(),
            node: self.name.clone(),
            store: health,
            nodes: ClusterStatus::matrix(&units, &reports),
            units,
        }
    }

    /// The audit record of a change this node applied from the store.
    fn audit_applied(&self, unit: &str, doc: Option<&UnitDoc>, outcome: &crate::engine::Outcome) {
        let before = BTreeMap::new();
        let after = BTreeMap::new();
        self.audit.sync(
            crate::audit::By::Cluster,
            serde_json::json!({
                "action": if doc.is_some() { "apply" } else { "unload" },
                "unit": unit,
                "cluster_revision": doc.map(|d| d.revision),
                "accepted_by": doc.map(|d| d.by.clone()),
                "node": self.name,
            }),
            std::slice::from_ref(outcome),
            &before,
            &after,
        );
    }
}

fn not_cluster_unit(unit: &str) -> ClusterError {
    ClusterError::Refused(format!(
        "unit \"{unit}\" is not a cluster unit (deploy it with `deploy {unit} --file F --cluster` or `publish {unit}`)"
    ))
}

//! The engine side of cluster mode: a cluster revision is applied through the same
//! transactional deploy as a local one (origin `cluster`, the cluster revision number
//! becomes the local one), so it is committed to state_dir like any deploy and restored
//! from there at start-up — a node starts from its local copy when the store is down. A
//! name used by a disk or pushed unit on this node is refused, never taken over (except by
//! `publish` from this node). `cluster.json` in state_dir keeps the last store revision
//! applied and this node's report per unit, so a restarted node resumes its watch there.

use super::*;
use deployments::protocol::cluster::UnitReport;
use serde::Deserialize;

/// The file in state_dir that remembers what this node applied from the store.
pub const LOCAL_FILE: &str = "cluster.json";

/// What this node applied from the store, kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalCopy {
    /// The cluster the copy belongs to (a node moved to another cluster starts afresh).
    pub cluster: String,
    /// The last store revision applied (the watch resumes after it).
    pub applied_revision: i64,
    pub units: BTreeMap<String, UnitReport>,
}

impl LocalCopy {
    pub fn load(state_dir: &std::path::Path, cluster: &str) -> LocalCopy {
        let path = state_dir.join(LOCAL_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<LocalCopy>(&bytes) {
                Ok(c) if c.cluster == cluster => c,
                Ok(_) => LocalCopy {
                    cluster: cluster.to_owned(),
                    ..Default::default()
                },
                Err(e) => {
                    tracing::error!(path = %path.display(), "cluster copy is damaged ({e}); a full resync from the store follows");
                    LocalCopy {
                        cluster: cluster.to_owned(),
                        ..Default::default()
                    }
                }
            },
            Err(_) => LocalCopy {
                cluster: cluster.to_owned(),
                ..Default::default()
            },
        }
    }

    pub fn save(&self, state_dir: &std::path::Path) {
        let path = state_dir.join(LOCAL_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("cluster copy serializes");
        if let Err(e) = crate::fsx::write_private_atomic(&path, &bytes) {
            tracing::error!(path = %path.display(), "cannot write the cluster copy: {e}");
        }
    }
}

/// Why a name of this node's own cannot be a cluster unit here, if it cannot.
fn clash(unit: &str, origin: Origin) -> Option<String> {
    match origin {
        Origin::Cluster => None,
        Origin::Disk => Some(format!(
            "unit \"{unit}\" is a disk unit on this node (conf/deployments/{unit}); a name used by both a disk unit and a cluster unit is refused: `publish {unit}` from this node to make it the cluster unit, or unload it and remove its directory"
        )),
        Origin::Pushed => Some(format!(
            "unit \"{unit}\" is a pushed unit on this node; a name used by both a local unit and a cluster unit is refused: unload it on this node first"
        )),
    }
}

/// Local changes of cluster units are refused (each unit of the batch is rejected): a
/// cluster unit changes through the store, so every node runs the same revision. A reload
/// (`Source::Disk`) re-activates the stored revision and is allowed.
pub(super) fn refuse_local(
    units: &BTreeMap<String, UnitSlot>,
    changes: &[Change],
) -> Option<Vec<Outcome>> {
    let refused = |c: &Change| {
        let cluster = units
            .get(c.unit())
            .is_some_and(|s| s.origin == Origin::Cluster);
        cluster
            && !matches!(
                c,
                Change::Deploy {
                    source: Source::Disk | Source::Cluster { .. },
                    ..
                }
            )
    };
    let bad: Vec<&str> = changes
        .iter()
        .filter(|c| refused(c))
        .map(Change::unit)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(
        changes
            .iter()
            .map(|c| {
                let unit = c.unit();
                let msg = if bad.contains(&unit) {
                    format!("unit \"{unit}\" is a cluster unit: change it for every node with --cluster (`deploy {unit} --file F --cluster`, `rollback {unit} --cluster`, `unload {unit} --cluster`)")
                } else {
                    format!("not applied: the batch was rejected because {} is a cluster unit", bad.join(", "))
                };
                Outcome::Rejected {
                    unit: unit.to_owned(),
                    errors: vec![name_diag(unit, msg)],
                }
            })
            .collect(),
    )
}

impl Engine {
    /// Applies a change from the store, past the refusal of local changes.
    async fn apply_from_store(&self, change: Change) -> Outcome {
        let mut units = self.lock().await;
        self.transact(&mut units, vec![change], Mode::Normal)
            .await
            .remove(0)
    }

    /// Whether `unit` may be a cluster unit on this node (`publish`: its disk unit becomes
    /// one). The error says what to do.
    pub async fn cluster_name_free(&self, unit: &str, publishing: bool) -> Result<(), String> {
        let units = self.units.lock().await;
        match units.get(unit) {
            Some(s) if !(publishing && s.origin == Origin::Disk) => match clash(unit, s.origin) {
                Some(e) => Err(e),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Applies cluster revision `revision` of `unit` as one transaction. The error is what
    /// the node reports (FAILED): the rejection's diagnostics, or a name clash.
    pub async fn apply_cluster(
        &self,
        unit: &str,
        revision: u64,
        files: BTreeMap<String, String>,
        publishing: bool,
    ) -> Result<Outcome, String> {
        self.cluster_name_free(unit, publishing).await?;
        let change = Change::Deploy {
            unit: unit.to_owned(),
            source: Source::Cluster { files, revision },
        };
        match self.apply_from_store(change).await {
            Outcome::Rejected { errors, .. } => Err(errors
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; ")),
            o => Ok(o),
        }
    }

    /// Unloads `unit` if it is a cluster unit here (a local unit of that name is left alone).
    pub async fn unload_cluster(&self, unit: &str) -> Option<Outcome> {
        let is_cluster = self
            .units
            .lock()
            .await
            .get(unit)
            .is_some_and(|s| s.origin == Origin::Cluster);
        if !is_cluster {
            return None;
        }
        let change = Change::Unload {
            unit: unit.to_owned(),
        };
        Some(self.apply_from_store(change).await)
    }

    /// The cluster units this node runs: name → (local revision, hash).
    pub async fn cluster_units(&self) -> BTreeMap<String, (u64, String)> {
        self.snapshot()
            .iter()
            .filter(|(_, s)| s.origin == Origin::Cluster)
            .filter_map(|(n, s)| {
                let c = s.current.as_ref()?;
                Some((n.clone(), (c.info.number, c.hash.clone())))
            })
            .collect()
    }

    /// Pauses or resumes a cluster unit (the desired state in the store) with the same
    /// operator command as a local pause; false when this node does not run it.
    pub async fn set_cluster_paused(&self, unit: &str, paused: bool) -> bool {
        let is_cluster = self
            .units
            .lock()
            .await
            .get(unit)
            .is_some_and(|s| s.origin == Origin::Cluster && s.current.is_some());
        if !is_cluster {
            return false;
        }
        let was = self
            .snapshot()
            .get(unit)
            .is_some_and(|v| v.control.paused.load(Relaxed));
        let unit = unit.to_owned();
        let command = if paused {
            super::command::Command::PauseUnit {
                unit: unit.clone(),
                hold_ms: 0,
            }
        } else {
            super::command::Command::ResumeUnit { unit: unit.clone() }
        };
        let Ok(state) = self.control(command).await else {
            return false;
        };
        if was != paused {
            self.events.emit(EventKind::StateChanged {
                object: format!("esb:type=Unit,name={unit}"),
                state,
            });
        }
        true
    }

    /// The dry run of a cluster deploy on the accepting node: parse, validate, and check
    /// against every other unit running here. The files the unit is made of, their hash
    /// (as every node will compute it) and the label.
    pub async fn preview_cluster(
        &self,
        unit: &str,
        files: BTreeMap<String, String>,
    ) -> Result<PreviewedCluster, Vec<Diagnostic>> {
        let (parsed, _) = self
            .preview(
                unit,
                Source::Cluster {
                    files: files.clone(),
                    revision: 0,
                },
            )
            .await?;
        let sources =
            UnitSources::from_files(unit, files).map_err(|e| vec![diag(unit, e.to_string())])?;
        let used = keep_used(sources, &parsed);
        Ok(PreviewedCluster {
            hash: used.content_hash(),
            label: parsed.unit.label.clone(),
            files: used.files,
        })
    }

    /// The files of `unit` on this node's disk (for `publish`), as a deploy would read them.
    pub fn disk_files(&self, unit: &str) -> Result<BTreeMap<String, String>, String> {
        let dir = self.unit_dir(unit).map_err(|d| d.to_string())?;
        if !dir.is_dir() {
            return Err(format!(
                "unit directory {} does not exist on this node",
                dir.display()
            ));
        }
        UnitSources::read_dir(&dir)
            .map(|s| s.files)
            .map_err(|e| e.to_string())
    }
}

/// What a cluster deploy's dry run found.
pub struct PreviewedCluster {
    pub hash: String,
    pub label: Option<String>,
    pub files: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_copy_round_trips_and_belongs_to_one_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LocalCopy::load(dir.path(), "prod");
        assert_eq!(c.applied_revision, 0);
        c.applied_revision = 42;
        c.units.insert(
            "orders".into(),
            UnitReport {
                revision: 3,
                hash: "h".into(),
                error: None,
                paused: true,
                applied_at_ms: 1,
            },
        );
        c.save(dir.path());
        assert_eq!(LocalCopy::load(dir.path(), "prod"), c);
        assert_eq!(LocalCopy::load(dir.path(), "other").applied_revision, 0);
        std::fs::write(dir.path().join(LOCAL_FILE), "{").unwrap();
        assert_eq!(LocalCopy::load(dir.path(), "prod").applied_revision, 0);
    }

    #[test]
    fn local_names_are_not_taken_over() {
        assert!(clash("a", Origin::Cluster).is_none());
        let e = clash("a", Origin::Disk).unwrap();
        assert!(e.contains("disk unit") && e.contains("publish a"), "{e}");
        assert!(clash("a", Origin::Pushed).unwrap().contains("pushed unit"));
    }
}

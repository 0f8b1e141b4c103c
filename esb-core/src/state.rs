//! Durable deployment state in `state_dir`: every unit's origin, current revision, kept
//! history and revision numbering live in one manifest (`deployments.json`) that each
//! transaction replaces atomically (write, fsync, rename, fsync the directory) — so a batch
//! commits in one step — and the sources of every kept revision live under
//! `revisions/<unit>/<number>/`, written and fsynced in full (ending with a `.complete`
//! marker that holds their hash) before the manifest refers to them. A damaged entry is
//! reported loudly, set aside as `*.damaged-<time>` and never blocks serving valid disk
//! files. Everything is created 0600 (directories 0700): unit sources may hold secrets.

use crate::fsx::{create_private_dir, create_private_file, write_private_atomic};
use deployments::source::{is_valid_unit_name, Origin};
use deployments::UnitSources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const MANIFEST: &str = "deployments.json";
const REVISIONS: &str = "revisions";
const COMPLETE: &str = ".complete";
const FORMAT: u32 = 1;
/// Revision numbers beyond this are damage, not history (2^53: exact in every JSON reader).
pub const MAX_REVISION: u64 = 1 << 53;

/// One kept revision as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionRecord {
    pub number: u64,
    pub hash: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub deployed_at_ms: u64,
    /// How long the deploy took, from the start of its transaction until its commit began.
    pub deploy_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub origin: Origin,
    /// The number of the active revision (one of `history`).
    pub current: u64,
    pub next_revision: u64,
    /// Kept revisions, oldest first, the current one included.
    pub history: Vec<RevisionRecord>,
    /// Hash of the disk files as last read (disk units): when they are unchanged at
    /// start-up, the current revision stays active even if it differs from them (after a
    /// rollback, say) — the files did not change, so nothing is redeployed.
    #[serde(default)]
    pub disk_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub units: BTreeMap<String, UnitRecord>,
    /// Next revision number of units that were unloaded, so a later load continues it.
    #[serde(default)]
    pub retired: BTreeMap<String, u64>,
}

impl Manifest {
    /// The next revision number of `unit` whether it is loaded or was unloaded.
    pub fn next_revision(&self, unit: &str) -> u64 {
        self.units
            .get(unit)
            .map(|r| r.next_revision)
            .or_else(|| self.retired.get(unit).copied())
            .unwrap_or(1)
    }
}

pub struct StateStore {
    dir: PathBuf,
    manifest: Mutex<Manifest>,
}

fn now_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `bytes` to a new private file at `path` and fsyncs it.
fn write_private_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = create_private_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(path: &Path) {
    if let Ok(d) = fs::File::open(path) {
        let _ = d.sync_all();
    }
}

/// Moves a damaged entry aside under a name that says so, loudly.
fn set_aside(path: &Path, why: &str) {
    let aside = PathBuf::from(format!("{}.damaged-{}", path.display(), now_tag()));
    match fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            path = %path.display(),
            moved_to = %aside.display(),
            "damaged deployment state set aside: {why}; esb goes on without it"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            "damaged deployment state ({why}) could not be set aside: {e}"
        ),
    }
}

/// Why a unit record cannot be trusted, if it cannot.
fn record_problem(unit: &str, r: &UnitRecord) -> Option<String> {
    if !is_valid_unit_name(unit) {
        return Some(format!("invalid unit name \"{unit}\""));
    }
    if r.next_revision == 0 || r.next_revision > MAX_REVISION {
        return Some(format!("next revision {} out of range", r.next_revision));
    }
    if let Some(h) = r
        .history
        .iter()
        .find(|h| h.number == 0 || h.number >= r.next_revision || !is_hash(&h.hash))
    {
        return Some(format!("revision {} is out of range or unhashed", h.number));
    }
    if !r.history.iter().any(|h| h.number == r.current) {
        return Some(format!("current revision {} is not kept", r.current));
    }
    None
}

fn is_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

impl StateStore {
    /// Opens (or starts) the state in `state_dir`. Never fails: damaged parts are set
    /// aside and what can be recovered from the revision copies is.
    pub fn open(state_dir: &Path) -> StateStore {
        let store = StateStore {
            dir: state_dir.to_path_buf(),
            manifest: Mutex::new(Manifest::default()),
        };
        let revisions = store.dir.join(REVISIONS);
        if revisions.exists() && !revisions.is_dir() {
            set_aside(&revisions, "not a directory");
        }
        let path = store.dir.join(MANIFEST);
        let manifest = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) if m.format == FORMAT => Some(m),
                Ok(m) => {
                    set_aside(&path, &format!("unknown format {}", m.format));
                    None
                }
                Err(e) => {
                    set_aside(&path, &format!("not a readable manifest: {e}"));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Manifest::default()),
            Err(e) => {
                if path.is_dir() {
                    set_aside(&path, "a directory where the manifest belongs");
                } else {
                    tracing::error!(path = %path.display(), "cannot read the deployment manifest: {e}");
                }
                None
            }
        };
        let mut manifest = match manifest {
            Some(m) => m,
            None => store.recover(),
        };
        manifest.format = FORMAT;
        let damaged: Vec<(String, String)> = manifest
            .units
            .iter()
            .filter_map(|(u, r)| record_problem(u, r).map(|p| (u.clone(), p)))
            .collect();
        for (unit, why) in damaged {
            tracing::error!(unit, "deployment state of unit is damaged ({why}); recovering it from its revision copies");
            manifest.units.remove(&unit);
            if let Some(r) = store.recover_unit(&unit) {
                manifest.units.insert(unit, r);
            }
        }
        manifest
            .retired
            .retain(|u, n| is_valid_unit_name(u) && *n > 0 && *n <= MAX_REVISION);
        *store.manifest.lock().expect("manifest") = manifest;
        store
    }

    /// Rebuilds a manifest from the revision copies alone (the manifest was damaged).
    fn recover(&self) -> Manifest {
        let mut m = Manifest {
            format: FORMAT,
            ..Manifest::default()
        };
        let Ok(entries) = fs::read_dir(self.dir.join(REVISIONS)) else {
            return m;
        };
        for e in entries.flatten() {
            let unit = e.file_name().to_string_lossy().into_owned();
            if let Some(r) = self.recover_unit(&unit) {
                tracing::warn!(
                    unit,
                    revision = r.current,
                    "recovered unit state from its revision copies"
                );
                m.units.insert(unit, r);
            }
        }
        m
    }

    /// A unit's record from its intact revision copies: the highest is taken as current.
    fn recover_unit(&self, unit: &str) -> Option<UnitRecord> {
        if !is_valid_unit_name(unit) {
            return None;
        }
        let mut history = Vec::new();
        let mut highest = 0;
        for e in fs::read_dir(self.unit_revisions(unit)).ok()?.flatten() {
            let Some(number) = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n > 0 && *n < MAX_REVISION)
            else {
                continue;
            };
            highest = highest.max(number);
            let Ok(hash) = fs::read_to_string(e.path().join(COMPLETE)) else {
                continue;
            };
            if self.read_revision(unit, number, hash.trim()).is_some() {
                history.push(RevisionRecord {
                    number,
                    hash: hash.trim().to_owned(),
                    label: None,
                    deployed_at_ms: 0,
                    deploy_ms: 0.0,
                });
            }
        }
        history.sort_by_key(|h| h.number);
        let current = history.last()?.number;
        Some(UnitRecord {
            origin: Origin::Disk,
            current,
            next_revision: highest + 1,
            history,
            disk_hash: None,
        })
    }

    pub fn manifest(&self) -> Manifest {
        self.manifest.lock().expect("manifest").clone()
    }

    fn unit_revisions(&self, unit: &str) -> PathBuf {
        self.dir.join(REVISIONS).join(unit)
    }

    fn revision_dir(&self, unit: &str, number: u64) -> PathBuf {
        self.unit_revisions(unit).join(number.to_string())
    }

    /// Writes revision `number`'s sources in full unless an intact copy is there already.
    pub fn write_revision(
        &self,
        unit: &str,
        number: u64,
        sources: &UnitSources,
    ) -> std::io::Result<()> {
        let hash = sources.content_hash();
        if self.read_revision(unit, number, &hash).is_some() {
            return Ok(());
        }
        let parent = self.unit_revisions(unit);
        if parent.exists() && !parent.is_dir() {
            set_aside(&parent, "not a directory");
        }
        create_private_dir(&parent)?;
        let tmp = parent.join(format!(".tmp-{number}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        create_private_dir(&tmp)?;
        for (rel, text) in &sources.files {
            let path = tmp.join(rel);
            create_private_dir(path.parent().expect("file has a parent"))?;
            write_private_synced(&path, text.as_bytes())?;
        }
        write_private_synced(&tmp.join(COMPLETE), hash.as_bytes())?;
        sync_dir(&tmp);
        let dest = self.revision_dir(unit, number);
        if dest.exists() {
            set_aside(&dest, "incomplete or different from its manifest entry");
        }
        fs::rename(&tmp, &dest)?;
        sync_dir(&parent);
        Ok(())
    }

    /// The sources of a kept revision, if its copy is complete and hashes to `hash`. A
    /// damaged copy is set aside.
    pub fn read_revision(&self, unit: &str, number: u64, hash: &str) -> Option<UnitSources> {
        let dir = self.revision_dir(unit, number);
        if !dir.exists() {
            return None;
        }
        let marker = fs::read_to_string(dir.join(COMPLETE)).unwrap_or_default();
        let sources = UnitSources::read_dir(&dir).ok().map(|mut s| {
            s.name = unit.to_owned();
            s.origin = None;
            s
        });
        match sources {
            Some(s) if marker.trim() == hash && s.content_hash() == hash => Some(s),
            _ => {
                set_aside(&dir, &format!("revision {number} of unit \"{unit}\" is incomplete or does not match its hash"));
                None
            }
        }
    }

    /// Replaces the manifest atomically, then removes revision copies nothing refers to.
    pub fn commit(&self, next: Manifest) -> std::io::Result<()> {
        let mut current = self.manifest.lock().expect("manifest");
        if *current == next {
            return Ok(());
        }
        create_private_dir(&self.dir)?;
        let bytes = serde_json::to_vec_pretty(&next).expect("manifest serializes");
        write_private_atomic(&self.dir.join(MANIFEST), &bytes)?;
        *current = next;
        self.collect_garbage(&current);
        Ok(())
    }

    /// Removes revision copies the manifest no longer refers to (best effort: a leftover
    /// copy is harmless and removed by a later commit).
    fn collect_garbage(&self, m: &Manifest) {
        let Ok(units) = fs::read_dir(self.dir.join(REVISIONS)) else {
            return;
        };
        for u in units.flatten() {
            let name = u.file_name().to_string_lossy().into_owned();
            if name.contains(".damaged-") {
                continue;
            }
            let Some(record) = m.units.get(&name) else {
                let _ = fs::remove_dir_all(u.path());
                continue;
            };
            let Ok(revs) = fs::read_dir(u.path()) else {
                continue;
            };
            for r in revs.flatten() {
                let keep = r
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| record.history.iter().any(|h| h.number == n));
                let file_name = r.file_name();
                let damaged = file_name.to_string_lossy().contains(".damaged-");
                if !keep && !damaged {
                    let _ = fs::remove_dir_all(r.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(n: u64, hash: &str) -> UnitRecord {
        UnitRecord {
            origin: Origin::Pushed,
            current: n,
            next_revision: n + 1,
            history: vec![RevisionRecord {
                number: n,
                hash: hash.into(),
                label: None,
                deployed_at_ms: 1,
                deploy_ms: 1.0,
            }],
            disk_hash: None,
        }
    }

    #[test]
    fn commits_and_reopens_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path());
        let s = UnitSources::from_content("orders", "version = \"1\"\n");
        store.write_revision("orders", 3, &s).unwrap();
        let mut m = store.manifest();
        m.units
            .insert("orders".into(), record(3, &s.content_hash()));
        store.commit(m.clone()).unwrap();
        let again = StateStore::open(dir.path());
        assert_eq!(again.manifest(), m);
        let back = again.read_revision("orders", 3, &s.content_hash()).unwrap();
        assert_eq!(back.files, s.files);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(MANIFEST)), 0o600);
        assert_eq!(mode(&dir.path().join("revisions/orders/3")), 0o700);
        assert_eq!(
            mode(&dir.path().join("revisions/orders/3/unit.toml")),
            0o600
        );
    }

    #[test]
    fn damaged_manifest_is_set_aside_and_numbering_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path());
        let s = UnitSources::from_content("orders", "version = \"1\"\n");
        store.write_revision("orders", 7, &s).unwrap();
        fs::write(dir.path().join(MANIFEST), "{ not json").unwrap();
        let again = StateStore::open(dir.path());
        let r = &again.manifest().units["orders"];
        assert_eq!((r.current, r.next_revision), (7, 8));
        let aside = fs::read_dir(dir.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("deployments.json.damaged-")
        });
        assert!(aside);
    }

    #[test]
    fn absurd_revision_numbers_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path());
        let s = UnitSources::from_content("orders", "x = 1\n");
        store.write_revision("orders", 2, &s).unwrap();
        let mut m = store.manifest();
        let mut r = record(2, &s.content_hash());
        r.next_revision = u64::MAX;
        m.units.insert("orders".into(), r);
        store.commit(m).unwrap();
        let r = StateStore::open(dir.path()).manifest().units["orders"].clone();
        assert_eq!(r.next_revision, 3);
    }

    #[test]
    fn a_stray_file_where_revisions_belong_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("revisions"), "junk").unwrap();
        let store = StateStore::open(dir.path());
        let s = UnitSources::from_content("orders", "x = 1\n");
        store.write_revision("orders", 1, &s).unwrap();
        assert!(store
            .read_revision("orders", 1, &s.content_hash())
            .is_some());
    }
}

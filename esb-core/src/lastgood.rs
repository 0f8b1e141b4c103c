//! Last-good copies: the sources of each unit's active revision, persisted so that a unit
//! whose files became invalid can still start. Layout: `STATE/last-good/<unit>/<hash>/…`
//! plus `STATE/last-good/<unit>/CURRENT` naming the hash and revision. The copy is written
//! and fsynced in full before CURRENT is replaced by rename, so a crash at any point leaves
//! either the old or the new copy, never a torn one.

use deployments::UnitSources;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LastGood {
    dir: PathBuf,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Current {
    hash: String,
    revision: u64,
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(path: &Path) {
    if let Ok(d) = fs::File::open(path) {
        let _ = d.sync_all();
    }
}

/// The sources of a copy, if it is complete and hashes to `hash`.
fn read_complete(copy: &Path, hash: &str) -> Option<UnitSources> {
    if !copy.join(".complete").exists() {
        return None;
    }
    let sources = UnitSources::read_dir(copy).ok()?;
    (sources.content_hash() == hash).then_some(sources)
}

fn intact(copy: &Path, hash: &str) -> bool {
    read_complete(copy, hash).is_some()
}

impl LastGood {
    pub fn new(state_dir: &Path) -> Self {
        LastGood {
            dir: state_dir.join("last-good"),
        }
    }

    pub fn save(&self, sources: &UnitSources, revision: u64) -> std::io::Result<()> {
        let unit_dir = self.dir.join(&sources.name);
        let hash = sources.content_hash();
        let copy = unit_dir.join(&hash);
        fs::create_dir_all(&unit_dir)?;
        // Reuse an existing copy only if it reads back complete and unchanged.
        if !intact(&copy, &hash) {
            let tmp = unit_dir.join(format!(".tmp-{hash}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            for (rel, text) in &sources.files {
                let path = tmp.join(rel);
                fs::create_dir_all(path.parent().expect("file has a parent"))?;
                write_synced(&path, text.as_bytes())?;
            }
            write_synced(&tmp.join(".complete"), b"")?;
            sync_dir(&tmp);
            let _ = fs::remove_dir_all(&copy);
            fs::rename(&tmp, &copy)?;
        }
        let current = serde_json::to_vec(&Current {
            hash: hash.clone(),
            revision,
        })
        .expect("json");
        let tmp = unit_dir.join(".CURRENT.tmp");
        write_synced(&tmp, &current)?;
        fs::rename(&tmp, unit_dir.join("CURRENT"))?;
        sync_dir(&unit_dir);
        // Older copies are no longer referenced: move them aside first, so a crash during
        // the removal never leaves a half-deleted copy under its real name.
        if let Ok(entries) = fs::read_dir(&unit_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && name != hash {
                    let trash = unit_dir.join(format!(".trash-{name}"));
                    let doomed =
                        if name.starts_with(".trash-") || fs::rename(e.path(), &trash).is_err() {
                            e.path()
                        } else {
                            trash
                        };
                    let _ = fs::remove_dir_all(doomed);
                }
            }
        }
        Ok(())
    }

    /// The last-good sources of `unit` and their revision number, if any.
    pub fn load(&self, unit: &str) -> Option<(UnitSources, u64)> {
        let unit_dir = self.dir.join(unit);
        let current: Current =
            serde_json::from_slice(&fs::read(unit_dir.join("CURRENT")).ok()?).ok()?;
        let copy = unit_dir.join(&current.hash);
        let Some(mut sources) = read_complete(&copy, &current.hash) else {
            tracing::warn!(unit, copy = %copy.display(), "last-good copy is incomplete or damaged; ignoring it");
            return None;
        };
        sources.name = unit.to_owned();
        Some((sources, current.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_complete_copies() {
        let dir = tempfile::tempdir().unwrap();
        let lg = LastGood::new(dir.path());
        let mut s = UnitSources::from_content("orders", "version = \"1\"\n");
        s.files.insert("more/x.toml".into(), "# x\n".into());
        lg.save(&s, 3).unwrap();
        let (back, rev) = lg.load("orders").unwrap();
        assert_eq!(rev, 3);
        assert_eq!(back.files, s.files);
        let s2 = UnitSources::from_content("orders", "version = \"2\"\n");
        lg.save(&s2, 4).unwrap();
        let (back, rev) = lg.load("orders").unwrap();
        assert_eq!((back.files, rev), (s2.files, 4));
        assert!(lg.load("other").is_none());
    }
}

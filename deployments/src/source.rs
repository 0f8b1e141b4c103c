//! The files of a deployment unit, read from a directory or given in memory, and their
//! content hash. Editor temporaries and backups (`*.swp`, `*~`, `.#*`, `4913`, …) are never
//! part of a unit. The hash is SHA-256 over (path, content) in path order, so it is stable
//! whatever order the file system lists files in.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The main file of every unit.
pub const UNIT_FILE: &str = "unit.toml";

/// The source files of one unit: relative path (with `/` separators) → text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSources {
    pub name: String,
    /// Where the files came from, used to print paths operators recognise
    /// (`conf/deployments/orders`); `None` for content given in memory.
    pub origin: Option<PathBuf>,
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read unit directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid UTF-8 text; unit files must be UTF-8 TOML")]
    NotUtf8 { path: PathBuf },
}

/// True for files editors create beside the real ones while saving.
pub fn is_ignored_file(name: &str) -> bool {
    name.starts_with(".#")
        || name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp")
        || name.ends_with(".bak")
        || name.ends_with(".orig")
        || name == "4913"
        || (name.starts_with('#') && name.ends_with('#'))
}

impl UnitSources {
    /// A unit made of a single `unit.toml` given in memory.
    pub fn from_content(name: &str, unit_toml: &str) -> Self {
        let mut files = BTreeMap::new();
        files.insert(UNIT_FILE.to_owned(), unit_toml.to_owned());
        UnitSources {
            name: name.to_owned(),
            origin: None,
            files,
        }
    }

    /// Reads every non-ignored file below `dir`; the unit is named after the directory.
    pub fn read_dir(dir: &Path) -> Result<Self, SourceError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = BTreeMap::new();
        read_into(dir, dir, &mut files)?;
        Ok(UnitSources {
            name,
            origin: Some(dir.to_path_buf()),
            files,
        })
    }

    /// The path to show for a file of this unit.
    pub fn display_path(&self, rel: &str) -> String {
        match &self.origin {
            Some(dir) => dir.join(rel).display().to_string(),
            None => format!("{}/{rel}", self.name),
        }
    }

    /// SHA-256 of the unit's files, hex encoded.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for (path, text) in &self.files {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn read_into(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_ignored_file(&name) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            read_into(root, &path, files)?;
        } else if kind.is_file() || kind.is_symlink() {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // Vanished between listing and reading: an editor's rename in progress.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| SourceError::NotUtf8 { path: path.clone() })?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_files_are_ignored() {
        for f in [
            "unit.toml.swp",
            ".unit.toml.swp",
            "unit.toml~",
            ".#unit.toml",
            "4913",
            "#unit.toml#",
        ] {
            assert!(is_ignored_file(f), "{f}");
        }
        for f in ["unit.toml", "extra.toml", "payload.json"] {
            assert!(!is_ignored_file(f), "{f}");
        }
    }

    #[test]
    fn hash_ignores_editor_files_and_is_stable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("unit.toml"), "x = 1").unwrap();
        std::fs::write(a.path().join("more.toml"), "y = 2").unwrap();
        // Created in the other order, plus editor litter.
        std::fs::write(b.path().join("more.toml"), "y = 2").unwrap();
        std::fs::write(b.path().join("unit.toml"), "x = 1").unwrap();
        std::fs::write(b.path().join("unit.toml.swp"), "junk").unwrap();
        std::fs::write(b.path().join("4913"), "").unwrap();
        std::fs::write(b.path().join("unit.toml~"), "old").unwrap();
        let ha = UnitSources::read_dir(a.path()).unwrap().content_hash();
        let hb = UnitSources::read_dir(b.path()).unwrap().content_hash();
        assert_eq!(ha, hb);
        assert_eq!(ha.len(), 64);
        std::fs::write(b.path().join("more.toml"), "y = 3").unwrap();
        assert_ne!(ha, UnitSources::read_dir(b.path()).unwrap().content_hash());
    }

    #[test]
    fn moving_content_between_files_changes_the_hash() {
        let mut one = UnitSources::from_content("u", "ab");
        one.files.insert("b".into(), "c".into());
        let mut two = UnitSources::from_content("u", "a");
        two.files.insert("b".into(), "bc".into());
        assert_ne!(one.content_hash(), two.content_hash());
    }
}

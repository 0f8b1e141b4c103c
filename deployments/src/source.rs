//! The files of a deployment unit, read from a directory or given in memory, and their
//! content hash. Editor temporaries and backups (`*.swp`, `*~`, `.#*`, `4913`, …) are never
//! part of a unit. The hash is SHA-256 over (path, content) in path order, so it is stable
//! whatever order the file system lists files in.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The main file of every unit.
pub const UNIT_FILE: &str = "unit.toml";

/// Where a unit's files come from (DESIGN §9): its directory under the deployments
/// directory, content pushed over the management endpoint and kept in state_dir, or the
/// cluster store (applied from etcd and kept in state_dir as last-good).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Disk,
    Pushed,
    Cluster,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Disk => "disk",
            Origin::Pushed => "pushed",
            Origin::Cluster => "cluster",
        }
    }

    /// Whether the unit's files are kept in state_dir rather than read from its directory
    /// (pushed and cluster units): reloads from disk and the hot deployer leave it alone.
    pub fn is_stored(self) -> bool {
        matches!(self, Origin::Pushed | Origin::Cluster)
    }
}

/// The source files of one unit: relative path (with `/` separators) → text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSources {
    pub name: String,
    /// Where the files came from, used to print paths operators recognise
    /// (`conf/deployments/orders`); `None` for content given in memory.
    pub origin: Option<PathBuf>,
    pub files: BTreeMap<String, String>,
}

/// Limits on what a unit directory may hold (documented in docs/limits.md).
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// All files of one unit together.
pub const MAX_UNIT_BYTES: u64 = 32 << 20;
pub const MAX_UNIT_FILES: usize = 1_000;
/// Subdirectory levels below the unit directory.
pub const MAX_DIR_DEPTH: usize = 16;

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
    #[error("{path}: {what}; unit files must be regular files inside the unit directory (copy the file in instead)")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error(
        "{path}: {what} exceeds the limit of {limit} bytes; split the unit or shrink the file"
    )]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },
    #[error("{path}: more than {MAX_UNIT_FILES} files; a unit holds at most {MAX_UNIT_FILES}")]
    TooManyFiles { path: PathBuf },
    #[error("{path}: directories nest deeper than {MAX_DIR_DEPTH} levels")]
    TooDeep { path: PathBuf },
    #[error("invalid unit name \"{name}\": unit names are [a-z0-9][a-z0-9_-]* (at most 64 characters), the name of a directory under the deployments directory")]
    BadName { name: String },
}

/// `[a-z0-9][a-z0-9_-]*`, at most 64 characters: safe as a directory name and in object
/// names (never `..`, `/` or an absolute path).
pub fn is_valid_unit_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 64
}

/// The directory of unit `name` under `deployments`: the one place a unit name becomes a
/// path, so a name is checked before any file-system access.
pub fn unit_dir(deployments: &Path, name: &str) -> Result<PathBuf, SourceError> {
    if is_valid_unit_name(name) {
        Ok(deployments.join(name))
    } else {
        Err(SourceError::BadName {
            name: name.to_owned(),
        })
    }
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

    /// A unit made of files given in memory (relative path → text), checked like files
    /// read from a directory: relative paths inside the unit, no editor litter, the same
    /// size limits.
    pub fn from_files(name: &str, files: BTreeMap<String, String>) -> Result<Self, SourceError> {
        let bad = |path: &str, what: &'static str| SourceError::NotRegular {
            path: PathBuf::from(format!("{name}/{path}")),
            what,
        };
        if files.len() > MAX_UNIT_FILES {
            return Err(SourceError::TooManyFiles { path: name.into() });
        }
        let mut total = 0u64;
        for (rel, text) in &files {
            let parts: Vec<&str> = rel.split('/').collect();
            if rel.is_empty()
                || rel.starts_with('/')
                || parts
                    .iter()
                    .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\'))
            {
                return Err(bad(rel, "not a relative path inside the unit"));
            }
            if parts.iter().any(|p| is_ignored_file(p)) {
                return Err(bad(rel, "an editor or hidden file name"));
            }
            if text.len() as u64 > MAX_FILE_BYTES {
                return Err(SourceError::TooLarge {
                    path: format!("{name}/{rel}").into(),
                    what: "the file",
                    limit: MAX_FILE_BYTES,
                });
            }
            total += text.len() as u64;
        }
        if total > MAX_UNIT_BYTES {
            return Err(SourceError::TooLarge {
                path: name.into(),
                what: "the unit's files together",
                limit: MAX_UNIT_BYTES,
            });
        }
        Ok(UnitSources {
            name: name.to_owned(),
            origin: None,
            files,
        })
    }

    /// Only the files the unit uses (`unit.toml` and what it includes): the rest of a
    /// directory — notes, payload samples — is not part of the revision or its hash.
    pub fn retain_used(&mut self, used: &[String]) {
        self.files.retain(|rel, _| used.iter().any(|u| u == rel));
    }

    /// Reads unit `name` from its directory under `deployments`, checking the name first.
    pub fn read_unit(deployments: &Path, name: &str) -> Result<Self, SourceError> {
        Self::read_dir(&unit_dir(deployments, name)?)
    }

    /// Reads every non-ignored file below `dir`; the unit is named after the directory.
    /// Only regular files count: a symbolic link, FIFO, socket or device is an error (never
    /// followed or opened in a way that could block), and sizes are bounded.
    pub fn read_dir(dir: &Path) -> Result<Self, SourceError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = BTreeMap::new();
        let mut budget = Budget {
            bytes: MAX_UNIT_BYTES,
            root: dir,
        };
        read_into(dir, dir, 0, &mut files, &mut budget)?;
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

struct Budget<'a> {
    bytes: u64,
    root: &'a Path,
}

fn read_into(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut BTreeMap<String, String>,
    budget: &mut Budget<'_>,
) -> Result<(), SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    if depth > MAX_DIR_DEPTH {
        return Err(SourceError::TooDeep {
            path: dir.to_path_buf(),
        });
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_ignored_file(&name) {
            continue;
        }
        let path = entry.path();
        // Not followed: the entry's own type.
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e)),
        };
        if kind.is_dir() {
            read_into(root, &path, depth + 1, files, budget)?;
            continue;
        }
        if !kind.is_file() {
            return Err(SourceError::NotRegular {
                path,
                what: special_kind(&kind),
            });
        }
        let Some(bytes) = read_regular(&path)? else {
            // Vanished between listing and reading: an editor's rename in progress.
            continue;
        };
        budget.bytes = match budget.bytes.checked_sub(bytes.len() as u64) {
            Some(left) => left,
            None => {
                return Err(SourceError::TooLarge {
                    path: budget.root.to_path_buf(),
                    what: "the unit's files together",
                    limit: MAX_UNIT_BYTES,
                })
            }
        };
        if files.len() >= MAX_UNIT_FILES {
            return Err(SourceError::TooManyFiles {
                path: budget.root.to_path_buf(),
            });
        }
        let text =
            String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 { path: path.clone() })?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.insert(rel, text);
    }
    Ok(())
}

fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Reads one regular file: opened without following a symbolic link and without blocking
/// (a FIFO swapped in after listing cannot stall the reader), checked to be a regular
/// file once open, and read up to the size limit. `None` if it vanished.
fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, SourceError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(SourceError::NotRegular {
                path: path.to_path_buf(),
                what: "a symbolic link",
            })
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SourceError::NotRegular {
            path: path.to_path_buf(),
            what: special_kind(&meta.file_type()),
        });
    }
    let too_large = || SourceError::TooLarge {
        path: path.to_path_buf(),
        what: "the file",
        limit: MAX_FILE_BYTES,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(Some(bytes))
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

    #[test]
    fn only_regular_files_inside_the_unit_are_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.toml"), "x = 1").unwrap();
        let unit = tempfile::tempdir().unwrap();
        std::fs::write(unit.path().join("unit.toml"), "").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.toml"),
            unit.path().join("inc.toml"),
        )
        .unwrap();
        let e = UnitSources::read_dir(unit.path()).unwrap_err().to_string();
        assert!(e.contains("inc.toml: a symbolic link"), "{e}");
        std::fs::remove_file(unit.path().join("inc.toml")).unwrap();
        let fifo = std::ffi::CString::new(unit.path().join("p.toml").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = UnitSources::read_dir(unit.path()).unwrap_err().to_string();
        assert!(e.contains("p.toml: a FIFO"), "{e}");
    }

    #[test]
    fn oversized_files_are_refused() {
        let unit = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(unit.path().join("unit.toml")).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = UnitSources::read_dir(unit.path()).unwrap_err().to_string();
        assert!(e.contains("exceeds the limit"), "{e}");
    }

    #[test]
    fn unit_names_never_leave_the_deployments_directory() {
        let base = Path::new("/srv/conf/deployments");
        for bad in ["../outside/x", "./../x", "/etc", "a/b", "..", "", "X"] {
            let e = unit_dir(base, bad).unwrap_err().to_string();
            assert!(e.contains("invalid unit name"), "{bad}: {e}");
        }
        assert_eq!(unit_dir(base, "orders").unwrap(), base.join("orders"));
    }
}

//! Private files and directories in `state_dir`: tokens, the audit log and revision copies
//! hold secrets (deployed units carry header values such as API keys), so whatever esb
//! creates there is mode 0600 (directories 0700) from the first byte — never created
//! world-readable and tightened afterwards. Modes only ever get stricter here.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;

/// Creates `path` and any missing parents with mode 0700. An existing directory keeps its
/// mode; [`loose_bits`] tells whether it is open to others.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Opens `path` for appending, creating it with mode 0600. An existing file that group or
/// others may access is tightened to 0600; the old mode is returned so the caller can warn.
pub fn open_private_append(path: &Path) -> io::Result<(File, Option<u32>)> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    let was = tighten(&f)?;
    Ok((f, was))
}

/// Creates (or truncates) `path` for writing with mode 0600, tightening an existing file.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    tighten(&f)?;
    Ok(f)
}

/// Replaces `path` with `bytes` atomically: a private temporary file in the same directory,
/// synced, renamed over `path`, and the directory synced. Readers see the old or the new
/// content, never a part; a crash leaves at most a stray `.<name>.tmp-<pid>`.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_private(path, bytes, true)
}

/// [`write_private_atomic`] without syncing, for a file that means nothing after a crash of
/// the machine (the pid file): readers still see the old or the new content, never a part.
pub fn write_private_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_private(path, bytes, false)
}

fn replace_private(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if sync {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The permission bits of `mode` that give group or others any access.
pub fn loose_bits(mode: u32) -> u32 {
    mode & 0o077
}

/// Sets an open file to 0600 when group or others have any access; the old mode if changed.
fn tighten(f: &File) -> io::Result<Option<u32>> {
    let mode = f.metadata()?.permissions().mode() & 0o7777;
    if loose_bits(mode) == 0 {
        return Ok(None);
    }
    f.set_permissions(Permissions::from_mode(mode & 0o700 | FILE_MODE))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_are_created_private_and_loose_files_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);

        let log = dir.join("audit.log");
        let (_, was) = open_private_append(&log).unwrap();
        assert_eq!((mode(&log), was), (0o600, None));
        std::fs::set_permissions(&log, Permissions::from_mode(0o644)).unwrap();
        let (_, was) = open_private_append(&log).unwrap();
        assert_eq!((mode(&log), was), (0o600, Some(0o644)));

        let token = dir.join("control.token");
        std::fs::write(&token, "old").unwrap();
        std::fs::set_permissions(&token, Permissions::from_mode(0o666)).unwrap();
        write_private_atomic(&token, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&token).unwrap(), "new");
        assert_eq!(mode(&token), 0o600);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}

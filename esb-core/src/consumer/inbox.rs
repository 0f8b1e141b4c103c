//! One session of a file consumer. The inbox is scanned every `poll`; a file whose name
//! matches the pattern is taken once its size and modification time stayed the same across
//! one scan (a file written in place is complete; one renamed in is complete at once). It
//! is claimed by a rename into `.processing/` (so it is never taken twice), run through the
//! pipeline, and moved by one rename to the done directory, or to the failed directory
//! after its `.reason` file was written. Files left in `.processing/` by a crash are
//! resumed first when a session starts (`${prop.file.resumed}` = true): a file is never
//! lost, and ends in done/ or failed/ exactly once. If a file cannot be moved out (disk
//! full, done/ unwritable, another file system) the consumer stops with that reason and
//! the file waits in `.processing/` until it is started again.

use super::{ConsumerRuntime, Handled, Input};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

#[derive(Clone, Debug, PartialEq)]
pub struct Dirs {
    pub dir: PathBuf,
    pub processing: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub pattern: String,
    pub poll: Duration,
}

/// `*` matches any run of characters, `?` one character.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Moves `from` into `dir` under its own name (or, if taken, with a time suffix).
fn move_into(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let mut to = dir.join(name);
    if to.exists() {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        to = dir.join(format!("{name}.{ms}"));
    }
    std::fs::rename(from, &to)
        .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), dir.display()))?;
    sync_dir(dir);
    Ok(to)
}

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let tmp = path.with_extension("reason.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("cannot write", &tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("cannot write", path, e))
}

/// Regular files of `dir` that match the pattern (hidden files never do).
fn listing(dirs: &Dirs, dir: &Path) -> Result<Vec<(String, u64, Option<SystemTime>)>, String> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| io("cannot read", dir, e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !matches(&dirs.pattern, &name) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_file() {
            out.push((name, meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

pub async fn session(rt: &ConsumerRuntime, dirs: &Dirs, gen: u64) -> Result<(), String> {
    for d in [&dirs.dir, &dirs.processing, &dirs.done, &dirs.failed] {
        std::fs::create_dir_all(d).map_err(|e| io("cannot create", d, e))?;
    }
    rt.set_session("Running", None);
    // Files claimed before a crash are resumed first.
    let mut resumed: Vec<String> = std::fs::read_dir(&dirs.processing)
        .map_err(|e| io("cannot read", &dirs.processing, e))?
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    resumed.sort();
    for name in resumed {
        if rt.session_over(gen) {
            return Ok(());
        }
        tracing::info!(unit = %rt.unit, consumer = %rt.name, "resuming {name} (claimed before a restart)");
        process(rt, dirs, &name, true, gen).await?;
    }
    let mut seen: HashMap<String, (u64, Option<SystemTime>)> = HashMap::new();
    loop {
        if rt.session_over(gen) {
            return Ok(());
        }
        let files = listing(dirs, &dirs.dir)?;
        rt.depth.store(files.len() as i64, Relaxed);
        let mut stable = Vec::new();
        let mut next_seen = HashMap::new();
        for (name, len, mtime) in files {
            if seen.get(&name) == Some(&(len, mtime)) {
                stable.push(name);
            } else {
                next_seen.insert(name, (len, mtime));
            }
        }
        seen = next_seen;
        for name in stable {
            if rt.session_over(gen) {
                return Ok(());
            }
            let claimed = dirs.processing.join(&name);
            match std::fs::rename(dirs.dir.join(&name), &claimed) {
                Ok(()) => sync_dir(&dirs.processing),
                // Taken meanwhile (another consumer on the same inbox, or removed).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("cannot claim", &dirs.dir.join(&name), e)),
            }
            process(rt, dirs, &name, false, gen).await?;
        }
        rt.wait_change(dirs.poll).await;
    }
}

async fn process(
    rt: &ConsumerRuntime,
    dirs: &Dirs,
    name: &str,
    resumed: bool,
    gen: u64,
) -> Result<(), String> {
    let path = dirs.processing.join(name);
    rt.received.fetch_add(1, Relaxed);
    if resumed {
        rt.redelivered.fetch_add(1, Relaxed);
    }
    rt.in_flight.fetch_add(1, Relaxed);
    let outcome = match tokio::fs::read(&path).await {
        Ok(body) => {
            let mut input = Input {
                body: body.into(),
                headers: http::HeaderMap::new(),
                props: vec![
                    ("file.name".into(), name.to_owned()),
                    (
                        "file.path".into(),
                        dirs.dir.join(name).display().to_string(),
                    ),
                    ("file.resumed".into(), resumed.to_string()),
                ],
            };
            rt.handle(&mut input, gen).await
        }
        Err(e) => Handled::Failed {
            cause: io("cannot read", &path, e),
            attempts: 1,
        },
    };
    rt.in_flight.fetch_sub(1, Relaxed);
    match outcome {
        Handled::Done => {
            move_into(&path, &dirs.done, name)?;
            rt.acked.fetch_add(1, Relaxed);
        }
        Handled::Failed { cause, attempts } => {
            tracing::error!(unit = %rt.unit, consumer = %rt.name, "{name} failed {attempts} time(s), moving it to {}: {cause}", dirs.failed.display());
            let reason = dirs.failed.join(format!("{name}.reason"));
            write_atomic(
                &reason,
                &format!(
                    "{cause}\nattempts: {attempts}\nconsumer: {}/{}\n",
                    rt.unit, rt.name
                ),
            )?;
            move_into(&path, &dirs.failed, name)?;
            rt.dead_lettered.fetch_add(1, Relaxed);
        }
        // Stays claimed; the next session resumes it.
        Handled::Abandoned => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_like_a_shell() {
        assert!(matches("*", "a.json"));
        assert!(matches("*.json", "a.json"));
        assert!(!matches("*.json", "a.json.part"));
        assert!(matches("order-??.xml", "order-12.xml"));
        assert!(!matches("order-??.xml", "order-1.xml"));
    }
}

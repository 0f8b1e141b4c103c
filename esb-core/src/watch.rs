//! The hot deployer: watches the deployments directory (recursively, so editors' rename
//! patterns are seen), debounces bursts of events, waits until every touched unit's files
//! have settled (unchanged over the settle window, so a slow writer or an interrupted copy
//! is never read half-written), and hands the units to the engine — which acts only when
//! the files differ from what it last read of them (a touch is not a reload, nor undoes a
//! rollback) and rejects invalid content while the old revision keeps serving. New
//! directories load, removed ones unload. Switched on and off at runtime through
//! `Engine::hot_deploy`.
//! Each sync that changes something is one audit record `by: "hot-deployer"`; while the
//! audit log cannot be written nothing is deployed and the touched units wait.

use crate::audit::{Audit, By};
use crate::engine::Engine;
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Keeps the watcher alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: Box<dyn std::any::Any + Send>,
}

/// Unit names touched by a set of paths (the first component below `dir`), skipping
/// paths that are only editor temporaries.
pub fn touched_units<'a>(dir: &Path, paths: impl Iterator<Item = &'a Path>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in paths {
        let Ok(rel) = p.strip_prefix(dir) else {
            continue;
        };
        let mut parts = rel.components();
        let Some(first) = parts.next() else { continue };
        let name = first.as_os_str().to_string_lossy().into_owned();
        if deployments::source::is_ignored_file(&name) {
            continue;
        }
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if parts.next().is_some() && deployments::source::is_ignored_file(&file) {
            continue;
        }
        out.insert(name);
    }
    out
}

/// What a unit directory holds now: each file's path, size and content hash (or why it
/// cannot be read).
fn fingerprint(engine: &Engine, unit: &str) -> String {
    match engine.unit_dir(unit) {
        Ok(dir) => match deployments::UnitSources::read_dir(&dir) {
            Ok(s) => s
                .files
                .iter()
                .map(|(rel, text)| format!("{rel}:{}", text.len()))
                .chain(std::iter::once(s.content_hash()))
                .collect::<Vec<_>>()
                .join(","),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// Waits until the files of `units` stay the same over one settle window (bounded: after
/// 20 windows of constant change the current state is taken).
async fn settle(engine: &Engine, units: &BTreeSet<String>) {
    let window = engine.root.hot_deploy.settle;
    if window.is_zero() {
        return;
    }
    let take =
        |engine: &Engine| -> Vec<String> { units.iter().map(|u| fingerprint(engine, u)).collect() };
    let mut before = tokio::task::block_in_place(|| take(engine));
    for _ in 0..20 {
        tokio::time::sleep(window).await;
        let now = tokio::task::block_in_place(|| take(engine));
        if now == before {
            return;
        }
        before = now;
    }
}

pub fn spawn(engine: Arc<Engine>, audit: Arc<Audit>) -> Result<Watcher, String> {
    let dir = engine.root.deployments_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BTreeSet<String>>();
    let watch_dir = dir.clone();
    let mut debouncer = new_debouncer(
        engine.root.hot_deploy.debounce,
        None,
        move |res: DebounceEventResult| {
            if let Ok(events) = res {
                // Reads (ours included, when hashing) are not changes.
                let changes = events
                    .iter()
                    .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)));
                let units = touched_units(
                    &watch_dir,
                    changes.flat_map(|e| e.paths.iter().map(|p| p.as_path())),
                );
                if !units.is_empty() {
                    let _ = tx.send(units);
                }
            }
        },
    )
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    debouncer
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    tokio::spawn(async move {
        // Units touched while the audit log could not be written, deployed with the next change.
        let mut waiting = BTreeSet::new();
        while let Some(mut units) = rx.recv().await {
            // Coalesce whatever else arrived meanwhile.
            while let Ok(more) = rx.try_recv() {
                units.extend(more);
            }
            if !engine.hot_deploy.load(Relaxed) {
                tracing::info!(
                    units = ?units,
                    "hot deploy is off: changed units are not deployed; reload them to apply the change (uterm -c \"reload UNIT\")"
                );
                continue;
            }
            units.append(&mut waiting);
            if let Err(e) = audit.writable() {
                tracing::error!(
                    units = ?units,
                    "hot deployer: changes not deployed: {e}"
                );
                waiting = units;
                continue;
            }
            settle(&engine, &units).await;
            let before = crate::audit::revisions(&engine).await;
            let outcomes = engine.sync_from_disk(Some(&units), true).await;
            let after = crate::audit::revisions(&engine).await;
            audit.sync(
                By::HotDeployer,
                serde_json::json!({"action": "sync", "units": units}),
                &outcomes,
                &before,
                &after,
            );
        }
    });
    tracing::info!(dir = %dir.display(), "hot deployer watching");
    Ok(Watcher {
        _debouncer: Box::new(debouncer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn units_are_named_by_their_directory_and_editor_files_skipped() {
        let dir = PathBuf::from("/c/deployments");
        let paths = [
            PathBuf::from("/c/deployments/orders/unit.toml"),
            PathBuf::from("/c/deployments/orders/.unit.toml.swp"),
            PathBuf::from("/c/deployments/billing/4913"),
            PathBuf::from("/c/deployments/new-unit"),
            PathBuf::from("/elsewhere/x"),
        ];
        let units = touched_units(&dir, paths.iter().map(|p| p.as_path()));
        assert_eq!(
            units.into_iter().collect::<Vec<_>>(),
            vec!["new-unit", "orders"]
        );
    }
}

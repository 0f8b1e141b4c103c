//! The warm restart as a transaction, run by the Server bean's `restart` operation.

use super::*;

/// Warm restart as a transaction: the new root config is parsed and validated, every running
/// unit is checked against it, every new or moved listener is bound — any failure rejects
/// the restart with a clear outcome and the old configuration keeps running. Then the
/// server hands its sockets to the next generation and this answers once that one serves:
/// `{"outcome": "restarted", "duration_ms", "diff", "text"}` or
/// `{"outcome": "rejected", "errors": [...]}`.
pub async fn restart(server: &Arc<Server>) -> Result<RestartOutcome, String> {
    use deployments::Diagnostic;
    let started = std::time::Instant::now();
    let rejected = |errors: Vec<Diagnostic>| Ok(RestartOutcome::Rejected { errors });
    let root = match deployments::RootConfig::load(&server.conf_dir) {
        Ok(r) => r,
        Err(errors) => return rejected(errors),
    };
    let unit_errors = server.engine.check_root(&root).await;
    if !unit_errors.is_empty() {
        return rejected(unit_errors);
    }
    // Bind what is new before anything changes: a taken port rejects the restart.
    let file = server.conf_dir.join(deployments::root::ROOT_FILE);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let lines = deployments::diag::LineIndex::new(&text);
    let at = |span: Option<std::ops::Range<usize>>, msg: String| {
        let (line, col) = lines.position(span.map(|s| s.start).unwrap_or(0));
        Diagnostic::new(file.display().to_string(), line, col, msg)
    };
    let kept = server.listening_addrs();
    let mut pool = crate::listeners::ListenerPool::default();
    let mut errors = Vec::new();
    let mut wanted: Vec<(String, &deployments::Spanned<SocketAddr>)> = root
        .transports
        .iter()
        .filter_map(|t| {
            t.bind
                .as_ref()
                .map(|b| (format!("transport \"{}\"", t.name.get_ref()), b))
        })
        .collect();
    if root.management.enabled {
        wanted.push(("the management endpoint".into(), &root.management.bind));
    }
    for (what, bind) in wanted {
        let addr = *bind.get_ref();
        if !kept.contains(&addr) {
            if let Err(e) = pool.ensure(addr) {
                errors.push(at(
                    Some(bind.span()),
                    format!("{what}: cannot bind {addr}: {e}; nothing changed, the running configuration keeps serving"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return rejected(errors);
    }
    let diff = deployments::root_diff::RootDiff::between(&server.engine.root, &root);
    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let handover = crate::server::Handover { root, pool, ready };
    if !server.request_restart(handover) {
        return Err("a restart, upgrade or shutdown is already in progress; wait for it to end and try again".into());
    }
    match tokio::time::timeout(std::time::Duration::from_secs(60), is_ready).await {
        Ok(Ok(Ok(()))) => Ok(RestartOutcome::Restarted {
            duration_ms: crate::revision::millis(started.elapsed()),
            text: diff.to_string(),
            diff,
        }),
        Ok(Ok(Err(e))) => rejected(vec![at(None, e)]),
        _ => Err(
            "the restarted server did not report that it serves within 60 s; see its log".into(),
        ),
    }
}

//! Deployment operations of the server and the manager: deploys, canaries, validation,
//! diffs, history, sources and drains, each answered with the protocol's outcome types
//! (the engine decides in those types too).

use super::*;

pub(super) fn outcomes(o: Vec<engine::Outcome>) -> Value {
    json(o)
}

pub(super) fn source(content: &Content) -> Source {
    match content {
        Content::UnitToml(text) => Source::unit_toml(text.clone()),
        Content::Files(files) => Source::Content(files.clone()),
    }
}

/// The split of a canary: its share, a header (`x-canary=1`) that picks its requests
/// instead, and a sticky key header.
pub(super) fn canary_split(
    percent: Percent,
    header: &Option<String>,
    sticky: &Option<String>,
) -> Result<crate::proxy::Split, ManagementError> {
    let bad = |what: &str| ManagementError::BadRequest(format!("invalid canary {what}"));
    let header = match header {
        None => None,
        Some(h) => {
            let (name, value) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .ok_or_else(|| bad("header: write NAME=VALUE, e.g. x-canary=1"))?;
            Some((
                http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| bad("header name"))?,
                http::HeaderValue::from_str(value.trim()).map_err(|_| bad("header value"))?,
            ))
        }
    };
    let sticky = match sticky {
        None => None,
        Some(k) => {
            Some(http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("sticky key header"))?)
        }
    };
    Ok(crate::proxy::Split::new(percent.0, header, sticky))
}

pub(super) fn outcomes_one(mut o: Vec<engine::Outcome>) -> Value {
    json(o.remove(0))
}

pub(super) async fn server_op(cx: &Ctx<'_>, op: &ServerOp) -> Result<Value, ManagementError> {
    match op {
        ServerOp::Maintenance { on } => {
            cx.server.maintenance.store(*on, Relaxed);
            cx.state("", if *on { "Maintenance" } else { "Running" });
            Ok(Value::Null)
        }
        ServerOp::Restart {} => crate::mgmt::restart(cx.server)
            .await
            .map(json)
            .map_err(|e| cx.failed(e)),
        ServerOp::Upgrade {} => crate::upgrade::upgrade(cx.server)
            .await
            .map_err(|e| cx.failed(e)),
    }
}

pub(super) async fn manager_op(cx: &Ctx<'_>, op: &ManagerOp) -> Result<Value, ManagementError> {
    let engine = &cx.server.engine;
    Ok(match op {
        ManagerOp::Load { unit } | ManagerOp::Reload { unit } => {
            cx.deploy(unit, Source::Disk).await
        }
        ManagerOp::Unload { unit } => cx.unload(unit).await,
        ManagerOp::ReloadAll {} => outcomes(engine.reload_all().await),
        ManagerOp::Batch { units } => {
            let changes = units.0.iter().map(|unit| Change::Deploy {
                unit: unit.clone(),
                source: Source::Disk,
            });
            outcomes(engine.apply(changes.collect()).await)
        }
        ManagerOp::UnloadBatch { units } => {
            let changes = units
                .0
                .iter()
                .map(|unit| Change::Unload { unit: unit.clone() });
            outcomes(engine.apply(changes.collect()).await)
        }
        ManagerOp::Deploy { unit, content } => cx.deploy(unit, source(content)).await,
        ManagerOp::DeployFromDisk { unit } => cx.deploy(unit, Source::FromDisk).await,
        ManagerOp::Rollback { unit } => cx.deploy(unit, Source::Revision(None)).await,
        ManagerOp::RollbackTo { unit, revision } => {
            cx.deploy(unit, Source::Revision(Some(*revision))).await
        }
        ManagerOp::Validate { unit } => validate(cx.server, unit, Source::Disk).await,
        ManagerOp::ValidateContent { unit, content } => {
            validate(cx.server, unit, source(content)).await
        }
        ManagerOp::ValidateChecks { unit } => {
            let (valid, checks, errors) = match engine.run_checks_of(unit).await {
                Ok(n) => (true, Some(n), None),
                Err(errors) => (false, None, Some(errors)),
            };
            json(ChecksRun {
                unit: unit.clone(),
                valid,
                checks,
                errors,
            })
        }
        ManagerOp::Diff { unit } => diff(cx.server, unit, Source::Disk).await,
        ManagerOp::DiffContent { unit, content } => diff(cx.server, unit, source(content)).await,
        ManagerOp::History { unit } => history(cx.server, unit).await.map_err(|e| cx.failed(e))?,
        ManagerOp::Canary {
            unit,
            percent,
            header,
            sticky,
        } => {
            let split = canary_split(*percent, header, sticky)?;
            json(engine.deploy_canary(unit, Source::Disk, split).await)
        }
        ManagerOp::CanaryContent {
            unit,
            content,
            percent,
            header,
            sticky,
        } => {
            let split = canary_split(*percent, header, sticky)?;
            json(engine.deploy_canary(unit, source(content), split).await)
        }
        ManagerOp::Promote { unit } => json(engine.promote(unit).await),
        ManagerOp::AbortCanary { unit } => engine
            .abort_canary(unit, "by an operator")
            .await
            .map(|aborted| json(CanaryAborted { aborted }))
            .map_err(|e| cx.failed(e))?,
        ManagerOp::SetCanaryWeight { unit, percent } => engine
            .set_canary_weight(unit, percent.0)
            .await
            .map(|()| json(CanaryWeight { percent: percent.0 }))
            .map_err(|e| cx.failed(e))?,
        ManagerOp::Source { unit, revision } => json(
            engine
                .source_of(unit, revision.0)
                .await
                .map_err(|e| cx.failed(e))?,
        ),
        ManagerOp::CancelDrain { unit, revision } => cancel_drain(cx.server, unit, *revision)
            .await
            .map_err(|e| cx.failed(e))?,
        ManagerOp::SetHotDeploy { enabled } => {
            cx.server
                .set_hot_deploy(*enabled)
                .map_err(|e| cx.failed(e))?;
            Value::Null
        }
    })
}

/// `cancelDrain`: revision 0 means every draining revision of the unit.
pub(super) async fn cancel_drain(
    server: &Server,
    unit: &str,
    revision: u64,
) -> Result<Value, String> {
    let revision = (revision != 0).then_some(revision);
    let ended = server.engine.cancel_drain(unit, revision).await?;
    Ok(json(
        ended
            .into_iter()
            .map(|(revision, ended)| DrainCancelled { revision, ended })
            .collect::<Vec<_>>(),
    ))
}

pub(super) async fn validate(server: &Server, unit: &str, source: Source) -> Value {
    let errors = server.engine.preview(unit, source).await.err();
    json(Validation {
        unit: unit.to_owned(),
        valid: errors.is_none(),
        errors,
    })
}

pub(super) async fn diff(server: &Server, unit: &str, source: Source) -> Value {
    let (diff, new, errors) = match server.engine.preview(unit, source).await {
        Ok((_, Some(d))) => (Some(d), false, None),
        Ok((parsed, None)) => (
            Some(deployments::diff::diff_from(None, &parsed.unit)),
            true,
            None,
        ),
        Err(errors) => (None, false, Some(errors)),
    };
    json(DiffResult {
        unit: unit.to_owned(),
        text: diff.as_ref().map(ToString::to_string),
        diff,
        new,
        errors,
    })
}

pub(super) async fn history(server: &Server, unit: &str) -> Result<Value, String> {
    let units = server.engine.snapshot();
    let slot = units
        .get(unit)
        .ok_or_else(|| format!("unit \"{unit}\" is not loaded"))?;
    let current = slot.current.as_ref().map(|c| c.info.number);
    let entries: Vec<HistoryEntry> = slot
        .history
        .iter()
        .rev()
        .map(|r| HistoryEntry {
            revision: r.number,
            hash: r.hash.clone(),
            label: r.label.clone(),
            deployed_at: super::super::read::epoch_ms(r.deployed_at),
            deploy_ms: crate::revision::millis(r.deploy_time),
            active: Some(r.number) == current,
            degraded: r.degraded,
        })
        .collect();
    Ok(json(entries))
}

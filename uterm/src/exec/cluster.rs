//! Cluster operations on `esb:type=Cluster`: one exec each, with the typed arguments and
//! results of `deployments::protocol::cluster`. A change that some live node failed to
//! apply (or did not apply within `--wait`) is a failure (exit 1) with what happened.

use std::collections::BTreeMap;

use deployments::protocol::cluster::{
    op, ChangeResult, ClusterStatus, DeployArgs, RollbackArgs, UnitArgs, BEAN,
};
use deployments::protocol::{ObjectName, Request};
use serde::Serialize;
use serde_json::Value;

use crate::exec::error::CmdError;
use crate::exec::executor::{value_of, Executor};
use crate::exec::unitfiles;
use crate::lang::cluster::ClusterCmd;
use crate::lang::command::DeployFrom;
use crate::present::cluster as show;
use crate::present::output::Output;

fn bean() -> ObjectName {
    ObjectName::parse(BEAN).expect("the cluster bean name parses")
}

/// Local files as the `files` of a cluster deploy.
fn files_of(from: &DeployFrom) -> Result<BTreeMap<String, String>, CmdError> {
    let v = match from {
        DeployFrom::File(f) => unitfiles::content_of_file(f)?,
        DeployFrom::Dir(d) => unitfiles::content_of_dir(d)?,
        DeployFrom::ServerDisk => return Err(CmdError::failed("use publish UNIT")),
    };
    Ok(match v {
        Value::String(text) => BTreeMap::from([(deployments::source::UNIT_FILE.to_owned(), text)]),
        other => serde_json::from_value(other).unwrap_or_default(),
    })
}

impl Executor {
    fn cluster_exec<A: Serialize>(
        &self,
        what: &str,
        operation: &str,
        args: Option<A>,
    ) -> Result<Value, CmdError> {
        let args = args
            .map(|a| vec![serde_json::to_value(a).expect("arguments serialize")])
            .unwrap_or_default();
        let r = self.one(Request::exec(bean(), operation, args))?;
        value_of(&r, what).cloned()
    }

    pub(crate) fn cluster(&self, cmd: &ClusterCmd) -> Result<Output, CmdError> {
        let (what, operation, args) = match cmd {
            ClusterCmd::Status => {
                let v = self.cluster_exec::<()>("cluster status", op::STATUS, None)?;
                let s: ClusterStatus = serde_json::from_value(v.clone()).map_err(|e| {
                    CmdError::failed(format!("cluster status: unexpected answer ({e})"))
                })?;
                return Ok(show::status(&s, v));
            }
            ClusterCmd::Deploy {
                unit,
                from,
                wait_ms,
            } => (
                format!("deploy {unit} --cluster"),
                op::DEPLOY,
                serde_json::to_value(DeployArgs {
                    unit: unit.clone(),
                    files: files_of(from)?,
                    wait_ms: *wait_ms,
                }),
            ),
            ClusterCmd::Rollback { unit, to, wait_ms } => (
                format!("rollback {unit} --cluster"),
                op::ROLLBACK,
                serde_json::to_value(RollbackArgs {
                    unit: unit.clone(),
                    to: *to,
                    wait_ms: *wait_ms,
                }),
            ),
            ClusterCmd::Publish { unit, wait_ms }
            | ClusterCmd::Unload { unit, wait_ms }
            | ClusterCmd::Pause { unit, wait_ms, .. } => {
                let operation = match cmd {
                    ClusterCmd::Publish { .. } => op::PUBLISH,
                    ClusterCmd::Unload { .. } => op::UNLOAD,
                    ClusterCmd::Pause { paused: true, .. } => op::PAUSE,
                    _ => op::RESUME,
                };
                let suffix = if operation == op::PUBLISH {
                    ""
                } else {
                    " --cluster"
                };
                (
                    format!("{} {unit}{suffix}", cmd.verb()),
                    operation,
                    serde_json::to_value(UnitArgs {
                        unit: unit.clone(),
                        wait_ms: *wait_ms,
                    }),
                )
            }
        };
        let v = self.cluster_exec(&what, operation, Some(args.expect("arguments serialize")))?;
        let r: ChangeResult = serde_json::from_value(v.clone())
            .map_err(|e| CmdError::failed(format!("{what}: unexpected answer ({e})")))?;
        let out = show::change(&r, v);
        match &r.wait {
            Some(w) if !w.all_synced() => {
                let mut names: Vec<&str> = w.failed.iter().map(|f| f.node.as_str()).collect();
                names.extend(w.timed_out.iter().map(String::as_str));
                Err(CmdError::with_output(
                    format!("{what}: not applied on {}", names.join(", ")),
                    out,
                ))
            }
            _ => Ok(out),
        }
    }
}

//! Cluster operations on `esb:type=Cluster`: one exec of a typed `ClusterOp` each, with the
//! arguments and results of `deployments::protocol::cluster`. A change that some live node failed to
//! apply (or did not apply within `--wait`) is a failure (exit 1) with what happened.

use std::collections::BTreeMap;

use deployments::protocol::cluster::{
    ChangeResult, ClusterStatus, DeployArgs, RollbackArgs, UnitArgs,
};
use deployments::protocol::ops::ClusterOp;
use deployments::protocol::{Bean, Request};
use serde_json::Value;

use crate::exec::error::CmdError;
use crate::exec::executor::{value_of, Executor};
use crate::exec::unitfiles;
use crate::lang::cluster::ClusterCmd;
use crate::lang::command::DeployFrom;
use crate::present::cluster as show;
use crate::present::output::Output;

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
    fn cluster_exec(&self, what: &str, op: &ClusterOp) -> Result<Value, CmdError> {
        let r = self.one(Request::exec(
            Bean::Cluster.object_name(),
            op.name(),
            op.arguments(),
        ))?;
        value_of(&r, what).cloned()
    }

    pub(crate) fn cluster(&self, cmd: &ClusterCmd) -> Result<Output, CmdError> {
        let unit_args = |unit: &String, wait_ms: &u64| UnitArgs {
            unit: unit.clone(),
            wait_ms: *wait_ms,
        };
        let (what, op) = match cmd {
            ClusterCmd::Status => {
                let v = self.cluster_exec("cluster status", &ClusterOp::Status {})?;
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
                ClusterOp::Deploy {
                    args: DeployArgs {
                        unit: unit.clone(),
                        files: files_of(from)?,
                        wait_ms: *wait_ms,
                    },
                },
            ),
            ClusterCmd::Rollback { unit, to, wait_ms } => (
                format!("rollback {unit} --cluster"),
                ClusterOp::Rollback {
                    args: RollbackArgs {
                        unit: unit.clone(),
                        to: *to,
                        wait_ms: *wait_ms,
                    },
                },
            ),
            ClusterCmd::Publish { unit, wait_ms } => (
                format!("publish {unit}"),
                ClusterOp::Publish {
                    args: unit_args(unit, wait_ms),
                },
            ),
            ClusterCmd::Unload { unit, wait_ms } => (
                format!("unload {unit} --cluster"),
                ClusterOp::Unload {
                    args: unit_args(unit, wait_ms),
                },
            ),
            ClusterCmd::Pause {
                unit,
                paused,
                wait_ms,
            } => {
                let args = unit_args(unit, wait_ms);
                let op = if *paused {
                    ClusterOp::Pause { args }
                } else {
                    ClusterOp::Resume { args }
                };
                (format!("{} {unit} --cluster", cmd.verb()), op)
            }
        };
        let v = self.cluster_exec(&what, &op)?;
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

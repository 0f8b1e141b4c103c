//! `esb:type=Cluster`, present when the root config has `[cluster]`: the cluster-wide
//! operations (`deployments::protocol::ops::ClusterOp`, each with one JSON object argument
//! typed in `deployments::protocol::cluster`) and this node's view of the store as attributes.

use crate::cluster::{ClusterError, Node};
use crate::server::Server;
use deployments::protocol::attrs::{Attrs, ClusterAttrs};
use deployments::protocol::cluster::Action;
use deployments::protocol::ops::ClusterOp;
use deployments::protocol::ManagementError;
use serde_json::Value;
use std::time::Duration;

fn node(server: &Server) -> Result<&Node, ManagementError> {
    server.cluster.as_deref().ok_or_else(|| {
        ManagementError::BadRequest(
            "this node is not in a cluster: add a [cluster] table to esb.toml (see docs/cluster.md)"
                .into(),
        )
    })
}

/// The attributes: this node's view of the store (`None`: not in a cluster).
pub fn attrs(server: &Server) -> Option<Attrs> {
    let n = server.cluster.as_deref()?;
    let h = n.health();
    Some(Attrs::Cluster(ClusterAttrs {
        cluster: n.cluster.clone(),
        node: n.name.clone(),
        store: h.state.as_str().into(),
        store_endpoints: h.endpoints,
        store_detail: h.detail,
        applied_revision: h.applied_revision,
    }))
}

/// Runs a decoded cluster operation.
pub async fn exec(server: &Server, op: &ClusterOp) -> Result<Value, ManagementError> {
    let n = node(server)?;
    let failed = |e: ClusterError| ManagementError::OperationFailed {
        mbean: deployments::protocol::cluster::BEAN.into(),
        operation: op.name().into(),
        message: e.to_string(),
    };
    let ms = Duration::from_millis;
    let result = match op {
        ClusterOp::Status {} => {
            return Ok(serde_json::to_value(n.status().await).expect("status serializes"))
        }
        ClusterOp::Deploy { args: a } => {
            n.deploy(&a.unit, a.files.clone(), Action::Deploy, ms(a.wait_ms))
                .await
        }
        ClusterOp::Rollback { args: a } => n.rollback(&a.unit, a.to, ms(a.wait_ms)).await,
        ClusterOp::Publish { args: a } => n.publish(&a.unit, ms(a.wait_ms)).await,
        ClusterOp::Unload { args: a } => n.unload(&a.unit, ms(a.wait_ms)).await,
        ClusterOp::Pause { args: a } => n.set_paused(&a.unit, true, ms(a.wait_ms)).await,
        ClusterOp::Resume { args: a } => n.set_paused(&a.unit, false, ms(a.wait_ms)).await,
    };
    result
        .map(|r| serde_json::to_value(r).expect("result serializes"))
        .map_err(failed)
}

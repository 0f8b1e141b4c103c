//! `esb:type=Cluster`, present when the root config has `[cluster]`: the cluster-wide
//! operations (`deployments::protocol::ops::ClusterOp`, each with one JSON object argument
//! typed in `deployments::protocol::cluster`) and this node's view of the store as attributes.

use crate::cluster::{ClusterError, Node};
use crate::server::Server;
use deployments::protocol::cluster::Action;
use deployments::protocol::ops::{ClusterOp, Operation};
use deployments::protocol::{Bean, BeanKind, MBeanInfo, ManagementError};
use serde_json::{Map, Value};
use std::time::Duration;

/// The list metadata, generated from the typed declarations of the protocol.
pub fn info() -> MBeanInfo {
    deployments::protocol::meta::mbean_info(BeanKind::Cluster)
}

fn node(server: &Server) -> Result<&Node, ManagementError> {
    server.cluster.as_deref().ok_or_else(|| {
        ManagementError::BadRequest(
            "this node is not in a cluster: add a [cluster] table to esb.toml (see docs/cluster.md)"
                .into(),
        )
    })
}

pub fn read(server: &Server) -> Result<Map<String, Value>, ManagementError> {
    let n = node(server)?;
    let h = n.health();
    let mut m = Map::new();
    m.insert("Cluster".into(), n.cluster.clone().into());
    m.insert("Node".into(), n.name.clone().into());
    m.insert("Store".into(), h.state.as_str().into());
    m.insert("StoreEndpoints".into(), h.endpoints.into());
    m.insert("StoreDetail".into(), h.detail.into());
    m.insert("AppliedRevision".into(), h.applied_revision.into());
    Ok(m)
}

pub async fn exec(
    server: &Server,
    operation: &str,
    args: &[Value],
) -> Result<Value, ManagementError> {
    let n = node(server)?;
    let name = Bean::Cluster.object_name();
    let Operation::Cluster(op) = Operation::decode(BeanKind::Cluster, &name, operation, args)?
    else {
        unreachable!("a cluster bean's operations are cluster operations")
    };
    let failed = |e: ClusterError| ManagementError::OperationFailed {
        mbean: deployments::protocol::cluster::BEAN.into(),
        operation: op.name().into(),
        message: e.to_string(),
    };
    let ms = Duration::from_millis;
    let result = match &op {
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

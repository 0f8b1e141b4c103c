//! `esb:type=Cluster`, present when the root config has `[cluster]`: the cluster-wide
//! operations (each takes one JSON object argument, typed in
//! `deployments::protocol::cluster`) and this node's view of the store as attributes.

use crate::cluster::{ClusterError, Node};
use crate::server::Server;
use deployments::protocol::cluster::{op, Action, DeployArgs, RollbackArgs, UnitArgs};
use deployments::protocol::{MBeanInfo, ManagementError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::time::Duration;

pub fn info() -> MBeanInfo {
    let s = "java.lang.String";
    let o = "java.lang.Object";
    let unit = [("args", o, "{\"unit\": U, \"wait_ms\": N}")];
    MBeanInfo::new("This node of a cluster: cluster-wide operations through the store")
        .with_attr("Cluster", s, "cluster name", false)
        .with_attr("Node", s, "this node's name", false)
        .with_attr("Store", s, "store state: up, down or alarm", false)
        .with_attr("StoreEndpoints", "[Ljava.lang.String;", "etcd endpoints", false)
        .with_attr("StoreDetail", s, "why the store is down or alarmed", false)
        .with_attr(
            "AppliedRevision",
            "long",
            "the last store revision this node applied",
            false,
        )
        .with_op(
            op::DEPLOY,
            &[(
                "args",
                o,
                "{\"unit\": U, \"files\": {path: text}, \"wait_ms\": N}",
            )],
            o,
            "validate here, then write the content as the unit's next cluster revision (compare-and-swap)",
        )
        .with_op(
            op::PUBLISH,
            &unit,
            o,
            "this node's disk files of the unit become its cluster revision",
        )
        .with_op(op::UNLOAD, &unit, o, "unload the unit on every node")
        .with_op(
            op::ROLLBACK,
            &[("args", o, "{\"unit\": U, \"to\": N, \"wait_ms\": N}")],
            o,
            "the content of a kept cluster revision (default: the previous) becomes a new revision",
        )
        .with_op(op::PAUSE, &unit, o, "pause the unit on every node (kept in the store)")
        .with_op(op::RESUME, &unit, o, "resume the unit on every node")
        .with_read_op(op::STATUS, &[] as &[(&str, &str, &str)], o, "nodes × units with each node's sync state, and the store's health")
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

fn arg<T: DeserializeOwned>(args: &[Value], operation: &str) -> Result<T, ManagementError> {
    let v = args.first().cloned().unwrap_or(Value::Null);
    // Clients that only send strings may send the object as JSON text.
    let v = match v {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        v => v,
    };
    serde_json::from_value(v).map_err(|e| {
        ManagementError::BadRequest(format!(
            "argument 1 of {operation} must be an object like {}: {e}",
            match operation {
                op::DEPLOY => "{\"unit\": \"orders\", \"files\": {\"unit.toml\": \"...\"}}",
                op::ROLLBACK => "{\"unit\": \"orders\", \"to\": 3}",
                _ => "{\"unit\": \"orders\"}",
            }
        ))
    })
}

pub async fn exec(
    server: &Server,
    operation: &str,
    args: &[Value],
) -> Result<Value, ManagementError> {
    let n = node(server)?;
    let failed = |e: ClusterError| ManagementError::OperationFailed {
        mbean: deployments::protocol::cluster::BEAN.into(),
        operation: operation.into(),
        message: e.to_string(),
    };
    let ms = Duration::from_millis;
    let result = match operation {
        op::STATUS => return Ok(serde_json::to_value(n.status().await).expect("status serializes")),
        op::DEPLOY => {
            let a: DeployArgs = arg(args, operation)?;
            n.deploy(&a.unit, a.files, Action::Deploy, ms(a.wait_ms))
                .await
        }
        op::ROLLBACK => {
            let a: RollbackArgs = arg(args, operation)?;
            n.rollback(&a.unit, a.to, ms(a.wait_ms)).await
        }
        _ => {
            let a: UnitArgs = arg(args, operation)?;
            let wait = ms(a.wait_ms);
            match operation {
                op::PUBLISH => n.publish(&a.unit, wait).await,
                op::UNLOAD => n.unload(&a.unit, wait).await,
                op::PAUSE => n.set_paused(&a.unit, true, wait).await,
                _ => n.set_paused(&a.unit, false, wait).await,
            }
        }
    };
    result
        .map(|r| serde_json::to_value(r).expect("result serializes"))
        .map_err(failed)
}

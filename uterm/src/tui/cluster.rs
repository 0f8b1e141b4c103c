//! What the Cluster view shows: the typed answer of `status` on `esb:type=Cluster`
//! ([`ClusterStatus`]: nodes × units with each node's sync state, and the store's health),
//! read on every refresh by a poller of its own (a store that is down may make the answer
//! slow; the other views do not wait for it). A server without `[cluster]` is no error: the
//! view says so.

use deployments::protocol::cluster::ClusterStatus;
use deployments::protocol::ops::ClusterOp;
use deployments::protocol::{Bean, Request, Response};

use crate::conn::client::Client;
use crate::exec::executor::envelope_message;

/// The last answer of the cluster poller.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterFeed {
    Status(Box<ClusterStatus>),
    /// The server has no `[cluster]` table.
    NotInCluster,
    /// The status could not be read (the server is down, the token may not exec, …).
    Failed(String),
}

/// The one request of a cluster refresh.
pub fn request() -> Request {
    let op = ClusterOp::Status {};
    Request::exec(Bean::Cluster.object_name(), op.name(), op.arguments())
}

/// The feed of an answer to [`request`]: a 404 (no cluster bean) or the server's "not in
/// a cluster" refusal means a single node.
pub fn feed(r: &Response) -> ClusterFeed {
    if !r.is_ok() {
        let message = envelope_message(r);
        if r.status == 404 || message.contains("not in a cluster") {
            return ClusterFeed::NotInCluster;
        }
        return ClusterFeed::Failed(format!("cannot read the cluster status: {message}"));
    }
    match r.value.clone().map(serde_json::from_value::<ClusterStatus>) {
        Some(Ok(s)) => ClusterFeed::Status(Box::new(s)),
        Some(Err(e)) => ClusterFeed::Failed(format!("cluster status: unexpected answer ({e})")),
        None => ClusterFeed::Failed("cluster status: empty answer".into()),
    }
}

/// Reads the cluster status once.
pub fn read(client: &Client) -> ClusterFeed {
    match client.bulk(&[request()]) {
        Ok(rs) => match rs.first() {
            Some(r) => feed(r),
            None => ClusterFeed::Failed("cluster status: empty answer".into()),
        },
        Err(e) => ClusterFeed::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, value: Option<serde_json::Value>, error: Option<&str>) -> Response {
        serde_json::from_value(json!({
            "status": status,
            "value": value,
            "error": error,
        }))
        .map(|mut r: Response| {
            if value.is_none() {
                r.value = None;
            }
            r
        })
        .unwrap()
    }

    #[test]
    fn a_single_node_is_not_an_error() {
        let r = response(
            400,
            None,
            Some("this node is not in a cluster: add a [cluster] table to esb.toml (see docs/cluster.md)"),
        );
        assert_eq!(feed(&r), ClusterFeed::NotInCluster);
        let r = response(404, None, Some("no such bean"));
        assert_eq!(feed(&r), ClusterFeed::NotInCluster);
        let r = response(403, None, Some("exec needs the control role"));
        assert!(
            matches!(feed(&r), ClusterFeed::Failed(m) if m.contains("control role")),
            "{:?}",
            feed(&r)
        );
    }

    #[test]
    fn the_status_is_typed() {
        let s = crate::tui::fixture::cluster_status();
        let r = response(200, Some(serde_json::to_value(&s).unwrap()), None);
        assert_eq!(feed(&r), ClusterFeed::Status(Box::new(s)));
        let r = response(200, Some(json!({"cluster": 1})), None);
        assert!(matches!(feed(&r), ClusterFeed::Failed(m) if m.contains("unexpected answer")));
    }
}

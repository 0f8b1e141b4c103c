//! The managed objects of DESIGN §6, as the protocol types them ([`Bean`], [`Operation`]).
//! Beans are not registered anywhere: they are derived on each request from the running
//! server (units, revisions, transports), so they can never go stale. `read` holds
//! attribute values, `ops` writes and operations; list metadata comes from the protocol.

mod cluster;
mod ops;
mod read;

pub use ops::{exec, write};
pub use read::{read, read_all};

use crate::server::Server;
pub use deployments::protocol::Bean;
use deployments::protocol::{MBeanInfo, ManagementError, ObjectName, Operation, Request};

/// The list metadata of a bean.
pub fn info(bean: &Bean) -> MBeanInfo {
    deployments::protocol::meta::mbean_info(bean.kind())
}

/// The bean and operation an exec names, decoded (the bean may not exist).
pub fn decode_exec(req: &Request) -> Option<(Bean, Result<Operation, ManagementError>)> {
    let Request::Exec {
        mbean,
        operation,
        arguments,
        ..
    } = req
    else {
        return None;
    };
    let bean = Bean::of_type(mbean)?;
    let op = Operation::decode(bean.kind(), mbean, operation, arguments);
    Some((bean, op))
}

/// Whether a request changes (or tries to change) server state: every write, and every
/// exec of an operation whose metadata is not marked read-only. The one place that decides
/// what is audited and what is refused while the audit log is unwritable. An exec of an
/// unknown operation counts as an attempted change.
pub fn changes_state(req: &Request) -> bool {
    match req {
        Request::Write { .. } => true,
        Request::Exec {
            mbean, operation, ..
        } => exec_spec(mbean, operation).is_none_or(|o| o.impact.changes_state()),
        Request::Read { .. }
        | Request::Search { .. }
        | Request::List { .. }
        | Request::Version { .. } => false,
    }
}

/// The metadata of the operation an exec names (`op` or `op(signature)`), if it exists.
pub fn exec_spec(
    mbean: &ObjectName,
    operation: &str,
) -> Option<&'static deployments::protocol::ops::OpSpec> {
    Operation::spec(Bean::of_type(mbean)?.kind(), operation)
}

/// Every bean of the running server.
pub async fn all(server: &Server) -> Vec<Bean> {
    let mut out = vec![Bean::Server, Bean::Manager];
    if server.cluster.is_some() {
        out.push(Bean::Cluster);
    }
    out.extend(
        server
            .transports
            .iter()
            .map(|t| Bean::Transport(t.name.clone())),
    );
    out.extend(
        server
            .engine
            .amqp
            .keys()
            .map(|n| Bean::Transport(n.clone())),
    );
    let units = server.engine.snapshot();
    for (name, slot) in units.iter() {
        out.push(Bean::Unit(name.clone()));
        if let Some(rev) = &slot.current {
            let u = &rev.parsed.unit;
            out.extend(
                u.proxies
                    .iter()
                    .map(|p| Bean::Proxy(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.sequences
                    .iter()
                    .map(|p| Bean::Sequence(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.endpoints
                    .iter()
                    .map(|p| Bean::Endpoint(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                u.tasks
                    .iter()
                    .map(|p| Bean::Task(name.clone(), p.name.get_ref().clone())),
            );
            out.extend(
                slot.consumers
                    .keys()
                    .map(|c| Bean::Consumer(name.clone(), c.clone())),
            );
        }
    }
    out
}

/// The bean a (non-pattern) name designates, if it exists.
pub async fn resolve(server: &Server, name: &ObjectName) -> Result<Bean, ManagementError> {
    all(server)
        .await
        .into_iter()
        .find(|b| b.object_name() == *name)
        .ok_or_else(|| ManagementError::instance_not_found(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_diff_history_and_validate_operations_are_reads() {
        let exec = |mbean: &str, op: &str| {
            Request::exec(ObjectName::parse(mbean).unwrap(), op, vec![json!("x")])
        };
        let m = "esb:type=DeploymentManager";
        let u = "esb:type=Unit,name=shop";
        for (mbean, op) in [
            (m, "diff"),
            (m, "diffContent"),
            (m, "history"),
            (m, "validate"),
            (m, "validateContent(java.lang.String,java.lang.String)"),
            (u, "diff"),
            (u, "history"),
            (u, "validate"),
            (m, "validateChecks"),
        ] {
            assert!(!changes_state(&exec(mbean, op)), "{mbean} {op}");
        }
        for (mbean, op) in [
            (m, "deploy"),
            (m, "batch"),
            (m, "reloadAll"),
            (m, "setHotDeploy"),
            (u, "reload"),
            (u, "rollback"),
            ("esb:type=Proxy,unit=shop,name=p", "pause"),
            ("esb:type=Server", "restart"),
            (u, "noSuchOperation"),
            ("esb:type=Nope", "diff"),
        ] {
            assert!(changes_state(&exec(mbean, op)), "{mbean} {op}");
        }
        let w = Request::write(ObjectName::parse(m).unwrap(), "HotDeploy", json!(false));
        assert!(changes_state(&w));
        assert!(!changes_state(&Request::list(None, None)));
    }
}

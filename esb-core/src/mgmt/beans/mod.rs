//! The managed objects of DESIGN §6. Beans are not registered anywhere: they are derived
//! on each request from the running server (units, revisions, transports), so they can
//! never go stale. This module names them; `info` holds list metadata, `read` attribute
//! values, `ops` writes and operations.

mod info;
mod ops;
mod read;

pub use info::info;
pub use ops::{exec, write};
pub use read::read_all;

use crate::server::Server;
use deployments::protocol::{ManagementError, ObjectName, OpInfo, Request};

/// A bean as the code knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bean {
    Server,
    Manager,
    Transport(String),
    Unit(String),
    Proxy(String, String),
    Sequence(String, String),
    Endpoint(String, String),
    Task(String, String),
    Consumer(String, String),
}

impl Bean {
    pub fn object_name(&self) -> ObjectName {
        match self {
            Bean::Server => ObjectName::new("esb", &[("type", "Server")]),
            Bean::Manager => ObjectName::new("esb", &[("type", "DeploymentManager")]),
            Bean::Transport(n) => ObjectName::new("esb", &[("type", "Transport"), ("name", n)]),
            Bean::Unit(n) => ObjectName::new("esb", &[("type", "Unit"), ("name", n)]),
            Bean::Proxy(u, n) => {
                ObjectName::new("esb", &[("type", "Proxy"), ("unit", u), ("name", n)])
            }
            Bean::Sequence(u, n) => {
                ObjectName::new("esb", &[("type", "Sequence"), ("unit", u), ("name", n)])
            }
            Bean::Endpoint(u, n) => {
                ObjectName::new("esb", &[("type", "Endpoint"), ("unit", u), ("name", n)])
            }
            Bean::Task(u, n) => {
                ObjectName::new("esb", &[("type", "Task"), ("unit", u), ("name", n)])
            }
            Bean::Consumer(u, n) => {
                ObjectName::new("esb", &[("type", "Consumer"), ("unit", u), ("name", n)])
            }
        }
    }
}

impl Bean {
    /// A bean of the type `name` designates, with its key values (it may not exist): enough
    /// to look up the type's metadata.
    pub fn of_type(name: &ObjectName) -> Option<Bean> {
        let key = |k: &str| name.get(k).unwrap_or_default().to_owned();
        Some(match name.get("type")? {
            "Server" => Bean::Server,
            "DeploymentManager" => Bean::Manager,
            "Transport" => Bean::Transport(key("name")),
            "Unit" => Bean::Unit(key("name")),
            "Proxy" => Bean::Proxy(key("unit"), key("name")),
            "Sequence" => Bean::Sequence(key("unit"), key("name")),
            "Endpoint" => Bean::Endpoint(key("unit"), key("name")),
            "Task" => Bean::Task(key("unit"), key("name")),
            "Consumer" => Bean::Consumer(key("unit"), key("name")),
            _ => return None,
        })
    }
}

/// The metadata of the operation an exec names (`op` or `op(signature)`), if it exists.
pub fn operation(mbean: &ObjectName, operation: &str) -> Option<OpInfo> {
    let op = operation.split('(').next().unwrap_or(operation);
    info(&Bean::of_type(mbean)?).op.remove(op)
}

/// Whether a request changes (or tries to change) server state: every write, and every
/// exec of an operation whose metadata in [`info`] is not marked read-only. The one place
/// that decides what is audited and what is refused while the audit log is unwritable. An
/// exec of an unknown operation counts as an attempted change.
/// True for operations whose effect is operator state that must survive a restart (see
/// [`crate::operator`]): runtime control of objects, and unloads (which clear it).
pub fn changes_operator_state(bean: &Bean, op: &str) -> bool {
    match bean {
        Bean::Server => op == "maintenance",
        Bean::Manager => op.starts_with("unload"),
        Bean::Unit(_) => matches!(op, "pause" | "pauseHold" | "resume" | "unload" | "setFlag"),
        Bean::Sequence(..) => false,
        Bean::Transport(_) | Bean::Proxy(..) | Bean::Endpoint(..) => true,
        Bean::Task(..) => op != "runNow",
        Bean::Consumer(..) => true,
    }
}

pub fn changes_state(req: &Request) -> bool {
    match req {
        Request::Write { .. } => true,
        Request::Exec {
            mbean,
            operation: op,
            ..
        } => operation(mbean, op).is_none_or(|o| o.impact.changes_state()),
        Request::Read { .. }
        | Request::Search { .. }
        | Request::List { .. }
        | Request::Version { .. } => false,
    }
}

/// Every bean of the running server.
pub async fn all(server: &Server) -> Vec<Bean> {
    let mut out = vec![Bean::Server, Bean::Manager];
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
        // Every read-only operation is one of these, on the two beans that have them.
        for bean in [Bean::Manager, Bean::Unit("u".into()), Bean::Server] {
            for (name, op) in info(&bean).op {
                if !op.impact.changes_state() {
                    assert!(
                        [
                            "diff",
                            "diffContent",
                            "history",
                            "validate",
                            "validateContent",
                            "validateChecks"
                        ]
                        .contains(&name.as_str()),
                        "{name}"
                    );
                }
            }
        }
    }
}

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
use deployments::protocol::{ManagementError, ObjectName};

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
        }
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
    let units = server.engine.units.lock().await;
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

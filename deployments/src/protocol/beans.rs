//! The managed objects (beans) of the management protocol: their kinds ([`BeanKind`], the
//! `type` key of an object name) and the beans themselves ([`Bean`], a kind with the names
//! that identify one object). Both directions: a bean gives its object name, an object name
//! gives its bean. Whether a bean exists is for the server to say.

use super::ObjectName;
use serde::{Deserialize, Serialize};

/// The domain of every esb bean.
pub const DOMAIN: &str = "esb";

/// The kind of a bean: the `type` key of its object name (`esb:type=Proxy,unit=u,name=p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BeanKind {
    Server,
    #[serde(rename = "DeploymentManager")]
    Manager,
    Transport,
    Unit,
    Proxy,
    Sequence,
    Endpoint,
    Task,
    Consumer,
    /// `esb:type=Cluster`, present in cluster mode.
    Cluster,
}

impl BeanKind {
    /// Every kind, in the order the server lists beans.
    pub const ALL: [BeanKind; 10] = [
        BeanKind::Server,
        BeanKind::Manager,
        BeanKind::Transport,
        BeanKind::Unit,
        BeanKind::Proxy,
        BeanKind::Sequence,
        BeanKind::Endpoint,
        BeanKind::Task,
        BeanKind::Consumer,
        BeanKind::Cluster,
    ];

    /// The `type` key value.
    pub fn type_name(self) -> &'static str {
        match self {
            BeanKind::Server => "Server",
            BeanKind::Manager => "DeploymentManager",
            BeanKind::Transport => "Transport",
            BeanKind::Unit => "Unit",
            BeanKind::Proxy => "Proxy",
            BeanKind::Sequence => "Sequence",
            BeanKind::Endpoint => "Endpoint",
            BeanKind::Task => "Task",
            BeanKind::Consumer => "Consumer",
            BeanKind::Cluster => "Cluster",
        }
    }

    /// The kind a `type` key value names.
    pub fn from_type_name(name: &str) -> Option<BeanKind> {
        BeanKind::ALL.into_iter().find(|k| k.type_name() == name)
    }

    /// Whether beans of this kind belong to a unit (their object name has a `unit` key).
    pub fn in_unit(self) -> bool {
        match self {
            BeanKind::Server
            | BeanKind::Manager
            | BeanKind::Transport
            | BeanKind::Unit
            | BeanKind::Cluster => false,
            BeanKind::Proxy
            | BeanKind::Sequence
            | BeanKind::Endpoint
            | BeanKind::Task
            | BeanKind::Consumer => true,
        }
    }
}

impl std::fmt::Display for BeanKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

/// One bean: its kind and the names that identify it (the unit first for objects of a unit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    Cluster,
}

impl Bean {
    pub fn kind(&self) -> BeanKind {
        match self {
            Bean::Server => BeanKind::Server,
            Bean::Manager => BeanKind::Manager,
            Bean::Transport(_) => BeanKind::Transport,
            Bean::Unit(_) => BeanKind::Unit,
            Bean::Proxy(..) => BeanKind::Proxy,
            Bean::Sequence(..) => BeanKind::Sequence,
            Bean::Endpoint(..) => BeanKind::Endpoint,
            Bean::Task(..) => BeanKind::Task,
            Bean::Consumer(..) => BeanKind::Consumer,
            Bean::Cluster => BeanKind::Cluster,
        }
    }

    /// The bean of `kind` named `name`, in the unit `unit` for kinds that live in one
    /// (ignored for the others).
    pub fn of_kind(kind: BeanKind, unit: &str, name: &str) -> Bean {
        let (u, n) = (unit.to_owned(), name.to_owned());
        match kind {
            BeanKind::Server => Bean::Server,
            BeanKind::Manager => Bean::Manager,
            BeanKind::Transport => Bean::Transport(n),
            BeanKind::Unit => Bean::Unit(n),
            BeanKind::Proxy => Bean::Proxy(u, n),
            BeanKind::Sequence => Bean::Sequence(u, n),
            BeanKind::Endpoint => Bean::Endpoint(u, n),
            BeanKind::Task => Bean::Task(u, n),
            BeanKind::Consumer => Bean::Consumer(u, n),
            BeanKind::Cluster => Bean::Cluster,
        }
    }

    /// The unit the bean belongs to (a unit bean: its own name).
    pub fn unit(&self) -> Option<&str> {
        match self {
            Bean::Server | Bean::Manager | Bean::Cluster | Bean::Transport(_) => None,
            Bean::Unit(u)
            | Bean::Proxy(u, _)
            | Bean::Sequence(u, _)
            | Bean::Endpoint(u, _)
            | Bean::Task(u, _)
            | Bean::Consumer(u, _) => Some(u),
        }
    }

    /// The bean's own name (none for the two singletons).
    pub fn name(&self) -> Option<&str> {
        match self {
            Bean::Server | Bean::Manager | Bean::Cluster => None,
            Bean::Transport(n) | Bean::Unit(n) => Some(n),
            Bean::Proxy(_, n)
            | Bean::Sequence(_, n)
            | Bean::Endpoint(_, n)
            | Bean::Task(_, n)
            | Bean::Consumer(_, n) => Some(n),
        }
    }

    pub fn object_name(&self) -> ObjectName {
        let kind = self.kind().type_name();
        match (self.unit(), self.name()) {
            (_, None) => ObjectName::new(DOMAIN, &[("type", kind)]),
            (Some(u), Some(n)) if self.kind().in_unit() => {
                ObjectName::new(DOMAIN, &[("type", kind), ("unit", u), ("name", n)])
            }
            (_, Some(n)) => ObjectName::new(DOMAIN, &[("type", kind), ("name", n)]),
        }
    }

    /// The bean of the type `name` designates, with its key values (it may not exist; missing
    /// keys are empty): enough to look up the type's metadata.
    pub fn of_type(name: &ObjectName) -> Option<Bean> {
        let kind = BeanKind::from_type_name(name.get("type")?)?;
        let key = |k: &str| name.get(k).unwrap_or_default();
        Some(Bean::of_kind(kind, key("unit"), key("name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bean_round_trips_through_its_object_name() {
        for kind in BeanKind::ALL {
            let bean = Bean::of_kind(kind, "shop", "list");
            assert_eq!(bean.kind(), kind);
            let name = bean.object_name();
            assert_eq!(name.get("type"), Some(kind.type_name()));
            assert_eq!(Bean::of_type(&name), Some(bean.clone()), "{name:?}");
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.type_name());
            assert_eq!(serde_json::from_value::<BeanKind>(json).unwrap(), kind);
        }
        assert_eq!(
            Bean::Proxy("shop".into(), "list".into())
                .object_name()
                .canonical(),
            "esb:name=list,type=Proxy,unit=shop"
        );
        assert_eq!(
            Bean::Manager.object_name().canonical(),
            "esb:type=DeploymentManager"
        );
        assert_eq!(
            Bean::of_type(&ObjectName::parse("esb:type=Nope").unwrap()),
            None
        );
    }
}

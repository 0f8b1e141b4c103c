//! The objects commands name: a [`Kind`] of managed object (unit, proxy, …, with its words
//! and MBean type) and a [`Target`], one object of a kind with its MBean name. Bare names
//! are units; elements of a unit are `UNIT/NAME`.

use std::fmt;

use deployments::protocol::ObjectName;

/// A kind of managed object that commands can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Unit,
    Proxy,
    Sequence,
    Endpoint,
    Transport,
    Task,
    Consumer,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Unit,
        Kind::Proxy,
        Kind::Sequence,
        Kind::Endpoint,
        Kind::Transport,
        Kind::Task,
        Kind::Consumer,
    ];

    /// Kinds that can be paused and resumed.
    pub const PAUSABLE: [Kind; 6] = [
        Kind::Unit,
        Kind::Proxy,
        Kind::Endpoint,
        Kind::Transport,
        Kind::Task,
        Kind::Consumer,
    ];

    /// Singular word as typed in commands (`proxy`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Unit => "unit",
            Kind::Proxy => "proxy",
            Kind::Sequence => "sequence",
            Kind::Endpoint => "endpoint",
            Kind::Transport => "transport",
            Kind::Task => "task",
            Kind::Consumer => "consumer",
        }
    }

    /// Plural word (`proxies`), as in `list proxies`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Unit => "units",
            Kind::Proxy => "proxies",
            Kind::Sequence => "sequences",
            Kind::Endpoint => "endpoints",
            Kind::Transport => "transports",
            Kind::Task => "tasks",
            Kind::Consumer => "consumers",
        }
    }

    /// The `type=` of the MBeans of this kind (`Proxy`).
    pub fn bean_type(self) -> &'static str {
        match self {
            Kind::Unit => "Unit",
            Kind::Proxy => "Proxy",
            Kind::Sequence => "Sequence",
            Kind::Endpoint => "Endpoint",
            Kind::Transport => "Transport",
            Kind::Task => "Task",
            Kind::Consumer => "Consumer",
        }
    }

    /// True for kinds that live inside a unit and are named `UNIT/NAME`.
    pub fn in_unit(self) -> bool {
        !matches!(self, Kind::Unit | Kind::Transport)
    }

    /// The MBean pattern of all objects of this kind, optionally inside one unit.
    pub fn pattern(self, unit: Option<&str>) -> ObjectName {
        let mut props = vec![("type", self.bean_type())];
        if let (Some(u), true) = (unit, self.in_unit()) {
            props.push(("unit", u));
        }
        ObjectName::new("esb", &props).with_property_wildcard()
    }

    /// The kind named by its singular or plural word.
    pub fn from_word(w: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.word() == w || k.plural() == w)
    }
}

/// One managed object named in a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Unit(String),
    Transport(String),
    /// An element of a unit: proxy, sequence, endpoint or task.
    Element {
        kind: Kind,
        unit: String,
        name: String,
    },
}

impl Target {
    pub fn kind(&self) -> Kind {
        match self {
            Target::Unit(_) => Kind::Unit,
            Target::Transport(_) => Kind::Transport,
            Target::Element { kind, .. } => *kind,
        }
    }

    /// The object's name as typed: `orders`, `http-8280` or `orders/list`.
    pub fn name(&self) -> String {
        match self {
            Target::Unit(n) | Target::Transport(n) => n.clone(),
            Target::Element { unit, name, .. } => format!("{unit}/{name}"),
        }
    }

    /// The MBean of this object.
    pub fn bean(&self) -> ObjectName {
        match self {
            Target::Unit(n) => ObjectName::new("esb", &[("type", "Unit"), ("name", n)]),
            Target::Transport(n) => ObjectName::new("esb", &[("type", "Transport"), ("name", n)]),
            Target::Element { kind, unit, name } => ObjectName::new(
                "esb",
                &[("type", kind.bean_type()), ("unit", unit), ("name", name)],
            ),
        }
    }
}

impl fmt::Display for Target {
    /// `proxy orders/list`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind().word(), self.name())
    }
}

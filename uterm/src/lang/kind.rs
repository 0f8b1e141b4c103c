//! The objects commands name: a [`Kind`] of managed object (unit, proxy, …, with its words;
//! the protocol's [`BeanKind`] it is) and a [`Target`], one object of a kind (the
//! protocol's [`Bean`]). Bare names
//! are units; elements of a unit are `UNIT/NAME`.

use std::fmt;

use deployments::protocol::beans::DOMAIN;
use deployments::protocol::{Bean, BeanKind, ObjectName};

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

    /// The protocol's kind of the MBeans of this kind.
    pub fn bean_kind(self) -> BeanKind {
        match self {
            Kind::Unit => BeanKind::Unit,
            Kind::Proxy => BeanKind::Proxy,
            Kind::Sequence => BeanKind::Sequence,
            Kind::Endpoint => BeanKind::Endpoint,
            Kind::Transport => BeanKind::Transport,
            Kind::Task => BeanKind::Task,
            Kind::Consumer => BeanKind::Consumer,
        }
    }

    /// The `type=` of the MBeans of this kind (`Proxy`).
    pub fn bean_type(self) -> &'static str {
        self.bean_kind().type_name()
    }

    /// True for kinds that live inside a unit and are named `UNIT/NAME`.
    pub fn in_unit(self) -> bool {
        self.bean_kind().in_unit()
    }

    /// The MBean pattern of all objects of this kind, optionally inside one unit.
    pub fn pattern(self, unit: Option<&str>) -> ObjectName {
        let mut props = vec![("type", self.bean_type())];
        if let (Some(u), true) = (unit, self.in_unit()) {
            props.push(("unit", u));
        }
        ObjectName::new(DOMAIN, &props).with_property_wildcard()
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

    /// The protocol's bean of this object.
    pub fn as_bean(&self) -> Bean {
        match self {
            Target::Unit(n) => Bean::Unit(n.clone()),
            Target::Transport(n) => Bean::Transport(n.clone()),
            Target::Element { kind, unit, name } => Bean::of_kind(kind.bean_kind(), unit, name),
        }
    }

    /// The MBean of this object.
    pub fn bean(&self) -> ObjectName {
        self.as_bean().object_name()
    }
}

impl fmt::Display for Target {
    /// `proxy orders/list`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind().word(), self.name())
    }
}

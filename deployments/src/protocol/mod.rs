//! Management protocol vocabulary shared by the server's management endpoint and its clients.
//! The typed contract: beans ([`beans`]), operations with typed arguments ([`ops`],
//! [`args`]), attributes ([`attrs`]), what operations answer ([`outcome`]), events
//! ([`event`]), tap records ([`tap`]), cluster operations and status ([`cluster`]) and the
//! list metadata generated from them ([`meta`]). The transport: JMX-style
//! object names ([`object_name`]) and the Jolokia v2 request/response subset ([`jolokia`]).
//! Pure: parsing, formatting and matching only — no sockets, no global state (the one clock
//! read is [`jolokia::Response::ok`]; use [`jolokia::Response::ok_at`] to avoid it).

pub mod args;
pub mod attrs;
pub mod beans;
pub mod cluster;
pub mod event;
pub mod jolokia;
pub mod meta;
pub mod object_name;
pub mod ops;
pub mod outcome;
pub mod tap;

/// The project's one "did you mean" ([`crate::diag::suggest`]), under the name clients use.
pub use crate::diag::suggest as did_you_mean;
pub use beans::{Bean, BeanKind};
pub use jolokia::{
    encode_get_segment, escape_path_segment, join_path, list_tree, list_tree_named, parse_get_path,
    parse_get_request, parse_post_body, parse_post_body_each, parse_query, split_path, ArgInfo,
    AttrInfo, Attributes, Config, Impact, JolokiaError, MBeanInfo, ManagementError, OpInfo,
    PostBody, PostItems, ProductInfo, ProtocolError, RejectedRequest, Request, Response, Shaping,
    VersionInfo, OBJECT_LIMIT_MARKER, PROTOCOL_VERSION, REQUEST_TYPES,
};
pub use object_name::{ObjectName, ObjectNameError};
pub use ops::Operation;
pub use outcome::Outcome;

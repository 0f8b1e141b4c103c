//! The Jolokia protocol (v2 subset) spoken by the management endpoint and its clients, one
//! concern per module. Owns request parsing (POST JSON bodies, single or bulk; GET paths with `!` escaping and
//! percent-decoding), the response envelope, the `version` and `list` value shapes, and the
//! mapping of errors to Jolokia status codes and Java error types.
//! Invariants: a parsed write/exec request never names an MBean pattern; nothing here does I/O.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::object_name::{ObjectName, ObjectNameError};
use crate::diag::suggest;

mod config;
mod error;
mod get;
mod list;
mod post;
mod request;
mod response;
#[cfg(test)]
mod tests;
mod version;

pub use config::*;
pub use error::*;
pub use get::*;
pub use list::*;
pub use post::*;
pub use request::*;
pub use response::*;
pub use version::*;

/// Jolokia protocol version we claim in `version` responses.
pub const PROTOCOL_VERSION: &str = "7.2";

/// Request types we understand, as they appear in `"type"` and in the first GET path segment
/// (matched without regard to case, as Jolokia does: jmx4perl sends `"READ"`).
pub const REQUEST_TYPES: [&str; 6] = ["read", "write", "exec", "search", "list", "version"];

const TYPES_LIST: &str = "read, write, exec, search, list, version";

const USAGE_READ: &str = "/read/<mbean>[/<attribute>[/<inner path>]]";
const USAGE_WRITE: &str = "/write/<mbean>/<attribute>/<value>[/<inner path>]";
const USAGE_EXEC: &str = "/exec/<mbean>/<operation>[/<argument>...]";
const USAGE_SEARCH: &str = "/search/<mbean pattern>";
const USAGE_VERSION: &str = "/version";

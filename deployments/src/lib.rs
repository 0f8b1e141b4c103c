//! The shared vocabulary of the ESB: the root-config and unit model, parsing with precise
//! errors, validation (per unit and across units), content hashing and diff, and the
//! management protocol types. Pure: no sockets, no global state.

pub mod check;
pub mod diag;
pub mod diff;
pub mod model;
pub mod parse;
pub mod protocol;
pub mod root;
pub mod root_diff;
pub mod source;
pub mod template;
pub mod validate;

pub use diag::Diagnostic;
pub use model::Unit;
pub use parse::{parse_unit, ParsedUnit};
pub use root::RootConfig;
pub use serde_spanned::Spanned;
pub use source::UnitSources;

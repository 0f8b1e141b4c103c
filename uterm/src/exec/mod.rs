//! Running commands: [`executor`] (the client and its round trips), [`run`] (one command of
//! the language, dispatched to [`query`] for reads, [`deploy`] for the DeploymentManager,
//! [`control`] for state changes of objects and the server, [`beans`] for generic access),
//! [`stream`] (`tap`, `events --follow`), [`offline`] (commands that need no server),
//! [`unitfiles`] (local unit files sent by `deploy`, revision files saved by `show source`),
//! [`script`] (script mode and its exit codes) and [`error`] (why a command failed).

pub mod beans;
pub mod cluster;
pub mod control;
pub mod deploy;
pub mod error;
pub mod executor;
pub mod offline;
pub mod query;
pub mod run;
pub mod script;
pub mod stream;
pub mod unitfiles;

pub use error::CmdError;
pub use executor::Executor;
pub use stream::Follow;

//! `uterm`: the operator client of the ESB management endpoint. Script mode
//! (`uterm -c "reload orders"`) and the console ([`tui`]) share one command language: parse a line
//! with [`command::parse`], run it with [`exec::Executor::run`], render the [`output::Output`]
//! as a table for people or as JSON.
//!
//! Modules: [`lex`] (quoting, script splitting), [`command`] (the language) and [`parse`]
//! (its parser), [`help`] (help text), [`client`] (HTTP: Jolokia bulk POSTs, `/events`),
//! [`exec`] (the executor) with [`query`] (reads), [`control`] (state changes) and
//! [`offline`] (no server needed), [`unitfiles`] (local unit files sent by `deploy`, revision
//! files shown by `show source`), [`view`] / [`report`] / [`event`] (server values →
//! output), [`output`] (tables, colour, JSON), [`script`] (script mode and exit codes).

pub mod cli;
pub mod client;
pub mod command;
pub mod control;
pub mod event;
pub mod exec;
pub mod help;
pub mod lex;
pub mod offline;
pub mod output;
pub mod parse;
pub mod query;
pub mod report;
pub mod script;
pub mod servers;
pub mod tap;
pub mod tui;
pub mod unitfiles;
pub mod view;

pub use client::{Client, ClientConfig, ClientError, TokenSpec};
pub use command::{parse, Command, Kind, Target, UsageError};
pub use exec::{CmdError, Executor};
pub use output::{Output, Style};

#[cfg(test)]
mod fake;

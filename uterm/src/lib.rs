//! `uterm`: the operator client of the ESB management endpoint. Script mode
//! (`uterm -c "reload orders"`) and the console ([`tui`]) share one command language: parse a line
//! with [`lang::parse`], run it with [`exec::Executor::run`], render the [`present::Output`]
//! as a table for people or as JSON.
//!
//! Rooms: [`lang`] (the command language: lexing, parsing, help text, completion), [`exec`]
//! (running commands against the server, offline commands, script mode), [`present`]
//! (server values → text blocks, one layout for script output and the console), [`conn`]
//! (the HTTP client, the servers file, the `/events` and `tap` streams) and [`tui`] (the
//! console). [`cli`] is the binary's command line.

pub mod cli;
pub mod conn;
pub mod exec;
pub mod lang;
pub mod present;
pub mod tui;

pub use conn::client::{Client, ClientConfig};
pub use conn::error::ClientError;
pub use conn::token::TokenSpec;
pub use exec::{CmdError, Executor};
pub use lang::{parse, Command, Kind, Target, UsageError};
pub use present::output::{Output, Style};

#[cfg(test)]
mod fake;

//! The command language (DESIGN §7), the same in script mode and on the console's `:` line:
//! [`lex`] splits text into commands and words, [`parse`] turns words into a [`Command`]
//! (with [`args`] for flags and single words), [`command`] and [`kind`] are what a command
//! says, [`help`] holds the text of every verb and [`complete`] the completion grammar.
//! Pure: nothing here talks to the server or draws anything.

pub mod args;
pub mod cluster;
pub mod command;
pub mod complete;
pub mod error;
pub mod help;
pub mod kind;
pub mod lex;
pub mod parse;

pub use command::Command;
pub use error::UsageError;
pub use kind::{Kind, Target};
pub use parse::{parse, parse_args, parse_script};

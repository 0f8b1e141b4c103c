//! The command language (DESIGN §7), the same in script mode and on the console's `:` line:
//! [`lex`] splits text into commands and words, [`parse`] turns words into a
//! [`command::Command`], [`help`] holds the text of every verb and [`complete`] the
//! completion grammar. Pure: nothing here talks to the server or draws anything.

pub mod command;
pub mod complete;
pub mod help;
pub mod lex;
pub mod parse;

pub use command::parse;

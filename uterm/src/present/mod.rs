//! Server values as text for people: [`output`] (blocks of toned spans: lines, fields,
//! tables, and their layout), [`view`] (status, object tables, attribute sheets), [`report`]
//! (deploy outcomes, validations, diffs, history), [`event`] and [`tap`] (one line per event
//! or request). Pure functions of the JSON the server answers.

pub mod cluster;
pub mod event;
pub mod help;
pub mod output;
pub mod report;
pub mod tap;
pub mod view;

pub use output::{Output, Style};

//! [`UsageError`]: a command that cannot be understood as typed — what is wrong, the nearest
//! valid command when one can be guessed, and the usage of the command concerned.

use std::fmt;

use crate::lang::help;

/// A command that cannot be understood as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    /// The nearest valid command line, when one can be guessed.
    pub suggestion: Option<String>,
    /// A free-form hint (used when there is no single suggestion).
    pub hint: Option<String>,
    /// The usage of the command concerned.
    pub usage: Option<String>,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            suggestion: None,
            hint: None,
            usage: None,
        }
    }

    pub fn with_suggestion(mut self, s: impl Into<String>) -> UsageError {
        self.suggestion = Some(s.into());
        self
    }

    pub fn with_hint(mut self, s: impl Into<String>) -> UsageError {
        self.hint = Some(s.into());
        self
    }

    pub fn with_usage_of(mut self, verb: &str) -> UsageError {
        self.usage = help::usage(verb).map(str::to_string);
        self
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        } else if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        if let Some(u) = &self.usage {
            write!(f, "\nusage: {}", u.replace('\n', "\n       "))?;
        }
        Ok(())
    }
}

impl std::error::Error for UsageError {}

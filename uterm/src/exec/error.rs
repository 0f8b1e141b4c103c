//! [`CmdError`]: why a command did not succeed — not valid as typed (exit 2), the server
//! cannot be reached or refused us (exit 3), or the command ran and failed (exit 1, with
//! what it produced, e.g. every error of a rejected reload) — and its JSON for `--json`.

use serde_json::{json, Value};

use crate::conn::error::ClientError;
use crate::lang::error::UsageError;
use crate::present::output::Output;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The command is not valid as typed (exit 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The server cannot be reached or refused us (exit 3), or answered garbage (exit 1).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command ran and failed (exit 1); `output` shows what happened when there is more to
    /// say (e.g. a rejected reload with every error).
    #[error("{message}{}", .hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Failed {
        message: String,
        hint: Option<String>,
        output: Option<Box<Output>>,
    },
}

impl CmdError {
    pub fn failed(message: impl Into<String>) -> CmdError {
        CmdError::Failed {
            message: message.into(),
            hint: None,
            output: None,
        }
    }

    pub(crate) fn with_hint(self, h: Option<String>) -> CmdError {
        match self {
            CmdError::Failed {
                message, output, ..
            } => CmdError::Failed {
                message,
                hint: h,
                output,
            },
            other => other,
        }
    }

    pub(crate) fn with_output(message: impl Into<String>, output: Output) -> CmdError {
        CmdError::Failed {
            message: message.into(),
            hint: None,
            output: Some(Box::new(output)),
        }
    }

    /// 1 failed, 2 usage error, 3 cannot connect or not authorised.
    pub fn exit_code(&self) -> i32 {
        match self {
            CmdError::Usage(_) => 2,
            CmdError::Client(c) => c.exit_code(),
            CmdError::Failed { .. } => 1,
        }
    }

    /// What the command produced before it failed, if anything.
    pub fn output(&self) -> Option<&Output> {
        match self {
            CmdError::Failed { output, .. } => output.as_deref(),
            _ => None,
        }
    }

    /// The error as JSON: `{"message", "hint"?, "suggestion"?, "usage"?}`.
    pub fn to_json(&self) -> Value {
        match self {
            CmdError::Usage(u) => json!({
                "message": u.message,
                "suggestion": u.suggestion,
                "hint": u.hint,
                "usage": u.usage,
            }),
            CmdError::Client(c) => json!({ "message": c.to_string() }),
            CmdError::Failed { message, hint, .. } => json!({ "message": message, "hint": hint }),
        }
    }
}

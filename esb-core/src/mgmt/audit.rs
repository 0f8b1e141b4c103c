//! The audit log: one JSON line per state-changing management request, rejected ones
//! included — who, from where, what, the result, and the unit's revision before and after.

use super::auth::Role;
use deployments::protocol::Response;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Audit {
    path: PathBuf,
    lock: Mutex<()>,
}

fn is_rejected(outcome: &Value) -> bool {
    outcome.get("outcome").and_then(|o| o.as_str()) == Some("rejected")
}

impl Audit {
    pub fn new(state_dir: &Path) -> Self {
        Audit {
            path: state_dir.join("audit.log"),
            lock: Mutex::new(()),
        }
    }

    pub fn record(
        &self,
        role: Role,
        from: SocketAddr,
        what: &Value,
        answer: &Response,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        // Deployment operations answer one outcome or an array of them (batch, reloadAll).
        let rejected = match answer.value.as_ref() {
            Some(Value::Array(items)) => items.iter().any(is_rejected),
            Some(v) => is_rejected(v),
            None => false,
        };
        let result = if !answer.is_ok() {
            "error"
        } else if rejected {
            "rejected"
        } else {
            "ok"
        };
        let line = json!({
            "time": crate::events::epoch_ms(),
            "who": role.as_str(),
            "from": from.to_string(),
            "what": what,
            "result": result,
            "status": answer.status,
            "error": answer.error,
            "revision_before": before,
            "revision_after": after,
        });
        let _guard = self.lock.lock().expect("audit lock");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), "cannot write audit record: {e}");
        }
    }
}

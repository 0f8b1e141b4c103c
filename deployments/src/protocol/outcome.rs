//! What operations answer: the closed outcome of a unit's part in a deployment
//! ([`Outcome`]), of a warm restart and a binary upgrade, and the values of the read-only
//! and canary operations (validation, diff, history, source, drains). Serde both ways;
//! fields a client may not get from an older server default when missing.

use crate::diag::Diagnostic;
use crate::diff::UnitDiff;
use crate::root_diff::RootDiff;
use crate::source::Origin;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The closed outcome of one unit's part in a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Activated {
        unit: String,
        revision: u64,
        #[serde(default)]
        hash: String,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        duration_ms: f64,
        #[serde(default)]
        diff: UnitDiff,
    },
    Unchanged {
        unit: String,
        revision: u64,
    },
    Rejected {
        unit: String,
        #[serde(default)]
        errors: Vec<Diagnostic>,
    },
    Unloaded {
        unit: String,
        revision: u64,
    },
    /// A canary started beside the `stable` revision.
    Canary {
        unit: String,
        revision: u64,
        #[serde(default)]
        stable: u64,
        #[serde(default)]
        hash: String,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        percent: f64,
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        duration_ms: f64,
        #[serde(default)]
        diff: UnitDiff,
    },
}

impl Outcome {
    pub fn is_rejected(&self) -> bool {
        matches!(self, Outcome::Rejected { .. })
    }

    pub fn unit(&self) -> &str {
        match self {
            Outcome::Activated { unit, .. }
            | Outcome::Unchanged { unit, .. }
            | Outcome::Rejected { unit, .. }
            | Outcome::Unloaded { unit, .. }
            | Outcome::Canary { unit, .. } => unit,
        }
    }

    /// The revision the unit has afterwards (none when rejected).
    pub fn revision(&self) -> Option<u64> {
        match self {
            Outcome::Activated { revision, .. }
            | Outcome::Unchanged { revision, .. }
            | Outcome::Unloaded { revision, .. }
            | Outcome::Canary { revision, .. } => Some(*revision),
            Outcome::Rejected { .. } => None,
        }
    }

    /// The wire name of the outcome (`activated`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Activated { .. } => "activated",
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Unloaded { .. } => "unloaded",
            Outcome::Canary { .. } => "canary",
        }
    }
}

/// The outcome of a warm restart (`restart` on the server bean).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RestartOutcome {
    /// The new configuration serves; `text` is `diff` as a sentence.
    Restarted {
        #[serde(default)]
        duration_ms: f64,
        #[serde(default)]
        text: String,
        #[serde(default)]
        diff: RootDiff,
    },
    /// Nothing changed: the running configuration keeps serving.
    Rejected {
        #[serde(default)]
        errors: Vec<Diagnostic>,
    },
}

/// The outcome of a binary upgrade (`upgrade` on the server bean); a failed one is an
/// operation error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpgradeOutcome {
    Upgraded {
        pid: u32,
        old_pid: u32,
        #[serde(default)]
        binary: String,
        #[serde(default)]
        duration_ms: f64,
    },
}

/// What `validate` and `validateContent` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub unit: String,
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Diagnostic>>,
}

/// What `validateChecks` answers: the number of checks run, or the errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksRun {
    pub unit: String,
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Diagnostic>>,
}

/// What `diff` and `diffContent` answer: the diff and its text, `new` for a unit not
/// loaded yet, or the errors that keep the content from deploying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffResult {
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<UnitDiff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Diagnostic>>,
}

/// One revision kept for rollback, as `history` lists them (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub revision: u64,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Activation time (ms since the epoch).
    #[serde(default)]
    pub deployed_at: u64,
    #[serde(default)]
    pub deploy_ms: f64,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub degraded: bool,
}

/// The exact files of one revision, as `source` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSource {
    pub unit: String,
    pub revision: u64,
    pub hash: String,
    pub label: Option<String>,
    pub origin: Origin,
    pub active: bool,
    pub files: BTreeMap<String, String>,
}

/// One drain ended by `cancelDrain`: `ended` requests still running were answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainCancelled {
    pub revision: u64,
    pub ended: u64,
}

/// What `abortCanary` answers: the canary revision dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryAborted {
    pub aborted: u64,
}

/// What `setCanaryWeight` answers: the new share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CanaryWeight {
    pub percent: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            serde_json::from_value::<T>(json.clone()).unwrap(),
            v,
            "{json}"
        );
    }

    #[test]
    fn outcomes_round_trip_and_keep_their_wire_shape() {
        let diff = UnitDiff {
            unit: "u".into(),
            changes: vec![],
        };
        let all = [
            Outcome::Activated {
                unit: "u".into(),
                revision: 2,
                hash: "h".into(),
                label: Some("1.0".into()),
                duration_ms: 1.5,
                diff: diff.clone(),
            },
            Outcome::Unchanged {
                unit: "u".into(),
                revision: 2,
            },
            Outcome::Rejected {
                unit: "u".into(),
                errors: vec![Diagnostic::new("u.toml", 1, 1, "bad")],
            },
            Outcome::Unloaded {
                unit: "u".into(),
                revision: 2,
            },
            Outcome::Canary {
                unit: "u".into(),
                revision: 3,
                stable: 2,
                hash: "h".into(),
                label: None,
                percent: 10.0,
                header: Some("x=1".into()),
                duration_ms: 1.0,
                diff,
            },
        ];
        for o in all {
            let json = serde_json::to_value(&o).unwrap();
            assert_eq!(json["outcome"], o.name());
            assert_eq!(json["unit"], o.unit());
            round_trip(o);
        }
        // What older servers and test doubles send: only the essentials.
        let o: Outcome =
            serde_json::from_value(json!({"outcome": "activated", "unit": "a", "revision": 5}))
                .unwrap();
        assert_eq!(o.revision(), Some(5));
        round_trip(RestartOutcome::Restarted {
            duration_ms: 2.0,
            text: "nothing changed".into(),
            diff: RootDiff::default(),
        });
        round_trip(RestartOutcome::Rejected { errors: vec![] });
        round_trip(UpgradeOutcome::Upgraded {
            pid: 2,
            old_pid: 1,
            binary: "/bin/esb".into(),
            duration_ms: 3.0,
        });
        round_trip(Validation {
            unit: "u".into(),
            valid: true,
            errors: None,
        });
        round_trip(ChecksRun {
            unit: "u".into(),
            valid: true,
            checks: Some(2),
            errors: None,
        });
        let d = DiffResult {
            unit: "u".into(),
            diff: Some(UnitDiff::default()),
            text: Some(String::new()),
            new: true,
            errors: None,
        };
        assert_eq!(serde_json::to_value(&d).unwrap()["new"], true);
        round_trip(d);
        round_trip(HistoryEntry {
            revision: 1,
            hash: "h".into(),
            label: None,
            deployed_at: 5,
            deploy_ms: 1.0,
            active: true,
            degraded: false,
        });
        round_trip(RevisionSource {
            unit: "u".into(),
            revision: 1,
            hash: "h".into(),
            label: None,
            origin: Origin::Pushed,
            active: true,
            files: [("unit.toml".to_owned(), "x".to_owned())].into(),
        });
        round_trip(DrainCancelled {
            revision: 1,
            ended: 0,
        });
        round_trip(CanaryAborted { aborted: 3 });
        round_trip(CanaryWeight { percent: 5.0 });
    }
}

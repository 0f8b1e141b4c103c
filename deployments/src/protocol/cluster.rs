//! The typed contract of cluster operations on `esb:type=Cluster` (docs/cluster.md; the
//! operations themselves are `super::ops::ClusterOp`): each operation takes one JSON object argument ([`DeployArgs`], [`UnitArgs`], [`RollbackArgs`])
//! and answers a [`ChangeResult`] or, for `status`, a [`ClusterStatus`]. The server and
//! uterm both use these structs, so neither side looks fields up by string. The sync state
//! of a node's unit is decided here, once ([`sync_state`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The object name of the cluster bean.
pub const BEAN: &str = "esb:type=Cluster";

/// `deploy`: content (relative path → text: a `unit.toml` and what it includes) becomes the
/// unit's next cluster revision, after a dry run on the accepting node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployArgs {
    pub unit: String,
    pub files: BTreeMap<String, String>,
    /// How long to wait for every live node to apply it (0: do not wait).
    #[serde(default)]
    pub wait_ms: u64,
}

/// The object arguments travel as JSON objects (or their JSON text, for clients that only
/// send strings). A deploy's argument holds content: the audit records it as digests.
macro_rules! object_arg {
    ($t:ty, $kind:expr) => {
        impl super::args::ArgValue for $t {
            const TYPE: &'static str = "java.util.Map";
            const KIND: super::args::ArgKind = $kind;
            fn decode(v: Option<&serde_json::Value>) -> Result<Self, String> {
                let v = match v.cloned().unwrap_or_default() {
                    serde_json::Value::String(s) => {
                        serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))
                    }
                    v => v,
                };
                serde_json::from_value(v)
                    .map_err(|e| format!(" must be an object like {}: {e}", <$t>::EXAMPLE))
            }
            fn encode(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("cluster arguments serialize")
            }
        }
    };
}
object_arg!(DeployArgs, super::args::ArgKind::Content);
object_arg!(UnitArgs, super::args::ArgKind::Text);
object_arg!(RollbackArgs, super::args::ArgKind::Text);

impl DeployArgs {
    const EXAMPLE: &'static str = r#"{"unit": "orders", "files": {"unit.toml": "..."}}"#;
}
impl UnitArgs {
    const EXAMPLE: &'static str = r#"{"unit": "orders"}"#;
}
impl RollbackArgs {
    const EXAMPLE: &'static str = r#"{"unit": "orders", "to": 3}"#;
}

/// `publish`, `unload`, `pause`, `resume`: one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitArgs {
    pub unit: String,
    #[serde(default)]
    pub wait_ms: u64,
}

/// `rollback`: the content of kept cluster revision `to` (default: the previous one)
/// becomes a new revision (a roll forward).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackArgs {
    pub unit: String,
    #[serde(default)]
    pub to: Option<u64>,
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Publish,
    Unload,
    Rollback,
    Pause,
    Resume,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Publish => "publish",
            Action::Unload => "unload",
            Action::Rollback => "rollback",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }
}

/// What a cluster operation committed to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeResult {
    pub action: Action,
    pub unit: String,
    /// The unit's cluster revision after the change (for an unload: the one removed).
    pub revision: u64,
    pub hash: Option<String>,
    pub label: Option<String>,
    /// The store's revision of the commit.
    pub store_revision: i64,
    /// The node whose management endpoint accepted the operation.
    pub accepted_by: String,
    /// Set when the operation waited for the nodes (`wait_ms` > 0).
    pub wait: Option<WaitResult>,
}

/// Who applied a change within the wait.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitResult {
    pub synced: Vec<String>,
    pub failed: Vec<NodeError>,
    pub timed_out: Vec<String>,
    pub waited_ms: u64,
}

impl WaitResult {
    pub fn all_synced(&self) -> bool {
        self.failed.is_empty() && self.timed_out.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeError {
    pub node: String,
    pub error: String,
}

/// One node's report of one unit: the cluster revision it last tried, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitReport {
    pub revision: u64,
    pub hash: String,
    /// `None`: applied and serving; `Some(error)`: refused, the previous revision serves.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether the unit is paused on this node.
    #[serde(default)]
    pub paused: bool,
    /// When the node finished applying (or refusing) the revision, ms since the Unix epoch.
    #[serde(default)]
    pub applied_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncState {
    Synced,
    Pending,
    Failed,
    Down,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "SYNCED",
            SyncState::Pending => "PENDING",
            SyncState::Failed => "FAILED",
            SyncState::Down => "DOWN",
        }
    }
}

/// The state of `report` against the unit's cluster revision `wanted` (number and hash: a
/// number is reused after a wiped store), on a node that is `live` (its lease-bound report
/// exists) or not.
pub fn sync_state(wanted: (u64, &str), report: Option<&UnitReport>, live: bool) -> SyncState {
    let same = |r: &UnitReport| r.revision == wanted.0 && r.hash == wanted.1;
    match report {
        _ if !live => SyncState::Down,
        Some(r) if same(r) && r.error.is_none() => SyncState::Synced,
        Some(r) if same(r) => SyncState::Failed,
        _ => SyncState::Pending,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// Reachable and watched.
    Up,
    /// Unreachable: nodes serve what they last applied; cluster operations are refused.
    Down,
    /// The cluster's keys vanished (an empty or wiped prefix): nothing is unloaded; an
    /// operator must deploy again or restore the store.
    Alarm,
}

impl StoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreState::Up => "up",
            StoreState::Down => "down",
            StoreState::Alarm => "alarm",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    pub state: StoreState,
    pub endpoints: Vec<String>,
    /// Why it is down or alarmed.
    pub detail: Option<String>,
    /// The last store revision this node applied.
    pub applied_revision: i64,
}

/// A cluster unit as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub unit: String,
    pub revision: u64,
    pub hash: String,
    pub label: Option<String>,
    /// The node that accepted the revision, and when (ms since the Unix epoch).
    pub by: String,
    pub at_ms: u64,
    /// Desired operator state.
    pub paused: bool,
}

/// One node: whether its report is live, and its state per cluster unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    pub live: bool,
    pub applied_revision: i64,
    pub units: BTreeMap<String, NodeUnit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeUnit {
    pub state: SyncState,
    /// The revision the node last reported for the unit (0: none).
    pub revision: u64,
    pub hash: Option<String>,
    pub error: Option<String>,
    /// When the node applied (or refused) that revision (ms since the Unix epoch; 0: unknown).
    pub applied_at_ms: u64,
}

/// `status`: nodes × units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster: String,
    /// The node that answered.
    pub node: String,
    pub store: StoreHealth,
    pub units: Vec<UnitStatus>,
    pub nodes: Vec<NodeStatus>,
}

impl ClusterStatus {
    /// Builds the matrix from the units and each node's reports (`None`: the node is known
    /// but its report expired).
    pub fn matrix(
        units: &[UnitStatus],
        reports: &BTreeMap<String, (bool, i64, BTreeMap<String, UnitReport>)>,
    ) -> Vec<NodeStatus> {
        reports
            .iter()
            .map(|(node, (live, applied, got))| NodeStatus {
                node: node.clone(),
                live: *live,
                applied_revision: *applied,
                units: units
                    .iter()
                    .map(|u| {
                        let r = got.get(&u.unit);
                        (
                            u.unit.clone(),
                            NodeUnit {
                                state: sync_state((u.revision, &u.hash), r, *live),
                                revision: r.map(|r| r.revision).unwrap_or(0),
                                hash: r.map(|r| r.hash.clone()),
                                error: r.and_then(|r| r.error.clone()),
                                applied_at_ms: r.map(|r| r.applied_at_ms).unwrap_or(0),
                            },
                        )
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(revision: u64, error: Option<&str>) -> UnitReport {
        UnitReport {
            revision,
            hash: "h".into(),
            error: error.map(str::to_owned),
            paused: false,
            applied_at_ms: 0,
        }
    }

    #[test]
    fn sync_state_of_each_report() {
        assert_eq!(
            sync_state((2, "h"), Some(&report(2, None)), true),
            SyncState::Synced
        );
        assert_eq!(
            sync_state((2, "h"), Some(&report(1, None)), true),
            SyncState::Pending
        );
        assert_eq!(sync_state((2, "h"), None, true), SyncState::Pending);
        assert_eq!(
            sync_state((2, "h"), Some(&report(2, Some("no"))), true),
            SyncState::Failed
        );
        // A failure of an older revision is not the state of the new one.
        assert_eq!(
            sync_state((2, "other"), Some(&report(2, None)), true),
            SyncState::Pending
        );
        assert_eq!(
            sync_state((3, "h"), Some(&report(2, Some("no"))), true),
            SyncState::Pending
        );
        assert_eq!(
            sync_state((2, "h"), Some(&report(2, None)), false),
            SyncState::Down
        );
    }

    #[test]
    fn arguments_refuse_unknown_fields() {
        let e = serde_json::from_str::<UnitArgs>(r#"{"unit":"a","wiat_ms":1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `wiat_ms`"), "{e}");
        let a: RollbackArgs = serde_json::from_str(r#"{"unit":"a"}"#).unwrap();
        assert_eq!((a.to, a.wait_ms), (None, 0));
    }
}

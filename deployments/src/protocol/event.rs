//! The events of the `/events` stream (server-sent events): every deployment step and
//! state change, one closed enum tagged by `type`. The server emits exactly these; clients
//! read them back with serde. The SSE `event:` field is [`EventKind::name`]. Details a client
//! can do without (hash, label, duration, counts) default when missing.

use crate::diag::Diagnostic;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    ServerStarted {
        name: String,
    },
    ServerStopping,
    UnitActivated {
        unit: String,
        revision: u64,
        #[serde(default)]
        hash: String,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        duration_ms: f64,
        /// The diff's summary, `+added ~changed -removed` (the diff itself is in the
        /// deploy's outcome).
        #[serde(default)]
        changes: String,
        #[serde(default)]
        degraded: bool,
    },
    UnitUnchanged {
        unit: String,
        revision: u64,
    },
    UnitRejected {
        unit: String,
        #[serde(default)]
        errors: Vec<Diagnostic>,
    },
    UnitFailed {
        unit: String,
        #[serde(default)]
        errors: Vec<Diagnostic>,
    },
    UnitUnloaded {
        unit: String,
        revision: u64,
    },
    /// A replaced or unloaded revision stopped draining. `reason`: `finished` (nothing
    /// left in flight), `timeout` (`drain_timeout` passed) or `cancelled` (by an operator);
    /// `ended` requests were still running and were answered 503.
    RevisionDrained {
        unit: String,
        revision: u64,
        #[serde(default)]
        in_flight_left: u64,
        #[serde(default)]
        ended: u64,
        #[serde(default)]
        reason: String,
    },
    /// A unit's `[guard]` tripped after its revision was activated: esb rolled it back.
    GuardTripped {
        unit: String,
        revision: u64,
        reason: String,
        rolled_back_to: Option<u64>,
    },
    /// An object's runtime state changed by an operation: `object` is its canonical name
    /// (with ` flag NAME` or ` address URL` for a unit flag or an endpoint address).
    StateChanged {
        object: String,
        state: String,
    },
    HotDeploy {
        enabled: bool,
    },
    /// A cluster operation this node accepted and wrote to the store.
    ClusterChange {
        action: String,
        unit: String,
        revision: u64,
        accepted_by: String,
    },
    /// The cluster store became reachable (`up`), unreachable (`down`), or its keys
    /// vanished (`alarm`).
    ClusterStore {
        state: String,
        detail: Option<String>,
    },
}

impl EventKind {
    /// The SSE event name (the `type` tag).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ServerStarted { .. } => "server_started",
            EventKind::ServerStopping => "server_stopping",
            EventKind::UnitActivated { .. } => "unit_activated",
            EventKind::UnitUnchanged { .. } => "unit_unchanged",
            EventKind::UnitRejected { .. } => "unit_rejected",
            EventKind::UnitFailed { .. } => "unit_failed",
            EventKind::UnitUnloaded { .. } => "unit_unloaded",
            EventKind::RevisionDrained { .. } => "revision_drained",
            EventKind::StateChanged { .. } => "state_changed",
            EventKind::HotDeploy { .. } => "hot_deploy",
            EventKind::GuardTripped { .. } => "guard_tripped",
            EventKind::ClusterChange { .. } => "cluster_change",
            EventKind::ClusterStore { .. } => "cluster_store",
        }
    }

    /// The unit the event is about, if any.
    pub fn unit(&self) -> Option<&str> {
        match self {
            EventKind::UnitActivated { unit, .. }
            | EventKind::UnitUnchanged { unit, .. }
            | EventKind::UnitRejected { unit, .. }
            | EventKind::UnitFailed { unit, .. }
            | EventKind::UnitUnloaded { unit, .. }
            | EventKind::RevisionDrained { unit, .. }
            | EventKind::GuardTripped { unit, .. }
            | EventKind::ClusterChange { unit, .. } => Some(unit),
            EventKind::ClusterStore { .. }
            | EventKind::ServerStarted { .. }
            | EventKind::ServerStopping
            | EventKind::StateChanged { .. }
            | EventKind::HotDeploy { .. } => None,
        }
    }
}

/// One event as the stream carries it: its id (for `Last-Event-ID`), time and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_round_trips_with_its_name_as_type() {
        let d = || vec![Diagnostic::new("u.toml", 3, 5, "bad")];
        let kinds = [
            EventKind::ServerStarted { name: "esb".into() },
            EventKind::ServerStopping,
            EventKind::UnitActivated {
                unit: "u".into(),
                revision: 4,
                hash: "h".into(),
                label: Some("1.2.0".into()),
                duration_ms: 3.1,
                changes: "+0 ~1 -0".into(),
                degraded: false,
            },
            EventKind::UnitUnchanged {
                unit: "u".into(),
                revision: 4,
            },
            EventKind::UnitRejected {
                unit: "u".into(),
                errors: d(),
            },
            EventKind::UnitFailed {
                unit: "u".into(),
                errors: d(),
            },
            EventKind::UnitUnloaded {
                unit: "u".into(),
                revision: 4,
            },
            EventKind::RevisionDrained {
                unit: "u".into(),
                revision: 3,
                in_flight_left: 0,
                ended: 0,
                reason: "finished".into(),
            },
            EventKind::GuardTripped {
                unit: "u".into(),
                revision: 4,
                reason: "errors".into(),
                rolled_back_to: Some(3),
            },
            EventKind::StateChanged {
                object: "esb:type=Server".into(),
                state: "Maintenance".into(),
            },
            EventKind::HotDeploy { enabled: true },
        ];
        for kind in kinds {
            let e = Event {
                id: 7,
                time: 1_714_565_584_123,
                kind,
            };
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["type"], e.kind.name());
            assert_eq!(v["id"], 7);
            assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
        }
        let e: Event = serde_json::from_value(json!({
            "id":1,"time":1,"type":"unit_activated","unit":"orders","revision":4,
            "hash":"h","label":null,"duration_ms":3.1,"changes":"+0 ~1 -0","degraded":false}))
        .unwrap();
        assert_eq!(e.kind.unit(), Some("orders"));
    }
}

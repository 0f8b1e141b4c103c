//! The attributes of every bean kind, as typed structs: what a `read` of all attributes
//! answers (serde both ways, wire names in PascalCase), each field declared once with its
//! wire name, access and description, from which the list metadata ([`AttrSpec`]) comes.
//! Deserializing is lenient: a missing attribute takes its default.

use crate::diag::Diagnostic;
use crate::model::Strategy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metadata of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrSpec {
    pub name: &'static str,
    /// JMX type name.
    pub type_: &'static str,
    pub desc: &'static str,
    pub writable: bool,
}

/// A type an attribute value can have, with its JMX type name.
pub trait AttrType {
    const TYPE: &'static str;
}

/// A structured attribute value (a JSON object).
pub trait ObjectValue {}

macro_rules! attr_type {
    ($($t:ty => $name:literal),* $(,)?) => {
        $( impl AttrType for $t { const TYPE: &'static str = $name; } )*
    };
}

attr_type! {
    String => "java.lang.String",
    Option<String> => "java.lang.String",
    u64 => "long",
    i64 => "long",
    Option<u64> => "long",
    usize => "int",
    bool => "boolean",
    Option<f64> => "double",
    Vec<String> => "[Ljava.lang.String;",
    Strategy => "java.lang.String",
    BTreeMap<String, bool> => "java.lang.Object",
    Vec<Diagnostic> => "[Ljava.lang.Object;",
}

impl<T: ObjectValue> AttrType for Vec<T> {
    const TYPE: &'static str = "[Ljava.lang.Object;";
}

impl<T: ObjectValue> AttrType for Option<T> {
    const TYPE: &'static str = "java.lang.Object";
}

macro_rules! attributes {
    (@writable rw) => { true };
    (@writable ro) => { false };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $attr:literal $access:ident $desc:literal, )*
        }
        $( with $group:ident : $gty:ty ),*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( #[doc = $desc] #[serde(rename = $attr)] $(#[$fmeta])* pub $field: $ty, )*
            $( #[serde(flatten)] pub $group: $gty, )*
        }

        impl $name {
            /// Metadata of every attribute.
            pub fn specs() -> Vec<AttrSpec> {
                #[allow(unused_mut)]
                let mut specs = vec![ $( AttrSpec {
                    name: $attr,
                    type_: <$ty as AttrType>::TYPE,
                    desc: $desc,
                    writable: attributes!(@writable $access),
                } ),* ];
                $( specs.extend(<$gty>::specs()); )*
                specs
            }
        }
    };
}

/// A per-second rate. This server sends whole numbers (written as JSON integers); other
/// servers and tests may send fractions.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Rate(pub f64);

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        if f.fract() == 0.0 && (0.0..9.0e15).contains(&f) {
            s.serialize_u64(f as u64)
        } else {
            s.serialize_f64(f)
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Rate)
    }
}

impl AttrType for Option<Rate> {
    const TYPE: &'static str = "long";
}

/// Reads a count that may come as a JSON float (`3100.0`), rounded; null or absent is `None`.
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v: Option<f64> = Option::deserialize(d)?;
    Ok(v.map(|f| f.max(0.0).round() as u64))
}

/// Reads a count that may come as a JSON float (`40.0`), rounded; null or absent is 0.
fn whole_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(d).map(Option::unwrap_or_default)
}

attributes! {
    /// Request counters of a transport, unit, proxy or endpoint (the server sends each one;
    /// `None` is an attribute it did not send).
    pub struct Counters {
        #[serde(deserialize_with = "whole")]
        requests: Option<u64> = "Requests" ro "requests served",
        requests_per_second: Option<Rate> = "RequestsPerSecond" ro "requests in the last second",
        #[serde(deserialize_with = "whole")]
        errors: Option<u64> = "Errors" ro "requests answered with a 5xx status",
        #[serde(deserialize_with = "whole")]
        in_flight: Option<u64> = "InFlight" ro "requests in progress",
    }
}

attributes! {
    /// Latency quantiles of a proxy or endpoint (`None`: not sent).
    pub struct Latency {
        #[serde(deserialize_with = "whole")]
        p50_micros: Option<u64> = "P50Micros" ro "median latency (µs)",
        #[serde(deserialize_with = "whole")]
        p99_micros: Option<u64> = "P99Micros" ro "99th percentile latency (µs)",
    }
}

attributes! {
    /// `esb:type=Server`.
    pub struct ServerAttrs {
        name: String = "Name" ro "server name",
        version: String = "Version" ro "esb version",
        state: String = "State" ro "Running or Maintenance",
        uptime_seconds: u64 = "UptimeSeconds" ro "seconds since start",
        units: usize = "Units" ro "units loaded",
        proxies: usize = "Proxies" ro "proxies active",
        hot_deploy: bool = "HotDeploy" rw "whether the hot deployer watches the deployments directory",
    }
    with counters: Counters
}

/// A revision still finishing requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Draining {
    /// The unit (in the manager's list; absent in a unit's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub revision: u64,
    pub in_flight: u64,
}
impl ObjectValue for Draining {}

attributes! {
    /// `esb:type=DeploymentManager`.
    pub struct ManagerAttrs {
        units: Vec<String> = "Units" ro "units loaded",
        units_on_disk: Vec<String> = "UnitsOnDisk" ro "unit directories on disk",
        hot_deploy: bool = "HotDeploy" rw "hot deployer on/off",
        deployments_dir: String = "DeploymentsDir" ro "directory of the units",
        draining: Vec<Draining> = "Draining" ro "revisions still finishing requests",
    }
}

attributes! {
    /// `esb:type=Transport` of an HTTP(S) listener.
    pub struct TransportAttrs {
        state: String = "State" ro "Started, Paused or Stopped",
        kind: String = "Kind" ro "http or https",
        bind: String = "Bind" ro "listen address",
        connections: u64 = "Connections" ro "client connections open now",
        max_connections: u64 = "MaxConnections" ro "connection cap; at it the listener stops accepting",
    }
    with counters: Counters
}

attributes! {
    /// `esb:type=Transport` of an AMQP link.
    pub struct AmqpLinkAttrs {
        state: String = "State" ro "Started, Paused or Stopped",
        kind: String = "Kind" ro "amqp",
        url: String = "Url" ro "broker URL",
        published: u64 = "Published" ro "messages published",
        publish_failures: u64 = "PublishFailures" ro "messages that could not be published",
    }
}

/// The canary beside a unit's running revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CanaryInfo {
    pub revision: u64,
    pub percent: f64,
    /// `NAME=VALUE` when the canary takes exactly the requests with this header.
    pub header: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub rate: u64,
    pub p99_us: u64,
    pub running_ms: u64,
}
impl ObjectValue for CanaryInfo {}

attributes! {
    /// `esb:type=Unit`.
    pub struct UnitAttrs {
        state: String = "State" ro "Active, Paused or Failed",
        revision: Option<u64> = "Revision" ro "active revision",
        label: Option<String> = "Label" ro "the unit's version label",
        hash: Option<String> = "Hash" ro "SHA-256 of the active revision's files",
        deployed_at: Option<u64> = "DeployedAt" ro "activation time (ms since epoch)",
        deploy_millis: Option<f64> = "DeployMillis" ro "how long the deploy took, from the start of its transaction until its commit began (the fsyncs of the commit are not counted)",
        degraded: bool = "Degraded" ro "running the last-good copy because the files on disk are invalid",
        modified_on_disk: bool = "ModifiedOnDisk" ro "files on disk differ from the active revision",
        origin: String = "Origin" ro "where the unit's files come from: disk (its directory) or pushed (content sent over the management endpoint, kept in state_dir)",
        draining: Vec<Draining> = "Draining" ro "older revisions still finishing requests",
        proxies: Vec<String> = "Proxies" ro "proxy names",
        sequences: Vec<String> = "Sequences" ro "sequence names",
        endpoints: Vec<String> = "Endpoints" ro "endpoint names",
        tasks: Vec<String> = "Tasks" ro "task names",
        consumers: Vec<String> = "Consumers" ro "consumer names",
        last_errors: Vec<Diagnostic> = "LastErrors" ro "errors of the last rejected deploy",
        flags: BTreeMap<String, bool> = "Flags" ro "runtime flags and their values",
        canary: Option<CanaryInfo> = "Canary" ro "the canary beside the running revision: revision, percent or header, its own requests, errors and p99 (null when none)",
        guard_tripped: Option<String> = "GuardTripped" ro "why the unit's guard rolled its last new revision back (null if it did not)",
    }
    with counters: Counters
}

attributes! {
    /// `esb:type=Proxy`.
    pub struct ProxyAttrs {
        state: String = "State" ro "Active, Paused or Stopped",
        path: String = "Path" ro "path prefix",
        methods: Vec<String> = "Methods" ro "allowed methods (empty: any)",
        transports: Vec<String> = "Transports" ro "transports (empty: all)",
        endpoint: Option<String> = "Endpoint" ro "default endpoint",
        revision: u64 = "Revision" ro "unit revision",
    }
    with counters: Counters, with latency: Latency
}

attributes! {
    /// `esb:type=Sequence`.
    pub struct SequenceAttrs {
        steps: usize = "Steps" ro "number of steps",
        step_kinds: Vec<String> = "StepKinds" ro "kind of each step",
    }
}

/// One address of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressInfo {
    pub url: String,
    /// Active, Suspended or Maintenance.
    pub state: String,
    pub weight: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// How long a suspended address stays out of rotation.
    pub suspended_for_ms: Option<u64>,
    pub requests: u64,
    pub errors: u64,
}
impl ObjectValue for AddressInfo {}

attributes! {
    /// `esb:type=Endpoint`.
    pub struct EndpointAttrs {
        state: String = "State" ro "Active or Maintenance",
        strategy: Strategy = "Strategy" ro "failover, round-robin or weighted",
        timeout_millis: u64 = "TimeoutMillis" ro "exchange timeout",
        addresses: Vec<AddressInfo> = "Addresses" ro "addresses with state and counters",
    }
    with counters: Counters, with latency: Latency
}

attributes! {
    /// `esb:type=Task`.
    pub struct TaskAttrs {
        state: String = "State" ro "Scheduled, Running or Paused",
        every_millis: u64 = "EveryMillis" ro "period",
        sequence: String = "Sequence" ro "sequence run",
        runs: u64 = "Runs" ro "completed runs",
        failures: u64 = "Failures" ro "failed runs",
        last_run: Option<u64> = "LastRun" ro "last run (ms since epoch)",
        last_error: Option<String> = "LastError" ro "error of the last run",
    }
}

attributes! {
    /// `esb:type=Cluster`: this node's view of the cluster store.
    pub struct ClusterAttrs {
        cluster: String = "Cluster" ro "cluster name",
        node: String = "Node" ro "this node's name",
        store: String = "Store" ro "store state: up, down or alarm",
        store_endpoints: Vec<String> = "StoreEndpoints" ro "etcd endpoints",
        store_detail: Option<String> = "StoreDetail" ro "why the store is down or alarmed",
        applied_revision: i64 = "AppliedRevision" ro "the last store revision this node applied",
    }
}

attributes! {
    /// `esb:type=Consumer`.
    pub struct ConsumerAttrs {
        state: String = "State" ro "Connecting, Connected, Disconnected (amqp), Running (file), Paused or Stopped",
        reason: Option<String> = "Reason" ro "why it is Disconnected, Paused or Stopped",
        kind: String = "Kind" ro "amqp or file",
        source: String = "Source" ro "transport/queue, or the inbox directory",
        sequence: Option<String> = "Sequence" ro "sequence each message runs through",
        endpoint: Option<String> = "Endpoint" ro "endpoint each message is sent to",
        #[serde(deserialize_with = "whole_or_zero")]
        received: u64 = "Received" ro "messages (files) taken",
        #[serde(deserialize_with = "whole_or_zero")]
        acked: u64 = "Acked" ro "messages acknowledged (files moved to done)",
        #[serde(deserialize_with = "whole_or_zero")]
        retried: u64 = "Retried" ro "failed attempts that were tried again",
        #[serde(deserialize_with = "whole_or_zero")]
        dead_lettered: u64 = "DeadLettered" ro "messages dead-lettered (files moved to failed)",
        #[serde(deserialize_with = "whole_or_zero")]
        redelivered: u64 = "Redelivered" ro "messages received with the redelivered flag (files resumed after a restart)",
        #[serde(deserialize_with = "whole_or_zero")]
        in_flight: u64 = "InFlight" ro "messages being processed",
        #[serde(deserialize_with = "whole_or_zero")]
        reconnects: u64 = "Reconnects" ro "failed connection attempts and lost connections",
        #[serde(deserialize_with = "whole")]
        queue_depth: Option<u64> = "QueueDepth" ro "messages (files) waiting, refreshed every 2s (null: unknown)",
    }
}

/// What a `read` of every attribute of a bean answers, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Attrs {
    Server(ServerAttrs),
    Manager(ManagerAttrs),
    Transport(TransportAttrs),
    AmqpLink(AmqpLinkAttrs),
    Unit(Box<UnitAttrs>),
    Proxy(ProxyAttrs),
    Sequence(SequenceAttrs),
    Endpoint(EndpointAttrs),
    Task(TaskAttrs),
    Consumer(ConsumerAttrs),
    Cluster(ClusterAttrs),
}

impl Attrs {
    /// As the JSON object a read answers.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = match self {
            Attrs::Server(a) => serde_json::to_value(a),
            Attrs::Manager(a) => serde_json::to_value(a),
            Attrs::Transport(a) => serde_json::to_value(a),
            Attrs::AmqpLink(a) => serde_json::to_value(a),
            Attrs::Unit(a) => serde_json::to_value(a),
            Attrs::Proxy(a) => serde_json::to_value(a),
            Attrs::Sequence(a) => serde_json::to_value(a),
            Attrs::Endpoint(a) => serde_json::to_value(a),
            Attrs::Task(a) => serde_json::to_value(a),
            Attrs::Consumer(a) => serde_json::to_value(a),
            Attrs::Cluster(a) => serde_json::to_value(a),
        };
        match v.expect("attributes serialize") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("attributes serialize as an object"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: T,
        specs: Vec<AttrSpec>,
    ) {
        let json = serde_json::to_value(&v).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(keys, names, "every attribute on the wire has metadata");
        assert_eq!(serde_json::from_value::<T>(json).unwrap(), v);
        // Lenient: an empty object reads as the defaults.
        serde_json::from_value::<T>(serde_json::json!({})).unwrap();
    }

    #[test]
    fn every_attribute_struct_round_trips_and_matches_its_metadata() {
        let unit = UnitAttrs {
            state: "Active".into(),
            revision: Some(3),
            flags: [("beta".to_owned(), true)].into(),
            canary: Some(CanaryInfo {
                revision: 4,
                percent: 10.0,
                ..Default::default()
            }),
            draining: vec![Draining {
                unit: None,
                revision: 2,
                in_flight: 1,
            }],
            last_errors: vec![Diagnostic::new("u.toml", 1, 2, "bad")],
            counters: Counters {
                requests: Some(9),
                ..Default::default()
            },
            ..Default::default()
        };
        round_trip(unit.clone(), UnitAttrs::specs());
        round_trip(
            ServerAttrs {
                hot_deploy: true,
                ..Default::default()
            },
            ServerAttrs::specs(),
        );
        round_trip(
            ManagerAttrs {
                draining: vec![Draining {
                    unit: Some("u".into()),
                    revision: 1,
                    in_flight: 0,
                }],
                ..Default::default()
            },
            ManagerAttrs::specs(),
        );
        round_trip(TransportAttrs::default(), TransportAttrs::specs());
        round_trip(AmqpLinkAttrs::default(), AmqpLinkAttrs::specs());
        round_trip(ProxyAttrs::default(), ProxyAttrs::specs());
        round_trip(SequenceAttrs::default(), SequenceAttrs::specs());
        round_trip(
            EndpointAttrs {
                addresses: vec![AddressInfo {
                    url: "http://h:1".into(),
                    suspended_for_ms: Some(5),
                    ..Default::default()
                }],
                strategy: Strategy::RoundRobin,
                ..Default::default()
            },
            EndpointAttrs::specs(),
        );
        round_trip(TaskAttrs::default(), TaskAttrs::specs());
        round_trip(ConsumerAttrs::default(), ConsumerAttrs::specs());
        let map = Attrs::Unit(Box::new(unit)).to_map();
        assert_eq!(map["Revision"], 3);
        assert_eq!(map["Requests"], 9);
        assert_eq!(map["Canary"]["percent"], 10.0);
        let writable: Vec<&str> = ServerAttrs::specs()
            .into_iter()
            .chain(ManagerAttrs::specs())
            .filter(|s| s.writable)
            .map(|s| s.name)
            .collect();
        assert_eq!(writable, ["HotDeploy", "HotDeploy"]);
    }

    #[test]
    fn numbers_read_leniently_and_write_as_this_server_sends_them() {
        assert_eq!(
            serde_json::to_value(Rate(42.0)).unwrap(),
            serde_json::json!(42)
        );
        assert_eq!(
            serde_json::to_value(Rate(2.5)).unwrap(),
            serde_json::json!(2.5)
        );
        let c: Counters = serde_json::from_value(serde_json::json!({
            "Requests": 5, "RequestsPerSecond": 2.5, "Errors": 3.0
        }))
        .unwrap();
        assert_eq!(c.requests, Some(5));
        assert_eq!(c.requests_per_second, Some(Rate(2.5)));
        assert_eq!(c.errors, Some(3));
        assert_eq!(c.in_flight, None, "an attribute not sent is none, not 0");
        let l: Latency = serde_json::from_value(serde_json::json!({"P99Micros": 3100.0})).unwrap();
        assert_eq!(l.p99_micros, Some(3100));
        let c: ConsumerAttrs = serde_json::from_value(serde_json::json!({
            "Received": 2000.0, "Acked": 1900, "QueueDepth": null, "InFlight": 4.0
        }))
        .unwrap();
        assert_eq!((c.received, c.acked, c.in_flight), (2000, 1900, 4));
        assert_eq!(c.queue_depth, None);
        assert_eq!(Counters::specs()[1].type_, "long");
    }
}

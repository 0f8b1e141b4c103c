//! What the console shows, as data: a [`Snapshot`] of the server built from the answer to ONE
//! bulk Jolokia request ([`requests`]), its objects ([`Obj`]) and the names the `:` line
//! completes ([`Names`]). Pure: no sockets, no terminal. Units on disk that are not loaded
//! and revisions still draining become rows too, so every view is a plain list of objects.

use deployments::model::Strategy;
use deployments::protocol::attrs::{
    ConsumerAttrs, Counters, EndpointAttrs, Latency, ManagerAttrs, ProxyAttrs, TransportAttrs,
    UnitAttrs,
};
use deployments::protocol::{ObjectName, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::exec::executor::{envelope_message, manager, server};
use crate::lang::complete::Names;
use crate::lang::kind::{Kind, Target};
use crate::present::output::{block_lines, Line};
use crate::present::view::{name_of, unit_of, Attrs};

/// What a row is: a managed object of a [`Kind`], or an old revision of a unit still
/// finishing its in-flight requests (shown, not actionable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    Object(Kind),
    Draining,
}

impl RowKind {
    pub fn word(self) -> &'static str {
        match self {
            RowKind::Object(k) => k.word(),
            RowKind::Draining => "draining",
        }
    }

    /// The command-language kind, if the row is a managed object.
    pub fn kind(self) -> Option<Kind> {
        match self {
            RowKind::Object(k) => Some(k),
            RowKind::Draining => None,
        }
    }
}

/// One object as read: its name, the unit it belongs to, and its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Obj {
    pub kind: RowKind,
    pub unit: Option<String>,
    pub name: String,
    pub attrs: Attrs,
}

/// Rates of a consumer the console computes from its counters in successive snapshots
/// (consumers publish counters only): attributes it adds to the consumer's row.
pub const RECEIVED_RATE: &str = "ReceivedPerSecond";
pub const ACKED_RATE: &str = "AckedPerSecond";

/// The `State` the console gives a unit that is on disk but not loaded.
pub const NOT_LOADED: &str = "not loaded";

impl Obj {
    /// A stable identity across refreshes (selection and rate history follow it).
    pub fn key(&self) -> String {
        match &self.unit {
            Some(u) => format!("{}:{u}/{}", self.kind.word(), self.name),
            None => format!("{}:{}", self.kind.word(), self.name),
        }
    }

    /// `orders/list` for elements of a unit, the bare name otherwise.
    pub fn label(&self) -> String {
        match (&self.unit, self.kind) {
            (Some(u), k) if k != RowKind::Object(Kind::Unit) => format!("{u}/{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// The attributes as the protocol's struct of the object's kind (what the server did not
    /// send takes its default).
    pub fn typed<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        crate::present::view::typed(&self.attrs)
    }

    pub fn state(&self) -> &str {
        self.str("State")
    }

    pub fn str(&self, k: &str) -> &str {
        self.attrs.get(k).and_then(Value::as_str).unwrap_or("")
    }

    pub fn num(&self, k: &str) -> Option<f64> {
        self.attrs.get(k).and_then(Value::as_f64)
    }

    pub fn flag(&self, k: &str) -> bool {
        self.attrs.get(k).and_then(Value::as_bool).unwrap_or(false)
    }

    /// Names listed in an array attribute (`Proxies` of a unit).
    pub fn names(&self, k: &str) -> Vec<String> {
        match self.attrs.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// True for a unit on disk that is not loaded.
    pub fn not_loaded(&self) -> bool {
        self.kind == RowKind::Object(Kind::Unit) && self.state() == NOT_LOADED
    }

    /// The unit this row belongs to (itself for a unit).
    pub fn unit_name(&self) -> Option<&str> {
        match self.kind {
            RowKind::Object(Kind::Unit) => Some(&self.name),
            _ => self.unit.as_deref(),
        }
    }

    /// The object as a command target.
    pub fn target(&self) -> Option<Target> {
        Some(match self.kind {
            RowKind::Object(Kind::Unit) => Target::Unit(self.name.clone()),
            RowKind::Object(Kind::Transport) => Target::Transport(self.name.clone()),
            RowKind::Draining => return None,
            k => Target::Element {
                kind: k.kind()?,
                unit: self.unit.clone()?,
                name: self.name.clone(),
            },
        })
    }

    /// The requests-per-second rate the server computed, if it publishes one; for a
    /// consumer, the messages received per second the console computed
    /// ([`RECEIVED_RATE`]).
    pub fn rate(&self) -> Option<f64> {
        match self.kind {
            RowKind::Object(Kind::Consumer) => self.num(RECEIVED_RATE),
            _ => self.typed::<Counters>().requests_per_second.map(|r| r.0),
        }
    }

    /// What is in progress: messages for a consumer, requests for the others (a draining
    /// revision's row carries its own count as the counters do).
    pub fn in_flight(&self) -> Option<f64> {
        match self.kind {
            RowKind::Object(Kind::Consumer) => Some(self.typed::<ConsumerAttrs>().in_flight as f64),
            _ => self.typed::<Counters>().in_flight.map(|v| v as f64),
        }
    }

    /// The 99th percentile latency (µs) of a proxy or endpoint.
    pub fn p99(&self) -> Option<f64> {
        self.typed::<Latency>().p99_micros.map(|p| p as f64)
    }

    /// Every attribute, as the lines of `show` (the popup of Enter on a row).
    pub fn attr_lines(&self, now_ms: u64) -> Vec<Line> {
        block_lines(&crate::present::view::sheet(None, &self.attrs, now_ms))
    }

    /// Lower-cased text a `/` filter matches against: name, unit, state, path, bind.
    pub fn haystack(&self) -> String {
        let label = match self.kind {
            RowKind::Object(Kind::Unit) => self.typed::<UnitAttrs>().label,
            _ => None,
        };
        let mut s = format!(
            "{} {} {} {}",
            self.kind.word(),
            self.label(),
            self.state(),
            label.unwrap_or_default()
        );
        // Path, bind, strategy, endpoint and source, as far as the kind has them.
        let none = String::new;
        let words: [String; 5] = match self.kind {
            RowKind::Object(Kind::Proxy) => {
                let p: ProxyAttrs = self.typed();
                let e = p.endpoint.unwrap_or_default();
                [p.path, none(), none(), e, none()]
            }
            RowKind::Object(Kind::Transport) => [
                none(),
                self.typed::<TransportAttrs>().bind,
                none(),
                none(),
                none(),
            ],
            RowKind::Object(Kind::Endpoint) => {
                let st = strategy_word(self.typed::<EndpointAttrs>().strategy);
                [none(), none(), st.to_string(), none(), none()]
            }
            RowKind::Object(Kind::Consumer) => {
                let c: ConsumerAttrs = self.typed();
                let e = c.endpoint.unwrap_or_default();
                [none(), none(), none(), e, c.source]
            }
            _ => [none(), none(), none(), none(), none()],
        };
        for w in words {
            s.push(' ');
            s.push_str(&w);
        }
        s.to_lowercase()
    }
}

/// A strategy as the server names it (`round-robin`).
pub fn strategy_word(s: Strategy) -> &'static str {
    match s {
        Strategy::Failover => "failover",
        Strategy::RoundRobin => "round-robin",
        Strategy::Weighted => "weighted",
    }
}

/// Everything the console knows about the server after one refresh.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// When it was taken (ms since the epoch, client clock).
    pub taken_ms: u64,
    pub server: Attrs,
    pub manager: Attrs,
    /// Loaded units (sorted), then units on disk that are not loaded.
    pub units: Vec<Obj>,
    pub proxies: Vec<Obj>,
    pub endpoints: Vec<Obj>,
    pub transports: Vec<Obj>,
    pub tasks: Vec<Obj>,
    pub sequences: Vec<Obj>,
    pub consumers: Vec<Obj>,
    /// Revisions still draining, one row each.
    pub draining: Vec<Obj>,
}

/// The kinds read by pattern on every refresh, in request order after Server and
/// DeploymentManager.
const PATTERN_KINDS: [Kind; 7] = [
    Kind::Unit,
    Kind::Proxy,
    Kind::Endpoint,
    Kind::Transport,
    Kind::Task,
    Kind::Sequence,
    Kind::Consumer,
];

/// The one bulk request of a refresh tick: Server, DeploymentManager, then pattern reads of
/// every unit, proxy, endpoint, transport, task, sequence and consumer.
pub fn requests() -> Vec<Request> {
    let mut v = vec![
        Request::read(server(), None),
        Request::read(manager(), None),
    ];
    for kind in PATTERN_KINDS {
        v.push(Request::read(kind.pattern(None), None));
    }
    v
}

/// Builds a snapshot from the answers to [`requests`]. Fails only when the server itself
/// cannot be read; a kind that cannot be read shows as empty.
pub fn snapshot(responses: &[Response], taken_ms: u64) -> Result<Snapshot, String> {
    let attrs = |r: Option<&Response>| match r.and_then(|r| r.value.as_ref()) {
        Some(Value::Object(m)) => m.clone(),
        _ => Attrs::new(),
    };
    let srv = responses.first().ok_or("empty answer")?;
    if !srv.is_ok() {
        return Err(format!(
            "cannot read esb:type=Server: {}",
            envelope_message(srv)
        ));
    }
    let mut s = Snapshot {
        taken_ms,
        server: attrs(Some(srv)),
        manager: attrs(responses.get(1)),
        ..Snapshot::default()
    };
    for (i, kind) in PATTERN_KINDS.into_iter().enumerate() {
        let rows = responses
            .get(i + 2)
            .map(|r| rows(r, kind))
            .unwrap_or_default();
        match kind {
            Kind::Unit => s.units = rows,
            Kind::Proxy => s.proxies = rows,
            Kind::Endpoint => s.endpoints = rows,
            Kind::Transport => s.transports = rows,
            Kind::Task => s.tasks = rows,
            Kind::Consumer => s.consumers = rows,
            _ => s.sequences = rows,
        }
    }
    // Units on disk that are not loaded: rows too, so `l` can load them.
    let loaded: Vec<String> = s.units.iter().map(|u| u.name.clone()).collect();
    let manager = ManagerAttrs::deserialize(&Value::Object(s.manager.clone())).unwrap_or_default();
    {
        let mut extra: Vec<&str> = manager
            .units_on_disk
            .iter()
            .map(String::as_str)
            .filter(|u| !loaded.iter().any(|l| l == u))
            .collect();
        extra.sort_unstable();
        for u in extra {
            let mut attrs = Attrs::new();
            attrs.insert("State".into(), json!(NOT_LOADED));
            s.units.push(Obj {
                kind: RowKind::Object(Kind::Unit),
                unit: None,
                name: u.to_string(),
                attrs,
            });
        }
    }
    for u in &s.units {
        for r in u.typed::<UnitAttrs>().draining {
            let mut attrs = Attrs::new();
            attrs.insert("State".into(), json!("Draining"));
            attrs.insert("InFlight".into(), json!(r.in_flight));
            attrs.insert("Revision".into(), json!(r.revision));
            s.draining.push(Obj {
                kind: RowKind::Draining,
                unit: Some(u.name.clone()),
                name: format!("r{}", r.revision),
                attrs,
            });
        }
    }
    Ok(s)
}

/// The rows of a pattern read (`{bean: {attrs}}`), sorted by unit and name. A 404 (nothing
/// matches) or an error is no rows.
fn rows(r: &Response, kind: Kind) -> Vec<Obj> {
    let Some(Value::Object(m)) = r.value.as_ref().filter(|_| r.is_ok()) else {
        return Vec::new();
    };
    let mut out: Vec<Obj> = m
        .iter()
        .filter_map(|(bean, attrs)| {
            let n = ObjectName::parse(bean).ok()?;
            let name = name_of(&n);
            Some(Obj {
                kind: RowKind::Object(kind),
                unit: unit_of(&n),
                name: Some(name).filter(|n| !n.is_empty())?,
                attrs: match attrs {
                    Value::Object(a) => a.clone(),
                    _ => Attrs::new(),
                },
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.unit, &a.name).cmp(&(&b.unit, &b.name)));
    out
}

impl Snapshot {
    /// Gives every consumer its received and acked rates ([`RECEIVED_RATE`],
    /// [`ACKED_RATE`]): the growth of its counters since the previous snapshot, per second.
    /// A consumer new since then (or a counter that went back: a restart) rates 0; without
    /// a previous snapshot, or no time between them, there is no rate.
    pub fn rate_consumers(&mut self, prev: Option<&Snapshot>) {
        let Some(prev) = prev else { return };
        let secs = self.taken_ms.saturating_sub(prev.taken_ms) as f64 / 1000.0;
        if secs <= 0.0 {
            return;
        }
        for c in &mut self.consumers {
            let before = prev
                .consumers
                .iter()
                .find(|p| p.unit == c.unit && p.name == c.name);
            let counts = |o: &Obj| {
                let a: ConsumerAttrs = o.typed();
                [a.received, a.acked]
            };
            let (was, now) = (before.map(counts), counts(c));
            for (i, rate) in [RECEIVED_RATE, ACKED_RATE].into_iter().enumerate() {
                let r = match was {
                    Some(w) if now[i] >= w[i] => (now[i] - w[i]) as f64 / secs,
                    _ => 0.0,
                };
                c.attrs.insert(rate.into(), json!(r));
            }
        }
    }

    pub fn unit(&self, name: &str) -> Option<&Obj> {
        self.units.iter().find(|u| u.name == name)
    }

    /// The rows of one unit's drill-down: proxies, endpoints, tasks, sequences, consumers,
    /// then revisions still draining.
    pub fn unit_items(&self, unit: &str) -> Vec<&Obj> {
        let of = |v: &'_ [Obj]| -> Vec<usize> {
            (0..v.len())
                .filter(|&i| v[i].unit.as_deref() == Some(unit))
                .collect()
        };
        let mut out: Vec<&Obj> = Vec::new();
        for list in [
            &self.proxies,
            &self.endpoints,
            &self.tasks,
            &self.sequences,
            &self.consumers,
            &self.draining,
        ] {
            out.extend(of(list).into_iter().map(|i| &list[i]));
        }
        out
    }

    /// The worst p99 among a unit's proxies (units publish no latency of their own).
    pub fn unit_p99(&self, unit: &str) -> Option<f64> {
        self.proxies
            .iter()
            .filter(|p| p.unit.as_deref() == Some(unit))
            .filter_map(Obj::p99)
            .reduce(f64::max)
    }

    /// Every object, for rate history.
    pub fn all(&self) -> impl Iterator<Item = &Obj> {
        self.units
            .iter()
            .chain(&self.proxies)
            .chain(&self.endpoints)
            .chain(&self.transports)
            .chain(&self.tasks)
            .chain(&self.consumers)
    }
}

impl Names {
    /// The names of everything in a snapshot.
    pub fn of(s: &Snapshot) -> Names {
        let labels = |v: &[Obj]| v.iter().map(Obj::label).collect::<Vec<_>>();
        let mut n = Names {
            units: s
                .units
                .iter()
                .filter(|u| !u.not_loaded())
                .map(|u| u.name.clone())
                .collect(),
            unloaded: s
                .units
                .iter()
                .filter(|u| u.not_loaded())
                .map(|u| u.name.clone())
                .collect(),
            proxies: labels(&s.proxies),
            endpoints: labels(&s.endpoints),
            tasks: labels(&s.tasks),
            consumers: labels(&s.consumers),
            sequences: labels(&s.sequences),
            transports: labels(&s.transports),
            ..Names::default()
        };
        for e in &s.endpoints {
            for a in e.typed::<EndpointAttrs>().addresses {
                n.addresses.push((e.label(), a.url));
            }
        }
        let keys = |a: &Attrs| a.keys().cloned().collect::<Vec<_>>();
        n.beans.push(("esb:type=Server".into(), keys(&s.server)));
        n.beans
            .push(("esb:type=DeploymentManager".into(), keys(&s.manager)));
        for o in s.all().chain(&s.sequences).filter(|o| !o.not_loaded()) {
            if let Some(t) = o.target() {
                n.beans.push((t.bean().original(), keys(&o.attrs)));
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Value) -> Response {
        Response::ok_at(Value::Null, v, 1)
    }

    #[test]
    fn one_bulk_request_reads_everything() {
        let r = requests();
        assert_eq!(r.len(), 9);
        assert!(r.iter().all(|q| q.kind() == "read"));
        let beans: Vec<String> = r.iter().map(|q| q.mbean().unwrap().original()).collect();
        assert_eq!(beans[0], "esb:type=Server");
        assert_eq!(beans[2], "esb:type=Unit,*");
        assert_eq!(beans[3], "esb:type=Proxy,*");
        assert_eq!(beans[8], "esb:type=Consumer,*");
    }

    #[test]
    fn snapshot_rows_not_loaded_units_and_draining() {
        let rs = vec![
            ok(json!({"Name": "esb", "State": "Running"})),
            ok(json!({"UnitsOnDisk": ["a", "billing"]})),
            ok(json!({"esb:name=a,type=Unit": {"State": "Active",
                "Draining": [{"revision": 2, "in_flight": 3}]}})),
            ok(
                json!({"esb:name=p,type=Proxy,unit=a": {"State": "Paused", "RequestsPerSecond": 2.5}}),
            ),
            Response::error(Value::Null, 404, "x", "none"),
            ok(json!({})),
            ok(json!({})),
            ok(json!({})),
        ];
        let s = snapshot(&rs, 7).unwrap();
        assert_eq!(s.units.len(), 2);
        assert!(s.units[1].not_loaded());
        assert_eq!(s.units[1].name, "billing");
        assert_eq!(s.proxies[0].label(), "a/p");
        assert_eq!(s.proxies[0].rate(), Some(2.5));
        assert!(s.endpoints.is_empty());
        assert_eq!(s.draining[0].name, "r2");
        assert_eq!(s.unit_items("a").len(), 2);
        let n = Names::of(&s);
        assert_eq!(n.units, vec!["a"]);
        assert_eq!(n.unloaded, vec!["billing"]);
        assert!(n
            .beans
            .iter()
            .any(|(b, _)| b == "esb:type=Proxy,unit=a,name=p"));

        let bad = vec![Response::error(Value::Null, 403, "Sec", "no")];
        assert!(snapshot(&bad, 0).unwrap_err().contains("esb:type=Server"));
    }

    #[test]
    fn consumers_are_rows_of_their_unit() {
        let mut rs = vec![
            ok(json!({"Name": "esb", "State": "Running"})),
            ok(json!({})),
            ok(json!({"esb:name=a,type=Unit": {"State": "Active"}})),
        ];
        rs.extend((0..5).map(|_| ok(json!({}))));
        rs.push(ok(json!({"esb:name=in,type=Consumer,unit=a": {
            "State": "Disconnected", "Reason": "cannot connect", "Acked": 3, "QueueDepth": 7}})));
        let s = snapshot(&rs, 7).unwrap();
        assert_eq!(s.consumers.len(), 1);
        let items = s.unit_items("a");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].kind, RowKind::Object(Kind::Consumer));
        assert_eq!(items[0].label(), "a/in");
        assert_eq!(items[0].state(), "Disconnected");
        assert_eq!(Names::of(&s).consumers, vec!["a/in"]);
    }
}

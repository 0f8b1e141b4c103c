//! Turns managed objects read from the management endpoint into [`Output`]s: the status
//! page, one table per kind of object, attribute sheets, generic values and bean metadata.
//! Pure functions of JSON, so the TUI can reuse them and tests need no server. Deployment
//! results are in [`crate::present::report`], events in [`crate::present::event`].

use deployments::protocol::attrs::{
    AddressInfo, AmqpLinkAttrs, ConsumerAttrs, Counters, EndpointAttrs, Latency, ManagerAttrs,
    ProxyAttrs, ServerAttrs, TaskAttrs, TransportAttrs, UnitAttrs,
};
use deployments::protocol::{AttrInfo, Bean, ObjectName, OpInfo};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::lang::kind::Kind;
use crate::present::output::{
    ago, cell, compact, micros, short_hash, timestamp, uptime, Block, Line, Output, Span, Table,
    Tone,
};
use crate::present::report::{diag_span, diagnostic};

/// The attributes of one bean, as read.
pub type Attrs = Map<String, Value>;

/// A bean read through a pattern: its name and attributes.
pub type Row = (ObjectName, Attrs);

/// The unit a bean of a unit belongs to (none for a unit itself and the server's beans).
pub(crate) fn unit_of(n: &ObjectName) -> Option<String> {
    let bean = Bean::of_type(n)?;
    bean.kind()
        .in_unit()
        .then(|| bean.unit().map(str::to_owned))
        .flatten()
}

/// A bean's own name (empty for the singletons).
pub(crate) fn name_of(n: &ObjectName) -> String {
    Bean::of_type(n)
        .and_then(|b| b.name().map(str::to_owned))
        .unwrap_or_default()
}

/// The JSON of a row: `mbean`, `unit` (if any), `name`, then the attributes.
pub fn row_json((name, attrs): &Row) -> Value {
    let mut m = Map::new();
    m.insert("mbean".into(), json!(name.original()));
    if let Some(u) = unit_of(name) {
        m.insert("unit".into(), json!(u));
    }
    m.insert("name".into(), json!(name_of(name)));
    for (k, v) in attrs {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

/// `a` as the protocol's attributes of one bean kind (what the server did not send takes its
/// default).
pub(crate) fn typed<T: DeserializeOwned + Default>(a: &Attrs) -> T {
    T::deserialize(&Value::Object(a.clone())).unwrap_or_default()
}

fn unit_notes(u: &UnitAttrs) -> Span {
    let mut notes = Vec::new();
    if u.origin == "pushed" {
        notes.push("pushed".to_string());
    }
    if let Some(why) = &u.guard_tripped {
        notes.push(format!("guard: {why}"));
    }
    if u.degraded {
        notes.push("degraded (last-good)".to_string());
    }
    if u.modified_on_disk {
        notes.push("modified on disk".to_string());
    }
    for r in &u.draining {
        notes.push(format!(
            "draining r{} ({} in flight)",
            r.revision, r.in_flight
        ));
    }
    let e = &u.last_errors;
    if !e.is_empty() && u.state != "Failed" {
        notes.push(format!(
            "last deploy rejected ({} error{})",
            e.len(),
            if e.len() == 1 { "" } else { "s" }
        ));
    }
    let tone = if notes.is_empty() {
        Tone::Plain
    } else {
        Tone::Warn
    };
    Span::new(notes.join(", "), tone)
}

/// `status`: the server, its totals, every unit, units on disk that are not loaded, and
/// revisions still draining.
pub fn status(server: &Attrs, manager: &Attrs, units: &[Row], now: u64) -> Output {
    let json = json!({
        "server": server,
        "deployment_manager": manager,
        "units": units.iter().map(row_json).collect::<Vec<_>>(),
    });
    let srv: ServerAttrs = typed(server);
    let dm: ManagerAttrs = typed(manager);
    let mut head: Line = vec![
        Span::new(srv.name.clone(), Tone::Bold),
        Span::plain("  "),
        Span::state(srv.state.clone()),
        Span::plain(format!("  up {}", uptime(srv.uptime_seconds))),
    ];
    if !srv.version.is_empty() {
        head.push(Span::plain(format!("  version {}", srv.version)));
    }
    head.push(Span::plain("  hot deploy "));
    head.push(Span::state(if srv.hot_deploy || dm.hot_deploy {
        "on"
    } else {
        "off"
    }));
    let c = &srv.counters;
    let totals: Line = vec![Span::plain(format!(
        "units {}  proxies {}  requests {}  errors {}  in flight {}",
        srv.units,
        srv.proxies,
        c.requests.unwrap_or_default(),
        c.errors.unwrap_or_default(),
        c.in_flight.unwrap_or_default()
    ))];
    let mut out = Output::new(json).with(Block::Lines(vec![head, totals]));
    out.push(Block::Table(units_table(units, now)));

    let mut extra: Vec<Line> = Vec::new();
    let loaded: Vec<String> = units.iter().map(|(n, _)| name_of(n)).collect();
    let missing: Vec<&str> = dm
        .units_on_disk
        .iter()
        .map(String::as_str)
        .filter(|u| !loaded.iter().any(|l| l == u))
        .collect();
    if !missing.is_empty() {
        extra.push(vec![
            Span::new("on disk, not loaded: ", Tone::Warn),
            Span::plain(missing.join(", ")),
            Span::new("  (load UNIT)", Tone::Dim),
        ]);
    }
    for r in &dm.draining {
        extra.push(vec![
            Span::new("draining: ", Tone::Warn),
            Span::plain(format!(
                "{} revision {} ({} in flight)",
                r.unit.as_deref().unwrap_or_default(),
                r.revision,
                r.in_flight
            )),
        ]);
    }
    if !extra.is_empty() {
        out.push(Block::Lines(extra));
    }
    out
}

fn units_table(rows: &[Row], now: u64) -> Table {
    let mut t = Table::new(
        &[
            "UNIT",
            "STATE",
            "REV>",
            "LABEL",
            "HASH",
            "DEPLOYED",
            "PROXIES>",
            "ENDPOINTS>",
            "TASKS>",
            "REQUESTS>",
            "ERRORS>",
            "IN-FLIGHT>",
            "NOTES",
        ],
        "no units loaded",
    );
    for (name, a) in rows {
        let u: UnitAttrs = typed(a);
        let deployed = match u.deployed_at {
            Some(t) if t > 0 => ago(t, now),
            _ => String::new(),
        };
        t.push(vec![
            name_of(name).into(),
            Span::state(u.state.clone()),
            u.revision
                .filter(|r| *r > 0)
                .map(|r| r.to_string())
                .unwrap_or_default()
                .into(),
            u.label.clone().unwrap_or_default().into(),
            short_hash(u.hash.as_deref().unwrap_or_default()).into(),
            deployed.into(),
            u.proxies.len().to_string().into(),
            u.endpoints.len().to_string().into(),
            u.tasks.len().to_string().into(),
            u.counters.requests.unwrap_or_default().to_string().into(),
            u.counters.errors.unwrap_or_default().to_string().into(),
            u.counters.in_flight.unwrap_or_default().to_string().into(),
            unit_notes(&u),
        ]);
    }
    t
}

/// A count cell; empty when the server did not send it.
fn count(v: Option<u64>) -> Span {
    v.map(|v| v.to_string()).unwrap_or_default().into()
}

/// The requests and errors cells.
fn requests_errors(c: &Counters) -> [Span; 2] {
    [count(c.requests), count(c.errors)]
}

/// The two latency cells (median, p99); empty while the object has served nothing.
fn latencies(c: &Counters, l: &Latency) -> [Span; 2] {
    let cell = |q: Option<u64>| match c.requests {
        Some(0) => Span::plain(""),
        _ => q.map(|us| micros(us as f64)).unwrap_or_default().into(),
    };
    [cell(l.p50_micros), cell(l.p99_micros)]
}

/// A list attribute as one cell, `none` when empty.
fn joined(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join(",")
    }
}

/// A period such as `10s`, `1m`, `1h`, `500ms`, `1.5s`.
fn every(ms: f64) -> String {
    let ms = ms.max(0.0) as u64;
    match ms {
        0 => "0s".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m if m < 1000 => format!("{m}ms"),
        m => format!("{:.1}s", m as f64 / 1000.0),
    }
}

/// `list KIND`: one row per object.
pub fn list(kind: Kind, rows: &[Row], unit: Option<&str>, now: u64) -> Output {
    let json = Value::Array(rows.iter().map(row_json).collect());
    let within = unit.map(|u| format!(" in unit {u}")).unwrap_or_default();
    let empty = format!("no {}{within}", kind.plural());
    let table = match kind {
        Kind::Unit => units_table(rows, now),
        Kind::Proxy => proxies_table(rows, empty),
        Kind::Endpoint => endpoints_table(rows, empty),
        Kind::Transport => transports_table(rows, empty),
        Kind::Consumer => consumers_table(rows, empty),
        Kind::Task | Kind::Sequence => tasks_table(rows, empty, now),
    };
    Output::new(json).with(Block::Table(table))
}

fn proxies_table(rows: &[Row], empty: String) -> Table {
    let mut t = Table::new(
        &[
            "UNIT",
            "PROXY",
            "STATE",
            "PATH",
            "METHODS",
            "TRANSPORTS",
            "ENDPOINT",
            "REQUESTS>",
            "ERRORS>",
            "P50>",
            "P99>",
        ],
        empty,
    );
    for (nm, a) in rows {
        let p: ProxyAttrs = typed(a);
        let mut row = vec![
            unit_of(nm).unwrap_or_default().into(),
            name_of(nm).into(),
            Span::state(p.state),
            p.path.into(),
            joined(&p.methods, "any").into(),
            // No transports listed: every http transport.
            joined(&p.transports, "all").into(),
            p.endpoint.unwrap_or_default().into(),
        ];
        row.extend(requests_errors(&p.counters));
        row.extend(latencies(&p.counters, &p.latency));
        t.push(row);
    }
    t
}

fn endpoints_table(rows: &[Row], empty: String) -> Table {
    let mut t = Table::new(
        &[
            "UNIT",
            "ENDPOINT",
            "STATE",
            "STRATEGY",
            "ADDRESSES",
            "REQUESTS>",
            "ERRORS>",
            "P50>",
            "P99>",
        ],
        empty,
    );
    for (nm, a) in rows {
        let e: EndpointAttrs = typed(a);
        let mut row = vec![
            unit_of(nm).unwrap_or_default().into(),
            name_of(nm).into(),
            Span::state(e.state),
            cell(serde_json::to_value(e.strategy).ok().as_ref()).into(),
            address_summary(&e.addresses),
        ];
        row.extend(requests_errors(&e.counters));
        row.extend(latencies(&e.counters, &e.latency));
        t.push(row);
    }
    t
}

fn transports_table(rows: &[Row], empty: String) -> Table {
    let mut t = Table::new(
        &[
            "TRANSPORT",
            "STATE",
            "KIND",
            "BIND",
            "REQUESTS>",
            "ERRORS>",
            "IN-FLIGHT>",
        ],
        empty,
    );
    for (nm, a) in rows {
        let tr: TransportAttrs = typed(a);
        // An amqp transport connects to a URL instead of listening.
        let at = if tr.bind.is_empty() {
            typed::<AmqpLinkAttrs>(a).url
        } else {
            tr.bind
        };
        let mut row = vec![
            name_of(nm).into(),
            Span::state(tr.state),
            tr.kind.into(),
            at.into(),
        ];
        row.extend(requests_errors(&tr.counters));
        row.push(count(tr.counters.in_flight));
        t.push(row);
    }
    t
}

fn consumers_table(rows: &[Row], empty: String) -> Table {
    let mut t = Table::new(
        &[
            "UNIT",
            "CONSUMER",
            "STATE",
            "KIND",
            "SOURCE",
            "RECEIVED>",
            "ACKED>",
            "RETRIED>",
            "DEAD>",
            "IN-FLIGHT>",
            "DEPTH>",
            "REASON",
        ],
        empty,
    );
    for (nm, a) in rows {
        let c: ConsumerAttrs = typed(a);
        t.push(vec![
            unit_of(nm).unwrap_or_default().into(),
            name_of(nm).into(),
            Span::state(c.state),
            c.kind.into(),
            c.source.into(),
            c.received.to_string().into(),
            c.acked.to_string().into(),
            c.retried.to_string().into(),
            c.dead_lettered.to_string().into(),
            c.in_flight.to_string().into(),
            count(c.queue_depth),
            Span::new(c.reason.unwrap_or_default(), Tone::Warn),
        ]);
    }
    t
}

fn tasks_table(rows: &[Row], empty: String, now: u64) -> Table {
    let mut t = Table::new(
        &[
            "UNIT",
            "TASK",
            "STATE",
            "EVERY",
            "SEQUENCE",
            "RUNS>",
            "FAILURES>",
            "LAST RUN",
            "LAST ERROR",
        ],
        empty,
    );
    for (nm, a) in rows {
        let k: TaskAttrs = typed(a);
        let last = match k.last_run {
            Some(t) if t > 0 => ago(t, now),
            _ => "never".into(),
        };
        t.push(vec![
            unit_of(nm).unwrap_or_default().into(),
            name_of(nm).into(),
            Span::state(k.state),
            every(k.every_millis as f64).into(),
            k.sequence.into(),
            k.runs.to_string().into(),
            k.failures.to_string().into(),
            last.into(),
            Span::new(k.last_error.unwrap_or_default(), Tone::Bad),
        ]);
    }
    t
}

fn address_summary(addrs: &[AddressInfo]) -> Span {
    let active = addrs.iter().filter(|a| a.state == "Active").count();
    let tone = if active == 0 {
        Tone::Bad
    } else if active < addrs.len() {
        Tone::Warn
    } else {
        Tone::Plain
    };
    Span::new(format!("{active}/{} active", addrs.len()), tone)
}

/// The attributes of one bean: scalars as aligned fields (`State` first), arrays of objects
/// as tables, diagnostics as file:line:col lines.
pub fn sheet(title: Option<&str>, attrs: &Attrs, now: u64) -> Vec<Block> {
    let mut blocks = Vec::new();
    if let Some(t) = title {
        blocks.push(Block::Lines(vec![vec![Span::new(t, Tone::Bold)]]));
    }
    let mut fields: Vec<(String, Span)> = Vec::new();
    let mut tables: Vec<Block> = Vec::new();
    let mut keys: Vec<&String> = attrs.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "State", k.as_str()));
    for k in keys {
        let v = &attrs[k];
        match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                if items.iter().all(|d| diagnostic(d).is_some()) {
                    let mut lines: Vec<Line> = vec![vec![Span::new(k.clone(), Tone::Dim)]];
                    lines.extend(items.iter().map(|d| vec![Span::plain("  "), diag_span(d)]));
                    tables.push(Block::Lines(lines));
                } else {
                    tables.push(Block::Lines(vec![vec![Span::new(k.clone(), Tone::Dim)]]));
                    tables.push(Block::Table(objects_table(items)));
                }
            }
            _ => {
                let text = attr_text(k, v, now);
                let span = if k == "State" || k.ends_with("State") {
                    Span::state(text)
                } else {
                    Span::plain(text)
                };
                fields.push((k.clone(), span));
            }
        }
    }
    if !fields.is_empty() {
        blocks.push(Block::Fields(fields));
    }
    blocks.extend(tables);
    blocks
}

fn attr_text(k: &str, v: &Value, now: u64) -> String {
    match v.as_u64() {
        Some(t) if t > 0 && (k.ends_with("At") || k == "LastRun") => {
            format!("{} UTC ({})", timestamp(t), ago(t, now))
        }
        Some(us) if k.ends_with("Micros") => micros(us as f64),
        Some(secs) if k == "UptimeSeconds" => format!("{secs} ({})", uptime(secs)),
        Some(ms) if k.ends_with("Millis") && k != "DeployMillis" && ms >= 1000 => {
            format!("{ms} ({})", every(ms as f64))
        }
        _ => match v {
            // A proxy without transports listens on every http transport.
            Value::Array(a) if a.is_empty() && k == "Transports" => "all".into(),
            Value::Array(a) if a.is_empty() => "(none)".into(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            Value::Object(_) | Value::Array(_) => {
                let c = cell(Some(v));
                if c.chars().count() > 100 {
                    compact(v, 100)
                } else {
                    c
                }
            }
            _ => cell(Some(v)),
        },
    }
}

/// A table of JSON objects, columns in the order of the first object's keys.
fn objects_table(items: &[Value]) -> Table {
    let mut cols: Vec<String> = Vec::new();
    for it in items {
        if let Value::Object(m) = it {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    // Put url/unit/revision first when present.
    cols.sort_by_key(|c| match c.as_str() {
        "url" | "unit" => 0,
        "revision" => 1,
        "state" => 2,
        _ => 3,
    });
    let headers: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
    let hdr: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&hdr, "");
    for it in items {
        t.push(
            cols.iter()
                .map(|c| {
                    let v = it.get(c);
                    if c == "state" {
                        Span::state(cell(v))
                    } else {
                        Span::plain(cell(v))
                    }
                })
                .collect(),
        );
    }
    t
}

/// A generic value (`get` of one attribute, `exec` results): scalars on one line, objects as
/// a sheet, other arrays as pretty JSON.
pub fn value(v: &Value, now: u64) -> Output {
    let out = Output::new(v.clone());
    match v {
        Value::Object(m) => {
            let mut out = out;
            for b in sheet(None, m, now) {
                out.push(b);
            }
            out
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            out.with(Block::Table(objects_table(items)))
        }
        Value::Array(items) if items.iter().all(|i| i.is_string()) => out.with(Block::Lines(
            items
                .iter()
                .map(|i| vec![Span::plain(cell(Some(i)))])
                .collect(),
        )),
        Value::Null => out.with(Block::Lines(vec![vec![Span::new("ok", Tone::Good)]])),
        Value::Array(_) => out.with(Block::Lines(
            serde_json::to_string_pretty(v)
                .unwrap_or_default()
                .lines()
                .map(|l| vec![Span::plain(l)])
                .collect(),
        )),
        scalar => out.with(Block::Lines(vec![vec![Span::plain(cell(Some(scalar)))]])),
    }
}

/// A Java type name as people read it: `java.lang.String` → `String`,
/// `[Ljava.lang.String;` → `String[]`.
fn short(t: &str) -> String {
    if let Some(inner) = t.strip_prefix("[L").and_then(|x| x.strip_suffix(';')) {
        return format!("{}[]", short(inner));
    }
    t.rsplit('.').next().unwrap_or(t).to_string()
}

/// Operations of one name: one signature, or (Jolokia's overloads) several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Signatures {
    One(OpInfo),
    Many(Vec<OpInfo>),
}

/// A bean's `list` metadata as read: the protocol's attribute and operation metadata, with
/// overloaded operations allowed.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Listed {
    desc: String,
    attr: BTreeMap<String, AttrInfo>,
    op: BTreeMap<String, Signatures>,
}

/// `info BEAN`: the bean's `list` metadata (`{desc, attr: {..}, op: {..}}`) as two tables.
pub fn info(bean: &str, v: &Value) -> Output {
    let listed = Listed::deserialize(v).unwrap_or_default();
    let mut out = Output::new(v.clone()).with(Block::Lines(vec![
        vec![Span::new(bean, Tone::Bold)],
        vec![Span::plain(listed.desc)],
    ]));
    let mut attrs = Table::new(
        &["ATTRIBUTE", "TYPE", "ACCESS", "DESCRIPTION"],
        "no attributes",
    );
    for (name, a) in listed.attr {
        attrs.push(vec![
            Span::new(name, Tone::Bold),
            short(&a.type_).into(),
            if a.rw {
                Span::new("rw", Tone::Warn)
            } else {
                "r".into()
            },
            a.desc.into(),
        ]);
    }
    let mut ops = Table::new(
        &["OPERATION", "ARGUMENTS", "RETURNS", "DESCRIPTION"],
        "no operations",
    );
    for (name, o) in listed.op {
        let sigs = match o {
            Signatures::One(s) => vec![s],
            Signatures::Many(v) => v,
        };
        for sig in sigs {
            let args = sig
                .args
                .iter()
                .map(|x| format!("{}: {}", x.name, short(&x.type_)))
                .collect::<Vec<_>>()
                .join(", ");
            ops.push(vec![
                Span::new(name.clone(), Tone::Bold),
                args.into(),
                short(&sig.ret).into(),
                sig.desc.into(),
            ]);
        }
    }
    out.push(Block::Table(attrs));
    out.push(Block::Table(ops));
    out
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;

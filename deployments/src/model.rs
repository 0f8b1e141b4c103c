//! The typed model of a deployment unit: proxies, sequences with mediation steps,
//! endpoints and tasks. Deserialized from TOML with unknown keys refused; fields whose
//! position matters for error messages keep their source span (`Spanned`). Serializing an
//! element gives the plain values compared by `diff`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::time::Duration;

/// A validated deployment unit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Unit {
    pub name: String,
    /// The operator's label (`version = "1.2.0"`).
    pub label: Option<String>,
    pub description: Option<String>,
    pub proxies: Vec<Proxy>,
    pub sequences: Vec<Sequence>,
    pub endpoints: Vec<Endpoint>,
    pub tasks: Vec<Task>,
    /// Synthetic requests a new revision must answer as expected before it takes traffic.
    pub checks: Vec<Check>,
    /// Runtime flags with their defaults (`[flags] beta = false`), read by `${flag.NAME}`.
    pub flags: BTreeMap<String, bool>,
    /// Watched after an activation (and during a canary): when it trips, esb rolls back.
    pub guard: Option<Guard>,
    pub consumers: Vec<Consumer>,
}

/// Where an element was defined: which file of the unit and the byte span of its table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// Path inside the unit directory (`unit.toml`, `routes/eu.toml`); the elements of one
    /// file share it.
    pub rel: std::sync::Arc<str>,
    /// Path as operators see it (`conf/deployments/orders/unit.toml`); shared like `rel`.
    pub file: std::sync::Arc<str>,
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub name: Spanned<String>,
    /// Transports the proxy listens on; empty means every transport of the root config.
    #[serde(default)]
    pub transports: Vec<Spanned<String>>,
    pub path: Spanned<String>,
    /// Allowed methods; empty means any.
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    #[serde(default)]
    pub sequence: Option<Spanned<String>>,
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub out_sequence: Option<Spanned<String>>,
    #[serde(default)]
    pub fault_sequence: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    pub name: Spanned<String>,
    #[serde(default)]
    pub steps: Vec<Spanned<Step>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub origin: Origin,
}

/// One mediation step. Written as a one-key inline table: `{ log = "..." }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Log a templated message at info level.
    Log(String),
    SetHeader(NameValue),
    RemoveHeader(String),
    SetProperty(NameValue),
    Filter(Filter),
    Switch(Switch),
    Transform(Transform),
    Respond(Respond),
    Call(Call),
    Publish(Publish),
}

pub const STEP_KINDS: &[&str] = &[
    "log",
    "set_header",
    "remove_header",
    "set_property",
    "filter",
    "switch",
    "transform",
    "respond",
    "call",
    "publish",
];

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// `filter = { on = "${header.x}", equals = "a", then = [...], else = [...] }`.
/// Exactly one condition: `equals`, `not_equals`, `contains`, `starts_with`, `exists`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub on: String,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub not_equals: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub starts_with: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
    #[serde(default)]
    pub then: Vec<Spanned<Step>>,
    #[serde(default, rename = "else")]
    pub otherwise: Vec<Spanned<Step>>,
}

/// Content-based routing: the value of `on` selects a case; a case names a sequence to run
/// or an endpoint to send to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub on: String,
    pub cases: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub default: Option<Spanned<String>>,
}

/// Replace the body with JSON built from a template value; string leaves are templates,
/// and a leaf that is exactly one `${json./p}` keeps the JSON type of what it points at.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    pub body: toml::Value,
    #[serde(default = "json_content_type")]
    pub content_type: String,
}

fn json_content_type() -> String {
    "application/json".into()
}

/// Answer directly without calling an endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    #[serde(default = "ok_status")]
    pub status: u16,
    /// A templated text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body built like `transform`.
    #[serde(default)]
    pub json: Option<toml::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn ok_status() -> u16 {
    200
}

/// Invoke an endpoint with the current message and continue with its response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub endpoint: Spanned<String>,
}

/// Publish the current body to an AMQP exchange (`transport` names an `amqp` transport of
/// the root config) and continue; with `confirm` (the default) the step waits for the
/// broker's publisher confirm and fails if the message was not confirmed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub transport: Spanned<String>,
    /// Exchange name; `""` is the default exchange (routing key = queue name).
    #[serde(default)]
    pub exchange: String,
    /// A template.
    pub routing_key: String,
    #[serde(default = "default_true")]
    pub confirm: bool,
    /// Delivery mode 2 (the broker writes the message to disk on durable queues).
    #[serde(default = "default_true")]
    pub persistent: bool,
    /// AMQP headers of the published message; values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    Failover,
    RoundRobin,
    Weighted,
}

/// An endpoint address: `"http://host:port"` or `{ url = "...", weight = 3 }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum AddressDef {
    Url(String),
    Weighted(WeightedAddress),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedAddress {
    pub url: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

impl AddressDef {
    pub fn url(&self) -> &str {
        match self {
            AddressDef::Url(u) => u,
            AddressDef::Weighted(w) => &w.url,
        }
    }
    pub fn weight(&self) -> u32 {
        match self {
            AddressDef::Url(_) => 1,
            AddressDef::Weighted(w) => w.weight,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub name: Spanned<String>,
    pub addresses: Vec<Spanned<AddressDef>>,
    #[serde(default)]
    pub strategy: Strategy,
    /// Whole-exchange timeout (response headers must arrive within it).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Further addresses tried after a connect failure (default: every other address).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub suspend: Suspend,
    /// Extra PEM CA certificates trusted for `https://` addresses.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub origin: Origin,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Address suspension after consecutive failures, with exponential back-off.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Suspend {
    #[serde(default = "three")]
    pub after_failures: u32,
    #[serde(default = "five_s", with = "duration")]
    pub initial: Duration,
    #[serde(default = "two")]
    pub factor: f64,
    #[serde(default = "sixty_s", with = "duration")]
    pub max: Duration,
}

fn three() -> u32 {
    3
}
fn five_s() -> Duration {
    Duration::from_secs(5)
}
fn two() -> f64 {
    2.0
}
fn sixty_s() -> Duration {
    Duration::from_secs(60)
}

impl Default for Suspend {
    fn default() -> Self {
        Suspend {
            after_failures: three(),
            initial: five_s(),
            factor: two(),
            max: sixty_s(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: Spanned<String>,
    #[serde(with = "duration")]
    pub every: Duration,
    pub sequence: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub origin: Origin,
}

/// A check: a synthetic request run against a new revision's pipeline (its sequences and
/// endpoints, with real backends) before the swap; never seen by clients.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: Spanned<String>,
    #[serde(default = "get")]
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// How long the whole exchange may take before the check fails.
    #[serde(default = "five_s", with = "duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub expect: Expect,
    #[serde(skip)]
    pub origin: Origin,
}

/// Consumes messages from an AMQP queue (`transport` + `queue`) or files from an inbox
/// directory (`dir`), runs each through `sequence` and/or sends it to `endpoint`, and
/// acknowledges it (moves the file to `done_dir`) only once that finished.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub name: Spanned<String>,
    /// An `amqp` transport of the root config.
    #[serde(default)]
    pub transport: Option<Spanned<String>>,
    #[serde(default)]
    pub queue: Option<Spanned<String>>,
    /// Declare the queue (durable) if it does not exist.
    #[serde(default = "default_true")]
    pub declare: bool,
    /// Unacknowledged messages the broker may send ahead (basic.qos).
    #[serde(default = "ten_u16")]
    pub prefetch: u16,
    /// Messages processed at the same time.
    #[serde(default = "one_u16")]
    pub concurrency: u16,
    /// Inbox directory (file consumer), relative to the root config.
    #[serde(default)]
    pub dir: Option<Spanned<String>>,
    /// File names picked up: `*` and `?` wildcards.
    #[serde(default = "star")]
    pub pattern: String,
    /// Where processed files go (default: `done/` inside the inbox).
    #[serde(default)]
    pub done_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub failed_dir: Option<Spanned<String>>,
    /// How often the inbox is scanned; a file is taken once its size and modification
    /// time stayed the same across one scan.
    #[serde(default = "half_s", with = "duration")]
    pub poll: Duration,
    #[serde(default)]
    pub sequence: Option<Spanned<String>>,
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(skip)]
    pub origin: Origin,
}

fn get() -> Spanned<String> {
    Spanned::new(0..0, "GET".to_owned())
}

/// What a check's answer must be. With nothing given: any 2xx status.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub status: Option<u16>,
    /// Header name → exact value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// JSON pointer → the value found there.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    #[serde(default, with = "opt_duration")]
    pub max_latency: Option<Duration>,
}

/// When an activated (or canary) revision is rolled back by itself: over `window`, with at
/// least `min_requests` requests, the share of 5xx answers above `max_error_rate` (percent)
/// or the p99 latency above `max_p99`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    #[serde(default, with = "opt_duration")]
    pub max_p99: Option<Duration>,
    #[serde(default = "thirty_s", with = "duration")]
    pub window: Duration,
    #[serde(default = "twenty")]
    pub min_requests: u64,
    #[serde(skip)]
    pub origin: Origin,
    /// Byte offset of the table in its file (for located errors).
    #[serde(skip)]
    pub offset: usize,
}

fn thirty_s() -> Duration {
    Duration::from_secs(30)
}

fn twenty() -> u64 {
    20
}

/// Optional durations (`max_latency = "500ms"`).
pub mod opt_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| duration::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&duration::format(d)),
            None => s.serialize_none(),
        }
    }
}

impl Consumer {
    pub fn is_file(&self) -> bool {
        self.dir.is_some()
    }
}

fn ten_u16() -> u16 {
    10
}
fn one_u16() -> u16 {
    1
}
fn star() -> String {
    "*".into()
}
fn half_s() -> Duration {
    Duration::from_millis(500)
}

/// What happens to a message whose pipeline failed: it is tried again after `backoff`
/// (doubling up to `max_backoff`) until `max_attempts` attempts failed, then dead-lettered
/// (published to `dead_letter_exchange`/`dead_letter_routing_key` with the cause in the
/// `x-esb-failure` header and acknowledged; without a dead-letter target it is rejected
/// without requeue, so the queue's own dead-letter exchange applies). A failed file goes
/// to the failed directory with a `.reason` file after its last attempt.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnFailure {
    #[serde(default = "three")]
    pub max_attempts: u32,
    #[serde(default = "half_s", with = "duration")]
    pub backoff: Duration,
    #[serde(default = "ten_s", with = "duration")]
    pub max_backoff: Duration,
    #[serde(default)]
    pub dead_letter_exchange: Option<String>,
    #[serde(default)]
    pub dead_letter_routing_key: Option<String>,
}

fn ten_s() -> Duration {
    Duration::from_secs(10)
}

impl Default for OnFailure {
    fn default() -> Self {
        OnFailure {
            max_attempts: three(),
            backoff: half_s(),
            max_backoff: ten_s(),
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
        }
    }
}

/// Durations written as `"500ms"`, `"5s"`, `"1m 30s"`.
pub mod duration {
    use super::*;

    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            format!("invalid duration \"{text}\" ({e}); write a number with a unit, e.g. \"500ms\", \"5s\", \"2m\"")
        })
    }

    pub fn format(d: &Duration) -> String {
        humantime::format_duration(*d).to_string()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }
}

/// An element kind and name, as messages print it: `proxy "orders"`.
pub fn element_label(kind: &str, name: &str) -> String {
    format!("{kind} \"{name}\"")
}

impl Unit {
    pub fn proxy(&self, name: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| *p.name.get_ref() == name)
    }
    pub fn sequence(&self, name: &str) -> Option<&Sequence> {
        self.sequences.iter().find(|p| *p.name.get_ref() == name)
    }
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|p| *p.name.get_ref() == name)
    }
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|p| *p.name.get_ref() == name)
    }
    pub fn consumer(&self, name: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|p| *p.name.get_ref() == name)
    }
}

/// Element names: letters, digits, `-`, `_`, `.`; no separators used by object names.
pub fn is_valid_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

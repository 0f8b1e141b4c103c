//! The static root configuration (`conf/esb.toml`): server settings, transports, the
//! management endpoint and the hot deployer. Changing it takes a (warm) restart. Relative
//! paths in it are resolved against the directory of the file.

use crate::diag::{did_you_mean, Diagnostic, LineIndex};
use crate::model::duration;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ROOT_FILE: &str = "esb.toml";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub management: ManagementConfig,
    #[serde(default)]
    pub hot_deploy: HotDeployConfig,
    #[serde(default, rename = "transport")]
    pub transports: Vec<TransportDef>,
    /// Cluster mode (docs/cluster.md): absent, esb is a single node.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// Directory the root config was read from; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Last-good copies, tokens and the audit log.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// How long a replaced revision, or the whole server at shutdown, may take to finish
    /// in-flight requests.
    #[serde(default = "thirty_s", with = "duration")]
    pub drain_timeout: Duration,
    /// Revisions kept per unit for rollback.
    #[serde(default = "five")]
    pub history: usize,
    /// Largest body a mediation step may read into memory (bytes); beyond it: 413.
    #[serde(default = "ten_mib")]
    pub max_body: u64,
    /// Tokio worker threads for the data plane (0 = one per core).
    #[serde(default)]
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_mgmt_bind", with = "socket_addr")]
    pub bind: Spanned<SocketAddr>,
    /// A non-loopback bind is refused unless this is set.
    #[serde(default)]
    pub allow_remote: bool,
    /// Largest management request body (bytes); beyond it: 413.
    #[serde(default = "one_mib")]
    pub max_body: u64,
    /// Extra `Origin` values accepted besides the endpoint's own address; responses to them
    /// carry CORS headers (credentials included) and their preflights are answered.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Allow write/exec over HTTP GET (for tools that only speak the GET form). Off by
    /// default; refused unless `bind` is a loopback address.
    #[serde(default = "spanned_false")]
    pub allow_get_changes: Spanned<bool>,
    /// Refused attempts (401, foreign Origin/Host) recorded in the audit log per second and
    /// reason; the rest are counted in one "suppressed" record.
    #[serde(default = "ten")]
    pub audit_refused_per_second: u32,
    /// Most management connections open at once; beyond it new ones wait in the backlog.
    /// Kept apart from the transports' caps so an operator gets in during a flood.
    #[serde(default = "default_mgmt_connections")]
    pub max_connections: Spanned<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HotDeployConfig {
    #[serde(default = "default_true")]
    pub watch: bool,
    #[serde(default = "half_s", with = "duration")]
    pub debounce: Duration,
    /// How long a unit's files must stay the same (size and content) before the hot
    /// deployer reads them: a slow writer or an interrupted copy is never deployed.
    #[serde(default = "three_tenths_s", with = "duration")]
    pub settle: Duration,
    /// Directory of the deployment units, relative to the root config.
    #[serde(default = "default_deployments")]
    pub dir: String,
}

/// `[cluster]`: the nodes of one cluster share unit revisions through an etcd store.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster's name: every key lives under `/esb/<name>/` in the store.
    pub name: Spanned<String>,
    /// etcd client endpoints, e.g. `["http://127.0.0.1:2379"]`.
    pub store: Spanned<Vec<String>>,
    /// This node's name in the cluster (default: `[server] name`); unique per cluster.
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// Time-to-live of this node's report in the store: a node silent for longer is DOWN.
    #[serde(default = "ten_s_spanned", with = "spanned_duration")]
    pub lease: Spanned<Duration>,
    /// How long a cluster operation waits for the store before it is refused.
    #[serde(default = "three_s", with = "duration")]
    pub timeout: Duration,
}

impl ClusterConfig {
    /// This node's name: `node`, or the server's name.
    pub fn node_name<'a>(&'a self, server: &'a ServerConfig) -> &'a str {
        self.node
            .as_ref()
            .map(|n| n.get_ref().as_str())
            .unwrap_or(&server.name)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Http,
    Https,
    /// An AMQP 0.9.1 broker (RabbitMQ) that consumers and `publish` steps use.
    Amqp,
}

impl TransportKind {
    pub fn is_http(self) -> bool {
        matches!(self, TransportKind::Http | TransportKind::Https)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Http => "http",
            TransportKind::Https => "https",
            TransportKind::Amqp => "amqp",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransportDef {
    pub name: Spanned<String>,
    #[serde(default = "http_kind")]
    pub kind: TransportKind,
    /// Listen address (http, https).
    #[serde(default, with = "opt_socket_addr")]
    pub bind: Option<Spanned<SocketAddr>>,
    /// PEM certificate chain (https).
    #[serde(default)]
    pub cert: Option<Spanned<String>>,
    /// PEM private key (https).
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// Most client connections open at once; beyond it the transport stops accepting and
    /// new connections wait in the listen backlog. Default: sized from the open-file limit
    /// (see [`default_max_connections`]).
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
    /// How long a client may take to send the whole request head.
    #[serde(default = "thirty_s_spanned", with = "spanned_duration")]
    pub header_timeout: Spanned<Duration>,
    /// How long a client may take to send the whole request body, counted from the head;
    /// beyond it: 408 and the connection is closed.
    #[serde(default = "thirty_s_spanned", with = "spanned_duration")]
    pub body_timeout: Spanned<Duration>,
    /// Broker URL (amqp): `amqp://host:port/vhost`, without credentials.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Broker user name (amqp); default `guest`.
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the broker password (amqp), relative to the root config.
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    /// Name of the environment variable holding the broker password (amqp).
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// First pause before reconnecting to the broker; doubles up to `reconnect_max`.
    #[serde(default = "fifth_s", with = "duration")]
    pub reconnect_initial: Duration,
    #[serde(default = "five_s", with = "duration")]
    pub reconnect_max: Duration,
}

/// File descriptors kept free of every transport's default cap: the management
/// endpoint's connections, log and state files, the hot deployer and backend sockets
/// beyond one per client connection.
pub const FD_RESERVE: u64 = 64;

/// The default `max_connections` of each of `transports` transports at open-file limit
/// `nofile`: what is left after the reserve and the management cap, halved (a proxied
/// client connection may hold a backend connection too), shared equally; at least 16.
pub fn default_max_connections(nofile: u64, transports: usize, management: u64) -> u64 {
    let usable = nofile.saturating_sub(FD_RESERVE + management);
    (usable / 2 / transports.max(1) as u64).max(16)
}

impl TransportDef {
    /// The listen address of an http(s) transport (validated to be present).
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

fn fifth_s() -> Duration {
    Duration::from_millis(200)
}
fn five_s() -> Duration {
    Duration::from_secs(5)
}
fn three_s() -> Duration {
    Duration::from_secs(3)
}
fn ten_s_spanned() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(10))
}

fn default_name() -> String {
    "esb".into()
}
fn default_state_dir() -> String {
    "../var".into()
}
fn thirty_s() -> Duration {
    Duration::from_secs(30)
}
fn thirty_s_spanned() -> Spanned<Duration> {
    Spanned::new(0..0, thirty_s())
}
fn default_mgmt_connections() -> Spanned<u64> {
    Spanned::new(0..0, 64)
}
fn half_s() -> Duration {
    Duration::from_millis(500)
}
fn three_tenths_s() -> Duration {
    Duration::from_millis(300)
}
fn five() -> usize {
    5
}
fn ten() -> u32 {
    10
}
fn ten_mib() -> u64 {
    10 << 20
}
fn one_mib() -> u64 {
    1 << 20
}
fn spanned_false() -> Spanned<bool> {
    Spanned::new(0..0, false)
}
fn default_true() -> bool {
    true
}
fn default_deployments() -> String {
    "deployments".into()
}
fn http_kind() -> TransportKind {
    TransportKind::Http
}
fn default_mgmt_bind() -> Spanned<SocketAddr> {
    Spanned::new(0..0, "127.0.0.1:9900".parse().unwrap())
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").unwrap()
    }
}
impl Default for ManagementConfig {
    fn default() -> Self {
        toml::from_str("").unwrap()
    }
}
impl Default for HotDeployConfig {
    fn default() -> Self {
        toml::from_str("").unwrap()
    }
}

mod socket_addr {
    use super::*;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<SocketAddr>, D::Error> {
        let text: Spanned<String> = Spanned::deserialize(d)?;
        let span = text.span();
        let addr = text.get_ref().parse::<SocketAddr>().map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid bind address \"{}\"; write IP:PORT, e.g. \"127.0.0.1:8280\"",
                text.get_ref()
            ))
        })?;
        Ok(Spanned::new(span, addr))
    }

    pub fn serialize<S: serde::Serializer>(
        a: &Spanned<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.get_ref().to_string())
    }
}

/// Durations like [`duration`], keeping where they were written (for located errors).
mod spanned_duration {
    use super::*;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<Duration>, D::Error> {
        let text: Spanned<String> = Spanned::deserialize(d)?;
        let span = text.span();
        let value = duration::parse(text.get_ref()).map_err(serde::de::Error::custom)?;
        Ok(Spanned::new(span, value))
    }

    pub fn serialize<S: serde::Serializer>(d: &Spanned<Duration>, s: S) -> Result<S::Ok, S::Error> {
        duration::serialize(d.get_ref(), s)
    }
}

mod opt_socket_addr {
    use super::*;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Spanned<SocketAddr>>, D::Error> {
        super::socket_addr::deserialize(d).map(Some)
    }

    pub fn serialize<S: serde::Serializer>(
        a: &Option<Spanned<SocketAddr>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => super::socket_addr::serialize(a, s),
            None => s.serialize_none(),
        }
    }
}

/// Names usable as etcd key segments and node names: `[a-z0-9][a-z0-9_.-]*`.
fn is_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        && name.len() <= 64
}

fn cluster_problems(
    c: &ClusterConfig,
    at: &impl Fn(std::ops::Range<usize>, String) -> Diagnostic,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let names = [("name", Some(&c.name)), ("node", c.node.as_ref())];
    for (key, v) in names {
        let Some(v) = v else { continue };
        if !is_cluster_name(v.get_ref()) {
            errors.push(
                at(v.span(), format!("invalid cluster {key} \"{}\"", v.get_ref()))
                    .element("cluster")
                    .hint(Some(
                        "use lower-case letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64)".into(),
                    )),
            );
        }
    }
    if c.store.get_ref().is_empty() {
        errors.push(
            at(c.store.span(), "no store endpoints".into())
                .element("cluster")
                .hint(Some(
                    "list the etcd client URLs, e.g. `store = [\"http://127.0.0.1:2379\"]`".into(),
                )),
        );
    }
    for e in c.store.get_ref() {
        let ok = url::Url::parse(e)
            .ok()
            .is_some_and(|u| u.scheme() == "http" && u.host().is_some() && u.port().is_some());
        if !ok {
            errors.push(
                at(c.store.span(), format!("invalid store endpoint \"{e}\""))
                    .element("cluster")
                    .hint(Some(
                        "write an etcd client URL with scheme and port, e.g. \"http://127.0.0.1:2379\"".into(),
                    )),
            );
        }
    }
    let lease = c.lease.get_ref();
    if *lease < Duration::from_secs(1) || lease.subsec_nanos() != 0 {
        errors.push(
            at(
                c.lease.span(),
                format!(
                    "lease {} is not a whole number of seconds of at least 1s",
                    duration::format(lease)
                ),
            )
            .element("cluster")
            .hint(Some(
                "etcd leases count whole seconds; write e.g. `lease = \"10s\"`".into(),
            )),
        );
    }
    errors
}

impl RootConfig {
    /// Reads and validates `DIR/esb.toml`.
    pub fn load(conf_dir: &Path) -> Result<RootConfig, Vec<Diagnostic>> {
        let path = conf_dir.join(ROOT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            vec![Diagnostic::new(
                path.display().to_string(),
                1,
                1,
                format!("cannot read root config: {e}"),
            )
            .hint(Some(
                "pass the configuration directory with --conf DIR".into(),
            ))]
        })?;
        Self::parse(&text, &path.display().to_string(), conf_dir)
    }

    /// Parses and validates root-config text; `file` is the name used in messages.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<RootConfig, Vec<Diagnostic>> {
        let index = LineIndex::new(text);
        let at = |span: std::ops::Range<usize>, msg: String| {
            let (line, col) = index.position(span.start);
            Diagnostic::new(file, line, col, msg)
        };
        let mut root: RootConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_owned();
            vec![at(span, msg.clone()).hint(crate::diag::unknown_key_hint(&msg))]
        })?;
        root.base_dir = base_dir.to_path_buf();
        let mut errors = Vec::new();
        let mut seen: Vec<(&str, SocketAddr)> = Vec::new();
        for t in &root.transports {
            let name = t.name.get_ref().as_str();
            let element = format!("transport \"{name}\"");
            if !crate::model::is_valid_element_name(name) {
                errors.push(at(t.name.span(), "invalid transport name".into()).element(&element).hint(Some(
                    "use letters, digits, '-', '_' and '.', starting with a letter or digit".into(),
                )));
            }
            if root
                .transports
                .iter()
                .take_while(|o| !std::ptr::eq(*o, t))
                .any(|o| o.name.get_ref() == name)
            {
                errors.push(at(t.name.span(), "duplicate transport name".into()).element(&element));
            }
            if t.kind == TransportKind::Amqp {
                errors.extend(amqp_problems(t, &element, &at));
                continue;
            }
            let Some(bind) = &t.bind else {
                errors.push(
                    at(
                        t.name.span(),
                        format!("{} transport without `bind`", t.kind.as_str()),
                    )
                    .element(&element)
                    .hint(Some("add `bind = \"127.0.0.1:8280\"`".into())),
                );
                continue;
            };
            for (key, present) in [
                ("url", t.url.is_some()),
                ("user", t.user.is_some()),
                ("password_file", t.password_file.is_some()),
                ("password_env", t.password_env.is_some()),
            ] {
                if present {
                    errors.push(
                        at(t.name.span(), format!("`{key}` is for amqp transports"))
                            .element(&element)
                            .hint(Some(format!("remove `{key}`, or set `kind = \"amqp\"`"))),
                    );
                }
            }
            if let Some((other, _)) = seen.iter().find(|(_, a)| *a == *bind.get_ref()) {
                errors.push(
                    at(
                        bind.span(),
                        format!(
                            "bind address {} already used by transport \"{other}\"",
                            bind.get_ref()
                        ),
                    )
                    .element(&element),
                );
            }
            if *bind.get_ref() == *root.management.bind.get_ref() && root.management.enabled {
                errors.push(
                    at(
                        bind.span(),
                        format!(
                            "bind address {} is the management endpoint's",
                            bind.get_ref()
                        ),
                    )
                    .element(&element),
                );
            }
            seen.push((name, *bind.get_ref()));
            if let Some(m) = &t.max_connections {
                if *m.get_ref() == 0 {
                    errors.push(
                        at(m.span(), "max_connections must be at least 1".into())
                            .element(&element)
                            .hint(Some(
                                "leave it out to size it from the open-file limit".into(),
                            )),
                    );
                }
            }
            for (key, d) in [
                ("header_timeout", &t.header_timeout),
                ("body_timeout", &t.body_timeout),
            ] {
                if d.get_ref().is_zero() {
                    errors.push(
                        at(d.span(), format!("{key} must be longer than 0"))
                            .element(&element)
                            .hint(Some(format!("write a duration such as `{key} = \"30s\"`"))),
                    );
                }
            }
            seen.push((name, *bind.get_ref()));
            if t.kind == TransportKind::Https {
                for (what, v) in [("cert", &t.cert), ("key", &t.key)] {
                    match v {
                        None => errors.push(at(t.name.span(), format!("https transport without `{what}`")).element(&element).hint(Some(
                            format!("add `{what} = \"path/to/{what}.pem\"` (PEM, relative to the root config)"),
                        ))),
                        Some(p) if !base_dir.join(p.get_ref()).is_file() => errors.push(
                            at(p.span(), format!("{what} file \"{}\" not found", base_dir.join(p.get_ref()).display()))
                                .element(&element),
                        ),
                        _ => {}
                    }
                }
            }
        }
        let mcap = &root.management.max_connections;
        if *mcap.get_ref() == 0 {
            errors.push(
                at(mcap.span(), "max_connections must be at least 1".into())
                    .element("management")
                    .hint(Some("the default is 64".into())),
            );
        }
        let mbind = &root.management.bind;
        if root.management.enabled
            && !mbind.get_ref().ip().is_loopback()
            && !root.management.allow_remote
        {
            errors.push(
                at(
                    mbind.span(),
                    format!(
                        "management bind {} is not a loopback address",
                        mbind.get_ref()
                    ),
                )
                .element("management")
                .hint(Some(
                    "set `allow_remote = true` in [management] to expose it deliberately".into(),
                )),
            );
        }
        if let Some(c) = &root.cluster {
            errors.extend(cluster_problems(c, &at));
        }
        let get_changes = &root.management.allow_get_changes;
        if root.management.enabled && *get_changes.get_ref() && !mbind.get_ref().ip().is_loopback()
        {
            errors.push(
                at(
                    get_changes.span(),
                    format!(
                        "`allow_get_changes = true` needs a loopback management bind, but bind is {}",
                        mbind.get_ref()
                    ),
                )
                .element("management")
                .hint(Some(
                    "state changes over GET can be triggered by any page a browser loads (a link, an <img>); \
                     remove allow_get_changes, or bind the management endpoint to 127.0.0.1 or [::1]"
                        .into(),
                )),
            );
        }
        if errors.is_empty() {
            Ok(root)
        } else {
            Err(errors)
        }
    }

    pub fn transport(&self, name: &str) -> Option<&TransportDef> {
        self.transports.iter().find(|t| t.name.get_ref() == name)
    }

    pub fn transport_names(&self) -> impl Iterator<Item = &str> {
        self.transports.iter().map(|t| t.name.get_ref().as_str())
    }

    /// The listeners: http and https transports.
    pub fn http_transport_names(&self) -> impl Iterator<Item = &str> {
        self.transports
            .iter()
            .filter(|t| t.kind.is_http())
            .map(|t| t.name.get_ref().as_str())
    }

    /// A hint for a transport that does not exist or is of the wrong kind.
    pub fn transport_hint_of(&self, name: &str, http: bool) -> Option<String> {
        let names: Vec<&str> = self
            .transports
            .iter()
            .filter(|t| t.kind.is_http() == http)
            .map(|t| t.name.get_ref().as_str())
            .collect();
        let what = if http { "http(s)" } else { "amqp" };
        did_you_mean(name, names.iter().copied()).or_else(|| {
            Some(if names.is_empty() {
                format!("the root config has no {what} transport; add a [[transport]] with kind = \"{}\"", if http { "http" } else { "amqp" })
            } else {
                format!("{what} transports of the root config: {}", names.join(", "))
            })
        })
    }

    /// The broker password of an amqp transport, read from its file or environment
    /// variable (never logged).
    pub fn amqp_password(&self, t: &TransportDef) -> Result<Option<String>, String> {
        if let Some(f) = &t.password_file {
            let path = self.resolve(f.get_ref());
            return std::fs::read_to_string(&path)
                .map(|p| Some(p.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read password_file {}: {e}", path.display()));
        }
        if let Some(v) = &t.password_env {
            return std::env::var(v.get_ref()).map(Some).map_err(|_| {
                format!(
                    "environment variable {} (password_env) is not set",
                    v.get_ref()
                )
            });
        }
        Ok(None)
    }

    pub fn resolve(&self, rel: &str) -> PathBuf {
        self.base_dir.join(rel)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.resolve(&self.server.state_dir)
    }

    pub fn deployments_dir(&self) -> PathBuf {
        self.resolve(&self.hot_deploy.dir)
    }

    /// A hint for a transport name that does not exist.
    pub fn transport_hint(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.transport_names()).or_else(|| {
            Some(format!(
                "transports of the root config: {}",
                self.transport_names().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// What is wrong with an amqp transport's settings (checked offline).
fn amqp_problems(
    t: &TransportDef,
    element: &str,
    at: &dyn Fn(std::ops::Range<usize>, String) -> Diagnostic,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for (key, present) in [
        ("bind", t.bind.is_some()),
        ("cert", t.cert.is_some()),
        ("key", t.key.is_some()),
    ] {
        if present {
            errors.push(
                at(t.name.span(), format!("`{key}` is for http(s) transports"))
                    .element(element)
                    .hint(Some(format!(
                        "an amqp transport connects to `url`; remove `{key}`"
                    ))),
            );
        }
    }
    let Some(url) = &t.url else {
        errors.push(
            at(t.name.span(), "amqp transport without `url`".into())
                .element(element)
                .hint(Some("add `url = \"amqp://127.0.0.1:5672/%2f\"`".into())),
        );
        return errors;
    };
    match url::Url::parse(url.get_ref()) {
        Err(e) => errors.push(
            at(url.span(), format!("invalid broker URL \"{}\": {e}", url.get_ref()))
                .element(element)
                .hint(Some("write amqp://host:port/vhost, e.g. amqp://127.0.0.1:5672/%2f".into())),
        ),
        Ok(u) if u.scheme() != "amqp" => errors.push(
            at(url.span(), format!("broker URL scheme \"{}\" is not supported", u.scheme()))
                .element(element)
                .hint(Some("write amqp://host:port/vhost".into())),
        ),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => errors.push(
            at(url.span(), "broker URL holds credentials".into())
                .element(element)
                .hint(Some(
                    "credentials never go in the URL: set `user` and `password_file` or `password_env`".into(),
                )),
        ),
        Ok(u) if u.host_str().is_none() => errors.push(
            at(url.span(), "broker URL has no host".into()).element(element),
        ),
        Ok(_) => {}
    }
    if t.password_file.is_some() && t.password_env.is_some() {
        errors.push(
            at(
                t.name.span(),
                "both `password_file` and `password_env`".into(),
            )
            .element(element)
            .hint(Some("keep one of them".into())),
        );
    }
    if t.reconnect_initial.is_zero() || t.reconnect_max < t.reconnect_initial {
        errors.push(
            at(
                t.name.span(),
                "reconnect_initial must be > 0 and <= reconnect_max".into(),
            )
            .element(element),
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RootConfig, Vec<Diagnostic>> {
        RootConfig::parse(text, "esb.toml", Path::new("."))
    }

    #[test]
    fn defaults_apply() {
        let r = parse("[[transport]]\nname = \"h\"\nbind = \"127.0.0.1:8280\"\n").unwrap();
        assert_eq!(r.server.history, 5);
        assert_eq!(r.management.bind.get_ref().port(), 9900);
        assert_eq!(r.hot_deploy.debounce, Duration::from_millis(500));
        assert_eq!(r.transports[0].kind, TransportKind::Http);
    }

    #[test]
    fn cluster_table_defaults_and_located_errors() {
        let r = parse("[server]\nname = \"n1\"\n[cluster]\nname = \"prod\"\nstore = [\"http://127.0.0.1:2379\"]\n").unwrap();
        let c = r.cluster.as_ref().unwrap();
        assert_eq!(c.node_name(&r.server), "n1");
        assert_eq!(*c.lease.get_ref(), Duration::from_secs(10));
        assert!(parse("").unwrap().cluster.is_none());
        let e = parse(
            "[cluster]\nname = \"Prod/x\"\nstore = [\"127.0.0.1:2379\"]\nlease = \"500ms\"\n",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        assert_eq!(e.len(), 3, "{text:?}");
        assert_eq!((e[0].line, e[0].col), (2, 8), "{text:?}");
        assert!(text[0].contains("invalid cluster name"), "{text:?}");
        assert!(text[1].contains("invalid store endpoint"), "{text:?}");
        assert!(text[2].contains("whole number of seconds"), "{text:?}");
        let e = parse("[cluster]\nname = \"a\"\n").unwrap_err();
        assert!(e[0].message.contains("missing field `store`"), "{}", e[0]);
    }

    #[test]
    fn unknown_key_is_an_error_with_position_and_hint() {
        let e = parse("[server]\nnmae = \"x\"\n").unwrap_err();
        assert_eq!((e[0].line, e[0].col), (2, 1));
        assert!(e[0].message.contains("unknown field `nmae`"), "{}", e[0]);
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"name\"?"));
    }

    #[test]
    fn get_changes_need_a_loopback_management_bind() {
        assert!(parse("[management]\nallow_get_changes = true\n").is_ok());
        let e = parse(
            "[management]\nbind = \"0.0.0.0:9900\"\nallow_remote = true\nallow_get_changes = true\n",
        )
        .unwrap_err();
        let text = format!("{e:?}");
        assert!(
            text.contains("allow_get_changes") && text.contains("loopback"),
            "{text}"
        );
    }

    #[test]
    fn remote_management_needs_explicit_permission() {
        let e = parse("[management]\nbind = \"0.0.0.0:9900\"\n").unwrap_err();
        assert!(e[0].message.contains("not a loopback"), "{}", e[0]);
        assert!(parse("[management]\nbind = \"0.0.0.0:9900\"\nallow_remote = true\n").is_ok());
    }

    #[test]
    fn https_needs_cert_and_key_and_transports_are_unique() {
        let e = parse(
            "[[transport]]\nname = \"a\"\nkind = \"https\"\nbind = \"127.0.0.1:1\"\n[[transport]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains("without `cert`")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("without `key`")), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("duplicate transport name")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("already used by transport \"a\"")),
            "{text:?}"
        );
    }

    #[test]
    fn connection_caps_and_timeouts_default_and_are_validated_with_locations() {
        let r = parse("[[transport]]\nname = \"h\"\nbind = \"127.0.0.1:8280\"\n").unwrap();
        let t = &r.transports[0];
        assert_eq!(t.max_connections, None);
        assert_eq!(*t.body_timeout.get_ref(), Duration::from_secs(30));
        assert_eq!(*t.header_timeout.get_ref(), Duration::from_secs(30));
        assert_eq!(*r.management.max_connections.get_ref(), 64);
        let r = parse("[[transport]]\nname = \"h\"\nbind = \"127.0.0.1:8280\"\nmax_connections = 50\nbody_timeout = \"1s\"\n").unwrap();
        assert_eq!(
            r.transports[0]
                .max_connections
                .as_ref()
                .map(|m| *m.get_ref()),
            Some(50)
        );
        assert_eq!(
            *r.transports[0].body_timeout.get_ref(),
            Duration::from_secs(1)
        );

        let e = parse("[management]\nmax_connections = 0\n[[transport]]\nname = \"h\"\nbind = \"127.0.0.1:8280\"\nmax_connections = 0\nbody_timeout = \"0s\"\n").unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        let find = |needle: &str| {
            e.iter()
                .find(|d| d.message.contains(needle))
                .unwrap_or_else(|| panic!("{needle}: {text:?}"))
        };
        assert_eq!(find("max_connections must be at least 1").line, 6);
        assert_eq!(find("body_timeout must be longer than 0").line, 7);
        assert!(
            e.iter()
                .any(|d| d.line == 2 && d.message.contains("max_connections")),
            "{text:?}"
        );
        let e = parse(
            "[[transport]]\nname = \"h\"\nbind = \"127.0.0.1:8280\"\nbody_timeout = \"soon\"\n",
        )
        .unwrap_err();
        assert_eq!(e[0].line, 4, "{}", e[0]);
        assert!(e[0].message.contains("invalid duration"), "{}", e[0]);
    }

    #[test]
    fn default_connection_cap_leaves_a_reserve_below_the_fd_limit() {
        assert_eq!(default_max_connections(1024, 1, 64), 448);
        assert_eq!(default_max_connections(1024, 2, 64), 224);
        assert!(default_max_connections(256, 1, 64) < 256);
        assert_eq!(default_max_connections(10, 1, 64), 16);
    }

    #[test]
    fn amqp_transports_take_a_url_without_credentials() {
        let ok = parse(
            "[[transport]]\nname = \"mq\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1:5672/%2f\"\nuser = \"esb\"\npassword_env = \"MQ_PW\"\n",
        )
        .unwrap();
        assert_eq!(ok.transports[0].kind, TransportKind::Amqp);
        assert_eq!(ok.http_transport_names().count(), 0);
        let e = parse(
            "[[transport]]\nname = \"mq\"\nkind = \"amqp\"\nurl = \"amqp://u:secret@h:5672/\"\n",
        )
        .unwrap_err();
        assert!(e[0].message.contains("holds credentials"), "{}", e[0]);
        assert_eq!(e[0].line, 4);
        let e = parse("[[transport]]\nname = \"mq\"\nkind = \"amqp\"\nbind = \"127.0.0.1:1\"\n")
            .unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains("`bind` is for http(s)")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains("without `url`")), "{text:?}");
        let e = parse("[[transport]]\nname = \"h\"\n").unwrap_err();
        assert!(
            e[0].message.contains("http transport without `bind`"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn bad_bind_address_is_located() {
        let e = parse("[[transport]]\nname = \"a\"\nbind = \"localhost\"\n").unwrap_err();
        assert_eq!(e[0].line, 3);
        assert!(e[0].message.contains("invalid bind address"), "{}", e[0]);
    }
}

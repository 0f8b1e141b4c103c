//! A configuration directory in a temporary directory: `conf/esb.toml` with transports on
//! free loopback ports, the management endpoint on another, `state_dir` inside the
//! temporary directory, and units under `conf/deployments/<unit>/` written from strings.
//! The root config is rewritten after every change; the directory is removed on drop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct TransportSpec {
    pub name: String,
    pub port: u16,
    /// `Some((cert file, key file))` for https, relative to the conf directory.
    pub tls: Option<(String, String)>,
    /// Extra `key = value` lines of this `[[transport]]` table.
    pub lines: Vec<String>,
}

impl TransportSpec {
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

pub struct TempConf {
    tmp: tempfile::TempDir,
    transports: Vec<TransportSpec>,
    mgmt_port: u16,
    server_lines: Vec<String>,
    management_lines: Vec<String>,
    drain_timeout: String,
    extra: Vec<String>,
}

impl Default for TempConf {
    fn default() -> Self {
        Self::new()
    }
}

impl TempConf {
    /// An empty configuration: no transports, no units.
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("esb-e2e-")
            .tempdir()
            .expect("create temporary directory");
        std::fs::create_dir_all(tmp.path().join("conf/deployments")).expect("create conf dir");
        let conf = TempConf {
            tmp,
            transports: Vec::new(),
            mgmt_port: crate::free_port(),
            server_lines: Vec::new(),
            management_lines: Vec::new(),
            drain_timeout: "5s".into(),
            extra: Vec::new(),
        };
        conf.write_root();
        conf
    }

    /// Adds an http transport on a free port.
    pub fn http(mut self, name: &str) -> Self {
        self.transports.push(TransportSpec {
            name: name.into(),
            port: crate::free_port(),
            tls: None,
            lines: Vec::new(),
        });
        self.write_root();
        self
    }

    /// Adds an https transport on a free port, writing the PEM files into the conf directory.
    pub fn https(mut self, name: &str, cert_pem: &str, key_pem: &str) -> Self {
        let cert = format!("{name}-cert.pem");
        let key = format!("{name}-key.pem");
        std::fs::write(self.dir().join(&cert), cert_pem).expect("write cert");
        std::fs::write(self.dir().join(&key), key_pem).expect("write key");
        self.transports.push(TransportSpec {
            name: name.into(),
            port: crate::free_port(),
            tls: Some((cert, key)),
            lines: Vec::new(),
        });
        self.write_root();
        self
    }

    /// Adds a raw `key = value` line to `[server]`, e.g. `max_body = 1024`.
    pub fn server(mut self, line: &str) -> Self {
        self.server_lines.push(line.into());
        self.write_root();
        self
    }

    /// Adds a raw `key = value` line to `[management]`, e.g. `max_connections = 8`.
    pub fn management(mut self, line: &str) -> Self {
        self.management_lines.push(line.into());
        self.write_root();
        self
    }

    /// Adds a raw `key = value` line to the `[[transport]]` table of `transport`, e.g.
    /// `max_connections = 50`.
    pub fn transport_line(mut self, transport: &str, line: &str) -> Self {
        self.transports
            .iter_mut()
            .find(|t| t.name == transport)
            .unwrap_or_else(|| panic!("no transport \"{transport}\" in this TempConf"))
            .lines
            .push(line.into());
        self.write_root();
        self
    }

    /// Adds an amqp transport connecting to `url` (as guest).
    pub fn amqp(mut self, name: &str, url: &str) -> Self {
        self.extra.push(format!(
            "[[transport]]\nname = \"{name}\"\nkind = \"amqp\"\nurl = \"{url}\"\nreconnect_initial = \"100ms\"\nreconnect_max = \"1s\""
        ));
        self.write_root();
        self
    }

    /// Appends a whole table to esb.toml, e.g. a `[cluster]` table.
    pub fn table(mut self, text: &str) -> Self {
        self.extra.push(text.into());
        self.write_root();
        self
    }

    /// Sets `[server] drain_timeout` (default "5s").
    pub fn drain_timeout(mut self, d: &str) -> Self {
        self.drain_timeout = d.into();
        self.write_root();
        self
    }

    /// Writes `deployments/<unit>/unit.toml`.
    pub fn unit(self, unit: &str, toml: &str) -> Self {
        self.unit_file(unit, "unit.toml", toml)
    }

    /// Writes any file of a unit directory (an include, a CA file, ...).
    pub fn unit_file(self, unit: &str, rel: &str, contents: &str) -> Self {
        let path = self.unit_dir(unit).join(rel);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write unit file");
        self
    }

    /// The configuration directory (what `esb --conf` gets).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("conf")
    }

    /// The temporary directory holding `conf/` and `state/`.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn unit_dir(&self, unit: &str) -> PathBuf {
        self.dir().join("deployments").join(unit)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn transports(&self) -> &[TransportSpec] {
        &self.transports
    }

    fn transport(&self, name: &str) -> &TransportSpec {
        self.transports
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no transport \"{name}\" in this TempConf"))
    }

    pub fn port(&self, transport: &str) -> u16 {
        self.transport(transport).port
    }

    /// `http(s)://127.0.0.1:PORT{path}` of a transport.
    pub fn url(&self, transport: &str, path: &str) -> String {
        let t = self.transport(transport);
        format!("{}://127.0.0.1:{}{path}", t.scheme(), t.port)
    }

    pub fn mgmt_port(&self) -> u16 {
        self.mgmt_port
    }

    pub fn mgmt_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.mgmt_port)
    }

    fn write_root(&self) {
        let mut s = String::new();
        s.push_str("[server]\nname = \"e2e\"\nstate_dir = \"../state\"\n");
        let _ = writeln!(s, "drain_timeout = \"{}\"", self.drain_timeout);
        for l in &self.server_lines {
            let _ = writeln!(s, "{l}");
        }
        let _ = writeln!(s, "\n[management]\nbind = \"127.0.0.1:{}\"", self.mgmt_port);
        for l in &self.management_lines {
            let _ = writeln!(s, "{l}");
        }
        s.push_str("\n[hot_deploy]\nwatch = true\ndebounce = \"100ms\"\n");
        for t in &self.transports {
            let _ = writeln!(
                s,
                "\n[[transport]]\nname = \"{}\"\nkind = \"{}\"\nbind = \"127.0.0.1:{}\"",
                t.name,
                t.scheme(),
                t.port
            );
            if let Some((cert, key)) = &t.tls {
                let _ = writeln!(s, "cert = \"{cert}\"\nkey = \"{key}\"");
            }
            for l in &t.lines {
                let _ = writeln!(s, "{l}");
            }
        }
        for e in &self.extra {
            let _ = writeln!(s, "\n{e}");
        }
        std::fs::write(self.dir().join("esb.toml"), s).expect("write esb.toml");
    }
}

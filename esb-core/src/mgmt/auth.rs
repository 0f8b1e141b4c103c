//! Who may do what on the management endpoint: tokens created on first start in
//! `state_dir` (mode 0600), Bearer or Basic credentials, roles `monitor` and `control`,
//! and the `Origin`/`Host` checks against cross-site use from a browser.

use http::HeaderMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Monitor,
    Control,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Control => "control",
        }
    }
}

pub struct Tokens {
    control: String,
    monitor: String,
}

fn read_or_create(path: &Path) -> std::io::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(token)
}

impl Tokens {
    pub fn load(state_dir: &Path) -> std::io::Result<Tokens> {
        Ok(Tokens {
            control: read_or_create(&state_dir.join("control.token"))?,
            monitor: read_or_create(&state_dir.join("monitor.token"))?,
        })
    }

    fn role_of(&self, token: &str) -> Option<Role> {
        if constant_eq(token, &self.control) {
            Some(Role::Control)
        } else if constant_eq(token, &self.monitor) {
            Some(Role::Monitor)
        } else {
            None
        }
    }

    /// The caller's role from `Authorization`, if the credentials are valid.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Role> {
        let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.role_of(token.trim());
        }
        let encoded = value.strip_prefix("Basic ")?;
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        let role = self.role_of(password)?;
        (user == role.as_str() || (user == "monitor" && role == Role::Control)).then_some(
            if user == "monitor" {
                Role::Monitor
            } else {
                role
            },
        )
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Host values that name this endpoint.
fn own_hosts(bind: SocketAddr) -> Vec<String> {
    let port = bind.port();
    let mut hosts = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        bind.to_string(),
    ];
    if !bind.ip().is_loopback() && !bind.ip().is_unspecified() {
        hosts.push(bind.ip().to_string());
    }
    hosts
}

/// Refuses requests that come from a foreign web origin or name a foreign host
/// (DNS rebinding). Returns the reason when refused.
pub fn check_origin(
    headers: &HeaderMap,
    bind: SocketAddr,
    allowed_origins: &[String],
    allow_any_host: bool,
) -> Result<(), String> {
    let hosts = own_hosts(bind);
    if let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        if !allow_any_host && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(format!("Host \"{host}\" is not this management endpoint"));
        }
    }
    if let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|h| h.to_str().ok())
    {
        let own = hosts
            .iter()
            .any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        if !own && !allowed_origins.iter().any(|o| o == origin) {
            return Err(format!("Origin \"{origin}\" is not allowed; add it to [management] allowed_origins to permit it"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn tokens_are_created_with_mode_0600_and_authenticate() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::load(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("control.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", t.control)).unwrap(),
        );
        assert_eq!(t.authenticate(&h), Some(Role::Control));
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("monitor:{}", t.monitor));
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        assert_eq!(t.authenticate(&h), Some(Role::Monitor));
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        assert_eq!(t.authenticate(&h), None);
        // Same tokens on the next start.
        assert_eq!(Tokens::load(dir.path()).unwrap().control, t.control);
    }

    #[test]
    fn foreign_origin_and_host_are_refused() {
        let bind: SocketAddr = "127.0.0.1:9900".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:9900"));
        assert!(check_origin(&h, bind, &[], false).is_ok());
        h.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert!(check_origin(&h, bind, &[], false).is_err());
        assert!(check_origin(&h, bind, &["http://evil.example".into()], false).is_ok());
        h.remove("origin");
        h.insert("host", HeaderValue::from_static("evil.example:9900"));
        assert!(check_origin(&h, bind, &[], false).is_err());
    }
}

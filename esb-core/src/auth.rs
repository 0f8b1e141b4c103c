//! Who may do what on the management endpoint (the server loads the tokens at start-up,
//! the endpoint checks them, the audit records the role): tokens created on first start in
//! `state_dir` (mode 0600; loose ones tightened, others-writable or short ones refused),
//! Bearer or Basic credentials, roles `monitor` and `control`, and the `Origin`/`Host`
//! checks against cross-site use from a browser.

use crate::fsx;
use http::HeaderMap;
use std::fs::Permissions;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

#[derive(Clone)]
pub struct Tokens {
    control: String,
    monitor: String,
}

/// Tokens shorter than this are refused at start-up (a generated one has 64 characters).
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the token files cannot be used; start-up stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}: the token has {len} characters; at least {MIN_TOKEN_LEN} are required. Delete the file to have esb create a new random token, or write a longer one (e.g. `openssl rand -hex 32 > {}`), then start again", .path.display(), .path.display())]
    Weak { path: PathBuf, len: usize },
    #[error("{} is writable by group or others (mode {mode:04o}): anyone on this host may have replaced the token. Check its content, then `chmod 600 {}` (or delete it to have esb create a new token) and start again", .path.display(), .path.display())]
    OthersMayWrite { path: PathBuf, mode: u32 },
    #[error("cannot read or create token file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a token file, or creates it (mode 0600, atomically) when missing or empty.
/// Like ssh with private keys: a file others may write is refused (the token may have been
/// planted); one they may only read is tightened to 0600 with a warning; a short token is
/// refused.
fn read_or_create(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(TokenError::OthersMayWrite {
                    path: path.to_owned(),
                    mode,
                });
            }
            let text = std::fs::read_to_string(path).map_err(io)?;
            let token = text.trim();
            if !token.is_empty() {
                if token.chars().count() < MIN_TOKEN_LEN {
                    return Err(TokenError::Weak {
                        path: path.to_owned(),
                        len: token.chars().count(),
                    });
                }
                if fsx::loose_bits(mode) != 0 {
                    std::fs::set_permissions(path, Permissions::from_mode(fsx::FILE_MODE))
                        .map_err(io)?;
                    tracing::warn!(
                        "token file {} was readable by group or others (mode {mode:04o}); changed to 0600",
                        path.display()
                    );
                }
                return Ok(token.to_owned());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let token: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    fsx::write_private_atomic(path, format!("{token}\n").as_bytes()).map_err(io)?;
    Ok(token)
}

impl Tokens {
    pub fn load(state_dir: &Path) -> Result<Tokens, TokenError> {
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

/// Why a request was refused by [`check_origin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    #[error("Host \"{0}\" is not this management endpoint")]
    Host(String),
    #[error("Origin \"{0}\" is not allowed; add it to [management] allowed_origins to permit it")]
    Origin(String),
}

/// Refuses requests that come from a foreign web origin or name a foreign host
/// (DNS rebinding).
pub fn check_origin(
    headers: &HeaderMap,
    bind: SocketAddr,
    allowed_origins: &[String],
    allow_any_host: bool,
) -> Result<(), Foreign> {
    let hosts = own_hosts(bind);
    if let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        if !allow_any_host && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(Foreign::Host(host.to_owned()));
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
            return Err(Foreign::Origin(origin.to_owned()));
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
    fn weak_and_others_writable_tokens_are_refused_and_readable_ones_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("control.token");
        let set = |mode| std::fs::set_permissions(&control, Permissions::from_mode(mode)).unwrap();
        std::fs::write(&control, "abcd\n").unwrap();
        set(0o600);
        let e = Tokens::load(dir.path()).err().expect("weak token refused");
        assert!(matches!(e, TokenError::Weak { len: 4, .. }), "{e}");
        assert!(
            e.to_string().contains(&control.display().to_string()),
            "{e}"
        );
        std::fs::write(&control, "0123456789abcdef0123\n").unwrap();
        set(0o666);
        let e = Tokens::load(dir.path())
            .err()
            .expect("writable token refused");
        assert!(
            matches!(e, TokenError::OthersMayWrite { mode: 0o666, .. }),
            "{e}"
        );
        set(0o644);
        let t = Tokens::load(dir.path()).unwrap();
        assert_eq!(t.control, "0123456789abcdef0123");
        let mode = std::fs::metadata(&control).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
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

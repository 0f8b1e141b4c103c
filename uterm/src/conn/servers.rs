//! Which server uterm talks to and with which token, independently of the current
//! directory: the per-user file `servers.toml` (in `$XDG_CONFIG_HOME/uterm/`, else
//! `~/.config/uterm/`; `--config`/`UTERM_CONFIG` names another) lists servers by name,
//! like kubectl contexts. [`resolve`] is pure: explicit flags win over the chosen server's
//! entry, which wins over the search relative to the current directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::conn::client::{ClientConfig, DEFAULT_URL};
use crate::conn::token::TokenSpec;

/// The per-user file of servers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersFile {
    /// The entry used when neither `--server` nor `--url` is given.
    pub default: Option<String>,
    #[serde(default, rename = "server")]
    pub servers: BTreeMap<String, ServerEntry>,
}

/// One named server: where its management endpoint is and where its token lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    pub url: Option<String>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// The server's `state_dir`: the token is its `control.token`.
    pub state_dir: Option<PathBuf>,
}

/// What the command line and the environment said (empty values count as unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub state_dir: Option<String>,
    pub server: Option<String>,
}

/// A server chosen by name that is not in the file, or a file that cannot be used: a
/// usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServersError {
    #[error("cannot read {path}: {reason}; fix the file, or name another with --config")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("no server {name:?} in {path}; {}", known_list(.known))]
    Unknown {
        name: String,
        path: String,
        known: Vec<String>,
    },
    #[error(
        "{path}: default = {name:?} names no [server.{name}] entry; {}",
        known_list(.known)
    )]
    BadDefault {
        name: String,
        path: String,
        known: Vec<String>,
    },
    #[error(
        "--server {name}: no servers file ({path} does not exist); create it with a \
         [server.{name}] table (url, token_file or state_dir), see docs/uterm.md"
    )]
    NoFile { name: String, path: String },
    #[error("[server.{name}] in {path} gives both token_file and state_dir; keep one")]
    TwoTokens { name: String, path: String },
}

fn known_list(names: &[String]) -> String {
    if names.is_empty() {
        "the file names no servers".into()
    } else {
        format!("known: {}", names.join(", "))
    }
}

/// Where the servers file is: `UTERM_CONFIG`/`--config` when given, else
/// `$XDG_CONFIG_HOME/uterm/servers.toml`, else `$HOME/.config/uterm/servers.toml`.
pub fn default_path(
    explicit: Option<&str>,
    xdg_config_home: Option<&str>,
    home: Option<&str>,
) -> Option<PathBuf> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = xdg_config_home.filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(x).join("uterm/servers.toml"));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".config/uterm/servers.toml"))
}

/// Reads the servers file at `path`; a missing file is an empty one (unless it was named
/// explicitly: `required`).
pub fn load(path: &Path, required: bool) -> Result<Option<ServersFile>, ServersError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(ServersError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    parse(&text, path).map(Some)
}

/// Parses the text of a servers file; relative paths in it are relative to its directory,
/// and `~/` is the home directory.
pub fn parse(text: &str, path: &Path) -> Result<ServersFile, ServersError> {
    let mut file: ServersFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ServersError::Parse {
            path: format!("{}:{line}:{col}", path.display()),
            reason: e.message().to_string(),
        }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let fix = |p: &mut PathBuf| {
        if let (Ok(rest), Some(h)) = (p.strip_prefix("~"), &home) {
            *p = h.join(rest);
        } else if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    for (name, s) in file.servers.iter_mut() {
        if s.token_file.is_some() && s.state_dir.is_some() {
            return Err(ServersError::TwoTokens {
                name: name.clone(),
                path: path.display().to_string(),
            });
        }
        s.token_file.as_mut().map(fix);
        s.state_dir.as_mut().map(fix);
    }
    if let Some(d) = &file.default {
        if !file.servers.contains_key(d) {
            return Err(ServersError::BadDefault {
                name: d.clone(),
                path: path.display().to_string(),
                known: file.servers.keys().cloned().collect(),
            });
        }
    }
    Ok(file)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The connection: URL and token source, and the name of the server entry used (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub url: String,
    pub token: TokenSpec,
    pub server: Option<String>,
}

impl Resolved {
    pub fn client_config(self, timeout: std::time::Duration) -> ClientConfig {
        ClientConfig {
            url: self.url,
            token: self.token,
            timeout,
        }
    }
}

/// Decides the URL and the token. The server entry is the one `--server` names, else the
/// file's `default` when no `--url` was given, else the entry whose url is `--url`.
/// URL: `--url`, else the entry's, else the default. Token: `--token`, `--token-file`,
/// `--state-dir` (its `control.token`), the entry's `token_file`/`state_dir`, else the
/// search from the current directory.
pub fn resolve(
    flags: &Flags,
    file: Option<&ServersFile>,
    file_path: &Path,
) -> Result<Resolved, ServersError> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let (url, token, token_file, state_dir, server) = (
        set(&flags.url),
        set(&flags.token),
        set(&flags.token_file),
        set(&flags.state_dir),
        set(&flags.server),
    );
    let entry: Option<(String, &ServerEntry)> = match (&server, file) {
        (Some(name), None) => {
            return Err(ServersError::NoFile {
                name: name.clone(),
                path: file_path.display().to_string(),
            })
        }
        (Some(name), Some(f)) => match f.servers.get(name) {
            Some(e) => Some((name.clone(), e)),
            None => {
                return Err(ServersError::Unknown {
                    name: name.clone(),
                    path: file_path.display().to_string(),
                    known: f.servers.keys().cloned().collect(),
                })
            }
        },
        (None, Some(f)) => match &url {
            None => f
                .default
                .as_ref()
                .and_then(|d| f.servers.get(d).map(|e| (d.clone(), e))),
            Some(u) => {
                let u = crate::conn::client::normalize_url(u);
                f.servers
                    .iter()
                    .find(|(_, e)| {
                        e.url
                            .as_deref()
                            .map(crate::conn::client::normalize_url)
                            .as_deref()
                            == Some(u.as_str())
                    })
                    .map(|(n, e)| (n.clone(), e))
            }
        },
        (None, None) => None,
    };
    let url = url
        .or_else(|| entry.as_ref().and_then(|(_, e)| e.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let token = if let Some(t) = token {
        TokenSpec::Given(t)
    } else if let Some(f) = token_file {
        TokenSpec::File(PathBuf::from(f))
    } else if let Some(d) = state_dir {
        TokenSpec::File(Path::new(&d).join("control.token"))
    } else if let Some((_, e)) = &entry {
        match (&e.token_file, &e.state_dir) {
            (Some(f), _) => TokenSpec::File(f.clone()),
            (None, Some(d)) => TokenSpec::File(d.join("control.token")),
            (None, None) => TokenSpec::Search,
        }
    } else {
        TokenSpec::Search
    };
    Ok(Resolved {
        url,
        token,
        server: entry.map(|(n, _)| n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default = "local"

[server.local]
url = "http://127.0.0.1:9900"
state_dir = "/srv/esb/var"

[server.prod]
url = "http://10.0.0.5:9900/"
token_file = "tokens/prod.token"
"#;

    fn file() -> ServersFile {
        parse(FILE, Path::new("/home/op/.config/uterm/servers.toml")).unwrap()
    }

    fn flags() -> Flags {
        Flags::default()
    }

    fn go(flags: &Flags, f: Option<&ServersFile>) -> Result<Resolved, ServersError> {
        resolve(flags, f, Path::new("/cfg/servers.toml"))
    }

    #[test]
    fn path_honours_explicit_then_xdg_then_home() {
        assert_eq!(
            default_path(Some("/x/s.toml"), Some("/xdg"), Some("/h")),
            Some(PathBuf::from("/x/s.toml"))
        );
        assert_eq!(
            default_path(None, Some("/xdg"), Some("/h")),
            Some(PathBuf::from("/xdg/uterm/servers.toml"))
        );
        // A relative XDG_CONFIG_HOME is invalid and ignored (XDG base directory spec).
        assert_eq!(
            default_path(Some(""), Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.config/uterm/servers.toml"))
        );
        assert_eq!(default_path(None, None, None), None);
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let f = file();
        assert_eq!(
            f.servers["prod"].token_file.as_deref(),
            Some(Path::new("/home/op/.config/uterm/tokens/prod.token"))
        );
        assert_eq!(
            f.servers["local"].state_dir.as_deref(),
            Some(Path::new("/srv/esb/var"))
        );
    }

    #[test]
    fn default_entry_gives_url_and_token() {
        let r = go(&flags(), Some(&file())).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9900");
        assert_eq!(
            r.token,
            TokenSpec::File("/srv/esb/var/control.token".into())
        );
        assert_eq!(r.server.as_deref(), Some("local"));
    }

    #[test]
    fn server_flag_picks_an_entry_and_flags_override_it() {
        let mut fl = flags();
        fl.server = Some("prod".into());
        let r = go(&fl, Some(&file())).unwrap();
        assert_eq!(r.url, "http://10.0.0.5:9900/");
        assert_eq!(
            r.token,
            TokenSpec::File("/home/op/.config/uterm/tokens/prod.token".into())
        );
        fl.url = Some("http://other:1".into());
        fl.state_dir = Some("/var/lib/esb".into());
        let r = go(&fl, Some(&file())).unwrap();
        assert_eq!(r.url, "http://other:1");
        assert_eq!(
            r.token,
            TokenSpec::File("/var/lib/esb/control.token".into())
        );
        fl.token_file = Some("t.token".into());
        assert_eq!(
            go(&fl, Some(&file())).unwrap().token,
            TokenSpec::File("t.token".into())
        );
        fl.token = Some("s3cret".into());
        assert_eq!(
            go(&fl, Some(&file())).unwrap().token,
            TokenSpec::Given("s3cret".into())
        );
    }

    #[test]
    fn url_without_server_uses_the_matching_entry_only() {
        let mut fl = flags();
        fl.url = Some("10.0.0.5:9900".into());
        let r = go(&fl, Some(&file())).unwrap();
        assert_eq!(r.server.as_deref(), Some("prod"));
        fl.url = Some("http://127.0.0.1:9999".into());
        let r = go(&fl, Some(&file())).unwrap();
        assert_eq!(r.server, None);
        assert_eq!(r.token, TokenSpec::Search);
    }

    #[test]
    fn no_file_and_no_flags_search_from_the_current_directory() {
        let r = go(&flags(), None).unwrap();
        assert_eq!(r.url, DEFAULT_URL);
        assert_eq!(r.token, TokenSpec::Search);
        let mut fl = flags();
        fl.token = Some("  ".into()); // empty ESB_TOKEN counts as unset
        fl.state_dir = Some("/s".into());
        assert_eq!(
            go(&fl, None).unwrap().token,
            TokenSpec::File("/s/control.token".into())
        );
    }

    #[test]
    fn unknown_servers_and_bad_files_say_what_to_do() {
        let mut fl = flags();
        fl.server = Some("staging".into());
        let e = go(&fl, Some(&file())).unwrap_err().to_string();
        assert_eq!(
            e,
            "no server \"staging\" in /cfg/servers.toml; known: local, prod"
        );
        let e = go(&fl, None).unwrap_err().to_string();
        assert!(
            e.contains("no servers file") && e.contains("[server.staging]"),
            "{e}"
        );
        let p = Path::new("/c/servers.toml");
        let e = parse("[server.a]\nurl = \"x\"\ntoken = \"t\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/c/servers.toml:3:1: unknown field `token`"),
            "{e}"
        );
        let e = parse("default = \"b\"\n[server.a]\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("default = \"b\" names no [server.b]"), "{e}");
        let e = parse("[server.a]\ntoken_file = \"f\"\nstate_dir = \"d\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("both token_file and state_dir"), "{e}");
    }

    #[test]
    fn missing_file_is_empty_unless_named() {
        let p = Path::new("/nonexistent/uterm/servers.toml");
        assert_eq!(load(p, false).unwrap(), None);
        assert!(matches!(load(p, true), Err(ServersError::Read { .. })));
    }
}

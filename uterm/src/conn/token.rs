//! The bearer token: given, read from a named file, or searched for relative to the current
//! directory (the sample layout's `var/control.token`, then the `state_dir` of
//! `conf/esb.toml`), remembering every place looked at for the error message.

use std::path::{Path, PathBuf};

use crate::conn::error::{Auth, ClientError};

/// Token files tried, relative to the current directory, when none is given: the sample
/// conf's `state_dir` seen from the checkout root, and the same through `conf/`.
pub const DEFAULT_TOKEN_FILES: [&str; 2] = ["var/control.token", "conf/../var/control.token"];

/// Where the bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSpec {
    /// Given directly (`--token` / `ESB_TOKEN`).
    Given(String),
    /// Read from this file (`--token-file` / `ESB_TOKEN_FILE`).
    File(PathBuf),
    /// Looked for in [`DEFAULT_TOKEN_FILES`], then in the `state_dir` of `conf/esb.toml`.
    Search,
}

/// Finds the token for `spec`, with `cwd` as the base of relative default paths.
pub fn find_token(spec: &TokenSpec, cwd: &Path) -> Result<Auth, ClientError> {
    let default_search = || -> Vec<String> {
        let mut v: Vec<String> = DEFAULT_TOKEN_FILES.iter().map(|s| s.to_string()).collect();
        v.push("the state_dir of conf/esb.toml".into());
        v
    };
    match spec {
        TokenSpec::Given(t) => Ok(Auth {
            token: Some(t.trim().to_string()),
            origin: "--token/ESB_TOKEN".into(),
            searched: vec!["--token/ESB_TOKEN".into()],
        }),
        TokenSpec::File(p) => {
            let text =
                std::fs::read_to_string(cwd.join(p)).map_err(|e| ClientError::TokenFile {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
            Ok(Auth {
                token: Some(text.trim().to_string()),
                origin: format!("file {}", p.display()),
                searched: vec![p.display().to_string()],
            })
        }
        TokenSpec::Search => {
            for rel in DEFAULT_TOKEN_FILES.iter().map(Path::new) {
                if let Ok(text) = std::fs::read_to_string(cwd.join(rel)) {
                    return Ok(found(text, rel, default_search()));
                }
            }
            // The state_dir of the sample layout's root config, if it is not ../var.
            if let Ok(root) = deployments::RootConfig::load(&cwd.join("conf")) {
                let p = Path::new("conf")
                    .join(&root.server.state_dir)
                    .join("control.token");
                if let Ok(text) = std::fs::read_to_string(cwd.join(&p)) {
                    return Ok(found(text, &p, default_search()));
                }
            }
            Ok(Auth {
                token: None,
                origin: "nowhere".into(),
                searched: default_search(),
            })
        }
    }
}

fn found(text: String, p: &Path, searched: Vec<String>) -> Auth {
    Auth {
        token: Some(text.trim().to_string()),
        origin: format!("file {}", p.display()),
        searched,
    }
}

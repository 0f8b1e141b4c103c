//! [`ClientError`]: why the server could not be used — cannot connect, refused credentials
//! (with where the token was looked for, [`Auth`]), a bad URL, a timeout, an unreadable answer —
//! each saying what to do, with the exit code it means.

/// A token and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub token: Option<String>,
    /// e.g. `--token/ESB_TOKEN` or `file var/control.token`.
    pub origin: String,
    /// Every place looked at, in order.
    pub searched: Vec<String>,
}

/// Why the server could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered (refused, unreachable, DNS, TLS, connect timeout).
    #[error(
        "cannot connect to {url}: {reason}; is esb running? Start it with `esb --conf conf`, \
         or point uterm at it with --url or ESB_URL"
    )]
    Connect { url: String, reason: String },
    /// The URL cannot be used by this client.
    #[error("cannot use {url}: {reason}; pass --url http://HOST:PORT or set ESB_URL")]
    BadUrl { url: String, reason: String },
    /// The server refused the credentials (HTTP 401/403, or a 403 in the Jolokia envelope).
    #[error("not authorised by {url}: {why}; {}", token_help(.auth))]
    Unauthorized {
        url: String,
        why: String,
        auth: Auth,
    },
    /// A token file that was named explicitly cannot be read.
    #[error(
        "cannot read the token file {path}: {reason}; pass the token with --token or \
         ESB_TOKEN, or the file with --token-file or ESB_TOKEN_FILE"
    )]
    TokenFile { path: String, reason: String },
    /// The server answered something other than the management protocol.
    #[error("{url} answered HTTP {status}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    /// The request was sent but no complete answer came in time (the server may have acted).
    #[error(
        "{url} did not answer within {secs} s; the command may still have taken effect — \
         check with `status` (raise the limit with --timeout)"
    )]
    Timeout { url: String, secs: u64 },
    /// The answer could not be read.
    #[error("could not read the answer of {url}: {reason}")]
    Read { url: String, reason: String },
}

impl ClientError {
    /// Exit code 3 for cannot connect / not authorised, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Connect { .. }
            | ClientError::Unauthorized { .. }
            | ClientError::TokenFile { .. }
            | ClientError::BadUrl { .. }
            | ClientError::Timeout { .. } => 3,
            _ => 1,
        }
    }
}

fn token_help(auth: &Auth) -> String {
    match &auth.token {
        None => format!(
            "no token was found (looked in {}); pass it with --token / ESB_TOKEN, \
             --token-file / ESB_TOKEN_FILE or --state-dir / ESB_STATE_DIR (esb writes \
             control.token into its state_dir on first start), or name the server in \
             ~/.config/uterm/servers.toml and pick it with --server",
            auth.searched.join(", ")
        ),
        Some(_) => format!(
            "the token from {} was refused; use the control.token from the server's \
             state_dir (monitor.token can only read)",
            auth.origin
        ),
    }
}

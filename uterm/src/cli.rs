//! The command line of the `uterm` binary (clap), and what is generated from it together
//! with the command language's table ([`crate::lang::help::ENTRIES`]): shell completion scripts
//! (`uterm completions bash|zsh|fish`) and the man page (`uterm man`). The generated
//! command has one subcommand per verb, so `uterm <TAB>` offers the verbs and their
//! keywords; the parser itself keeps reading the words as a command of the language.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser};

use crate::conn::client::ClientConfig;
use crate::conn::servers::{self, Flags, ServersError};
use crate::lang::help::ENTRIES;

pub const AFTER_HELP: &str =
    "Examples:\n  uterm                       (the console, on a terminal)\n  \
     uterm --read-only --refresh 2s\n  uterm -c status\n  \
     uterm -c \"reload orders; list proxies orders\"\n  \
     uterm --server prod -c status\n  \
     uterm reload --all\n  uterm -f deploy.uterm --keep-going\n  uterm -c help\n  \
     uterm completions bash > ~/.local/share/bash-completion/completions/uterm\n  \
     uterm man > uterm.1\n\n\
     Exit codes: 0 all succeeded, 1 a command failed, 2 usage error, \
     3 cannot connect or not authorised.";

#[derive(Parser, Debug)]
#[command(
    name = "uterm",
    version,
    about = "Operator client of the ESB management endpoint",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Global,
    /// `-` to read the script from stdin, or one command as words (`uterm reload orders`);
    /// `completions SHELL` and `man` print a completion script or the man page.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub args: Vec<String>,
}

/// Every flag (shared by the parser and the generated completion/man command).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Commands to run, separated by ';' or newlines.
    #[arg(short = 'c', value_name = "COMMANDS", conflicts_with = "file")]
    pub commands: Option<String>,
    /// Script file: one command a line, '#' comments; '-' reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Management endpoint [default: the server's entry, else http://127.0.0.1:9900].
    #[arg(long, env = "ESB_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token (else --token-file, --state-dir, the server's entry, var/control.token).
    #[arg(long, env = "ESB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "ESB_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<String>,
    /// The server's state_dir: the token is its control.token.
    #[arg(long, env = "ESB_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<String>,
    /// A server named in the servers file (url and token); default: its `default` entry.
    #[arg(long, env = "ESB_SERVER", value_name = "NAME")]
    pub server: Option<String>,
    /// The servers file [default: $XDG_CONFIG_HOME/uterm/servers.toml, else
    /// ~/.config/uterm/servers.toml].
    #[arg(long, env = "UTERM_CONFIG", value_name = "FILE")]
    pub config: Option<String>,
    /// One JSON document per command on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep running the remaining commands after one fails.
    #[arg(long)]
    pub keep_going: bool,
    /// Seconds to wait for the server's answer to one command.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub timeout: u64,
    /// Refuse every command that changes server state (console actions and scripts alike).
    #[arg(long)]
    pub read_only: bool,
    /// Console: time between refreshes (`500ms`, `2s`; a bare number is seconds).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_refresh)]
    pub refresh: Duration,
}

/// `--refresh`: `500ms`, `2s`, `1m`, or a bare number of seconds; at least 100 ms.
pub fn parse_refresh(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a duration")),
        Err(_) => Duration::from_millis(crate::lang::args::parse_millis(t)?),
    };
    if d < Duration::from_millis(100) {
        return Err("the refresh interval must be at least 100ms".into());
    }
    Ok(d)
}

impl Global {
    /// The connection these flags and the servers file describe.
    pub fn client_config(&self) -> Result<ClientConfig, ServersError> {
        let path = servers::default_path(
            self.config.as_deref(),
            std::env::var("XDG_CONFIG_HOME").ok().as_deref(),
            std::env::var("HOME").ok().as_deref(),
        );
        let explicit = self.config.as_deref().is_some_and(|c| !c.is_empty());
        let file = match &path {
            Some(p) => servers::load(p, explicit)?,
            None => None,
        };
        let flags = Flags {
            url: self.url.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
            state_dir: self.state_dir.clone(),
            server: self.server.clone(),
        };
        let path = path.unwrap_or_else(|| PathBuf::from("~/.config/uterm/servers.toml"));
        let resolved = servers::resolve(&flags, file.as_ref(), &path)?;
        Ok(resolved.client_config(Duration::from_secs(self.timeout.max(1))))
    }
}

/// The keywords a verb's usage lines allow as its first argument (`list units|proxies…`,
/// `pause unit|proxy…`, `show [unit] …`), for completion.
pub fn keywords(usage: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for form in usage.lines() {
        let Some(word) = form.split_whitespace().nth(1) else {
            continue;
        };
        let word = word.trim_start_matches('[').trim_end_matches(']');
        if word.starts_with('-') {
            continue;
        }
        for k in word.split('|') {
            let lower = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit());
            if lower && !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// The command the completion scripts and the man page are generated from: every flag,
/// one subcommand per verb of the language (its summary, usage and keywords), and
/// `completions` / `man`.
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("uterm")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Operator client of the ESB management endpoint")
        .after_help(AFTER_HELP)
        .subcommand_value_name("COMMAND")
        .subcommand_help_heading("Commands")
        .disable_help_subcommand(true);
    // After the flags: `augment_args` sets the about from Global's doc comment.
    cmd = Global::augment_args(cmd)
        .about("Operator client of the ESB management endpoint")
        .long_about(
            "Operator client of the ESB management endpoint: the console (TUI) on a terminal, \
             script mode with -c, -f or words. Every command below is a command of the same \
             language (`uterm -c \"VERB ARGS; VERB ARGS\"`, or `uterm VERB ARGS`). The server \
             and its token come from the flags, the environment or the servers file \
             ($XDG_CONFIG_HOME/uterm/servers.toml, else ~/.config/uterm/servers.toml).",
        );
    for e in ENTRIES {
        let mut sub = clap::Command::new(e.verb)
            .about(e.summary)
            .long_about(format!("{}\n\n{}", e.summary, e.details))
            .override_usage(e.usage.replace('\n', "\n       "))
            .after_help(format!("Examples:\n  {}", e.examples.join("\n  ")));
        let kws = keywords(e.usage);
        let mut arg = clap::Arg::new("args")
            .num_args(0..)
            .trailing_var_arg(true)
            .allow_hyphen_values(true)
            .value_name("ARGS");
        if !kws.is_empty() {
            arg = arg.value_parser(clap::builder::PossibleValuesParser::new(kws));
        }
        sub = sub.arg(arg);
        cmd = cmd.subcommand(sub);
    }
    cmd.subcommand(
        clap::Command::new("completions")
            .about("print a shell completion script (bash, zsh or fish)")
            .arg(
                clap::Arg::new("shell")
                    .required(true)
                    .value_parser(["bash", "zsh", "fish"]),
            ),
    )
    .subcommand(clap::Command::new("man").about("print the man page (roff)"))
}

/// A shell completion script, or why not.
pub fn completions(shell: &str) -> Result<String, String> {
    use clap_complete::Shell;
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(format!(
                "no completions for shell {other:?}; use bash, zsh or fish"
            ))
        }
    };
    let mut cmd = command();
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut cmd, "uterm", &mut buf);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The man page (section 1, roff): clap_mangen's page with its list of subcommand pages
/// replaced by a COMMANDS section holding every verb's usage, summary, details and examples
/// (one page, nothing to install beside it).
pub fn man() -> String {
    let mut buf = Vec::new();
    clap_mangen::Man::new(command())
        .render(&mut buf)
        .expect("rendering into memory cannot fail");
    let page = String::from_utf8_lossy(&buf).into_owned();
    let mut commands = String::from(".SH COMMANDS\n");
    commands.push_str(
        "Every command runs with \\fB\\-c\\fR, from a script (\\fB\\-f\\fR), as words, or on the console's \\fB:\\fR line.\n",
    );
    for e in ENTRIES {
        commands.push_str(".TP\n");
        let usage: Vec<String> = e
            .usage
            .lines()
            .map(|u| format!("\\fB{}\\fR", roff_escape(u)))
            .collect();
        commands.push_str(&usage.join("\n.br\n"));
        commands.push('\n');
        commands.push_str(&roff_escape(&format!("{}. {}", e.summary, e.details)));
        commands.push('\n');
        if !e.examples.is_empty() {
            commands.push_str(".br\nExamples: ");
            let ex: Vec<String> = e
                .examples
                .iter()
                .map(|x| format!("\\fI{}\\fR", roff_escape(x)))
                .collect();
            commands.push_str(&ex.join(", "));
            commands.push('\n');
        }
    }
    match (page.find(".SH Commands\n"), page.find(".SH EXTRA\n")) {
        (Some(a), Some(b)) if a < b => format!("{}{commands}{}", &page[..a], &page[b..]),
        _ => page + &commands,
    }
}

/// Text safe in a roff line: backslashes and dashes escaped, no leading control character.
fn roff_escape(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// `uterm completions SHELL` / `uterm man`: the text to print, when the words ask for it.
pub fn generated(args: &[String]) -> Option<Result<String, String>> {
    match args {
        [first, rest @ ..] if first == "completions" => Some(match rest {
            [shell] => completions(shell),
            _ => Err("usage: uterm completions bash|zsh|fish".into()),
        }),
        [first, rest @ ..] if first == "man" => Some(if rest.is_empty() {
            Ok(man())
        } else {
            Err("usage: uterm man".into())
        }),
        _ => None,
    }
}

/// Checks the flag definitions (clap's debug assertions).
pub fn debug_assert() {
    Cli::command().debug_assert();
    command().debug_assert();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definitions_are_consistent() {
        debug_assert();
    }

    #[test]
    fn keywords_come_from_the_usage_lines() {
        assert_eq!(
            keywords("list units|proxies|endpoints|transports|tasks [UNIT]"),
            ["units", "proxies", "endpoints", "transports", "tasks"]
        );
        assert_eq!(
            keywords(crate::lang::help::usage("show").unwrap()),
            [
                "unit",
                "proxy",
                "endpoint",
                "task",
                "sequence",
                "transport",
                "source"
            ]
        );
        assert!(keywords("reload UNIT...\nreload --all").is_empty());
    }

    #[test]
    fn every_verb_has_a_help_entry_and_a_subcommand() {
        let cmd = command();
        for verb in crate::lang::command::VERBS {
            assert!(
                cmd.find_subcommand(verb).is_some(),
                "verb {verb} has no subcommand (no help entry?)"
            );
        }
    }

    #[test]
    fn each_shell_script_names_the_verbs() {
        for shell in ["bash", "zsh", "fish"] {
            let s = completions(shell).unwrap();
            for verb in ["status", "reload", "hot-deploy", "rollback", "completions"] {
                assert!(s.contains(verb), "{shell} script lacks {verb}");
            }
            let flag = if shell == "fish" {
                "-l server"
            } else {
                "--server"
            };
            assert!(s.contains(flag), "{shell} script lacks --server");
        }
        // Second words: the kinds `list` takes.
        let bash = completions("bash").unwrap();
        assert!(
            bash.contains("units proxies endpoints transports tasks"),
            "{bash}"
        );
        let e = completions("powershell").unwrap_err();
        assert!(e.contains("bash, zsh or fish"), "{e}");
    }

    #[test]
    fn man_page_lists_flags_and_verbs() {
        let m = man();
        assert!(
            m.starts_with(".ie \\n(.g .ds Aq"),
            "{}",
            &m[..80.min(m.len())]
        );
        assert!(m.contains(".TH uterm 1"), "{m}");
        for s in ["state\\-dir", "\\-\\-server", "hot\\-deploy", "rollback"] {
            assert!(m.contains(s), "man page lacks {s}");
        }
        // One page: the verbs are described in it, not in pages of their own.
        assert!(m.contains(".SH COMMANDS"), "{m}");
        assert!(!m.contains("uterm\\-reload(1)"), "{m}");
        assert!(
            m.contains("\\fBtap PROXY [\\-\\-unit UNIT] [\\-\\-limit N]\\fR"),
            "{m}"
        );
        assert_eq!(roff_escape(".x a-b \\"), "\\&.x a\\-b \\e");
    }

    #[test]
    fn generated_words() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(generated(&w(&["completions", "zsh"])).unwrap().is_ok());
        assert!(generated(&w(&["completions"])).unwrap().is_err());
        assert!(generated(&w(&["man"])).unwrap().is_ok());
        assert!(generated(&w(&["status"])).is_none());
    }
}

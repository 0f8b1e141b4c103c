//! `uterm`: parses flags, then hands over to the library: the console (TUI) when stdin and
//! stdout are a terminal and no script is given, script mode otherwise.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use uterm::client::{ClientConfig, TokenSpec, DEFAULT_URL};
use uterm::script::{self, exit, Options, Sinks};
use uterm::{Client, Executor, Style};

#[derive(Parser)]
#[command(
    name = "uterm",
    version,
    about = "Operator client of the ESB management endpoint",
    after_help = "Examples:\n  uterm                       (the console, on a terminal)\n  \
                  uterm --read-only --refresh 2s\n  uterm -c status\n  \
                  uterm -c \"reload orders; list proxies orders\"\n  \
                  uterm reload --all\n  uterm -f deploy.uterm --keep-going\n  uterm -c help\n\n\
                  Exit codes: 0 all succeeded, 1 a command failed, 2 usage error, \
                  3 cannot connect or not authorised."
)]
struct Cli {
    /// Commands to run, separated by ';' or newlines.
    #[arg(short = 'c', value_name = "COMMANDS", conflicts_with = "file")]
    commands: Option<String>,
    /// Script file: one command a line, '#' comments; '-' reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Management endpoint.
    #[arg(long, env = "ESB_URL", default_value = DEFAULT_URL)]
    url: String,
    /// Bearer token (else --token-file, else var/control.token).
    #[arg(long, env = "ESB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "ESB_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<String>,
    /// One JSON document per command on stdout.
    #[arg(long)]
    json: bool,
    /// Keep running the remaining commands after one fails.
    #[arg(long)]
    keep_going: bool,
    /// Seconds to wait for the server's answer to one command.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    timeout: u64,
    /// Refuse every command that changes server state (console actions and scripts alike).
    #[arg(long)]
    read_only: bool,
    /// Console: time between refreshes (`500ms`, `2s`; a bare number is seconds).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_refresh)]
    refresh: Duration,
    /// `-` to read the script from stdin, or one command as words (`uterm reload orders`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    args: Vec<String>,
}

enum Script {
    Text(String),
    /// One command given as words on the command line.
    Words(Vec<String>),
}

/// `--refresh`: `500ms`, `2s`, `1m`, or a bare number of seconds; at least 100 ms.
fn parse_refresh(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a duration")),
        Err(_) => Duration::from_millis(uterm::command::parse_millis(t)?),
    };
    if d < Duration::from_millis(100) {
        return Err("the refresh interval must be at least 100ms".into());
    }
    Ok(d)
}

fn token_spec(token: Option<String>, token_file: Option<String>) -> TokenSpec {
    // An empty ESB_TOKEN / ESB_TOKEN_FILE counts as unset.
    match (
        token.filter(|t| !t.trim().is_empty()),
        token_file.filter(|f| !f.is_empty()),
    ) {
        (Some(t), _) => TokenSpec::Given(t),
        (None, Some(f)) => TokenSpec::File(PathBuf::from(f)),
        (None, None) => TokenSpec::Search,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let err_style = Style::detect(std::io::stderr().is_terminal());
    let console = cli.commands.is_none()
        && cli.file.is_none()
        && cli.args.is_empty()
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    if console {
        return run_console(cli, err_style);
    }
    let script = match read_script(&cli) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{}", script::error_line(err_style, &message));
            return ExitCode::from(exit::USAGE as u8);
        }
    };
    let text = match script {
        Script::Text(text) => text,
        // Re-quoted so the words lex back exactly as the shell split them.
        Script::Words(words) => words
            .iter()
            .map(|w| uterm::lex::quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if cli.read_only {
        if let Some((command, line, message)) = read_only_refusal(&text) {
            if cli.json {
                let doc = serde_json::json!({
                    "command": command, "ok": false, "exit": exit::USAGE, "line": line,
                    "error": {"message": message, "hint": null},
                });
                println!("{doc}");
            } else {
                eprintln!("{}", script::error_line(err_style, &message));
            }
            return ExitCode::from(exit::USAGE as u8);
        }
    }
    let token = token_spec(cli.token, cli.token_file);
    let exec = Executor::new(Client::new(ClientConfig {
        url: cli.url,
        token,
        timeout: Duration::from_secs(cli.timeout.max(1)),
    }));
    let opts = Options {
        json: cli.json,
        keep_going: cli.keep_going,
        style: Style::detect(std::io::stdout().is_terminal()),
        err_style,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut io = Sinks {
        out: &mut out,
        err: &mut err,
    };
    let code = script::run(&exec, &text, opts, &mut io);
    ExitCode::from(code as u8)
}

/// With `--read-only`, a script that would change server state does not run at all: the
/// first such command, its line and the message.
fn read_only_refusal(text: &str) -> Option<(String, usize, String)> {
    let commands = uterm::command::parse_script(text).ok()?;
    let c = commands.iter().find(|c| c.command.changes_state())?;
    let command = c.text.trim().to_string();
    let message = format!(
        "--read-only: `{command}` (line {}) changes server state; nothing ran",
        c.line
    );
    Some((command, c.line, message))
}

fn run_console(cli: Cli, err_style: Style) -> ExitCode {
    let config = uterm::tui::Config {
        client: ClientConfig {
            url: cli.url,
            token: token_spec(cli.token, cli.token_file),
            timeout: Duration::from_secs(cli.timeout.max(1)),
        },
        refresh: cli.refresh,
        read_only: cli.read_only,
    };
    match uterm::tui::run(config) {
        Ok(uterm::tui::Exit::Quit) => ExitCode::SUCCESS,
        Ok(uterm::tui::Exit::Signal(sig)) => ExitCode::from((128 + sig) as u8),
        Err(e) => {
            let message =
                format!("the console cannot use this terminal: {e}; run commands with -c");
            eprintln!("{}", script::error_line(err_style, &message));
            ExitCode::from(1)
        }
    }
}

fn read_script(cli: &Cli) -> Result<Script, String> {
    let stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|e| format!("cannot read the script from stdin: {e}"))
    };
    if let Some(c) = &cli.commands {
        if !cli.args.is_empty() {
            return Err(format!(
                "unexpected \"{}\" after -c; put every command inside the -c string",
                cli.args[0]
            ));
        }
        return Ok(Script::Text(c.clone()));
    }
    if let Some(f) = &cli.file {
        if !cli.args.is_empty() {
            return Err(format!("unexpected \"{}\" after -f FILE", cli.args[0]));
        }
        if f.as_os_str() == "-" {
            return stdin().map(Script::Text);
        }
        return std::fs::read_to_string(f)
            .map(Script::Text)
            .map_err(|e| format!("cannot read the script {}: {e}", f.display()));
    }
    match cli.args.as_slice() {
        [] => Err(
            "no commands given; run them with -c \"CMD; CMD\", -f FILE, - (stdin) or as \
             words (uterm status); the console opens only when stdin and stdout are a \
             terminal. `uterm -c help` lists the commands"
                .into(),
        ),
        [dash] if dash == "-" => stdin().map(Script::Text),
        words => Ok(Script::Words(words.to_vec())),
    }
}

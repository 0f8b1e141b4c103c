//! `uterm`: parses flags, then hands over to the library: the console (TUI) when stdin and
//! stdout are a terminal and no script is given, script mode otherwise.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Parser;
use uterm::cli::{Cli, Global};
use uterm::exec::script::{self, exit, Options, Sinks};
use uterm::{Client, Executor, Style};

enum Script {
    Text(String),
    /// One command given as words on the command line.
    Words(Vec<String>),
}

fn main() -> ExitCode {
    let Cli { flags: cli, args } = Cli::parse();
    let err_style = Style::detect(std::io::stderr().is_terminal());
    if cli.commands.is_none() && cli.file.is_none() {
        if let Some(generated) = uterm::cli::generated(&args) {
            return match generated {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("{}", script::error_line(err_style, &message));
                    ExitCode::from(exit::USAGE as u8)
                }
            };
        }
    }
    let config = match cli.client_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", script::error_line(err_style, &e.to_string()));
            return ExitCode::from(exit::USAGE as u8);
        }
    };
    let console = cli.commands.is_none()
        && cli.file.is_none()
        && args.is_empty()
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    if console {
        return run_console(&cli, config, err_style);
    }
    let script = match read_script(&cli, &args) {
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
            .map(|w| uterm::lang::lex::quote(w))
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
    let exec = Executor::new(Client::new(config));
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
    let commands = uterm::lang::parse_script(text).ok()?;
    let c = commands.iter().find(|c| c.command.changes_state())?;
    let command = c.text.trim().to_string();
    let message = format!(
        "--read-only: `{command}` (line {}) changes server state; nothing ran",
        c.line
    );
    Some((command, c.line, message))
}

fn run_console(cli: &Global, client: uterm::ClientConfig, err_style: Style) -> ExitCode {
    let config = uterm::tui::Config {
        client,
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

fn read_script(cli: &Global, args: &[String]) -> Result<Script, String> {
    let stdin = || {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|e| format!("cannot read the script from stdin: {e}"))
    };
    if let Some(c) = &cli.commands {
        if !args.is_empty() {
            return Err(format!(
                "unexpected \"{}\" after -c; put every command inside the -c string",
                args[0]
            ));
        }
        return Ok(Script::Text(c.clone()));
    }
    if let Some(f) = &cli.file {
        if !args.is_empty() {
            return Err(format!("unexpected \"{}\" after -f FILE", args[0]));
        }
        if f.as_os_str() == "-" {
            return stdin().map(Script::Text);
        }
        return std::fs::read_to_string(f)
            .map(Script::Text)
            .map_err(|e| format!("cannot read the script {}: {e}", f.display()));
    }
    match args {
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

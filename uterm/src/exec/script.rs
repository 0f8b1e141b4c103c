//! Script mode: runs a script (`-c`, `-f`, stdin) command by command and decides the exit
//! code. The whole script is parsed first, so a typo anywhere runs nothing (exit 2). Then
//! commands run in order and the first failure stops the script unless `keep_going`; not
//! reaching or not being allowed by the server (exit 3) always stops it.

use std::io::Write;

use serde_json::{json, Value};

use crate::exec::error::CmdError;
use crate::exec::executor::Executor;
use crate::exec::stream::Follow;
use crate::lang::command::Command;
use crate::lang::parse::{parse_script, ScriptCommand};
use crate::present::output::{Span, Style, Tone};

/// Exit codes of script mode.
pub mod exit {
    /// Every command succeeded.
    pub const OK: i32 = 0;
    /// A command failed.
    pub const FAILED: i32 = 1;
    /// A command could not be understood (nothing ran).
    pub const USAGE: i32 = 2;
    /// The server could not be reached, or refused the token.
    pub const UNREACHABLE: i32 = 3;
}

/// How to run and print a script.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// One JSON document per command on stdout instead of tables.
    pub json: bool,
    /// Run the remaining commands after a failure.
    pub keep_going: bool,
    /// Colours for stdout.
    pub style: Style,
    /// Colours for stderr.
    pub err_style: Style,
}

/// Where output goes.
pub struct Sinks<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

/// Runs `text` as a script and returns the exit code.
pub fn run(exec: &Executor, text: &str, opts: Options, io: &mut Sinks) -> i32 {
    let commands = match parse_script(text) {
        Ok(c) => c,
        Err(errors) => {
            let several = crate::lang::lex::lex(text)
                .map(|s| s.len() > 1)
                .unwrap_or(true);
            for e in &errors {
                let err = CmdError::Usage(e.error.clone());
                if opts.json {
                    let doc = json!({
                        "command": e.text, "ok": false, "exit": exit::USAGE,
                        "error": err.to_json(), "line": e.line,
                    });
                    let _ = writeln!(io.out, "{doc}");
                } else {
                    let at = several.then(|| format!("line {}", e.line));
                    report_error(at.as_deref(), &err, opts, io);
                }
            }
            if several && !opts.json {
                let _ = writeln!(io.err, "uterm: nothing was run");
            }
            return exit::USAGE;
        }
    };
    run_commands(exec, &commands, opts, io)
}

/// Runs already parsed commands and returns the exit code.
pub fn run_commands(
    exec: &Executor,
    commands: &[ScriptCommand],
    opts: Options,
    io: &mut Sinks,
) -> i32 {
    let many = commands.len() > 1;
    let mut worst = exit::OK;
    for (i, sc) in commands.iter().enumerate() {
        if many && !opts.json {
            if i > 0 {
                let _ = writeln!(io.out);
            }
            let _ = writeln!(
                io.out,
                "{}",
                opts.style.paint(&format!("==> {}", sc.text), Tone::Dim)
            );
        }
        let result = match &sc.command {
            Command::Events { follow: true, .. } => follow(exec, opts, io),
            Command::Tap {
                name,
                unit,
                limit,
                consumer,
            } => tap(exec, name, unit.as_deref(), *limit, *consumer, opts, io),
            cmd => exec.run(cmd),
        };
        match result {
            Ok(output) => {
                if opts.json {
                    let doc = json!({ "command": sc.text, "ok": true, "result": output.json });
                    let _ = writeln!(io.out, "{doc}");
                } else {
                    let _ = write!(io.out, "{}", output.render(opts.style));
                }
            }
            Err(e) => {
                let code = e.exit_code();
                if opts.json {
                    let mut doc = json!({
                        "command": sc.text, "ok": false, "exit": code, "error": e.to_json(),
                    });
                    if let Some(o) = e.output() {
                        doc["result"] = o.json.clone();
                    }
                    let _ = writeln!(io.out, "{doc}");
                } else {
                    if let Some(o) = e.output() {
                        let _ = write!(io.out, "{}", o.render(opts.style));
                    }
                    let _ = io.out.flush();
                    let at = many.then(|| format!("line {}", sc.line));
                    report_error(at.as_deref(), &e, opts, io);
                }
                worst = worst.max(code);
                if code == exit::UNREACHABLE || !opts.keep_going {
                    if many && i + 1 < commands.len() && !opts.json {
                        let left = commands.len() - i - 1;
                        let _ = writeln!(
                            io.err,
                            "uterm: stopped; {left} command{} not run{}",
                            if left == 1 { "" } else { "s" },
                            if code == exit::UNREACHABLE {
                                ""
                            } else {
                                " (--keep-going runs them anyway)"
                            }
                        );
                    }
                    return code;
                }
            }
        }
        let _ = io.out.flush();
    }
    worst
}

fn report_error(at: Option<&str>, e: &CmdError, opts: Options, io: &mut Sinks) {
    let prefix = opts.err_style.paint("error:", Tone::Bad);
    let at = at.map(|a| format!(" {a}:")).unwrap_or_default();
    let _ = writeln!(io.err, "{prefix}{at} {e}");
}

/// `events --follow`: prints each event as it arrives until the output is closed.
fn follow(
    exec: &Executor,
    opts: Options,
    io: &mut Sinks,
) -> Result<crate::present::output::Output, CmdError> {
    // Say each distinct reconnect problem once, not at every retry.
    let mut last_problem = String::new();
    exec.follow_events(|item| {
        if let Follow::Reconnecting(why) = &item {
            if *why == last_problem {
                return true;
            }
            last_problem = why.to_string();
        } else if matches!(item, Follow::Reconnected) {
            last_problem.clear();
        }
        let written = match item {
            Follow::Event(ev) => {
                if opts.json {
                    writeln!(io.out, "{}", ev.to_json())
                } else {
                    crate::present::event::event_lines(ev)
                        .iter()
                        .try_for_each(|l| writeln!(io.out, "{}", opts.style.line(l)))
                }
            }
            Follow::Reconnecting(why) => writeln!(
                io.err,
                "{}",
                opts.err_style
                    .paint(&format!("uterm: events: {why}; reconnecting…"), Tone::Warn)
            ),
            Follow::Reconnected => writeln!(
                io.err,
                "{}",
                opts.err_style
                    .paint("uterm: events: reconnected", Tone::Good)
            ),
        };
        written.is_ok() && io.out.flush().is_ok()
    })?;
    Ok(crate::present::output::Output::new(Value::Null))
}

/// `tap`: one line (or JSON document) per request, flushed as it comes.
fn tap(
    exec: &Executor,
    name: &str,
    unit: Option<&str>,
    limit: Option<u64>,
    consumer: bool,
    opts: Options,
    io: &mut Sinks,
) -> Result<crate::present::output::Output, CmdError> {
    exec.tap(name, unit, limit, consumer, |rec| {
        let written = if opts.json {
            writeln!(io.out, "{rec}")
        } else {
            writeln!(
                io.out,
                "{}",
                opts.style.line(&crate::present::tap::tap_line(rec))
            )
        };
        written.is_ok() && io.out.flush().is_ok()
    })?;
    Ok(crate::present::output::Output::new(Value::Null))
}

/// A one-line message for people (used by main for its own errors).
pub fn error_line(style: Style, message: &str) -> String {
    format!("{} {message}", style.span(&Span::new("error:", Tone::Bad)))
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;

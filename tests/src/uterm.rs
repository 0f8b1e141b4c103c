//! The real `uterm` binary as a child process: built once per test binary (like `esb`),
//! run with a clean environment (no `ESB_*` variables of the outer shell, no servers file,
//! `NO_COLOR=1`, an empty working directory unless the test names one) and a time limit,
//! its exit code, stdout and stderr captured ([`Run`]). [`Follower`] reads a long-running `uterm` (e.g.
//! `events --follow`) line by line on a thread and kills it on drop. [`Table`] reads the
//! aligned tables uterm prints, cell by cell, by the position of the column headers.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// `<target>/debug/uterm`, built once per test binary (cargo does nothing when it is fresh).
pub fn uterm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::esb::cargo_bin("uterm"))
}

/// Variables of the outer environment that would change what `uterm` connects to.
const CLEARED: [&str; 6] = [
    "ESB_URL",
    "ESB_TOKEN",
    "ESB_TOKEN_FILE",
    "ESB_STATE_DIR",
    "ESB_SERVER",
    "UTERM_CONFIG",
];

/// `XDG_CONFIG_HOME` of the child unless the test sets one: a directory that does not
/// exist, so the user's own `~/.config/uterm/servers.toml` never takes part.
const NO_CONFIG_HOME: &str = "/nonexistent/uterm-e2e-config";

/// How to run `uterm` once: arguments, environment, working directory, stdin.
#[derive(Debug, Clone)]
pub struct Uterm {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    limit: Duration,
}

impl Default for Uterm {
    fn default() -> Self {
        Self::new()
    }
}

impl Uterm {
    /// No arguments yet; no `--url`, no token.
    pub fn new() -> Uterm {
        Uterm {
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            limit: Duration::from_secs(30),
        }
    }

    /// `--url URL --token TOKEN`.
    pub fn connected(url: &str, token: &str) -> Uterm {
        Uterm::new().args(["--url", url, "--token", token])
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `-c SCRIPT`.
    pub fn c(self, script: &str) -> Self {
        self.arg("-c").arg(script)
    }

    /// An environment variable of the child (the `ESB_*` variables of the test process are
    /// never passed on; set them here).
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The working directory (default: a new empty directory).
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// What the child reads on stdin (default: nothing, stdin is /dev/null).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// How long the run may take before it is killed and the test fails (default 30 s).
    pub fn limit(mut self, d: Duration) -> Self {
        self.limit = d;
        self
    }

    /// The command line, for messages.
    pub fn describe(&self) -> String {
        let mut s = String::from("uterm");
        for a in &self.args {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\";#\\".contains(c)) {
                s.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
            } else {
                s.push(' ');
                s.push_str(&a);
            }
        }
        s
    }

    /// The command, and the empty directory it runs in when the test named none (so the
    /// token search, relative to the current directory, finds nothing the test did not
    /// put there); the directory lives as long as the returned guard.
    fn command(&self) -> (Command, Option<tempfile::TempDir>) {
        let mut cmd = Command::new(uterm_bin());
        let neutral = match &self.cwd {
            Some(dir) => {
                cmd.current_dir(dir);
                None
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("uterm-e2e-cwd-")
                    .tempdir()
                    .expect("create an empty working directory");
                cmd.current_dir(dir.path());
                Some(dir)
            }
        };
        cmd.args(&self.args).env("NO_COLOR", "1");
        for k in CLEARED {
            cmd.env_remove(k);
        }
        cmd.env("XDG_CONFIG_HOME", NO_CONFIG_HOME);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        (cmd, neutral)
    }

    /// Runs `uterm` to completion (killed and failing the test after the time limit).
    pub fn run(&self) -> Run {
        let (mut cmd, _cwd) = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe()));
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let out = read_all(child.stdout.take().expect("stdout piped"));
        let err = read_all(child.stderr.take().expect("stderr piped"));
        let deadline = start + self.limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for uterm") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not finish within {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
                    self.describe(),
                    self.limit,
                    out.recv_timeout(Duration::from_secs(1)).unwrap_or_default(),
                    err.recv_timeout(Duration::from_secs(1)).unwrap_or_default(),
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = start.elapsed();
        let stdout = out.recv().unwrap_or_default();
        let stderr = err.recv().unwrap_or_default();
        Run {
            command: self.describe(),
            code: status
                .code()
                .unwrap_or_else(|| panic!("uterm died: {status}")),
            stdout,
            stderr,
            took,
        }
    }

    /// Starts `uterm` and reads its stdout line by line on a thread (stderr is kept too).
    pub fn spawn(&self) -> Follower {
        let (mut cmd, cwd) = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.describe()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::Builder::new()
            .name("uterm-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the stdout reader");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::Builder::new()
            .name("uterm-stderr".into())
            .spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = sink.lock().expect("stderr buffer");
                    s.push_str(&line);
                    s.push('\n');
                }
            })
            .expect("spawn the stderr reader");
        Follower {
            command: self.describe(),
            child,
            rx,
            seen: Vec::new(),
            stderr,
            _cwd: cwd,
        }
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// A finished `uterm` run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line (for messages).
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub took: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit {}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Panics (showing the whole run) unless the exit code is `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }

    /// Panics unless stdout contains every fragment.
    #[track_caller]
    pub fn stdout_has(&self, fragments: &[&str]) -> &Run {
        for f in fragments {
            assert!(self.stdout.contains(f), "stdout lacks {f:?}\n{self}");
        }
        self
    }

    /// Panics unless stderr contains every fragment.
    #[track_caller]
    pub fn stderr_has(&self, fragments: &[&str]) -> &Run {
        for f in fragments {
            assert!(self.stderr.contains(f), "stderr lacks {f:?}\n{self}");
        }
        self
    }

    /// Every line of stdout parsed as one JSON document (panics on a line that is not JSON).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}\n{self}"))
            })
            .collect()
    }

    /// The table of stdout whose header line starts with `first_header`.
    #[track_caller]
    pub fn table(&self, first_header: &str) -> Table {
        Table::find(&self.stdout, first_header)
            .unwrap_or_else(|| panic!("no table with header {first_header:?} on stdout\n{self}"))
    }
}

/// A long-running `uterm` whose stdout lines arrive on a channel; killed on drop.
pub struct Follower {
    command: String,
    child: Child,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Removed after the child (fields drop after `Drop::drop` has killed it).
    _cwd: Option<tempfile::TempDir>,
}

impl Follower {
    /// Reads lines until one satisfies `pred` and returns it (panics after `limit`, with
    /// everything it printed).
    #[track_caller]
    pub fn wait_line(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line {what} within {limit:?} ({e:?}); exited: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.command,
                    self.child.try_wait().ok().flatten(),
                    tail(&self.seen, 60),
                    tail(&self.stderr().lines().map(str::to_owned).collect::<Vec<_>>(), 20)
                ),
            }
        }
    }

    /// Like [`Follower::wait_line`] without failing: `None` after `limit`.
    pub fn try_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.rx.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if pred(&line) {
                return Some(line);
            }
        }
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// `None` while it runs, else its exit code.
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .expect("try_wait")
            .map(|s| s.code().unwrap_or(-1))
    }
}

/// The last `n` lines, saying how many came before.
fn tail(lines: &[String], n: usize) -> String {
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("({skip} earlier lines)\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One aligned table of uterm's output: the header line and the rows below it (up to the
/// next blank line). Cells are read by the header's position: a left-aligned column starts
/// where its header starts, a right-aligned (numeric) one ends where its header ends, so a
/// cell found there proves the alignment too.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<char>,
    rows: Vec<Vec<char>>,
}

impl Table {
    /// The table whose header line starts with `first_header` followed by two spaces.
    pub fn find(text: &str, first_header: &str) -> Option<Table> {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| {
            l.strip_prefix(first_header)
                .is_some_and(|rest| rest.starts_with("  ") || rest.is_empty())
        })?;
        let rows = lines[at + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.chars().collect())
            .collect();
        Some(Table {
            header: lines[at].chars().collect(),
            rows,
        })
    }

    /// The column headers, in order (separated by at least two spaces; a header may hold one
    /// space, as in `LAST RUN`).
    pub fn headers(&self) -> Vec<String> {
        split_cells(&self.header)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first cell of every row.
    pub fn keys(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| split_cells(r).into_iter().next().unwrap_or_default())
            .collect()
    }

    fn header_span(&self, column: &str) -> Option<(usize, usize)> {
        let col: Vec<char> = column.chars().collect();
        let n = col.len();
        (0..=self.header.len().checked_sub(n)?).find_map(|i| {
            let before_ok =
                i == 0 || (self.header[i - 1] == ' ' && (i < 2 || self.header[i - 2] == ' '));
            let after_ok = i + n == self.header.len()
                || (self.header[i + n] == ' '
                    && self.header.get(i + n + 1).is_none_or(|c| *c == ' '));
            (before_ok && after_ok && self.header[i..i + n] == col[..]).then_some((i, i + n))
        })
    }

    /// The cell of the row whose first cell is `key`, in column `column`; `None` when there
    /// is no such row or column. An empty cell is `Some("")`.
    pub fn cell(&self, key: &str, column: &str) -> Option<String> {
        let row = self
            .rows
            .iter()
            .find(|r| split_cells(r).first().map(String::as_str) == Some(key))?;
        self.read(row, column)
    }

    /// The cell in `column` of the row whose cell in `key_column` is `key` (for tables whose
    /// first column repeats, like the unit of `list proxies`).
    pub fn lookup(&self, key_column: &str, key: &str, column: &str) -> Option<String> {
        let row = self
            .rows
            .iter()
            .find(|r| self.read(r, key_column).as_deref() == Some(key))?;
        self.read(row, column)
    }

    /// Every cell of `column`, top to bottom.
    pub fn column(&self, column: &str) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| self.read(r, column).unwrap_or_default())
            .collect()
    }

    fn read(&self, row: &[char], column: &str) -> Option<String> {
        let (start, end) = self.header_span(column)?;
        let at = |i: usize| row.get(i).copied().unwrap_or(' ');
        if at(start) != ' ' && (start == 0 || at(start - 1) == ' ') {
            // Left-aligned: from the header's start to the next gap of two spaces.
            let mut i = start;
            while i < row.len() && !(at(i) == ' ' && at(i + 1) == ' ') {
                i += 1;
            }
            return Some(
                row[start..i.min(row.len())]
                    .iter()
                    .collect::<String>()
                    .trim_end()
                    .to_owned(),
            );
        }
        if at(end - 1) != ' ' {
            // Right-aligned: back from the header's end to the previous gap.
            let mut i = end;
            while i > 0 && !(at(i - 1) == ' ' && (i < 2 || at(i - 2) == ' ')) {
                i -= 1;
            }
            return Some(
                row[i..end.min(row.len())]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            );
        }
        Some(String::new())
    }
}

/// Cells of a line separated by two or more spaces.
fn split_cells(line: &[char]) -> Vec<String> {
    let s: String = line.iter().collect();
    s.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
e2e  Running  up 4s  version 0.1.0  hot deploy off
units 1  proxies 1  requests 0  errors 0  in flight 0

UNIT   STATE   REV  LABEL  HASH          DEPLOYED  PROXIES  ENDPOINTS  TASKS  REQUESTS  ERRORS  IN-FLIGHT  NOTES
extra  Paused   12  0.1    0d815770ab59  5s ago          1          0      0         0       0          0
shop   Active    2         2fa9f2fb3670  5s ago          1          1      1        17       0          0  modified on disk

on disk, not loaded: billing  (load UNIT)
";

    #[test]
    fn cells_are_read_under_their_headers() {
        let t = Table::find(STATUS, "UNIT").expect("table");
        assert_eq!(t.len(), 2);
        assert_eq!(t.keys(), ["extra", "shop"]);
        assert_eq!(t.headers()[..3], ["UNIT", "STATE", "REV"]);
        assert_eq!(t.cell("shop", "STATE").as_deref(), Some("Active"));
        assert_eq!(t.cell("shop", "REV").as_deref(), Some("2"));
        assert_eq!(t.cell("shop", "LABEL").as_deref(), Some(""));
        assert_eq!(t.cell("shop", "REQUESTS").as_deref(), Some("17"));
        assert_eq!(t.cell("shop", "NOTES").as_deref(), Some("modified on disk"));
        assert_eq!(t.cell("extra", "NOTES").as_deref(), Some(""));
        assert_eq!(t.cell("extra", "DEPLOYED").as_deref(), Some("5s ago"));
        assert_eq!(t.cell("nope", "STATE"), None);
        assert_eq!(t.cell("shop", "NOPE"), None);
        assert_eq!(t.cell("extra", "REV").as_deref(), Some("12"));
        assert_eq!(t.lookup("STATE", "Active", "UNIT").as_deref(), Some("shop"));
        assert_eq!(t.column("HASH"), ["0d815770ab59", "2fa9f2fb3670"]);
    }
}

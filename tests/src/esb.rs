//! A real `esb` child process on a [`TempConf`]: built once per test binary, started with
//! `--no-watch` by default, stderr captured to a file, ready when every transport port
//! accepts connections, and stopped on drop (SIGTERM, then SIGKILL after a grace period).

use crate::conf::TempConf;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (`tests/..`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// `<target>/debug/esb`, built once per test binary (cargo does nothing when it is fresh).
pub fn esb_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("esb"))
}

/// Builds the workspace's binaries with `cargo build --workspace --bins`, the command
/// `scripts/test` runs first, and returns `<target>/debug/<bin>`. Cargo does nothing when
/// they are fresh; callers keep the path in a `OnceLock` so each test binary asks at most
/// once.
///
/// The whole workspace, not `-p <package>`: cargo unifies dependency features over the
/// packages it builds, so `-p esb-core` alone resolves other features, and would relink
/// `esb` (and rebuild the crates under it) for every test binary.
pub fn cargo_bin(bin: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let path = target
        .join("debug")
        .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "--workspace", "--bins"])
        .current_dir(workspace());
    // Cargo sets these for the test process. Build scripts track some of them (ring's
    // tracks CARGO_MANIFEST_DIR), so passing them on would make this build and every
    // plain `cargo build` invalidate each other and rebuild half the tree each time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "OUT_DIR"
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(
        status.success(),
        "cargo build --workspace --bins failed (building {bin})"
    );
    assert!(path.is_file(), "{} missing after the build", path.display());
    path
}

/// How to start `esb`.
#[derive(Debug, Clone)]
pub struct EsbOptions {
    /// Pass `--no-watch` (default true).
    pub no_watch: bool,
    /// Pass `--strict`.
    pub strict: bool,
    /// `ESB_LOG` filter (default "info").
    pub log_filter: String,
    /// How long to wait for the transports to accept connections.
    pub ready_timeout: Duration,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Start esb with this open-file limit (soft and hard `RLIMIT_NOFILE`).
    pub nofile: Option<u64>,
    /// Run this binary instead of the workspace's `esb` (a copy a test may replace).
    pub bin: Option<PathBuf>,
    /// Start esb without CAP_SYS_NICE (dropped from the bounding set, as for a service
    /// that runs as an unprivileged user): it cannot raise a thread's priority.
    pub without_cap_sys_nice: bool,
}

impl Default for EsbOptions {
    fn default() -> Self {
        EsbOptions {
            no_watch: true,
            strict: false,
            log_filter: "info".into(),
            ready_timeout: Duration::from_secs(15),
            args: Vec::new(),
            nofile: None,
            bin: None,
            without_cap_sys_nice: false,
        }
    }
}

pub struct Esb {
    child: Child,
    exit: Option<ExitStatus>,
    log_path: PathBuf,
    /// Kept so the log file outlives the conf directory if the test drops that first.
    _log_dir: tempfile::TempDir,
}

/// Removes ANSI escape sequences (in case colours were forced on).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Esb {
    /// Starts `esb --conf DIR --no-watch` and waits until every transport accepts connections.
    pub fn start(conf: &TempConf) -> Esb {
        Self::start_with(conf, EsbOptions::default())
    }

    pub fn start_with(conf: &TempConf, opts: EsbOptions) -> Esb {
        let esb = Self::spawn(conf, &opts);
        let mut esb = esb;
        esb.wait_ready(conf, opts.ready_timeout);
        esb
    }

    /// Starts the process without waiting for readiness (for start-up failure tests).
    pub fn spawn(conf: &TempConf, opts: &EsbOptions) -> Esb {
        let log_dir = tempfile::Builder::new()
            .prefix("esb-e2e-log-")
            .tempdir()
            .expect("log dir");
        let log_path = log_dir.path().join("esb.log");
        let log = File::create(&log_path).expect("create esb log");
        let mut cmd = Command::new(opts.bin.as_deref().unwrap_or(esb_bin()));
        cmd.arg("--conf").arg(conf.dir());
        if opts.no_watch {
            cmd.arg("--no-watch");
        }
        if opts.strict {
            cmd.arg("--strict");
        }
        cmd.args(&opts.args)
            .env("ESB_LOG", &opts.log_filter)
            .env("NO_COLOR", "1")
            .current_dir(conf.root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        if let Some(n) = opts.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit(2), async-signal-safe, runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if opts.without_cap_sys_nice {
            use std::os::unix::process::CommandExt;
            // SAFETY: only prctl(2), async-signal-safe, runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    const CAP_SYS_NICE: libc::c_ulong = 23;
                    // Not root: there is nothing to drop (nor the right to).
                    if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0
                        && libc::geteuid() == 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        // A binary copied just before (a test's own copy) can be busy for an instant: a
        // process another test thread forks meanwhile holds the copy's write descriptor
        // until it executes its own program (ETXTBSY). That passes at once; try again.
        let mut busy = 0;
        let child = loop {
            match cmd.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && busy < 100 => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r.expect("spawn esb"),
            }
        };
        Esb {
            child,
            exit: None,
            log_path,
            _log_dir: log_dir,
        }
    }

    /// Waits until every transport of `conf` accepts TCP connections.
    pub fn wait_ready(&mut self, conf: &TempConf, limit: Duration) {
        let deadline = Instant::now() + limit;
        for t in conf.transports() {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], t.port));
            loop {
                if let Some(status) = self.try_wait() {
                    panic!(
                        "esb exited ({status}) before transport \"{}\" ({addr}) accepted connections\n--- esb log ---\n{}",
                        t.name,
                        self.log()
                    );
                }
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "transport \"{}\" ({addr}) did not accept connections within {limit:?}\n--- esb log ---\n{}",
                        t.name,
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A port that accepts could belong to someone else (a port found free was taken
        // before esb bound it). The `server_started` event is logged only once every
        // transport is bound by esb and the units are deployed.
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "esb exited ({status}) during start-up\n--- esb log ---\n{}",
                    self.log()
                );
            }
            if self.log().contains("server_started") {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "esb logged no server_started event within {limit:?}\n--- esb log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything esb wrote to stderr and stdout so far.
    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits until the log holds a line containing `needle`; returns that line.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        crate::wait_for(
            &format!("a log line containing {needle:?}"),
            limit,
            || {
                self.log()
                    .lines()
                    .find(|l| l.contains(needle))
                    .map(str::to_owned)
            },
            || format!("--- esb log ---\n{}", self.log()),
        )
    }

    /// A field of `/proc/PID/status` in kB (`VmHWM`, `VmRSS`).
    pub fn proc_status_kb(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    pub fn signal(&self, sig: libc::c_int) {
        if self.exit.is_none() {
            // SAFETY: kill(2) on the PID of our own, not yet reaped, child.
            unsafe {
                libc::kill(self.pid(), sig);
            }
        }
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Waits for the process to exit (panics with the log after `limit`).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "esb did not exit within {limit:?}\n--- esb log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Esb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- esb log (pid {}, {}) ---\n{}--- end of esb log ---",
                self.pid(),
                match self.try_wait() {
                    Some(s) => format!("exited: {s}"),
                    None => "running".into(),
                },
                self.log()
            );
        }
        if self.try_wait().is_some() {
            return;
        }
        self.sigterm();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

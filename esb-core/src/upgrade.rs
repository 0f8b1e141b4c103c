//! Binary upgrade without a refused connection (SIGUSR2 or the Server bean's `upgrade`),
//! in the manner of nginx's USR2, HAProxy's `-x` and pingora's graceful upgrade:
//!
//! 1. the running process starts the binary at the path it was started from (the new one,
//!    once the file was replaced) with the same arguments and `ESB_UPGRADE_SOCK` naming a
//!    Unix socket in state_dir (0600);
//! 2. it passes every listening socket over that socket (SCM_RIGHTS) with the bind
//!    addresses they belong to; the new process starts on them, loads the deployment state
//!    from state_dir with its tasks held, and says `ready <pid>` once it serves — with a
//!    socket that takes client connections ([`crate::handoff`]);
//! 3. the old process stops accepting (the sockets stay open in the new one, so nothing is
//!    refused), passes every plain-TCP client connection on to the new process as soon as
//!    it has nothing of the client's unanswered (TLS ones, and all when the new binary takes
//!    none, are told to close after an exchange), stops its tasks, says `go` (the new
//!    process's tasks start), drains and exits 0.
//!
//! A new binary that fails to start, exits, or is not ready within a minute is killed and
//! the old process keeps serving as if nothing happened.

use crate::listeners::ListenerPool;
use crate::server::Server;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, IoSlice, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Names the Unix socket a new process receives its listeners on.
pub const ENV: &str = "ESB_UPGRADE_SOCK";
/// Set when the new process was started at the lowest priority: the priority (nice) it
/// goes back to once it is ready to serve ([`crate::sched`]).
pub const NICE_ENV: &str = "ESB_UPGRADE_NICE";
const READY_WITHIN: Duration = Duration::from_secs(60);
/// However busy the machine, a new process started in the background comes forward after
/// this long even if it is not ready yet (on a saturated machine the lowest priority gets
/// well under 1 % of a core: a large configuration could otherwise take minutes).
const BACKGROUND_AT_MOST: Duration = Duration::from_secs(5);

static EXE: OnceLock<PathBuf> = OnceLock::new();

/// Remembers the path this process was started from (call first thing in `main`): once
/// the file is replaced, `/proc/self/exe` names the deleted old one.
pub fn remember_exe() {
    if let Ok(p) = std::env::current_exe() {
        let _ = EXE.set(p);
    }
}

fn exe() -> PathBuf {
    EXE.get()
        .cloned()
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("esb"))
}

/// The new process's side: the listeners handed over, and the link to the old process.
pub struct Inherited {
    pub pool: ListenerPool,
    pub link: UnixStream,
    /// Started at the lowest priority: the one to come back to once ready ([`confirm`]).
    pub nice: Option<i32>,
}

/// In a process started by an upgrade: receives the listening sockets.
pub fn inherit() -> Option<Result<Inherited, String>> {
    let path = std::env::var_os(ENV)?;
    std::env::remove_var(ENV);
    let nice = std::env::var(NICE_ENV).ok().and_then(|n| n.parse().ok());
    std::env::remove_var(NICE_ENV);
    if let Some(n) = nice {
        tracing::info!(
            "binary upgrade: starting in the background (nice {}), back to nice {n} once ready",
            crate::sched::nice()
        );
        std::thread::spawn(move || {
            std::thread::sleep(BACKGROUND_AT_MOST);
            crate::sched::come_forward(n);
        });
    }
    Some(receive(Path::new(&path), nice).map_err(|e| {
        format!(
            "binary upgrade: cannot take over the listeners from {}: {e}",
            Path::new(&path).display()
        )
    }))
}

fn receive(path: &Path, nice: Option<i32>) -> Result<Inherited, String> {
    let link = UnixStream::connect(path).map_err(|e| e.to_string())?;
    let mut header = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 64]);
    let (n, fds) = crate::handoff::recv_with_fds(
        link.as_raw_fd(),
        &mut header,
        &mut cmsg,
        nix::sys::socket::MsgFlags::empty(),
    )
    .map_err(|e| e.to_string())?;
    let binds: Vec<SocketAddr> = serde_json::from_slice::<Value>(&header[..n])
        .ok()
        .and_then(|v| serde_json::from_value(v["binds"].clone()).ok())
        .ok_or("the old process sent no list of binds")?;
    if binds.len() != fds.len() {
        return Err(format!(
            "{} binds but {} sockets were received",
            binds.len(),
            fds.len()
        ));
    }
    Ok(Inherited {
        pool: ListenerPool::from_fds(binds.into_iter().zip(fds).collect()),
        link,
        nice,
    })
}

/// In the new process, once it serves: comes back to the old process's priority (if it
/// started at the lowest, `nice`), tells the old one (handing it the socket that takes its
/// client connections), waits for it to let go (its tasks stopped), then lets this
/// process's tasks run.
pub async fn confirm(link: UnixStream, nice: Option<i32>, server: Arc<Server>) {
    let pid = std::process::id();
    if let Some(nice) = nice {
        // From here on it takes over the traffic: it needs its share of the core.
        crate::sched::come_forward(nice);
    }
    // Without the pair the old process closes its connections after an exchange instead.
    let theirs = match crate::handoff::pair() {
        Ok((ours, theirs)) => {
            crate::handoff::adopt(ours, server.clone());
            Some(theirs)
        }
        Err(e) => {
            tracing::warn!("binary upgrade: cannot take over client connections ({e}); the old process closes them after an exchange");
            None
        }
    };
    let released = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        // `backends`: it takes idle backend connections too, `paired`: also one with each
        // client connection (an older binary does not).
        let ready = format!("ready {pid} backends paired\n");
        let raw: Vec<std::os::fd::RawFd> = theirs.iter().map(|fd| fd.as_raw_fd()).collect();
        let cmsgs: Vec<_> = (!raw.is_empty())
            .then(|| nix::sys::socket::ControlMessage::ScmRights(&raw))
            .into_iter()
            .collect();
        nix::sys::socket::sendmsg::<()>(
            link.as_raw_fd(),
            &[IoSlice::new(ready.as_bytes())],
            &cmsgs,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        // The old process holds it now (an old binary drops it: the connections then
        // close there, and this process's end reads the end at once).
        drop(theirs);
        let mut line = String::new();
        BufReader::new(link).read_line(&mut line)?;
        Ok(())
    })
    .await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::warn!("binary upgrade: the old process did not confirm; starting tasks anyway");
    }
    server.engine.hold_tasks.store(false, Relaxed);
    tracing::info!(pid, "binary upgrade complete: this process serves alone");
}

/// In the running process: starts the new binary and hands over. Returns once the new
/// process serves (this one then drains and exits), or why the upgrade did not happen —
/// in which case nothing changed.
pub async fn upgrade(server: &Arc<Server>) -> Result<Value, String> {
    let started = Instant::now();
    if !server.begin_upgrade() {
        return Err("a restart, upgrade or shutdown is already in progress; wait for it to end and try again".into());
    }
    // The new process deploys from disk while both run: this one stops watching.
    let hot = server.engine.hot_deploy.swap(false, Relaxed);
    let result = hand_over(server).await;
    match result {
        Ok(Handed {
            pid,
            link,
            next,
            background,
        }) => {
            server.finish_upgrade(link, next).await;
            Ok(json!({
                "outcome": "upgraded",
                "pid": pid,
                "background_start": background,
                "old_pid": std::process::id(),
                "binary": exe().display().to_string(),
                "duration_ms": crate::revision::millis(started.elapsed()),
            }))
        }
        Err(e) => {
            server.engine.hot_deploy.store(hot, Relaxed);
            server.abort_upgrade();
            tracing::error!("binary upgrade failed: {e}; this process keeps serving");
            Err(format!("{e}; nothing changed, this process keeps serving"))
        }
    }
}

/// The new process that took over.
struct Handed {
    pid: u32,
    /// The conversation with it (`go` once this process's tasks stopped).
    link: UnixStream,
    /// Where its client and backend connections go (if it sent a socket for them).
    next: Option<crate::handoff::Successor>,
    /// It started at the lowest priority ([`crate::sched::start_in_background`]).
    background: bool,
}

async fn hand_over(server: &Arc<Server>) -> Result<Handed, String> {
    let dir = server.engine.root.state_dir();
    let path = dir.join(format!("upgrade-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot create the upgrade socket {}: {e}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    let sockets = server.listener_dups();
    let exe = exe();
    // Off the serving threads: spawning waits until the child has executed the binary, and
    // the conversation blocks. The child inherits this thread's short slice (`sched`).
    let sock = path.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        // It starts at the lowest priority (where it can come back from it): its start
        // takes what the serving process leaves of the core.
        let (child, background) = crate::sched::start_in_background(|nice| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(std::env::args_os().skip(1))
                .env(ENV, &sock)
                .stdin(std::process::Stdio::null());
            match nice {
                Some(nice) => cmd.env(NICE_ENV, nice.to_string()),
                None => cmd.env_remove(NICE_ENV),
            };
            (cmd.spawn(), nice.is_some())
        });
        let mut child =
            child.map_err(|e| format!("cannot start the new binary {}: {e}", exe.display()))?;
        let pid = child.id();
        tracing::info!(pid, binary = %exe.display(), "binary upgrade: new process started");
        let r = converse(&listener, &mut child, sockets);
        if r.is_err() {
            let _ = child.kill();
        }
        // Reap the child in the background whatever happens: it outlives this call.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        r.map(|(link, next)| Handed {
            pid,
            link,
            next,
            background,
        })
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let _ = std::fs::remove_file(&path);
    outcome
}

/// Waits for the new process to connect, sends the sockets, waits for `ready` (and the
/// socket for connections that comes with it; whether backend connections may go there
/// too, the `ready` line says).
fn converse(
    listener: &UnixListener,
    child: &mut std::process::Child,
    sockets: Vec<(SocketAddr, OwnedFd)>,
) -> Result<(UnixStream, Option<crate::handoff::Successor>), String> {
    let deadline = Instant::now() + READY_WITHIN;
    let exited = |child: &mut std::process::Child| -> Option<String> {
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "the new esb exited ({status}) before it took over; see its log lines above"
            )),
            _ => None,
        }
    };
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let link = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(why) = exited(child) {
                    return Err(why);
                }
                if Instant::now() > deadline {
                    return Err("the new esb did not connect within a minute".into());
                }
                // Until it connects (at once), or 20 ms to look at the child again.
                readable_within(listener.as_raw_fd(), 20);
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    link.set_nonblocking(false).map_err(|e| e.to_string())?;
    let binds: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();
    let header = serde_json::to_vec(&json!({ "binds": binds })).expect("json");
    let raw: Vec<std::os::fd::RawFd> = sockets.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    nix::sys::socket::sendmsg::<()>(
        link.as_raw_fd(),
        &[IoSlice::new(&header)],
        &[nix::sys::socket::ControlMessage::ScmRights(&raw)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("cannot pass the listeners: {e}"))?;
    drop(sockets);
    // `ready <pid>` once it serves; poll so a crash is noticed at once.
    link.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut next = None;
    loop {
        match read_with_fd(&link, &mut line, &mut next) {
            Ok(0) => {
                return Err(
                    exited(child).unwrap_or_else(|| "the new esb closed the upgrade socket".into())
                )
            }
            Ok(_) => {
                // Lines before `ready` (none today) are skipped.
                while let Some(end) = line.iter().position(|&b| b == b'\n') {
                    let l: Vec<u8> = line.drain(..=end).collect();
                    if l.starts_with(b"ready") {
                        link.set_read_timeout(None).map_err(|e| e.to_string())?;
                        let says =
                            |word: &[u8]| l.split(|b| b.is_ascii_whitespace()).any(|w| w == word);
                        let (backends, paired) = (says(b"backends"), says(b"paired"));
                        let next = next
                            .take()
                            .map(|s| crate::handoff::Successor::new(s, backends, paired));
                        return Ok((link, next));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if let Some(why) = exited(child) {
                    return Err(why);
                }
                if Instant::now() > deadline {
                    return Err("the new esb was not ready within a minute".into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One read from the link into `line`; a descriptor that comes along goes to `fd` (the
/// first one; any other is closed).
fn read_with_fd(
    link: &UnixStream,
    line: &mut Vec<u8>,
    fd: &mut Option<OwnedFd>,
) -> std::io::Result<usize> {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let (n, fds) = crate::handoff::recv_with_fds(
        link.as_raw_fd(),
        &mut buf,
        &mut cmsg,
        nix::sys::socket::MsgFlags::empty(),
    )?;
    if let Some(first) = fds.into_iter().next() {
        fd.get_or_insert(first);
    }
    line.extend_from_slice(&buf[..n]);
    Ok(n)
}

/// Waits until `fd` is readable or `ms` milliseconds have passed.
fn readable_within(fd: std::os::fd::RawFd, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let _ = unsafe { libc::poll(&mut p, 1, ms) };
}

/// The old process, its tasks stopped: the new one's may start.
pub fn release(link: UnixStream) {
    let mut link = link;
    let _ = writeln!(link, "go");
}

/// Tells systemd (Type=notify, NotifyAccess=all) that this process serves and is now the
/// main one; a no-op without `NOTIFY_SOCKET`.
pub fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
    } else {
        sock.send_to(msg.as_bytes(), Path::new(&path))
    };
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

//! Helpers for end-to-end tests: a temporary configuration directory ([`TempConf`]), a
//! real `esb` child process ([`Esb`], killed on drop), real HTTP(S) test backends
//! ([`Backend`]) and a small blocking HTTP(S) client ([`Client`]). Everything listens on
//! loopback with ephemeral ports, and every wait polls an observable state with a deadline.

pub mod backend;
pub mod client;
pub mod conf;
pub mod esb;
pub mod etcd;
pub mod http1;
pub mod load;
pub mod mgmt_client;
pub mod prom;
pub mod rabbit;
pub mod scenario;
pub mod tls;
pub mod units;
pub mod uterm;

pub use backend::{Backend, BackendBuilder, Seen};
pub use client::{Client, Response};
pub use conf::TempConf;
pub use esb::{Esb, EsbOptions};

use std::time::{Duration, Instant};

/// Polls `check` every few milliseconds until it returns `Some`, or panics after `limit`
/// with `what` (and whatever `context` says at that moment) in the message.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like [`wait_for`] for a condition.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    wait_for(what, limit, || check().then_some(()), String::new)
}

/// A free TCP port on 127.0.0.1 for a server a test starts (it binds the port itself, later).
///
/// Not one that port 0 gives: the kernel hands those out again, and takes them for the local
/// end of outgoing connections, so between the check and the server's bind a parallel test
/// could take it ("Address already in use"). These come from below the kernel's ephemeral
/// range, where only explicit binds go, from a counter of this process starting at a point
/// of its own: a port is handed out once per test binary, and a binary run after another
/// one starts elsewhere.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOW).max(1_000);
    let start = std::process::id().wrapping_mul(7_919) % span;
    loop {
        let n = NEXT.fetch_add(1, Relaxed);
        assert!(
            n < span,
            "no free port left below {ephemeral} for this test binary"
        );
        let port = (LOW + (start + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A loopback port that refuses connections for as long as this value lives: a socket
/// bound to it without listening, so no other process can start listening there meanwhile
/// (a port merely found free could be taken, say by a paused transport of a parallel test,
/// and hang the requests meant to be refused).
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind 127.0.0.1:0");
        let port = socket.local_addr().expect("local addr").port();
        ClosedPort {
            _socket: socket,
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// The byte at `offset` of the deterministic test pattern used for large bodies.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

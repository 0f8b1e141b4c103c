//! Accepting connections, for every listener (transports and the management endpoint).
//! A [`Gate`] caps the connections open at once: at the cap the listener stops calling
//! accept, so new connections wait in the kernel's listen backlog — what nginx
//! (`worker_connections`) and HAProxy (`maxconn`) do — instead of being accepted and
//! dropped. [`Backoff`] sleeps after an accept error (EMFILE, ENFILE, ENOBUFS, …), longer
//! each time, and logs at most one warning a second with the count of errors since.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connection cap of one listener; each open connection holds a permit.
pub struct Gate {
    permits: Arc<Semaphore>,
    max: u64,
}

impl Gate {
    pub fn new(max: u64) -> Gate {
        let max = max.clamp(1, Semaphore::MAX_PERMITS as u64);
        Gate {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Waits for a free slot; the connection holds the permit until it closes.
    pub async fn admit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed")
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.max - self.permits.available_permits() as u64
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Back-off and log rate limit after accept errors of one listener.
#[derive(Default)]
pub struct Backoff {
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Backoff {
    /// An accept succeeded: the next error starts from the shortest delay again.
    pub fn success(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// Logs (rate-limited) and sleeps after an accept error on `listener`.
    pub async fn failed(&mut self, listener: &str, e: &std::io::Error) {
        if let Some(suppressed) = self.should_log(Instant::now()) {
            if suppressed > 0 {
                tracing::warn!(
                    listener,
                    "accept failed: {e} ({suppressed} more since the last warning)"
                );
            } else {
                tracing::warn!(listener, "accept failed: {e}");
            }
        }
        tokio::time::sleep(self.next_delay()).await;
    }

    /// `Some(errors suppressed since the last warning)` when a warning is due at `now`.
    fn should_log(&mut self, now: Instant) -> Option<u64> {
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < LOG_EVERY)
        {
            self.suppressed += 1;
            return None;
        }
        self.last_log = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    fn next_delay(&mut self) -> Duration {
        self.delay = (self.delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
        self.delay
    }
}

/// The listen backlog of the transports: where connections over the cap wait (the
/// kernel caps it at `net.core.somaxconn`). The standard library's 128 would make clients
/// of a capped transport retry their SYNs for seconds.
pub const BACKLOG: u32 = 1024;

/// Binds a listener with [`BACKLOG`] (and `SO_REUSEADDR`, as the standard library does).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The soft open-file limit (RLIMIT_NOFILE) of this process.
pub fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if !ok || lim.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gate_counts_open_connections_and_waits_at_the_cap() {
        let gate = Gate::new(2);
        let a = gate.admit().await;
        let _b = gate.admit().await;
        assert_eq!((gate.open(), gate.max()), (2, 2));
        let third = tokio::time::timeout(Duration::from_millis(20), gate.admit()).await;
        assert!(third.is_err(), "a third connection must wait");
        drop(a);
        let _c = gate.admit().await;
        assert_eq!(gate.open(), 2);
    }

    #[test]
    fn backoff_grows_resets_and_logs_once_a_second() {
        let mut b = Backoff::default();
        let ms = |d: Duration| d.as_millis() as u64;
        let delays: Vec<u64> = (0..10).map(|_| ms(b.next_delay())).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.success();
        assert_eq!(ms(b.next_delay()), 5);

        let t0 = Instant::now();
        assert_eq!(b.should_log(t0), Some(0));
        for i in 1..=90 {
            assert_eq!(b.should_log(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(b.should_log(t0 + LOG_EVERY), Some(90));
    }
}

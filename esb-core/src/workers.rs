//! The data plane's worker threads: each runs its own current-thread tokio runtime and
//! serves the client connections handed to it, with everything a request starts on the
//! way (backend connections, their drivers) staying on that thread. Management, the
//! engine and the accept loops run on the main runtime; [`spawn`] hands an accepted
//! connection to the worker with the fewest open ones. Without workers (library tests),
//! [`spawn`] falls back to the current runtime. Nothing that runs on a worker may call
//! `block_in_place` (a current-thread runtime panics on it): the engine's blocking steps
//! run on the main runtime.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use tokio::net::TcpStream;
use tokio::runtime::Handle;

struct Worker {
    handle: Handle,
    /// Connections this worker serves now.
    open: AtomicUsize,
    /// Connections handed to this worker so far.
    served: AtomicU64,
}

static WORKERS: OnceLock<Vec<Worker>> = OnceLock::new();

thread_local! {
    /// The index of the worker this thread is (`None` off the worker threads).
    static INDEX: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Starts `n` worker threads (at least one), once per process; later calls do nothing.
pub fn start(n: usize) -> std::io::Result<()> {
    if WORKERS.get().is_some() {
        return Ok(());
    }
    let mut workers = Vec::with_capacity(n.max(1));
    for i in 0..n.max(1) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        workers.push(Worker {
            handle: rt.handle().clone(),
            open: AtomicUsize::new(0),
            served: AtomicU64::new(0),
        });
        std::thread::Builder::new()
            .name(format!("esb-worker-{i}"))
            // Parsing nests deep on some request paths (JSON bodies): as much stack as the
            // main runtime's threads.
            .stack_size(4 << 20)
            .spawn(move || {
                crate::sched::data_plane();
                INDEX.with(|c| c.set(Some(i)));
                rt.block_on(std::future::pending::<()>());
            })?;
    }
    let _ = WORKERS.set(workers);
    Ok(())
}

/// How many worker threads there are (0 before [`start`]).
pub fn count() -> usize {
    WORKERS.get().map_or(0, Vec::len)
}

/// Per worker: the connections it serves now and those handed to it so far.
pub fn connections() -> Vec<(usize, u64)> {
    WORKERS.get().map_or_else(Vec::new, |ws| {
        ws.iter()
            .map(|w| (w.open.load(Relaxed), w.served.load(Relaxed)))
            .collect()
    })
}

/// The worker the calling thread is, if it is one.
pub fn current() -> Option<usize> {
    INDEX.with(|c| c.get())
}

/// `stream` on the reactor of worker `worker` (of the current runtime for `None`, or when
/// there are no workers): the connection is then driven by the tasks of that worker.
pub fn register(worker: Option<usize>, stream: std::net::TcpStream) -> std::io::Result<TcpStream> {
    let handle = worker
        .and_then(|i| WORKERS.get()?.get(i))
        .map(|w| &w.handle);
    let _entered = handle.map(Handle::enter);
    TcpStream::from_std(stream)
}

/// Serves an accepted client connection on the worker serving the fewest connections:
/// the socket moves to that worker's reactor and `serve` runs there (on the current
/// runtime when there are no workers).
pub fn spawn<F, Fut>(stream: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(workers) = WORKERS.get() else {
        tokio::spawn(serve(stream));
        return;
    };
    let (i, w) = workers
        .iter()
        .enumerate()
        .min_by_key(|(_, w)| w.open.load(Relaxed))
        .expect("at least one worker");
    let stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot hand a connection to a worker thread: {e}");
            return;
        }
    };
    w.open.fetch_add(1, Relaxed);
    w.served.fetch_add(1, Relaxed);
    w.handle.spawn(async move {
        let _open = Open(i);
        match TcpStream::from_std(stream) {
            Ok(s) => serve(s).await,
            Err(e) => tracing::warn!("worker {i} cannot take a connection: {e}"),
        }
    });
}

/// Counts a connection as open on its worker until dropped.
struct Open(usize);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(w) = WORKERS.get() {
            w[self.0].open.fetch_sub(1, Relaxed);
        }
    }
}

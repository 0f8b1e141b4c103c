//! The running server: binds transports and the management endpoint (taking the sockets a
//! previous generation handed over), starts the deployment engine, the hot deployer and the
//! management endpoint, and handles signals (SIGHUP
//! reloads changed units, audited `by: "signal"` and refused while the audit log cannot be
//! written; SIGTERM/SIGINT stop accepting, let in-flight requests finish within the drain
//! timeout, and return). A warm restart ends a generation without closing its sockets:
//! they go to the next one in a [`Handover`], and the old connections finish in the
//! background, each told to close after its current exchange. `state_dir` is created 0700;
//! the management tokens are checked here, so a weak or tampered token file stops the
//! start-up before anything is served.

use crate::audit::{Audit, By};
use crate::engine::Engine;
use crate::events::{EventBus, EventKind};
use crate::listeners::ListenerPool;
use crate::mgmt::auth::{TokenError, Tokens};
use crate::transport::TransportRuntime;
use deployments::RootConfig;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;
use tokio::sync::watch;

pub struct Options {
    pub conf_dir: PathBuf,
    pub strict: bool,
    /// Overrides `[hot_deploy] watch`.
    pub watch: Option<bool>,
    /// The event bus; shared across warm restarts so `/events` followers and event ids
    /// carry on.
    pub events: Arc<EventBus>,
    /// Start with every task held (a process started by a binary upgrade, until the old
    /// one has stopped its tasks).
    pub hold_tasks: bool,
    /// Outbound clients and their pools, shared across warm restarts (backend connections
    /// stay open).
    pub clients: Arc<crate::client::Clients>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid root config:\n{}", .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    Root(Vec<deployments::Diagnostic>),
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    #[error("--strict: {0} unit(s) failed to deploy:\n{1}")]
    Strict(usize, String),
    #[error("management endpoint: {0}")]
    Management(String),
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

/// What a warm restart hands to the next generation: the checked root config, every
/// listening socket (those kept and those bound for it), and where to say it serves.
pub struct Handover {
    pub root: RootConfig,
    pub pool: ListenerPool,
    pub ready: oneshot::Sender<Result<(), String>>,
}

pub struct Server {
    pub engine: Arc<Engine>,
    pub transports: Vec<Arc<TransportRuntime>>,
    pub events: Arc<EventBus>,
    pub started: Instant,
    pub maintenance: AtomicBool,
    pub conf_dir: PathBuf,
    /// Every state change is recorded here, whoever causes it.
    pub audit: Arc<Audit>,
    /// The management tokens, checked at start-up (`None` when management is off).
    pub tokens: Option<Tokens>,
    shutdown: watch::Sender<bool>,
    /// The management listener, bound at start-up (so a taken port fails the start) and
    /// served by `serve`; and its bind as the root config names it.
    mgmt_listener: Mutex<Option<tokio::net::TcpListener>>,
    pub mgmt_configured: Option<SocketAddr>,
    /// Set when this generation stops serving: management responses carry
    /// `Connection: close`.
    pub mgmt_draining: AtomicBool,
    /// A warm restart in progress: taken by `serve` when it ends.
    handover: Mutex<Option<Handover>>,
    /// Told once this generation serves (the warm restart that started it waits for that).
    ready: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    /// A binary upgrade in progress; once the new process serves, the link to it.
    upgrading: AtomicBool,
    upgraded: Mutex<Option<std::os::unix::net::UnixStream>>,
    mgmt_fd: Option<std::os::fd::RawFd>,
}

/// How [`Server::serve`] ended.
pub enum Exit {
    Stopped,
    /// A warm restart: the caller starts the next generation from the handover.
    Restart(Box<Handover>),
}

impl Server {
    /// Everything up to serving: state dir, transports and the management endpoint bound
    /// (from `pool` where it holds their sockets), units deployed, operator state applied.
    pub async fn start(
        opts: &Options,
        root: RootConfig,
        pool: &mut ListenerPool,
    ) -> Result<Arc<Server>, StartError> {
        let state_dir = root.state_dir();
        // It holds tokens, the audit log and copies of units (with their secrets).
        crate::fsx::create_private_dir(&state_dir).map_err(|source| StartError::StateDir {
            path: state_dir.clone(),
            source,
        })?;
        if let Ok(meta) = std::fs::metadata(&state_dir) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if crate::fsx::loose_bits(mode) != 0 {
                tracing::warn!(
                    "state directory {} is accessible by group or others (mode {mode:04o}); it holds tokens, the audit log and copies of units: `chmod 700` it",
                    state_dir.display()
                );
            }
        }
        // Weak or tampered token files stop the start-up before anything is served.
        let tokens = if root.management.enabled {
            Some(Tokens::load(&state_dir)?)
        } else {
            None
        };
        let audit = Arc::new(Audit::new(
            &state_dir,
            root.management.audit_refused_per_second,
        ));
        let events = opts.events.clone();
        let mut transports = Vec::new();
        let nofile = crate::accept::nofile_limit();
        let management_cap = if root.management.enabled {
            *root.management.max_connections.get_ref()
        } else {
            0
        };
        let default_cap = deployments::root::default_max_connections(
            nofile,
            root.transports.len(),
            management_cap,
        );
        for def in root.transports.iter().filter(|t| t.kind.is_http()) {
            let t = TransportRuntime::bind(def, &root.base_dir, default_cap, pool).await?;
            tracing::info!(transport = %t.name, bind = %t.bind, kind = ?t.kind, "transport listening");
            transports.push(t);
        }
        tracing::info!(
            nofile,
            default_max_connections = default_cap,
            "open-file limit and the default connection cap of each transport"
        );
        // Explicit caps may promise more than the descriptors allow: say so now, not at
        // the first flood.
        let promised: u64 = transports.iter().map(|t| 2 * t.gate.max()).sum::<u64>()
            + management_cap
            + deployments::root::FD_RESERVE;
        if promised > nofile {
            tracing::warn!(
                nofile,
                needed = promised,
                "the transports' max_connections need more file descriptors than the open-file limit allows; under a flood accepts will fail (EMFILE) and the management endpoint may be locked out: lower max_connections or raise the limit (ulimit -n / LimitNOFILE)"
            );
        }
        let (mgmt_listener, mgmt_configured) = if root.management.enabled {
            let addr = *root.management.bind.get_ref();
            let l = pool
                .take_or_bind(addr)
                .map_err(|e| StartError::Management(format!("cannot bind {addr}: {e}")))?;
            let bind = l.local_addr().unwrap_or(addr);
            tracing::info!(%bind, token_file = %state_dir.join("control.token").display(), "management endpoint listening");
            (Some(l), Some(addr))
        } else {
            (None, None)
        };
        let mgmt_fd = mgmt_listener.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        let root = Arc::new(root);
        let engine = Arc::new(Engine::with_clients(
            root.clone(),
            events.clone(),
            opts.clients.clone(),
        ));
        engine.hold_tasks.store(opts.hold_tasks, Relaxed);
        if let Some(w) = opts.watch {
            engine
                .hot_deploy
                .store(w, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err(failed) = engine.start(opts.strict).await {
            let text: Vec<String> = failed
                .iter()
                .flat_map(|o| match o {
                    crate::engine::Outcome::Rejected { errors, .. } => {
                        errors.iter().map(|e| format!("  {e}")).collect()
                    }
                    _ => vec![],
                })
                .collect();
            return Err(StartError::Strict(failed.len(), text.join("\n")));
        }
        events.emit(EventKind::ServerStarted {
            name: root.server.name.clone(),
        });
        let server = Arc::new(Server {
            engine,
            transports,
            events,
            started: Instant::now(),
            maintenance: AtomicBool::new(false),
            conf_dir: opts.conf_dir.clone(),
            audit,
            tokens,
            shutdown: watch::channel(false).0,
            mgmt_listener: Mutex::new(mgmt_listener),
            mgmt_configured,
            mgmt_draining: AtomicBool::new(false),
            handover: Mutex::new(None),
            ready: Mutex::new(None),
            upgrading: AtomicBool::new(false),
            upgraded: Mutex::new(None),
            mgmt_fd,
        });
        crate::operator::apply(&server, &crate::operator::load(&server)).await;
        Ok(server)
    }

    pub fn transport(&self, name: &str) -> Option<&Arc<TransportRuntime>> {
        self.transports.iter().find(|t| t.name == name)
    }

    /// Serves until SIGTERM/SIGINT (or [`Server::stop`]), then drains.
    pub async fn serve(self: Arc<Self>) -> Result<Exit, StartError> {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
        let graceful = Arc::new(GracefulShutdown::new());
        let mut accept_loops = Vec::new();
        for t in &self.transports {
            accept_loops.push(tokio::spawn(t.clone().run(
                self.engine.clone(),
                graceful.clone(),
                self.shutdown.subscribe(),
            )));
        }
        let reaper = self.engine.clone();
        let mut reaper_stop = self.shutdown.subscribe();
        let sampled = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = reaper_stop.changed() => return,
                }
                reaper.reap_drained().await;
                // Guards watched after activations roll back by themselves, audited.
                for trip in reaper.check_guards().await {
                    let before =
                        std::collections::BTreeMap::from([(trip.unit.clone(), trip.revision)]);
                    let after = crate::audit::revisions(&reaper).await;
                    sampled.audit.sync(
                        By::Guard,
                        serde_json::json!({"action": "rollback", "unit": trip.unit, "reason": trip.reason}),
                        std::slice::from_ref(&trip.outcome),
                        &before,
                        &after,
                    );
                }
                n += 1;
                if n.is_multiple_of(10) {
                    sampled.sample_rates().await;
                }
            }
        });
        let _watcher = crate::watch::spawn(self.engine.clone(), self.audit.clone())
            .map_err(|e| tracing::error!("hot deployer: {e}"))
            .ok();
        let mgmt_loop = crate::mgmt::spawn(self.clone())
            .await
            .map_err(StartError::Management)?;
        // The pid file names the process that serves before anyone is told it does.
        let pid_file = self.engine.root.state_dir().join("esb.pid");
        if let Err(e) = crate::fsx::write_private_atomic(
            &pid_file,
            format!("{}\n", std::process::id()).as_bytes(),
        ) {
            tracing::warn!(path = %pid_file.display(), "cannot write the pid file: {e}");
        }
        if let Some(tx) = self.ready.lock().expect("ready").take() {
            let _ = tx.send(Ok(()));
        }
        crate::upgrade::notify_systemd();

        let mut stop = self.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                // Also when the stop came before this loop began (a restart asked for as soon
                // as this generation answered).
                _ = stop.wait_for(|v| *v) => break,
                _ = usr2.recv() => {
                    tracing::info!("SIGUSR2: binary upgrade");
                    let me = self.clone();
                    tokio::spawn(async move {
                        if let Ok(v) = crate::upgrade::upgrade(&me).await {
                            tracing::info!(new_pid = %v["pid"], "binary upgrade: the new process serves; this one drains and exits");
                        }
                    });
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading changed units");
                    if let Err(e) = self.audit.writable() {
                        tracing::error!("SIGHUP ignored: {e}");
                        continue;
                    }
                    let before = crate::audit::revisions(&self.engine).await;
                    let outcomes = self.engine.reload_all().await;
                    let after = crate::audit::revisions(&self.engine).await;
                    self.audit.sync(
                        By::Signal,
                        serde_json::json!({"action": "reloadAll"}),
                        &outcomes,
                        &before,
                        &after,
                    );
                }
            }
        }
        let handover = self.handover.lock().expect("handover").take();
        // Also for a warm restart: this generation stops, the next emits server_started.
        self.events.emit(EventKind::ServerStopping);
        self.shutdown.send_replace(true);
        for l in accept_loops {
            let _ = l.await;
        }
        let mgmt_listener = match mgmt_loop {
            Some(h) => h.await.ok().flatten(),
            None => None,
        };
        let drain = self.engine.root.server.drain_timeout;
        let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
        if let Some(mut h) = handover {
            // The sockets go on to the next generation; connections of this one finish in
            // the background, each closing after its current exchange.
            for t in &self.transports {
                t.hand_over(&mut h.pool);
            }
            if let (Some(addr), Some(l)) = (self.mgmt_configured, mgmt_listener) {
                h.pool.put(addr, l);
            }
            self.engine.stop_tasks().await;
            let me = self.clone();
            tokio::spawn(async move { me.drain_connections(graceful, drain).await });
            return Ok(Exit::Restart(h.into()));
        }
        for t in &self.transports {
            t.release();
        }
        drop(mgmt_listener);
        let upgraded = self.upgraded.lock().expect("upgraded").take();
        if let Some(link) = upgraded {
            // The new process holds the sockets: let it run its tasks once ours stopped,
            // then finish what this process still serves, every connection closing after
            // its current exchange.
            self.engine.stop_tasks().await;
            crate::upgrade::release(link);
            self.drain_connections(graceful, drain).await;
            // Answers still being written (the upgrade's own) get a moment to leave.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            return Ok(Exit::Stopped);
        }
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
        self.engine.stop_tasks().await;
        Ok(Exit::Stopped)
    }

    /// Waits until this generation's connections have closed (each is told to close after
    /// its next response), then closes what is left after `drain`.
    async fn drain_connections(&self, graceful: GracefulShutdown, drain: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + drain;
        while tokio::time::Instant::now() < deadline
            && self.transports.iter().any(|t| t.gate.open() > 0)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), graceful.shutdown()).await;
    }

    /// Updates the per-second request rates of every counter set (called once a second).
    async fn sample_rates(&self) {
        for t in &self.transports {
            t.stats.sample_rate();
        }
        let units = self.engine.snapshot();
        for rev in units.values().filter_map(|s| s.current.as_ref()) {
            for p in &rev.proxies {
                p.stats.sample_rate();
            }
            for e in rev.endpoints.values() {
                e.stats.sample_rate();
            }
        }
    }

    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ends this generation for a warm restart: from now on every response says
    /// `Connection: close`, the accept loops stop, and `serve` returns the handover.
    /// Refused (false) while a restart or shutdown is already under way.
    pub fn request_restart(&self, h: Handover) -> bool {
        let mut slot = self.handover.lock().expect("handover");
        if slot.is_some() || *self.shutdown.borrow() || self.upgrading.load(Relaxed) {
            return false;
        }
        *slot = Some(h);
        for t in &self.transports {
            t.draining.store(true, Relaxed);
        }
        self.mgmt_draining.store(true, Relaxed);
        drop(slot);
        self.stop();
        true
    }

    /// Claims the server for a binary upgrade (false while a restart, upgrade or shutdown is
    /// under way).
    pub fn begin_upgrade(&self) -> bool {
        let slot = self.handover.lock().expect("handover");
        !(slot.is_some() || *self.shutdown.borrow() || self.upgrading.swap(true, Relaxed))
    }

    pub fn abort_upgrade(&self) {
        self.upgrading.store(false, Relaxed);
    }

    /// The new process serves: this one stops accepting and ends `serve` (which drains).
    pub fn finish_upgrade(&self, link: std::os::unix::net::UnixStream) {
        *self.upgraded.lock().expect("upgraded") = Some(link);
        for t in &self.transports {
            t.draining.store(true, Relaxed);
        }
        self.mgmt_draining.store(true, Relaxed);
        self.stop();
    }

    /// Duplicates of every listening socket with its configured bind (binary upgrade).
    pub fn listener_dups(&self) -> Vec<(SocketAddr, std::os::fd::OwnedFd)> {
        let mut out: Vec<(SocketAddr, std::os::fd::OwnedFd)> = self
            .transports
            .iter()
            .filter_map(|t| t.dup_socket().map(|fd| (t.configured, fd)))
            .collect();
        if let (Some(addr), Some(fd)) = (self.mgmt_configured, self.mgmt_fd) {
            // SAFETY: the management socket stays open while this server serves.
            if let Ok(d) = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() {
                out.push((addr, d));
            }
        }
        out
    }

    /// The warm restart that started this generation waits for it to serve.
    pub fn when_ready(&self, tx: oneshot::Sender<Result<(), String>>) {
        *self.ready.lock().expect("ready") = Some(tx);
    }

    /// The management listener, for `serve` (once).
    pub fn take_mgmt_listener(&self) -> Option<tokio::net::TcpListener> {
        self.mgmt_listener.lock().expect("mgmt listener").take()
    }

    /// Every bind this generation listens on, as the root config names them.
    pub fn listening_addrs(&self) -> Vec<SocketAddr> {
        self.transports
            .iter()
            .map(|t| t.configured)
            .chain(self.mgmt_configured)
            .collect()
    }

    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }
}

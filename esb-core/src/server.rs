//! The server's state: binds transports and the management endpoint (taking the sockets a
//! previous generation handed over), starts the deployment engine and loads the management
//! tokens, so a weak or tampered token file stops the start-up before anything is served;
//! `state_dir` is created 0700. A warm restart ends a generation without closing its
//! sockets: they go to the next one in a [`Handover`]. Running a generation (signals,
//! draining) is [`crate::serve`]'s.

use crate::audit::Audit;
use crate::auth::{TokenError, Tokens};
use crate::engine::Engine;
use crate::events::{EventBus, EventKind};
use crate::listeners::ListenerPool;
use crate::transport::TransportRuntime;
use deployments::RootConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    /// This node of a cluster (`[cluster]` in the root config), synced while serving.
    pub cluster: Option<Arc<crate::cluster::Node>>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The management listener, bound at start-up (so a taken port fails the start) and
    /// served by `serve`; and its bind as the root config names it.
    mgmt_listener: Mutex<Option<tokio::net::TcpListener>>,
    pub mgmt_configured: Option<SocketAddr>,
    /// Set when this generation stops serving: management responses carry
    /// `Connection: close`.
    pub mgmt_draining: AtomicBool,
    /// Tells this generation's client connections to finish (hand off, close).
    pub(crate) drain: Arc<crate::inbound::Drain>,
    /// A warm restart in progress: taken by `serve` when it ends.
    pub(crate) handover: Mutex<Option<Handover>>,
    /// Told once this generation serves (the warm restart that started it waits for that).
    pub(crate) ready: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    /// A binary upgrade in progress; once the new process serves, the link to it.
    upgrading: AtomicBool,
    pub(crate) upgraded: Mutex<Option<std::os::unix::net::UnixStream>>,
    /// Where a binary upgrade passes connections, once the new process serves.
    pub(crate) successor: std::sync::OnceLock<Arc<crate::handoff::Successor>>,
    mgmt_fd: Option<std::os::fd::RawFd>,
    /// The hot deployer's file watcher of this generation, from the first time hot deploy is
    /// on (a server that never hot-deploys runs no watcher threads) until `serve` ends.
    pub(crate) watcher: Mutex<Watching>,
}

/// The file watcher of a generation.
pub(crate) enum Watching {
    /// Not started: hot deploy has not been on.
    Idle,
    /// Watching for as long as this is held.
    Running { _watcher: crate::watch::Watcher },
    /// `serve` ended: this generation deploys nothing more (the next one watches).
    Ended,
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
        let cluster = crate::cluster::Node::new(engine.clone(), events.clone(), audit.clone())
            .await
            .map_err(StartError::Management)?;
        if let Some(node) = &cluster {
            node.restore_local().await;
        }
        events.emit(EventKind::ServerStarted {
            name: root.server.name.clone(),
        });
        let server = Arc::new(Server {
            cluster,
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
            drain: Arc::new(crate::inbound::Drain::new()),
            handover: Mutex::new(None),
            ready: Mutex::new(None),
            upgrading: AtomicBool::new(false),
            upgraded: Mutex::new(None),
            successor: Default::default(),
            watcher: Mutex::new(Watching::Idle),
            mgmt_fd,
        });
        Ok(server)
    }

    pub fn transport(&self, name: &str) -> Option<&Arc<TransportRuntime>> {
        self.transports.iter().find(|t| t.name == name)
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
            t.start_handover();
        }
        self.mgmt_draining.store(true, Relaxed);
        drop(slot);
        self.stop();
        true
    }

    /// Turns the hot deployer on or off; returns whether it was on. Turning it on starts the
    /// file watcher if it does not run yet; when that fails, hot deploy stays as it was (the
    /// error says so).
    pub fn set_hot_deploy(&self, on: bool) -> Result<bool, String> {
        if on {
            self.start_watching()
                .map_err(|e| format!("{e}; hot deploy stays as it was"))?;
        }
        Ok(self.engine.set_hot_deploy(on))
    }

    /// Starts this generation's file watcher unless it runs.
    pub(crate) fn start_watching(&self) -> Result<(), String> {
        let mut w = self.watcher.lock().expect("watcher");
        match *w {
            Watching::Running { .. } => Ok(()),
            Watching::Ended => Err("this server generation no longer serves (a restart or an upgrade replaced it); send the request again".into()),
            Watching::Idle => {
                let watcher = crate::watch::spawn(self.engine.clone(), self.audit.clone())
                    .map_err(|e| {
                        format!("{e} (check the inotify limits, fs.inotify.max_user_instances and max_user_watches; units can still be reloaded through management or SIGHUP)")
                    })?;
                *w = Watching::Running { _watcher: watcher };
                Ok(())
            }
        }
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

    /// The new process serves: this one passes its idle backend connections and its client
    /// connections on to it (those it can, when it takes them: `next`), stops accepting and
    /// ends `serve` (which drains).
    pub async fn finish_upgrade(
        &self,
        link: std::os::unix::net::UnixStream,
        next: Option<crate::handoff::Successor>,
    ) {
        *self.upgraded.lock().expect("upgraded") = Some(link);
        let next = next.map(Arc::new);
        if let Some(n) = &next {
            // The idle backend connections go with the client connections; to a binary
            // that takes them only on their own, first (in a message or two), so that the
            // first requests the new process reads find them in its pools.
            if !n.paired() {
                n.pass_backends(self.engine.clients()).await;
            }
            let _ = self.successor.set(n.clone());
        }
        for t in &self.transports {
            t.hand_over_to(next.as_ref());
        }
        self.drain.hand_off();
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

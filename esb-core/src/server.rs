//! The running server: loads the root config, binds transports, starts the deployment
//! engine, the hot deployer and the management endpoint, and handles signals (SIGHUP
//! reloads changed units, audited `by: "signal"` and refused while the audit log cannot be
//! written; SIGTERM/SIGINT stop accepting, let in-flight requests finish within the drain
//! timeout, and return). `state_dir` is created 0700; the management tokens are checked
//! here, so a weak or tampered token file stops the start-up before anything is served.

use crate::audit::{Audit, By};
use crate::engine::Engine;
use crate::events::{EventBus, EventKind};
use crate::mgmt::auth::{TokenError, Tokens};
use crate::transport::TransportRuntime;
use deployments::RootConfig;
use hyper_util::server::graceful::GracefulShutdown;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

pub struct Options {
    pub conf_dir: PathBuf,
    pub strict: bool,
    /// Overrides `[hot_deploy] watch`.
    pub watch: Option<bool>,
    /// The event bus; shared across warm restarts so `/events` followers and event ids
    /// carry on.
    pub events: Arc<EventBus>,
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
    restart: AtomicBool,
}

/// How [`Server::serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// A warm restart was asked for: the caller re-executes with the new root config.
    Restart,
}

impl Server {
    /// Everything up to serving: config, state dir, transports bound, units deployed.
    pub async fn start(opts: &Options) -> Result<Arc<Server>, StartError> {
        let root = RootConfig::load(&opts.conf_dir).map_err(StartError::Root)?;
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
        for def in root.transports.iter().filter(|t| t.kind.is_http()) {
            transports.push(TransportRuntime::bind(def, &root.base_dir).await?);
        }
        let root = Arc::new(root);
        let engine = Arc::new(Engine::new(root.clone(), events.clone()));
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
        Ok(Arc::new(Server {
            engine,
            transports,
            events,
            started: Instant::now(),
            maintenance: AtomicBool::new(false),
            conf_dir: opts.conf_dir.clone(),
            audit,
            tokens,
            shutdown: watch::channel(false).0,
            restart: AtomicBool::new(false),
        }))
    }

    pub fn transport(&self, name: &str) -> Option<&Arc<TransportRuntime>> {
        self.transports.iter().find(|t| t.name == name)
    }

    /// Serves until SIGTERM/SIGINT (or [`Server::stop`]), then drains.
    pub async fn serve(self: Arc<Self>) -> Result<Exit, StartError> {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let graceful = Arc::new(GracefulShutdown::new());
        let mut accept_loops = Vec::new();
        for t in &self.transports {
            accept_loops.push(tokio::spawn(t.clone().run(
                self.engine.clone(),
                graceful.clone(),
                self.shutdown.subscribe(),
            )));
        }
        let mut listeners = Vec::new();
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
                n += 1;
                if n.is_multiple_of(10) {
                    sampled.sample_rates().await;
                }
            }
        });
        let _watcher = crate::watch::spawn(self.engine.clone(), self.audit.clone())
            .map_err(|e| tracing::error!("hot deployer: {e}"))
            .ok();
        listeners.extend(
            crate::mgmt::spawn(self.clone())
                .await
                .map_err(StartError::Management)?,
        );

        let mut stop = self.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = stop.changed() => break,
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
        self.events.emit(EventKind::ServerStopping);
        self.shutdown.send_replace(true);
        for l in accept_loops {
            let _ = l.await;
        }
        let drain = self.engine.root.server.drain_timeout;
        let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
        self.engine.stop_tasks().await;
        // Every listener has released its port before a warm restart binds again.
        for l in listeners {
            let _ = l.await;
        }
        Ok(if self.restart.load(std::sync::atomic::Ordering::Relaxed) {
            Exit::Restart
        } else {
            Exit::Stopped
        })
    }

    /// Updates the per-second request rates of every counter set (called once a second).
    async fn sample_rates(&self) {
        for t in &self.transports {
            t.stats.sample_rate();
        }
        let units = self.engine.units.lock().await;
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

    /// Stops serving (draining in-flight requests) so the server can be rebuilt.
    pub fn request_restart(&self) {
        self.restart
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.stop();
    }

    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }
}

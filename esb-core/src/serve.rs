//! Serving one generation of the server: the accept loops, the rate sampler and drain
//! reaper, the hot deployer and the management endpoint run until SIGTERM/SIGINT, a stop
//! or a warm restart; SIGHUP reloads changed units (audited `by: "signal"`), SIGUSR2
//! starts a binary upgrade. Then the generation drains, or hands its sockets to the next.
//! The server's state lives in [`crate::server`]; this is what runs on it.

use crate::audit::By;
use crate::events::EventKind;
use crate::inbound::Drain;
use crate::server::{Exit, Server, StartError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

impl Server {
    /// Serves until SIGTERM/SIGINT (or [`Server::stop`]), then drains.
    pub async fn serve(self: Arc<Self>) -> Result<Exit, StartError> {
        // Operator state (paused, maintenance, addresses…) is back before anything serves.
        crate::operator::apply(&self, &crate::operator::load(&self)).await;
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
        let graceful = self.drain.clone();
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
        let _cluster = self
            .cluster
            .clone()
            .map(|n| n.spawn(self.shutdown.subscribe()));
        // The watcher runs while hot deploy is on (or once it was turned on) and stops with
        // this generation.
        let _watching = StopWatching(&self);
        if self.engine.hot_deploy.load(Relaxed) {
            if let Err(e) = self.start_watching() {
                tracing::error!("hot deployer: {e}");
            }
        }
        let mgmt_loop = crate::mgmt::spawn(self.clone())
            .await
            .map_err(StartError::Management)?;
        // The pid file names the process that serves before anyone is told it does (not
        // synced: after a crash of the machine no pid in it means anything).
        let pid_file = self.engine.root.state_dir().join("esb.pid");
        if let Err(e) = crate::fsx::write_private_volatile(
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
            // The backend connections its last exchanges put back go on, too.
            let next = self.successor.get();
            if let Some(next) = next {
                next.pass_backends(self.engine.clients()).await;
            }
            let passed: u64 = self
                .transports
                .iter()
                .map(|t| t.conns.handed_over.load(Relaxed))
                .sum();
            tracing::info!(
                passed,
                backends = next.map_or(0, |n| n.backends_passed()),
                "binary upgrade: client and idle backend connections passed on to the new process, open"
            );
            // Nothing left to serve: the exit yields the core to the new process.
            crate::sched::step_back();
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

    /// Waits until this generation's connections have closed or been passed on (each is
    /// told to close after its next response, or passes itself on to the new process of a
    /// binary upgrade), then closes what is left after `drain`.
    async fn drain_connections(&self, graceful: Arc<Drain>, drain: std::time::Duration) {
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
}

/// Stops the generation's file watcher when `serve` ends, however it ends.
struct StopWatching<'a>(&'a Server);

impl Drop for StopWatching<'_> {
    fn drop(&mut self) {
        *self.0.watcher.lock().expect("watcher") = crate::server::Watching::Ended;
    }
}

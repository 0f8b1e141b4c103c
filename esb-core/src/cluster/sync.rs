//! The node's sync task: grant a lease, report under it, watch the cluster prefix from the
//! last applied store revision (a full resync when there is none, or when the store
//! compacted past it), apply every unit and control change through the engine, and write
//! the report again after each. Any store error ends the session: the store is shown
//! down, the node serves what it applied, and a new session starts after a short pause.
//! A unit deleted while the `meta` key is gone is a wiped prefix: alarm, nothing unloaded.

use super::store::{Key, UnitDoc};
use super::*;
use etcd_client::{EventType, WatchOptions};

const RETRY: Duration = Duration::from_millis(250);

impl Node {
    /// Runs the sync task until `stop` turns true; then the lease is revoked so the node
    /// shows DOWN at once.
    pub fn spawn(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = self.session() => {
                        if let Err(e) = r {
                            self.set_health(StoreState::Down, Some(e.to_string()));
                        }
                    }
                    _ = stop.wait_for(|v| *v) => break,
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = stop.wait_for(|v| *v) => break,
                }
            }
            let lease = std::mem::take(&mut self.lock().lease);
            if lease != 0 {
                let mut c = self.store.client();
                let _ = self.store.call(c.lease_revoke(lease)).await;
            }
        })
    }

    /// Re-applies the operator state of the local copy (at start-up, before the store is
    /// reached: a paused cluster unit stays paused across a restart even with the store down).
    pub async fn restore_local(&self) {
        let paused: Vec<String> = {
            let s = self.lock();
            s.local
                .units
                .iter()
                .filter(|(_, r)| r.paused)
                .map(|(u, _)| u.clone())
                .collect()
        };
        for u in paused {
            self.engine.set_cluster_paused(&u, true).await;
        }
        let mut s = self.lock();
        s.desired = s
            .local
            .units
            .iter()
            .map(|(u, r)| (u.clone(), (r.revision, r.hash.clone())))
            .collect();
    }

    async fn session(&self) -> Result<(), StoreError> {
        let ttl = self.config.lease.get_ref().as_secs().max(1) as i64;
        let lease = self.store.grant(ttl).await?;
        self.lock().lease = lease;
        let mut client = self.store.client();
        let (mut keeper, mut kept) = self.store.call(client.lease_keep_alive(lease)).await?;
        let applied = self.lock().local.applied_revision;
        let mut from = if applied > 0 {
            applied + 1
        } else {
            self.resync().await? + 1
        };
        self.write_report(lease).await?;
        if self.lock().health == StoreState::Down {
            self.set_health(StoreState::Up, None);
        }
        let mut tick =
            tokio::time::interval(Duration::from_millis((ttl as u64 * 1000 / 3).max(300)));
        loop {
            let options = WatchOptions::new().with_prefix().with_start_revision(from);
            let mut watch = self
                .store
                .call(client.watch(self.store.prefix().to_owned(), Some(options)))
                .await?;
            loop {
                tokio::select! {
                    msg = watch.message() => {
                        let resp = msg
                            .map_err(|e| self.store.unreachable(format!("watch: {e}")))?
                            .ok_or_else(|| self.store.unreachable("the watch ended".into()))?;
                        if resp.canceled() {
                            if resp.compact_revision() > 0 {
                                tracing::warn!(cluster = %self.cluster, from, compacted = resp.compact_revision(), "the store compacted past this node's last applied revision; full resync");
                                from = self.resync().await? + 1;
                                self.write_report(lease).await?;
                                break;
                            }
                            return Err(self.store.unreachable(format!("watch cancelled: {}", resp.cancel_reason())));
                        }
                        if let Some(last) = resp.events().iter().filter_map(|e| e.kv()).map(|kv| kv.mod_revision()).max() {
                            from = from.max(last + 1);
                        }
                        if self.handle(resp.events()).await? {
                            self.write_report(lease).await?;
                        }
                    }
                    _ = tick.tick() => {
                        self.store.call(keeper.keep_alive()).await?;
                    }
                    k = kept.message() => match k {
                        Ok(Some(r)) if r.ttl() > 0 => {}
                        _ => return Err(self.store.unreachable("the node's lease was lost".into())),
                    },
                    _ = self.report_due.notified() => self.write_report(lease).await?,
                }
            }
        }
    }

    async fn write_report(&self, lease: i64) -> Result<(), StoreError> {
        let report = {
            let s = self.lock();
            store::NodeReport {
                node: self.name.clone(),
                applied_revision: s.local.applied_revision,
                units: s.local.units.clone(),
                at_ms: now_ms(),
            }
        };
        self.store.report(lease, &report).await
    }

    fn alarm(&self) {
        self.set_health(
            StoreState::Alarm,
            Some(format!(
                "the cluster's keys under {} are gone (an empty or wiped prefix); nothing was unloaded and every node serves what it applied: deploy the units again (`deploy U --file F --cluster`) or restore the store",
                self.store.prefix()
            )),
        );
    }

    fn save_local(&self, applied: i64) {
        let copy = {
            let mut s = self.lock();
            s.local.applied_revision = applied;
            s.local.clone()
        };
        copy.save(&self.engine.root.state_dir());
    }

    /// Brings this node in line with the whole store (first start, after compaction).
    /// The store revision it is in line with.
    async fn resync(&self) -> Result<i64, StoreError> {
        let snap = self.store.snapshot().await?;
        let running = self.engine.cluster_units().await;
        if !snap.meta {
            if !running.is_empty() {
                self.alarm();
                return Ok(snap.revision);
            }
            self.save_local(snap.revision);
            return Ok(snap.revision);
        }
        for (u, (doc, _)) in &snap.units {
            self.apply_doc(u, doc).await;
        }
        let reported: Vec<String> = self.lock().local.units.keys().cloned().collect();
        for u in running.keys().chain(reported.iter()) {
            if !snap.units.contains_key(u) {
                self.unload_unit(u).await;
            }
        }
        for u in snap.units.keys() {
            let paused = snap.control.get(u).is_some_and(|c| c.paused);
            self.apply_paused(u, paused).await;
        }
        self.lock().desired = snap
            .units
            .iter()
            .map(|(u, (d, _))| (u.clone(), (d.revision, d.hash.clone())))
            .collect();
        self.save_local(snap.revision);
        if self.lock().health == StoreState::Alarm {
            self.set_health(StoreState::Up, None);
        }
        Ok(snap.revision)
    }

    /// Applies one watch response's events; true when this node's report changed.
    async fn handle(&self, events: &[etcd_client::Event]) -> Result<bool, StoreError> {
        let mut units: BTreeMap<String, Option<Result<UnitDoc, String>>> = BTreeMap::new();
        let mut control: BTreeMap<String, bool> = BTreeMap::new();
        let mut meta_deleted = false;
        let mut last = 0;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            let Ok(key) = kv.key_str() else { continue };
            let put = ev.event_type() == EventType::Put;
            match self.store.parse_key(key) {
                Some(Key::Unit(u)) => {
                    let doc = put.then(|| {
                        serde_json::from_slice::<UnitDoc>(kv.value()).map_err(|e| {
                            format!("the store holds a damaged document at {key}: {e}")
                        })
                    });
                    units.insert(u.to_owned(), doc);
                }
                Some(Key::Control(u)) => {
                    let paused = put
                        && serde_json::from_slice::<ControlDoc>(kv.value()).is_ok_and(|c| c.paused);
                    control.insert(u.to_owned(), paused);
                }
                Some(Key::Meta) => meta_deleted |= !put,
                _ => continue,
            }
            last = last.max(kv.mod_revision());
        }
        if last == 0 {
            return Ok(false);
        }
        let deletes = meta_deleted || units.values().any(Option::is_none);
        if deletes && !self.store.meta().await?.1 {
            // Not applied, not recorded as applied: a restart sees the wipe again.
            self.alarm();
            return Ok(true);
        }
        if self.lock().health == StoreState::Alarm && units.values().any(Option::is_some) {
            self.set_health(StoreState::Up, None);
        }
        for (u, doc) in units {
            match doc {
                Some(Ok(doc)) => self.apply_doc(&u, &doc).await,
                Some(Err(e)) => {
                    tracing::error!(unit = %u, "{e}");
                    let mut s = self.lock();
                    if let Some(r) = s.local.units.get_mut(&u) {
                        r.error = Some(e);
                    }
                }
                None => self.unload_unit(&u).await,
            }
        }
        for (u, paused) in control {
            self.apply_paused(&u, paused).await;
        }
        self.save_local(last);
        Ok(true)
    }

    /// Applies a unit revision unless this node already runs it.
    async fn apply_doc(&self, unit: &str, doc: &UnitDoc) {
        self.lock()
            .desired
            .insert(unit.to_owned(), (doc.revision, doc.hash.clone()));
        let done =
            self.lock().local.units.get(unit).is_some_and(|r| {
                r.revision == doc.revision && r.hash == doc.hash && r.error.is_none()
            });
        if done
            && self
                .engine
                .cluster_units()
                .await
                .get(unit)
                .is_some_and(|(_, h)| *h == doc.hash)
        {
            return;
        }
        let publishing = doc.published_from.as_deref() == Some(self.name.as_str());
        let result = self
            .engine
            .apply_cluster(unit, doc.revision, doc.files.clone(), publishing)
            .await;
        let error = match result {
            Ok(outcome) => {
                self.audit_applied(unit, Some(doc), &outcome);
                None
            }
            Err(e) => {
                tracing::warn!(unit, revision = doc.revision, accepted_by = %doc.by, "cluster revision refused on this node: {e}");
                Some(e)
            }
        };
        let mut s = self.lock();
        let paused = s.local.units.get(unit).is_some_and(|r| r.paused);
        s.local.units.insert(
            unit.to_owned(),
            UnitReport {
                revision: doc.revision,
                hash: doc.hash.clone(),
                error,
                paused,
                applied_at_ms: now_ms(),
            },
        );
    }

    async fn unload_unit(&self, unit: &str) {
        if let Some(outcome) = self.engine.unload_cluster(unit).await {
            self.audit_applied(unit, None, &outcome);
        }
        let mut s = self.lock();
        s.local.units.remove(unit);
        s.desired.remove(unit);
    }

    async fn apply_paused(&self, unit: &str, paused: bool) {
        if self.engine.set_cluster_paused(unit, paused).await {
            if let Some(r) = self.lock().local.units.get_mut(unit) {
                r.paused = paused;
            }
        }
    }
}

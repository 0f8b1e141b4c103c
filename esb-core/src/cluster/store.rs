//! The cluster store: etcd, spoken through `etcd-client`, with every call bounded by the
//! configured timeout (an unreachable store is an error within seconds, never a hang).
//! Owns the key layout and the documents under `/esb/<cluster>/`:
//!
//! ```text
//! meta                  created with the first change; its absence while units are known
//!                       means the prefix was wiped (alarm, nothing is unloaded)
//! units/<unit>          the current revision (UnitDoc: number, hash, label, files, by, at)
//! history/<unit>/<N>    kept revisions (UnitDoc), N zero-padded so keys sort by number
//! control/<unit>        desired operator state (ControlDoc)
//! nodes/<node>          a node's report (NodeReport), bound to the node's lease
//! known/<node>          that the node exists (not leased: a node whose report expired is DOWN)
//! ```
//!
//! Writes of a unit are one transaction compared on the unit key's modification revision,
//! so of two concurrent writers exactly one wins.

use deployments::protocol::cluster::UnitReport;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A unit revision as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitDoc {
    pub revision: u64,
    pub hash: String,
    #[serde(default)]
    pub label: Option<String>,
    pub files: BTreeMap<String, String>,
    /// The node that accepted it.
    pub by: String,
    pub at_ms: u64,
    /// Set by `publish`: the node whose disk unit of this name becomes the cluster unit.
    #[serde(default)]
    pub published_from: Option<String>,
}

/// Desired operator state of a cluster unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlDoc {
    pub paused: bool,
    pub by: String,
    pub at_ms: u64,
}

/// What a node reports under its lease.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    /// The last store revision the node applied.
    pub applied_revision: i64,
    pub units: BTreeMap<String, UnitReport>,
    pub at_ms: u64,
}

/// Everything under the prefix at one store revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub meta: bool,
    pub units: BTreeMap<String, (UnitDoc, i64)>,
    pub control: BTreeMap<String, ControlDoc>,
    pub reports: BTreeMap<String, NodeReport>,
    pub known: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cluster store unreachable ({endpoints}): {why}; check that etcd answers there (`etcdctl --endpoints {endpoints} endpoint health`), then retry")]
    Unreachable { endpoints: String, why: String },
    #[error("cluster store holds a damaged document at {key}: {why}; repair or delete that key with etcdctl (docs/cluster.md, key layout)")]
    Damaged { key: String, why: String },
}

/// One key of the layout, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Meta,
    Unit(&'a str),
    History(&'a str, u64),
    Control(&'a str),
    Node(&'a str),
    Known(&'a str),
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    prefix: String,
    endpoints: Vec<String>,
    timeout: Duration,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("store documents serialize")
}

impl Store {
    /// A client of `endpoints`; it connects lazily, so this does not fail when the store
    /// is down.
    pub async fn new(
        cluster: &str,
        endpoints: &[String],
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_keep_alive(Duration::from_secs(2), timeout)
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| StoreError::Unreachable {
                endpoints: endpoints.join(", "),
                why: e.to_string(),
            })?;
        Ok(Store {
            client,
            prefix: format!("/esb/{cluster}/"),
            endpoints: endpoints.to_vec(),
            timeout,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn key(&self, k: &Key<'_>) -> String {
        let p = &self.prefix;
        match k {
            Key::Meta => format!("{p}meta"),
            Key::Unit(u) => format!("{p}units/{u}"),
            Key::History(u, n) => format!("{p}history/{u}/{n:020}"),
            Key::Control(u) => format!("{p}control/{u}"),
            Key::Node(n) => format!("{p}nodes/{n}"),
            Key::Known(n) => format!("{p}known/{n}"),
        }
    }

    /// The key `full` names under this store's prefix, if any.
    pub fn parse_key<'a>(&self, full: &'a str) -> Option<Key<'a>> {
        let rest = full.strip_prefix(&self.prefix)?;
        if rest == "meta" {
            return Some(Key::Meta);
        }
        let (kind, name) = rest.split_once('/')?;
        Some(match kind {
            "units" => Key::Unit(name),
            "control" => Key::Control(name),
            "nodes" => Key::Node(name),
            "known" => Key::Known(name),
            "history" => {
                let (u, n) = name.split_once('/')?;
                Key::History(u, n.parse().ok()?)
            }
            _ => return None,
        })
    }

    /// Runs one store call within the timeout.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Err(_) => Err(self.unreachable(format!(
                "no answer within {}",
                deployments::model::duration::format(&self.timeout)
            ))),
        }
    }

    pub fn unreachable(&self, why: String) -> StoreError {
        StoreError::Unreachable {
            endpoints: self.endpoints.join(", "),
            why,
        }
    }

    /// Everything under the prefix, at one revision.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.get(self.prefix.clone(), Some(GetOptions::new().with_prefix())))
            .await?;
        let mut s = Snapshot {
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
            ..Default::default()
        };
        for kv in resp.kvs() {
            let Ok(key) = kv.key_str() else { continue };
            let damaged = |e: serde_json::Error| StoreError::Damaged {
                key: key.to_owned(),
                why: e.to_string(),
            };
            match self.parse_key(key) {
                Some(Key::Meta) => s.meta = true,
                Some(Key::Unit(u)) => {
                    let doc: UnitDoc = serde_json::from_slice(kv.value()).map_err(damaged)?;
                    s.units.insert(u.to_owned(), (doc, kv.mod_revision()));
                }
                Some(Key::Control(u)) => {
                    let doc = serde_json::from_slice(kv.value()).map_err(damaged)?;
                    s.control.insert(u.to_owned(), doc);
                }
                Some(Key::Node(n)) => {
                    if let Ok(doc) = serde_json::from_slice(kv.value()) {
                        s.reports.insert(n.to_owned(), doc);
                    }
                }
                Some(Key::Known(n)) => s.known.push(n.to_owned()),
                Some(Key::History(..)) | None => {}
            }
        }
        Ok(s)
    }

    /// The current revision of `unit` and its key's modification revision (0: none).
    pub async fn unit(&self, unit: &str) -> Result<(Option<UnitDoc>, i64), StoreError> {
        let mut c = self.client.clone();
        let key = self.key(&Key::Unit(unit));
        let resp = self.call(c.get(key.clone(), None)).await?;
        match resp.kvs().first() {
            None => Ok((None, 0)),
            Some(kv) => {
                let doc = serde_json::from_slice(kv.value()).map_err(|e| StoreError::Damaged {
                    key,
                    why: e.to_string(),
                })?;
                Ok((Some(doc), kv.mod_revision()))
            }
        }
    }

    /// Kept revisions of `unit`, oldest first.
    pub async fn history(&self, unit: &str) -> Result<Vec<UnitDoc>, StoreError> {
        let mut c = self.client.clone();
        let prefix = format!("{}history/{unit}/", self.prefix);
        let resp = self
            .call(
                c.get(
                    prefix,
                    Some(
                        GetOptions::new()
                            .with_prefix()
                            .with_sort(SortTarget::Key, SortOrder::Ascend),
                    ),
                ),
            )
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect())
    }

    /// Writes `doc` as the unit's current revision if the unit key was last modified at
    /// `expected` (0: absent), keeping `keep` revisions of history. `Ok(None)`: another
    /// writer came first; `Ok(Some(store revision))`: committed.
    pub async fn put_unit(
        &self,
        unit: &str,
        doc: &UnitDoc,
        expected: i64,
        keep: usize,
    ) -> Result<Option<i64>, StoreError> {
        let key = self.key(&Key::Unit(unit));
        let bytes = to_json(doc);
        let mut ops = vec![
            TxnOp::put(key.clone(), bytes.clone(), None),
            TxnOp::put(self.key(&Key::History(unit, doc.revision)), bytes, None),
            TxnOp::put(
                self.key(&Key::Meta),
                to_json(&serde_json::json!({"by": doc.by})),
                None,
            ),
        ];
        if doc.revision > keep as u64 {
            let old = doc.revision - keep as u64;
            let from = self.key(&Key::History(unit, 0));
            let to = self.key(&Key::History(unit, old + 1));
            ops.push(TxnOp::delete(
                from,
                Some(etcd_client::DeleteOptions::new().with_range(to)),
            ));
        }
        self.cas(&key, expected, ops).await
    }

    /// Deletes the unit (and its desired state) if its key is at `expected`; history stays,
    /// so a later deploy continues the numbering.
    pub async fn delete_unit(&self, unit: &str, expected: i64) -> Result<Option<i64>, StoreError> {
        let key = self.key(&Key::Unit(unit));
        let ops = vec![
            TxnOp::delete(key.clone(), None),
            TxnOp::delete(self.key(&Key::Control(unit)), None),
        ];
        self.cas(&key, expected, ops).await
    }

    async fn cas(
        &self,
        key: &str,
        expected: i64,
        ops: Vec<TxnOp>,
    ) -> Result<Option<i64>, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then(ops);
        let mut c = self.client.clone();
        let resp = self.call(c.txn(txn)).await?;
        Ok(resp
            .succeeded()
            .then(|| resp.header().map(|h| h.revision()).unwrap_or(0)))
    }

    /// The next revision number of `unit`: one past its current revision or its newest
    /// kept one.
    pub async fn next_revision(
        &self,
        unit: &str,
        current: Option<&UnitDoc>,
    ) -> Result<u64, StoreError> {
        let kept = self.history(unit).await?;
        Ok(kept
            .iter()
            .map(|d| d.revision)
            .chain(current.map(|d| d.revision))
            .max()
            .unwrap_or(0)
            + 1)
    }

    /// Writes the desired operator state of a unit that exists.
    pub async fn put_control(
        &self,
        unit: &str,
        doc: &ControlDoc,
    ) -> Result<Option<i64>, StoreError> {
        let unit_key = self.key(&Key::Unit(unit));
        let txn = Txn::new()
            .when([Compare::version(unit_key, CompareOp::Greater, 0)])
            .and_then([TxnOp::put(
                self.key(&Key::Control(unit)),
                to_json(doc),
                None,
            )]);
        let mut c = self.client.clone();
        let resp = self.call(c.txn(txn)).await?;
        Ok(resp
            .succeeded()
            .then(|| resp.header().map(|h| h.revision()).unwrap_or(0)))
    }

    /// The live nodes' reports (those whose lease holds).
    pub async fn reports(&self) -> Result<BTreeMap<String, NodeReport>, StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.get(
                format!("{}nodes/", self.prefix),
                Some(GetOptions::new().with_prefix()),
            ))
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice::<NodeReport>(kv.value()).ok())
            .map(|r| (r.node.clone(), r))
            .collect())
    }

    /// A lease of `ttl` seconds.
    pub async fn grant(&self, ttl: i64) -> Result<i64, StoreError> {
        let mut c = self.client.clone();
        Ok(self.call(c.lease_grant(ttl, None)).await?.id())
    }

    /// Puts this node's report under its lease, and that it exists.
    pub async fn report(&self, lease: i64, report: &NodeReport) -> Result<(), StoreError> {
        let mut c = self.client.clone();
        let txn = Txn::new().and_then([
            TxnOp::put(
                self.key(&Key::Node(&report.node)),
                to_json(report),
                Some(PutOptions::new().with_lease(lease)),
            ),
            TxnOp::put(self.key(&Key::Known(&report.node)), b"{}".to_vec(), None),
        ]);
        self.call(c.txn(txn)).await.map(|_| ())
    }

    /// The store's current revision and whether the meta key exists (false: the prefix
    /// was wiped); also how reachability is checked.
    pub async fn meta(&self) -> Result<(i64, bool), StoreError> {
        let mut c = self.client.clone();
        let resp = self
            .call(c.get(
                self.key(&Key::Meta),
                Some(GetOptions::new().with_count_only()),
            ))
            .await?;
        Ok((
            resp.header().map(|h| h.revision()).unwrap_or(0),
            resp.count() > 0,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store client of a port nobody listens on.
    async fn nowhere(cluster: &str) -> Store {
        Store::new(
            cluster,
            &["http://127.0.0.1:1".to_owned()],
            Duration::from_millis(300),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn keys_round_trip() {
        let s = nowhere("prod").await;
        for k in [
            Key::Meta,
            Key::Unit("orders"),
            Key::History("orders", 7),
            Key::Control("orders"),
            Key::Node("n1"),
            Key::Known("n1"),
        ] {
            let full = s.key(&k);
            assert!(full.starts_with("/esb/prod/"), "{full}");
            assert_eq!(s.parse_key(&full), Some(k));
        }
        assert_eq!(s.parse_key("/esb/other/units/x"), None);
        // History keys sort by number.
        assert!(s.key(&Key::History("u", 9)) < s.key(&Key::History("u", 10)));
    }

    #[tokio::test]
    async fn an_unreachable_store_is_an_error_within_the_timeout() {
        let s = nowhere("c").await;
        let e = s.snapshot().await.unwrap_err().to_string();
        assert!(
            e.starts_with("cluster store unreachable (http://127.0.0.1:1)"),
            "{e}"
        );
    }
}

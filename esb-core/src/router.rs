//! The routing table: an immutable snapshot (swapped whole with arc-swap) mapping
//! transport + longest path prefix + method to a proxy. Lookup walks the request path's
//! segment prefixes from the longest, one hash lookup each, so its cost does not grow with
//! the number of proxies.

use crate::proxy::{ProxyRuntime, ProxyState};
use http::Method;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct RoutingTable {
    transports: HashMap<String, HashMap<String, Vec<Arc<ProxyRuntime>>>>,
}

pub enum Lookup {
    Found(Arc<ProxyRuntime>),
    /// A path matched but not the method; the methods that would have.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

impl RoutingTable {
    /// Builds the table from every active proxy; `all_transports` serves proxies that name none.
    pub fn build<'a>(
        proxies: impl Iterator<Item = &'a Arc<ProxyRuntime>>,
        all_transports: &[String],
    ) -> Self {
        let mut transports: HashMap<String, HashMap<String, Vec<Arc<ProxyRuntime>>>> =
            HashMap::new();
        for p in proxies {
            let names = if p.transports.is_empty() {
                all_transports
            } else {
                &p.transports[..]
            };
            for t in names {
                transports
                    .entry(t.clone())
                    .or_default()
                    .entry(p.path.clone())
                    .or_default()
                    .push(p.clone());
            }
        }
        RoutingTable { transports }
    }

    pub fn lookup(&self, transport: &str, method: &Method, path: &str) -> Lookup {
        let Some(paths) = self.transports.get(transport) else {
            return Lookup::NotFound;
        };
        let mut allowed = Vec::new();
        let mut prefix = path.trim_end_matches('/');
        loop {
            let key = if prefix.is_empty() { "/" } else { prefix };
            if let Some(candidates) = paths.get(key) {
                for p in candidates {
                    if p.proxy_state() == ProxyState::Stopped {
                        continue;
                    }
                    if p.allows(method) {
                        return Lookup::Found(p.clone());
                    }
                    allowed.extend(p.methods.iter().cloned());
                }
            }
            if prefix.is_empty() {
                break;
            }
            prefix = &prefix[..prefix.rfind('/').unwrap_or(0)];
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::MethodNotAllowed(allowed)
        }
    }

    pub fn proxies(&self) -> usize {
        self.transports
            .values()
            .flat_map(|m| m.values())
            .map(|v| v.len())
            .sum()
    }
}

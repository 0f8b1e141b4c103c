//! The routing table: an immutable snapshot (swapped whole with arc-swap) mapping
//! transport + longest path prefix + method to a proxy. Lookup walks the request path's
//! segment prefixes from the longest, one hash lookup each, so its cost does not grow with
//! the number of proxies.

use crate::proxy::{ProxyRuntime, ProxyState};
use http::Method;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Maps of the routing table: hashed with foldhash (see esb-core's Cargo.toml).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct RoutingTable {
    transports: Map<String, Map<Route, Vec<Arc<ProxyRuntime>>>>,
}

/// The first proxy on a path, standing for the path as the key: no copy of the path and
/// no list allocated per route (the list holds the rare further proxies on the same path,
/// told apart by method). Hashes and compares as its path, so `&str` looks it up.
struct Route(Arc<ProxyRuntime>);

impl Route {
    fn path(&self) -> &str {
        &self.0.path
    }
}

impl Borrow<str> for Route {
    fn borrow(&self) -> &str {
        self.path()
    }
}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path().hash(state);
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl Eq for Route {}

pub enum Lookup {
    Found(Arc<ProxyRuntime>),
    /// A path matched but not the method; the methods that would have.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

// A `Route` hashes as its proxy's path, which never changes: the proxy's interior
// mutability (counters, state) does not reach the key.
#[allow(clippy::mutable_key_type)]
impl RoutingTable {
    /// Builds the table from every active proxy; `all_transports` serves proxies that name none.
    pub fn build<'a>(
        proxies: impl Iterator<Item = &'a Arc<ProxyRuntime>>,
        all_transports: &[String],
    ) -> Self {
        let mut transports: Map<String, Map<Route, Vec<Arc<ProxyRuntime>>>> = Map::default();
        for p in proxies {
            let names = if p.transports.is_empty() {
                all_transports
            } else {
                &p.transports[..]
            };
            for t in names {
                let paths = match transports.get_mut(t.as_str()) {
                    Some(paths) => paths,
                    None => transports.entry(t.clone()).or_default(),
                };
                match paths.get_mut(p.path.as_str()) {
                    Some(more) => more.push(p.clone()),
                    None => {
                        paths.insert(Route(p.clone()), Vec::new());
                    }
                }
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
            if let Some((first, more)) = paths.get_key_value(key) {
                for p in std::iter::once(&first.0).chain(more) {
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
            .map(|more| 1 + more.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{RevisionInfo, UnitControl};
    use crate::template::UnitVars;

    fn proxy(name: &str, path: &str, methods: &[Method], transports: &[&str]) -> Arc<ProxyRuntime> {
        let control = Arc::new(UnitControl::default());
        let vars = UnitVars {
            name: "u".into(),
            version: String::new(),
            revision: "1".into(),
            flags: Default::default(),
        };
        Arc::new(ProxyRuntime {
            name: name.into(),
            path: path.into(),
            methods: methods.into(),
            transports: transports.iter().map(|t| t.to_string()).collect(),
            info: Arc::new(RevisionInfo::new("u".into(), 1, vars, control.clone(), 0)),
            in_seq: None,
            out_seq: None,
            fault_seq: None,
            endpoint: None,
            state: control.proxy_state(name),
            stats: Default::default(),
            canary: Default::default(),
        })
    }

    /// Checks `(transport, method, path, proxy found)` cases against a table.
    fn expect(t: &RoutingTable, cases: &[(&str, Method, &str, Option<&str>)]) {
        for (transport, method, path, want) in cases {
            let got = match t.lookup(transport, method, path) {
                Lookup::Found(p) => Some(p.name.clone()),
                _ => None,
            };
            assert_eq!(got.as_deref(), *want, "{transport} {method} {path}");
        }
    }

    #[test]
    fn longest_prefix_then_method_then_transport() {
        let all = vec!["a".to_owned(), "b".to_owned()];
        let proxies = [
            proxy("root", "/", &[], &[]),
            proxy("orders", "/orders", &[], &["a"]),
            proxy("orders-get", "/orders/list", &[Method::GET], &[]),
            proxy("orders-post", "/orders/list", &[Method::POST], &[]),
        ];
        let t = RoutingTable::build(proxies.iter(), &all);
        assert_eq!(t.proxies(), 7);
        expect(
            &t,
            &[
                ("a", Method::GET, "/orders/1", Some("orders")),
                ("b", Method::GET, "/orders/1", Some("root")),
                ("a", Method::GET, "/orders/list/x", Some("orders-get")),
                ("b", Method::POST, "/orders/list", Some("orders-post")),
                ("c", Method::GET, "/", None),
            ],
        );

        // Only the two method-bound proxies on a path: the others' methods are named.
        let t = RoutingTable::build(proxies[2..].iter(), &all);
        match t.lookup("a", &Method::DELETE, "/orders/list") {
            Lookup::MethodNotAllowed(m) => assert_eq!(m, vec![Method::GET, Method::POST]),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            t.lookup("a", &Method::GET, "/other"),
            Lookup::NotFound
        ));

        // A stopped proxy is passed over: on to the other on its path, then shorter prefixes.
        proxies[2].state.store(
            ProxyState::Stopped as u8,
            std::sync::atomic::Ordering::Relaxed,
        );
        let t = RoutingTable::build(proxies.iter(), &all);
        expect(
            &t,
            &[
                ("a", Method::GET, "/orders/list", Some("orders")),
                ("a", Method::POST, "/orders/list", Some("orders-post")),
            ],
        );
    }
}

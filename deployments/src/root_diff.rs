//! What a warm restart changes in the root config: transports added, removed or changed
//! (by name), and every other setting that changed (`server.drain_timeout`, …). Reported
//! with the restart's outcome, as a unit deploy reports its diff.

use crate::root::RootConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootDiff {
    pub transports_added: Vec<String>,
    pub transports_removed: Vec<String>,
    pub transports_changed: Vec<String>,
    /// Dotted keys of the other settings that changed.
    pub settings_changed: Vec<String>,
}

impl RootDiff {
    pub fn between(old: &RootConfig, new: &RootConfig) -> RootDiff {
        let mut d = RootDiff::default();
        for t in &new.transports {
            match old.transport(t.name.get_ref()) {
                None => d.transports_added.push(t.name.get_ref().clone()),
                Some(o) if json(o) != json(t) => {
                    d.transports_changed.push(t.name.get_ref().clone())
                }
                Some(_) => {}
            }
        }
        for t in &old.transports {
            if new.transport(t.name.get_ref()).is_none() {
                d.transports_removed.push(t.name.get_ref().clone());
            }
        }
        for (section, a, b) in [
            ("server", json(&old.server), json(&new.server)),
            ("management", json(&old.management), json(&new.management)),
            ("hot_deploy", json(&old.hot_deploy), json(&new.hot_deploy)),
        ] {
            changed_keys(section, &a, &b, &mut d.settings_changed);
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        *self == RootDiff::default()
    }
}

fn changed_keys(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let null = Value::Null;
                changed_keys(
                    &format!("{prefix}.{k}"),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// A config section as JSON, for comparing.
fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

impl fmt::Display for RootDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("esb.toml unchanged");
        }
        let mut parts = Vec::new();
        for (what, list) in [
            ("transports added", &self.transports_added),
            ("transports removed", &self.transports_removed),
            ("transports changed", &self.transports_changed),
            ("settings changed", &self.settings_changed),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn root(text: &str) -> RootConfig {
        RootConfig::parse(text, "esb.toml", Path::new(".")).unwrap()
    }

    #[test]
    fn reports_transports_and_settings_by_name() {
        let a = root("[server]\ndrain_timeout = \"5s\"\n[[transport]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n[[transport]]\nname = \"b\"\nbind = \"127.0.0.1:2\"\n");
        let b = root("[server]\ndrain_timeout = \"9s\"\n[[transport]]\nname = \"a\"\nbind = \"127.0.0.1:3\"\n[[transport]]\nname = \"c\"\nbind = \"127.0.0.1:2\"\n");
        let d = RootDiff::between(&a, &b);
        assert_eq!(d.transports_added, ["c"]);
        assert_eq!(d.transports_removed, ["b"]);
        assert_eq!(d.transports_changed, ["a"]);
        assert_eq!(d.settings_changed, ["server.drain_timeout"]);
        assert!(RootDiff::between(&a, &a).is_empty());
        assert_eq!(
            d.to_string(),
            "transports added: c; transports removed: b; transports changed: a; settings changed: server.drain_timeout"
        );
    }
}

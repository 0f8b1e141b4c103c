//! The value of a `version` response.

use super::*;

/// The `info` part of a version response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product: String,
    pub vendor: String,
    pub version: String,
}

/// Value of a `version` response:
/// `{"agent":..,"protocol":"7.2","config":{..},"info":{"product":..,"vendor":..,"version":..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub agent: String,
    pub protocol: String,
    pub config: Map<String, Value>,
    pub info: ProductInfo,
}

impl VersionInfo {
    /// Agent version = `version`, vendor `"esb"`, protocol [`PROTOCOL_VERSION`], empty config.
    pub fn new(product: &str, version: &str) -> VersionInfo {
        VersionInfo {
            agent: version.to_string(),
            protocol: PROTOCOL_VERSION.to_string(),
            config: Map::new(),
            info: ProductInfo {
                product: product.to_string(),
                vendor: "esb".to_string(),
                version: version.to_string(),
            },
        }
    }

    /// As a JSON value, for [`Response::ok`].
    pub fn to_value(&self) -> Value {
        json!({
            "agent": self.agent,
            "protocol": self.protocol,
            "config": self.config,
            "info": {
                "product": self.info.product,
                "vendor": self.info.vendor,
                "version": self.info.version,
            },
        })
    }
}

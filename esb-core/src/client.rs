//! Outbound HTTP clients ([`crate::outbound`]: pooled keep-alive connections, so load does
//! not leave a TIME_WAIT storm towards backends) with rustls for `https://` addresses. One
//! client per (connect timeout, extra CA file), shared by every endpoint that asks for the
//! same — and, through [`Clients`], by the next generation of a warm restart.

pub use crate::outbound::HttpClient;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

#[derive(Default)]
pub struct Clients {
    cache: Mutex<HashMap<ClientKey, HttpClient>>,
}

impl Clients {
    /// The client for this connect timeout and extra CA file. With a CA file its TLS
    /// setup is made now, so that a CA file that cannot be used fails the deploy; without,
    /// once an endpoint with an `https://` address asks for it ([`HttpClient::tls`]).
    pub fn get(
        &self,
        connect_timeout: Duration,
        ca_file: Option<PathBuf>,
    ) -> Result<HttpClient, ClientError> {
        let key = ClientKey {
            connect_timeout,
            ca_file,
        };
        let mut cache = self.cache.lock().expect("client cache");
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let client = if key.ca_file.is_some() {
            let config = tls_config(key.ca_file.as_deref())?;
            let client = HttpClient::new(connect_timeout, Box::new(move || Ok(config.clone())));
            client.tls().map_err(ClientError::Tls)?;
            client
        } else {
            HttpClient::new(
                connect_timeout,
                Box::new(|| tls_config(None).map_err(|e| e.to_string())),
            )
        };
        cache.insert(key, client.clone());
        Ok(client)
    }

    /// Every idle plain-TCP backend connection, taken out of the pools with what names its
    /// pool: the client's key and the address (a binary upgrade passes them on).
    pub fn take_idle(&self) -> Vec<(ClientKey, String, Box<crate::outbound::conn::Conn>)> {
        let cache = self.cache.lock().expect("client cache");
        let mut taken = Vec::new();
        for (key, client) in cache.iter() {
            taken.extend(
                client
                    .take_idle()
                    .into_iter()
                    .map(|(address, conn)| (key.clone(), address, conn)),
            );
        }
        taken
    }

    /// One idle plain-TCP backend connection, from the pool with the most idle ones on the
    /// calling thread ([`HttpClient::take_one_idle`]), with its client's key and address.
    pub fn take_one_idle(&self) -> Option<(ClientKey, String, Box<crate::outbound::conn::Conn>)> {
        let cache = self.cache.lock().expect("client cache");
        let (key, client) = cache
            .iter()
            .map(|(key, client)| (client.idle_here(), key, client))
            .filter(|(held, ..)| *held > 0)
            .max_by_key(|(held, ..)| *held)
            .map(|(_, key, client)| (key, client))?;
        let (address, conn) = client.take_one_idle()?;
        Some((key.clone(), address, conn))
    }

    /// Makes `stream` an idle connection to `address` of the client `key` names — if this
    /// configuration has such a client (an endpoint uses it); else the connection closes.
    pub fn adopt_idle(
        &self,
        key: ClientKey,
        address: &str,
        stream: std::net::TcpStream,
    ) -> Result<(), String> {
        let client = self
            .cache
            .lock()
            .expect("client cache")
            .get(&key)
            .cloned()
            .ok_or("no endpoint of this configuration has that client")?;
        client.adopt_idle(address, stream)
    }

    /// Backend connections opened by every client, and those taken over from the process a
    /// binary upgrade replaced.
    pub fn connections(&self) -> (u64, u64) {
        let cache = self.cache.lock().expect("client cache");
        cache.values().fold((0, 0), |(o, a), c| {
            let (co, ca) = c.connections_opened();
            (o + co, a + ca)
        })
    }
}

/// What tells one client (and its pools) from another: its connect timeout and extra CA
/// file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClientKey {
    pub connect_timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

/// The system's trusted roots, read once (reading them takes tens of milliseconds, too
/// long to repeat inside a deploy).
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: std::sync::OnceLock<rustls::RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    })
}

/// The TLS setup of a client: the system's trusted roots and those of `ca_file`.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = system_roots().clone();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
            path: path.to_path_buf(),
            source,
        })?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
            .filter_map(|c| c.ok())
            .collect();
        if certs.is_empty() {
            return Err(ClientError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        for c in certs {
            roots.add(c).map_err(|e| ClientError::Tls(e.to_string()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(tls))
}

//! The management endpoint (Jolokia protocol, events, metrics, health).

use crate::server::Server;
use std::sync::Arc;

/// Starts the management listener.
pub async fn spawn(_server: Arc<Server>) -> Result<(), String> {
    Ok(())
}

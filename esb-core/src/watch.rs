//! The hot deployer (in progress).

use crate::engine::Engine;
use std::sync::Arc;

pub fn spawn(_engine: Arc<Engine>) -> Result<(), String> {
    Ok(())
}

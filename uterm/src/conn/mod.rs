//! The connection to a server: [`client`] (Jolokia bulk POSTs, the `/events` and tap
//! streams) with [`token`] (where the bearer token comes from) and [`error`] (why
//! the server could not be used), [`sse`] (the server-sent-event format of those streams, the
//! [`sse::Event`] of `/events`) and [`servers`] (the per-user servers file that names them).

pub mod client;
pub mod error;
pub mod servers;
pub mod sse;
pub mod token;

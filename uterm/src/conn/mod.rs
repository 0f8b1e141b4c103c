//! The connection to a server: [`client`] (Jolokia bulk POSTs, the `/events` and tap
//! streams, the token) and [`servers`] (the per-user servers file that names them).

pub mod client;
pub mod servers;

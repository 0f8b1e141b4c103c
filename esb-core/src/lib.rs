//! The ESB core: data plane (transports, routing, proxies, mediation, endpoints), the
//! deployment engine with revisions, last-good and draining, the hot deployer, scheduled
//! tasks, message and file consumers, typed events and the management endpoint.

pub mod accept;
pub mod amqp;
pub mod audit;
pub mod auth;
pub mod body;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod consumer;
pub mod control;
pub mod endpoint;
pub mod engine;
pub mod events;
pub mod fsx;
pub mod handoff;
pub mod http1;
pub mod inbound;
pub mod json;
pub mod listeners;
pub mod mediation;
pub mod message;
pub mod metrics;
pub mod mgmt;
pub mod operator;
pub mod outbound;
pub mod proxy;
pub mod revision;
pub mod router;
pub mod sched;
pub mod serve;
pub mod server;
pub mod state;
pub mod tap;
pub mod task;
pub mod template;
pub mod transport;
pub mod upgrade;
pub mod watch;
pub mod workers;

//! Service plumbing every ferrofluid component shares, written once: command-line flags common to all,
//! the kube client, tracing, the health/metrics HTTP server, leader election on a Lease, and graceful
//! shutdown. Components never talk to each other; this crate only talks to the API server.

pub mod args;
pub mod backoff;
pub mod client;
pub mod delete;
pub mod error;
pub mod events;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rate_limit;
pub mod ready;
pub mod reconcile;
pub mod request_metrics;
pub mod runner;
pub mod shutdown;
pub mod ssa;
pub mod telemetry;
pub mod watch;

pub use args::{CommonArgs, ControllerArgs, LeaderArgs};
pub use http::Health;
pub use shutdown::shutdown_on_signal;

//! Flags every component takes (flattened into each component's own `clap` parser).

use std::{net::SocketAddr, path::PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Kubeconfig file; in-cluster configuration (service account) when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "FERROFLUID_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Log as JSON lines instead of human-readable text. Levels come from RUST_LOG (default `info`).
    #[arg(long, env = "FERROFLUID_LOG_JSON")]
    pub log_json: bool,
    /// Client-side rate limit for API requests: sustained queries per second (0 = unlimited).
    #[arg(long, env = "FERROFLUID_API_QPS", default_value_t = 50.0)]
    pub api_qps: f64,
    /// Client-side rate limit burst.
    #[arg(long, env = "FERROFLUID_API_BURST", default_value_t = 100)]
    pub api_burst: u32,
}

/// Leader-election flags for components that run as several replicas with one active.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderArgs {
    /// Elect a leader through a Lease so only one replica works at a time.
    #[arg(long, env = "FERROFLUID_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Seconds a lease stays valid after its last renewal; a standby takes over after this long.
    #[arg(long, env = "FERROFLUID_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
}

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
    #[arg(long, env = "FERROFLUID_API_QPS", default_value_t = 200.0)]
    pub api_qps: f64,
    /// Client-side rate limit burst.
    #[arg(long, env = "FERROFLUID_API_BURST", default_value_t = 400)]
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

/// Flags of a controller's work queue and scope.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Objects reconciled at the same time.
    #[arg(long, env = "FERROFLUID_CONCURRENCY", default_value_t = 4)]
    pub concurrency: u16,
    /// Only watch this namespace (default: all namespaces).
    #[arg(long, env = "FERROFLUID_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
}

/// Parses a positive duration flag: `15s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{raw:?} is not a duration (examples: 15s, 500ms, 1m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{raw:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    let d = std::time::Duration::try_from_secs_f64(seconds).map_err(|_| format!("{raw:?} is out of range"))?;
    if d.is_zero() {
        return Err(format!("{raw:?}: must be greater than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "0s", "fast", "10 parsecs", "-1s", "1d", "5 days"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}

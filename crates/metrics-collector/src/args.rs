//! Command-line flags (each also readable from an environment variable).

use ferrofluid_service::{CommonArgs, LeaderArgs};
use std::time::Duration;

/// Scrapes the JuiceFS metrics of every JuiceFSRuntime's worker and FUSE pods, writes
/// `status.cacheStates` of the runtime and its Dataset (and `status.ufsTotal` of the Dataset), and
/// exports per-dataset cache series on /metrics. Two replicas may run: one holds the lease and works,
/// the other serves /healthz and waits.
#[derive(clap::Parser, Debug)]
#[command(name = "metrics-collector", version, about, long_about)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub leader: LeaderArgs,
    /// Time between scrape rounds (e.g. `15s`, `500ms`, `1m`; a bare number is seconds).
    #[arg(long, env = "FERROFLUID_SCRAPE_INTERVAL", default_value = "15s", value_parser = ferrofluid_service::args::parse_duration)]
    pub scrape_interval: Duration,
    /// Longest wait for one endpoint (connect, answer and body); must not exceed the interval.
    #[arg(long, env = "FERROFLUID_SCRAPE_TIMEOUT", default_value = "5s", value_parser = ferrofluid_service::args::parse_duration)]
    pub scrape_timeout: Duration,
    /// Endpoints scraped at the same time.
    #[arg(long, env = "FERROFLUID_SCRAPE_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub scrape_concurrency: u16,
    /// Only collect for runtimes in this namespace (default: all namespaces).
    #[arg(long, env = "FERROFLUID_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Largest metrics answer accepted from one endpoint, in bytes.
    #[arg(long, env = "FERROFLUID_SCRAPE_MAX_BYTES", default_value_t = 4 << 20)]
    pub scrape_max_bytes: usize,
    /// Serve the custom metrics API (`custom.metrics.k8s.io/v1beta2`: capacity_used_rate, cached_percentage,
    /// cache_hit_ratio, cached_bytes of Datasets and JuiceFSRuntimes, for HorizontalPodAutoscalers) over
    /// TLS on this address, on every replica. Needs the API server's front proxy (request-header
    /// authentication) and `create` on SubjectAccessReviews. Off when unset.
    #[arg(long, env = "FERROFLUID_CUSTOM_METRICS_ADDR")]
    pub custom_metrics_addr: Option<std::net::SocketAddr>,
}

impl Args {
    /// Checks the flags that depend on each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.scrape_interval.is_zero() {
            return Err("--scrape-interval must be greater than zero".into());
        }
        if self.scrape_timeout.is_zero() || self.scrape_timeout > self.scrape_interval {
            return Err(format!(
                "--scrape-timeout ({:?}) must be greater than zero and at most --scrape-interval ({:?}), so a \
                 hung endpoint delays a round by at most one interval",
                self.scrape_timeout, self.scrape_interval
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_validation() {
        let args = Args::try_parse_from(["metrics-collector"]).expect("defaults parse");
        assert_eq!(args.scrape_interval, Duration::from_secs(15));
        assert_eq!(args.scrape_timeout, Duration::from_secs(5));
        assert!(args.leader.leader_elect);
        assert_eq!(args.validate(), Ok(()));
        let slow = Args::try_parse_from(["metrics-collector", "--scrape-interval", "1s", "--scrape-timeout", "2s"])
            .expect("parses");
        assert!(slow.validate().is_err());
        assert!(Args::try_parse_from(["metrics-collector", "--scrape-concurrency", "0"]).is_err());
    }
}

//! The kube client: from a kubeconfig file when given, else in-cluster or the default kubeconfig;
//! optionally rate-limited on the client side.

use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// Client-side request rate limit: on average `qps` requests per second, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

impl RateLimit {
    /// The window in which `burst` requests may start; `None` when unlimited.
    pub fn window(&self) -> Option<(u64, Duration)> {
        if self.qps <= 0.0 || !self.qps.is_finite() {
            return None;
        }
        let burst = self.burst.max(1);
        Some((u64::from(burst), Duration::from_secs_f64(f64::from(burst) / self.qps)))
    }
}

pub async fn config(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Ok(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)
        }
        None => kube::Config::infer().await.context("no kubeconfig given and no in-cluster configuration"),
    }
}

/// A client without a client-side rate limit.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    limited_client(kubeconfig, None).await
}

/// A client whose requests are rate-limited on this side (`--api-qps`, `--api-burst`).
pub async fn limited_client(kubeconfig: Option<&Path>, limit: Option<RateLimit>) -> anyhow::Result<kube::Client> {
    let builder =
        kube::client::ClientBuilder::try_from(config(kubeconfig).await?).context("building the kube client")?;
    Ok(match limit.and_then(|l| l.window()) {
        Some((num, per)) => builder.with_layer(&tower::limit::RateLimitLayer::new(num, per)).build(),
        None => builder.build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(RateLimit { qps: 50.0, burst: 100 }.window(), Some((100, Duration::from_secs(2))));
        assert_eq!(RateLimit { qps: 0.0, burst: 100 }.window(), None);
        assert_eq!(RateLimit { qps: 10.0, burst: 0 }.window(), Some((1, Duration::from_millis(100))));
    }
}

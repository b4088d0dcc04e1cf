//! The kube client: from a kubeconfig file when given, else in-cluster or the default kubeconfig;
//! optionally rate-limited on the client side.

use anyhow::Context;
use std::path::Path;

/// Client-side request rate limit: on average `qps` requests per second, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
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
    limited_client(kubeconfig, None, None).await
}

/// A client whose requests are rate-limited on this side (`--api-qps`, `--api-burst`) and, with
/// `counted`, counted by verb and resource (`ferrofluid_api_requests_total`).
pub async fn limited_client(
    kubeconfig: Option<&Path>,
    limit: Option<RateLimit>,
    counted: Option<&crate::request_metrics::RequestMetrics>,
) -> anyhow::Result<kube::Client> {
    let builder =
        kube::client::ClientBuilder::try_from(config(kubeconfig).await?).context("building the kube client")?;
    let limiter = limit.and_then(|l| crate::rate_limit::RateLimitLayer::new(l.qps, l.burst));
    Ok(match (limiter, counted) {
        (Some(l), Some(c)) => builder.with_layer(&l).with_layer(c).build(),
        (Some(l), None) => builder.with_layer(&l).build(),
        (None, Some(c)) => builder.with_layer(c).build(),
        (None, None) => builder.build(),
    })
}

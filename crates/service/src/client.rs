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
    limited_client(kubeconfig, None).await
}

/// A client whose requests are rate-limited on this side (`--api-qps`, `--api-burst`).
pub async fn limited_client(kubeconfig: Option<&Path>, limit: Option<RateLimit>) -> anyhow::Result<kube::Client> {
    let builder =
        kube::client::ClientBuilder::try_from(config(kubeconfig).await?).context("building the kube client")?;
    Ok(match limit.filter(|l| l.qps > 0.0 && l.qps.is_finite()) {
        Some(l) => builder.with_layer(&crate::rate_limit::TokenBucketLayer::new(l.qps, l.burst)).build(),
        None => builder.build(),
    })
}

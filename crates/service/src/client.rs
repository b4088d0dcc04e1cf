//! The kube client: from a kubeconfig file when given, else in-cluster or the default kubeconfig.

use anyhow::Context;
use std::path::Path;

pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await.context("no kubeconfig given and no in-cluster configuration")?,
    };
    kube::Client::try_from(config).context("building the kube client")
}

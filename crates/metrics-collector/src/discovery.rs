//! Discovery through the API server only: reflectors (watch + local cache) on ferrofluid's JuiceFS pods
//! (by label selector), on JuiceFSRuntimes and on Datasets. After the initial list each is kept current by
//! its watch; the collector never lists on its own schedule.

use crate::targets::pod_selector;
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use ferrofluid_service::runner::scoped_api;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use tokio_util::sync::CancellationToken;

/// Read-only caches of the objects the collector works from.
#[derive(Clone)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub runtimes: Store<JuiceFSRuntime>,
    pub datasets: Store<Dataset>,
}

impl Stores {
    /// Starts the three reflectors; they run until `stop` is cancelled.
    /// `namespace` scopes all three to one namespace (all namespaces when `None`).
    pub fn start(client: &kube::Client, namespace: Option<&str>, stop: &CancellationToken) -> Self {
        let pods = watch(
            scoped_api::<Pod>(client, namespace),
            watcher::Config::default().labels(&pod_selector()),
            // Keep what discovery reads (labels, ports, IP, phase, conditions); drop the bulk.
            |pod: &mut Pod| {
                pod.metadata.managed_fields = None;
                pod.metadata.annotations = None;
            },
            stop,
        );
        let runtimes = watch(
            scoped_api::<JuiceFSRuntime>(client, namespace),
            watcher::Config::default(),
            |rt: &mut JuiceFSRuntime| rt.metadata.managed_fields = None,
            stop,
        );
        // Datasets keep their managed fields: they tell whether someone else owns `status.ufsTotal`.
        let datasets =
            watch(scoped_api::<Dataset>(client, namespace), watcher::Config::default(), |_: &mut Dataset| {}, stop);
        Self { pods, runtimes, datasets }
    }

    /// Waits until every reflector has its initial list.
    pub async fn ready(&self) -> anyhow::Result<()> {
        self.pods.wait_until_ready().await?;
        self.runtimes.wait_until_ready().await?;
        self.datasets.wait_until_ready().await?;
        Ok(())
    }
}

pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    prune: impl FnMut(&mut K) + Send + 'static,
    stop: &CancellationToken,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&Default::default()).into_owned();
    let stream = watcher(api, config).default_backoff().modify(prune).reflect(writer);
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                item = stream.next() => match item {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::warn!(%kind, error = %e, "watch failed; retrying with backoff"),
                    None => return,
                },
            }
        }
    });
    reader
}

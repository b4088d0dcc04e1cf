//! The controller's watch caches: everything a reconcile reads comes from here, not from the API
//! server. One reflector per kind: label-selected to ferrofluid's objects, but for the kinds a runtime
//! creates under fixed names (StatefulSets, DaemonSets, PVCs, PVs: all watched, others' reduced to
//! metadata, so a name missing from the cache is free) and nodes (all watched: their labels are the
//! cache map); each also yields the change stream that triggers reconciles (`triggers.rs`).

use crate::triggers;
use ferrofluid_api::keys::{self, DatasetKey, LABEL_MANAGED_BY, MANAGED_BY};
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use ferrofluid_service::ready::ReadyOnce;
use ferrofluid_service::runner::scoped_api;
use ferrofluid_service::watch::{no_managed_fields, reflect};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::sync::Arc;

/// Read-only caches of every kind a reconcile reads.
#[derive(Clone)]
pub struct Stores {
    pub runtimes: Store<JuiceFSRuntime>,
    pub datasets: Store<Dataset>,
    pub workers: Store<StatefulSet>,
    pub fuses: Store<DaemonSet>,
    pub claims: Store<PersistentVolumeClaim>,
    pub volumes: Store<PersistentVolume>,
    /// Worker, FUSE and cache-cleanup pods of ferrofluid's runtimes.
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub jobs: Store<Job>,
    /// Every pass waits on this, not on the stores themselves (see `ReadyOnce`).
    pub ready: Arc<ReadyOnce>,
}

/// What changed, per kind, for the controller to turn into reconciles.
pub struct Triggers {
    pub runtimes: BoxStream<'static, Result<JuiceFSRuntime, watcher::Error>>,
    pub datasets: BoxStream<'static, Result<Dataset, watcher::Error>>,
    pub workers: BoxStream<'static, Result<StatefulSet, watcher::Error>>,
    pub fuses: BoxStream<'static, Result<DaemonSet, watcher::Error>>,
    pub claims: BoxStream<'static, Result<PersistentVolumeClaim, watcher::Error>>,
    pub volumes: BoxStream<'static, Result<PersistentVolume, watcher::Error>>,
    pub pods: BoxStream<'static, Result<Pod, watcher::Error>>,
    pub jobs: BoxStream<'static, Result<Job, watcher::Error>>,
    /// Keeps the node cache current; nothing about a node wakes a runtime (the resync repairs labels).
    pub nodes: BoxStream<'static, ()>,
}

fn ours() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Of a node only its labels and resourceVersion are read: the rest (images, conditions) is dropped.
fn node_labels_only(node: &mut Node) {
    node.metadata.managed_fields = None;
    node.metadata.annotations = None;
    node.spec = None;
    node.status = None;
}

/// Objects of a kind the runtime creates, as cached: ferrofluid's whole (without managed fields),
/// anyone else's as metadata only — enough to tell that the name is taken and by whom.
trait Slim {
    fn drop_body(&mut self);
}

macro_rules! slim {
    ($($kind:ty),*) => {$(
        impl Slim for $kind {
            fn drop_body(&mut self) {
                self.spec = None;
                self.status = None;
            }
        }
    )*};
}
slim!(StatefulSet, DaemonSet, PersistentVolumeClaim, PersistentVolume);

fn others_metadata_only<K: Resource + Slim>(obj: &mut K) {
    no_managed_fields(obj);
    if !crate::owned::managed_by_ferrofluid(obj.meta()) {
        obj.meta_mut().annotations = None;
        obj.drop_body();
    }
}

fn drive<S: Stream + Send + 'static>(stream: S) -> BoxStream<'static, ()> {
    stream.map(|_| ()).boxed()
}

pub fn start(client: &kube::Client, namespace: Option<&str>) -> (Stores, Triggers) {
    let selected = watcher::Config::default().labels(&ours());
    let juicefs_pods =
        watcher::Config::default().labels(&format!("{},{}={}", ours(), keys::LABEL_APP, keys::APP_JUICEFS));
    let (runtimes, rt) =
        reflect(scoped_api(client, namespace), watcher::Config::default(), triggers::runtime, no_managed_fields);
    let (datasets, ds) =
        reflect(scoped_api(client, namespace), watcher::Config::default(), triggers::dataset, no_managed_fields);
    // The kinds a runtime creates on its way to Bound are watched whole — others' objects reduced to
    // their metadata — so a name missing from the cache is free, without a read before each create.
    let all = watcher::Config::default;
    let (workers, sts) = reflect(scoped_api(client, namespace), all(), triggers::workers, others_metadata_only);
    let (fuses, dss) = reflect(scoped_api(client, namespace), all(), triggers::fuses, others_metadata_only);
    let (claims, pvcs) = reflect(scoped_api(client, namespace), all(), triggers::claim, others_metadata_only);
    // PVs are cluster-scoped: every PV, whichever namespace its runtime is in (the PV name is a
    // cluster-wide claim).
    let (volumes, pvs) = reflect(Api::all(client.clone()), all(), triggers::volume, others_metadata_only);
    let (pods, pod_changes) = reflect(scoped_api(client, namespace), juicefs_pods, triggers::pod, no_managed_fields);
    let (jobs, job_changes) = reflect(scoped_api(client, namespace), selected, triggers::job, no_managed_fields);
    let (nodes, node_events) =
        reflect(Api::<Node>::all(client.clone()), watcher::Config::default(), |_| 0, node_labels_only);
    (
        Stores { runtimes, datasets, workers, fuses, claims, volumes, pods, nodes, jobs, ready: Arc::default() },
        Triggers {
            runtimes: rt,
            datasets: ds,
            workers: sts,
            fuses: dss,
            claims: pvcs,
            volumes: pvs,
            pods: pod_changes,
            jobs: job_changes,
            nodes: drive(node_events),
        },
    )
}

/// A reflector over datasets of its own for the dataset-share controller: kube's runner waits for its
/// controller's store to be listed, and a store wakes only one waiter at a time — sharing
/// `Stores::datasets`, that wait would race the runtime passes' wait in [`Stores::ready`].
pub fn share_datasets(
    client: &kube::Client,
    namespace: Option<&str>,
) -> (Store<Dataset>, BoxStream<'static, Result<Dataset, watcher::Error>>) {
    reflect(scoped_api(client, namespace), watcher::Config::default(), triggers::dataset, no_managed_fields)
}

impl Stores {
    /// Waits until every cache holds its initial list; any number of passes may wait at once. All but
    /// the runtimes: the runtime controller's own runner waits for that one before any of its passes
    /// starts (kube's applier), and a second waiter on one store at the same time would never be woken
    /// (see `ReadyOnce`); the dataset-share controller, whose passes may start first, reads no runtime.
    pub async fn ready(&self) -> Result<(), String> {
        self.ready
            .wait(|| async {
                self.datasets.wait_until_ready().await?;
                self.workers.wait_until_ready().await?;
                self.fuses.wait_until_ready().await?;
                self.claims.wait_until_ready().await?;
                self.volumes.wait_until_ready().await?;
                self.pods.wait_until_ready().await?;
                self.jobs.wait_until_ready().await?;
                self.nodes.wait_until_ready().await
            })
            .await
    }
}

/// The cached objects of one runtime in one of `roles`: its namespace, its `release` label, a `role` label
/// among `roles`.
pub fn of_runtime<K>(store: &Store<K>, key: &DatasetKey, roles: &[&str]) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store
        .state()
        .into_iter()
        .filter(|o| {
            let labels = o.meta().labels.as_ref();
            o.meta().namespace.as_deref() == Some(key.namespace.as_str())
                && labels.and_then(|l| l.get(keys::LABEL_RELEASE)) == Some(&key.name)
                && labels.and_then(|l| l.get(keys::LABEL_ROLE)).is_some_and(|r| roles.contains(&r.as_str()))
        })
        .collect()
}

/// The cached object `name` (in `namespace` for namespaced kinds).
pub fn get<K>(store: &Store<K>, namespace: Option<&str>, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let r = ObjectRef::new(name);
    store.get(&match namespace {
        Some(ns) => r.within(ns),
        None => r,
    })
}

//! A runtime's setup, in stages: read (from the watch caches) → validate → build (pure) → apply (only
//! what differs) → status (only what differs). A pass over a runtime whose objects and status already
//! are what it wants sends no request.

use crate::apply::{Conflict, Current};
use crate::context::{Context, MANAGER};
use crate::error::{Error, Step};
use crate::in_sync::fingerprinted;
use crate::juicefs_config;
use crate::status_bodies::{self, WorkerHealth};
use crate::{apply, cache_cleanup, cache_sync, fuse, node_sync, ports, status, stores, volume, worker};
use ferrofluid_api::juicefs_runtime::CacheNode;
use ferrofluid_api::juicefs_runtime::HostPorts;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{Dataset, DatasetPhase, JuiceFSRuntime};
use ferrofluid_service::ssa;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use std::time::Duration;

pub fn now() -> String {
    Timestamp::now().to_string()
}

/// Resync period with ±10% jitter so runtimes do not all resync together.
fn resync(ctx: &Context) -> Action {
    let base = ctx.resync.as_secs_f64();
    Action::requeue(Duration::from_secs_f64(base * (0.9 + rand::random::<f64>() * 0.2)))
}

/// A runtime that cannot proceed: `Ready=False` with `reason` and a Warning event — both only when that
/// is news (the condition said otherwise) — then check again after `retry`.
pub async fn blocked(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    reason: &str,
    message: String,
    retry: Duration,
) -> Result<Action, Error> {
    let existing = rt.status.clone().unwrap_or_default();
    let body = status_bodies::blocked(&existing, reason, &message, &now());
    if body != status_bodies::runtime_ours(&existing) {
        ctx.events.warning(&rt.object_ref(&()), reason, message).await;
        let api: Api<JuiceFSRuntime> = Api::namespaced(ctx.client.clone(), &rt.namespace().unwrap_or_default());
        apply::status(&api, &rt.name_any(), &body, "runtime status").await?;
    }
    Ok(Action::requeue(retry))
}

/// The runtime's finalizer — and the dataset as its owner once the pair is valid — in one apply, only
/// when one of them is missing. An owner reference to the dataset the runtime already carries stays in
/// the body, so a pass that finds the pair invalid again does not take it away.
pub async fn ensure_metadata(
    runtimes: &Api<JuiceFSRuntime>,
    rt: &JuiceFSRuntime,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), Error> {
    let has_finalizer = rt.finalizers().iter().any(|f| f == keys::FINALIZER_RUNTIME);
    let has_owner = owner.as_ref().is_none_or(|o| rt.owner_references().iter().any(|r| r.uid == o.uid));
    if has_finalizer && has_owner {
        return Ok(());
    }
    let owner = owner
        .or_else(|| rt.owner_references().iter().find(|o| o.kind == "Dataset" && o.name == rt.name_any()).cloned());
    let mut metadata = serde_json::json!({"name": rt.name_any(), "finalizers": [keys::FINALIZER_RUNTIME]});
    if let Some(owner) = owner {
        metadata["ownerReferences"] = serde_json::json!([owner]);
    }
    let fields = serde_json::json!({ "metadata": metadata });
    ssa::fields(runtimes, MANAGER, &rt.name_any(), fields, true).await.step("finalizer and owner reference")?;
    Ok(())
}

/// Objects of this runtime that exist already, each ours (none is foreign once this is built).
struct Existing {
    pv: Current<PersistentVolume>,
    pvc: Current<PersistentVolumeClaim>,
    workers: Current<StatefulSet>,
    fuse: Current<DaemonSet>,
}

/// What exists under the names this runtime uses; `Err` lists every same-name object that is not this
/// runtime's (left untouched).
async fn existing(ctx: &Context, key: &DatasetKey, uid: &str) -> Result<Result<Existing, Vec<Conflict>>, Error> {
    // The caches of these kinds hold every object in scope: a miss is an absence (no read).
    let (client, s, read_on_miss) = (&ctx.client, &ctx.stores, false);
    let ns = key.namespace.as_str();
    let (pv_api, pvc_api, sts_api, ds_api) = (
        Api::all(client.clone()),
        Api::namespaced(client.clone(), ns),
        Api::namespaced(client.clone(), ns),
        Api::namespaced(client.clone(), ns),
    );
    let (pv_name, pvc_name) = (key.pv_name(), key.pvc_name());
    let (sts_name, ds_name) = (key.worker_statefulset_name(), key.fuse_daemonset_name());
    let pv =
        apply::current(&pv_api, stores::get(&s.volumes, None, &pv_name), read_on_miss, None, &pv_name, uid, "get pv");
    let pvc = apply::current(
        &pvc_api,
        stores::get(&s.claims, Some(ns), &pvc_name),
        read_on_miss,
        Some(ns),
        &pvc_name,
        uid,
        "get pvc",
    );
    let sts = apply::current(
        &sts_api,
        stores::get(&s.workers, Some(ns), &sts_name),
        read_on_miss,
        Some(ns),
        &sts_name,
        uid,
        "get worker statefulset",
    );
    let ds = apply::current(
        &ds_api,
        stores::get(&s.fuses, Some(ns), &ds_name),
        read_on_miss,
        Some(ns),
        &ds_name,
        uid,
        "get fuse daemonset",
    );
    let (pv, pvc, workers, fuse) = futures::try_join!(pv, pvc, sts, ds)?;
    Ok(match (pv, pvc, workers, fuse) {
        (Ok(pv), Ok(pvc), Ok(workers), Ok(fuse)) => Ok(Existing { pv, pvc, workers, fuse }),
        (pv, pvc, workers, fuse) => {
            Err([pv.err(), pvc.err(), workers.err(), fuse.err()].into_iter().flatten().collect())
        }
    })
}

/// The metrics port a workload already serves on (used when the status lost its record).
fn served_port(template: Option<&PodTemplateSpec>, container: &str) -> Option<i32> {
    let spec = template?.spec.as_ref()?;
    let c = spec.containers.iter().find(|c| c.name == container)?;
    c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(keys::METRICS_PORT_NAME)).map(|p| p.container_port)
}

fn age_key(rt: &JuiceFSRuntime) -> (String, String) {
    let created = rt.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    (created, rt.metadata.uid.clone().unwrap_or_default())
}

/// Host ports of this runtime: those it holds (status, else what its workloads serve on), kept stable;
/// new ones from the controller's range for host-network pods that have none.
fn host_ports(ctx: &Context, rt: &JuiceFSRuntime, existing: &Existing) -> Result<HostPorts, ports::Exhausted> {
    let uid = rt.metadata.uid.clone().unwrap_or_default();
    let metrics = serves_metrics(rt);
    let wanted = ports::Wanted { worker: metrics && worker::host_network(rt), fuse: metrics && fuse::host_network(rt) };
    let recorded = rt.status.as_ref().and_then(|s| s.host_ports).unwrap_or_default();
    let sts_template = existing.workers.as_ref().and_then(|s| s.spec.as_ref()).map(|s| &s.template);
    let ds_template = existing.fuse.as_ref().and_then(|d| d.spec.as_ref()).map(|d| &d.template);
    let current = HostPorts {
        worker_metrics: recorded.worker_metrics.or_else(|| served_port(sts_template, keys::WORKER_CONTAINER)),
        fuse_metrics: recorded.fuse_metrics.or_else(|| served_port(ds_template, keys::FUSE_CONTAINER)),
    };
    let others: Vec<ports::Claim> = ctx
        .stores
        .runtimes
        .state()
        .iter()
        .filter(|o| o.metadata.uid.as_deref() != Some(uid.as_str()))
        .map(|o| ports::Claim {
            uid: o.metadata.uid.clone().unwrap_or_default(),
            age_key: age_key(o),
            ports: o.status.as_ref().and_then(|s| s.host_ports).unwrap_or_default(),
        })
        .collect();
    ctx.ports.assign((&uid, &age_key(rt)), current, wanted, &others)
}

/// Whether the JuiceFS clients serve metrics to the network (`disablePrometheus` unset or false).
fn serves_metrics(rt: &JuiceFSRuntime) -> bool {
    !rt.spec.disable_prometheus.unwrap_or(false)
}

/// This runtime's worker pods, from the cache: labelled as its workers and controlled by its
/// StatefulSet (by UID — labels alone can be copied).
fn worker_pods(ctx: &Context, key: &DatasetKey, sts: &StatefulSet) -> Vec<Pod> {
    let pods = stores::of_runtime(&ctx.stores.pods, key, &[keys::ROLE_WORKER]);
    status::controlled_by(pods.iter().map(|p| p.as_ref().clone()).collect(), sts.metadata.uid.as_deref())
}

pub async fn setup(rt: &JuiceFSRuntime, ctx: &Context) -> Result<Action, Error> {
    let ns = rt.namespace().unwrap_or_default();
    let name = rt.name_any();
    let key = DatasetKey::new(&ns, &name);
    let client = &ctx.client;
    let uid = rt.metadata.uid.clone().unwrap_or_default();
    let runtimes: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &ns);

    // 1. Read: the dataset of the same name (its appearance wakes this runtime).
    let Some(dataset) = stores::get(&ctx.stores.datasets, Some(&ns), &name) else {
        ensure_metadata(&runtimes, rt, None).await?;
        let msg = format!("no Dataset {ns}/{name}; the runtime proceeds as soon as one is created");
        return blocked(ctx, rt, "DatasetNotFound", msg, ctx.resync).await;
    };
    let ds_status = dataset.status.clone().unwrap_or_default();
    if let Some(other) = ds_status.runtimes.iter().find(|r| r.name != name || r.type_.as_deref() != Some(keys::JUICEFS))
    {
        let msg = format!(
            "Dataset {ns}/{name} is bound to {} runtime {}; delete that runtime first",
            other.type_.as_deref().unwrap_or("another"),
            other.name
        );
        ensure_metadata(&runtimes, rt, None).await?;
        return blocked(ctx, rt, "DatasetBoundElsewhere", msg, ctx.resync).await;
    }

    // 2. Validate.
    let cfg = match juicefs_config::build(&dataset.spec, &rt.spec, &key) {
        Ok(cfg) => cfg,
        Err(e) => {
            ensure_metadata(&runtimes, rt, None).await?;
            return blocked(ctx, rt, "InvalidSpec", e.to_string(), ctx.resync).await;
        }
    };

    // The dataset owns the runtime (deleting the dataset deletes the runtime): written once the pair is
    // valid, with the finalizer, before anything is created.
    let owner = dataset.controller_owner_ref(&()).map(|mut o| {
        o.controller = Some(false);
        o
    });
    ensure_metadata(&runtimes, rt, owner).await?;

    // Only objects of our own, or none: a same-name object of anyone else stops everything here.
    let existing = match existing(ctx, &key, &uid).await? {
        Ok(existing) => existing,
        Err(conflicts) => {
            let list: Vec<String> = conflicts.iter().map(Conflict::to_string).collect();
            let msg = format!(
                "{}; ferrofluid creates, changes and deletes only objects carrying its own mark \
                 (first owner keeps a name): remove or rename that object, or use another dataset name",
                list.join("; ")
            );
            return blocked(ctx, rt, "NameConflict", msg, ctx.resync).await;
        }
    };

    // Host ports for host-network pods, recorded before any pod can use them.
    let ports = match host_ports(ctx, rt, &existing) {
        Ok(p) => p,
        Err(e) => return blocked(ctx, rt, "HostPortsExhausted", e.to_string(), Duration::from_secs(30)).await,
    };
    let mut existing_status = rt.status.clone().unwrap_or_default();
    let recorded = existing_status.host_ports.filter(|p| *p != HostPorts::default());
    let wanted_record = Some(ports).filter(|p| *p != HostPorts::default());
    let since_creation =
        rt.metadata.creation_timestamp.as_ref().map(|c| Timestamp::now().duration_since(c.0).as_secs());

    // 3. Build, pure; 4. apply what differs — the PV first (it holds the cluster-wide name).
    let pv = fingerprinted(volume::persistent_volume(rt, &key, &dataset.spec, &ctx.mount_root));
    let metrics = serves_metrics(rt);
    let worker_port = metrics.then(|| ports.worker_metrics.unwrap_or(keys::DEFAULT_METRICS_PORT));
    let fuse_port = metrics.then(|| ports.fuse_metrics.unwrap_or(keys::DEFAULT_METRICS_PORT));
    let sts = fingerprinted(worker::build(rt, &dataset.spec, &key, &cfg, &ctx.juicefs_image, worker_port));
    let ds = fingerprinted(fuse::build(rt, &key, &cfg, &ctx.juicefs_image, &ctx.mount_root, fuse_port));
    let outdated_fuse_nodes =
        fuse::outdated_nodes(&ds, &stores::of_runtime(&ctx.stores.pods, &key, &[keys::ROLE_FUSE]));
    if recorded != wanted_record {
        // Host ports are recorded before any pod can use them — in the status the pass would write
        // once the workloads are applied (from what exists now), so that is one write, not two.
        let pods = existing.workers.as_ref().map(|w| worker_pods(ctx, &key, w)).unwrap_or_default();
        let fuse_now = existing.fuse.as_ref().unwrap_or(&ds);
        let observed = observe(rt, &pods, fuse_now, outdated_fuse_nodes.clone());
        let cache_nodes = existing_status.cache_nodes.clone();
        let body = status_bodies::serving(
            &existing_status,
            &key,
            &observed,
            wanted_record,
            cache_nodes,
            since_creation,
            &now(),
        );
        apply::status(&runtimes, &name, &body, "runtime host ports").await?;
        existing_status = body;
    }
    apply::object(&Api::all(client.clone()), &pv, &existing.pv, "pv").await?;
    let sts =
        apply::object(&Api::namespaced(client.clone(), &ns), &sts, &existing.workers, "worker statefulset").await?;
    let ds = apply::object(&Api::namespaced(client.clone(), &ns), &ds, &existing.fuse, "fuse daemonset").await?;

    // 5. Status from the workloads; dataset phase; the PVC once bound.
    let pods = worker_pods(ctx, &key, &sts);
    let observed = observe(rt, &pods, &ds, outdated_fuse_nodes);
    let phase = status::dataset_phase(&observed.workers, observed.health.failing(), ds_status.phase);
    let mut bind_check = None;
    if phase == DatasetPhase::Bound {
        let pvc = fingerprinted(volume::persistent_volume_claim(rt, &key, &dataset.spec));
        let pvcs = Api::namespaced(client.clone(), &ns);
        let pvc = apply::object(&pvcs, &pvc, &existing.pvc, "pvc").await?;
        bind_check = nudge_claim(&pvcs, existing.pv.as_ref(), &pvc).await?;
    }
    write_dataset_status(ctx, rt, &dataset, &key, phase, &observed.health).await?;
    node_sync::sync_worker_labels(ctx, &key, &cfg, &pods).await?;

    // Cache directories: recorded where clients run, removed where none has run for a while.
    let plan = cache_cleanup::plan(
        &existing_status.cache_nodes,
        &cache_sync::client_nodes(ctx, &key),
        &cache_cleanup::host_cache_dirs(&cfg),
        |n| cache_sync::known(ctx, n),
        Timestamp::now(),
        ctx.cache_grace,
        false,
    );
    let due: Vec<&CacheNode> = plan.nodes.iter().filter(|c| plan.clean.contains(&c.node)).collect();
    let cleaned = cache_sync::clean(ctx, rt, &key, &due).await?;
    let cache_nodes: Vec<CacheNode> = plan.nodes.iter().filter(|c| !cleaned.contains(&c.node)).cloned().collect();
    cache_sync::sweep(ctx, rt, &key, &plan.clean.iter().map(String::as_str).collect()).await?;

    // Idle nodes not yet due: look again when the first one is (due ones wait for their Job's events;
    // nodes that are gone wait for the resync after they are back).
    let idle: Vec<CacheNode> = cache_nodes
        .iter()
        .filter(|c| !plan.clean.contains(&c.node) && cache_sync::known(ctx, &c.node))
        .cloned()
        .collect();
    let body =
        status_bodies::serving(&existing_status, &key, &observed, wanted_record, cache_nodes, since_creation, &now());
    if body != status_bodies::runtime_ours(&existing_status) {
        apply::status(&runtimes, &name, &body, "runtime status").await?;
    }
    let cleanup_due =
        cache_cleanup::next_due(&idle, Timestamp::now(), ctx.cache_grace).map(|d| d.max(Duration::from_secs(1)));
    Ok(match cleanup_due.into_iter().chain(bind_check).min() {
        Some(due) if due < ctx.resync => Action::requeue(due),
        _ => resync(ctx),
    })
}

/// The datasets (`<ns>/<name>`) that refer to `key`'s dataset, from the cache.
pub fn referrers(ctx: &Context, key: &DatasetKey) -> Vec<String> {
    let datasets = ctx.stores.datasets.state();
    ferrofluid_api::sharing::referrers(datasets.iter().map(|d| d.as_ref()), key)
}

/// Touches the claim once if it stays `Pending` behind its `Bound` PV (see [`volume::binding`]); when to
/// look again if it is still within the grace.
pub(crate) async fn nudge_claim(
    pvcs: &Api<PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
    pvc: &PersistentVolumeClaim,
) -> Result<Option<Duration>, Error> {
    match volume::binding(pv, Some(pvc), Timestamp::now()) {
        volume::Binding::Settled => Ok(None),
        volume::Binding::Grace(left) => Ok(Some(left)),
        volume::Binding::Nudge => {
            tracing::info!(pvc = %pvc.name_any(), "claim Pending behind its Bound volume: touching it once");
            let patch = serde_json::json!({
                // The UID pins the patch to this claim: a replacement made meanwhile is left alone.
                "metadata": {
                    "uid": pvc.metadata.uid,
                    "annotations": {keys::ANNOTATION_BIND_NUDGE: Timestamp::now().to_string()},
                }
            });
            let params = kube::api::PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
            pvcs.patch(&pvc.name_any(), &params, &kube::api::Patch::Merge(patch)).await.step("pvc bind nudge")?;
            Ok(None)
        }
    }
}

/// What the runtime's workloads say: workers from their pods, FUSE clients from the DaemonSet.
fn observe(
    rt: &JuiceFSRuntime,
    worker_pods: &[Pod],
    fuse: &DaemonSet,
    outdated: Vec<String>,
) -> status_bodies::Observed {
    let workers = status::workers(rt.spec.replicas.unwrap_or(1), worker_pods);
    let health = WorkerHealth::new(&workers, &status::worker_failures(worker_pods));
    status_bodies::Observed { workers, fuses: status::fuses(Some(fuse)), health, outdated_fuse_nodes: outdated }
}

/// The dataset's status as this runtime binds it, written only when it changes; events on a phase change
/// and when the workers start failing (or fail differently).
async fn write_dataset_status(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    dataset: &Dataset,
    key: &DatasetKey,
    phase: DatasetPhase,
    health: &WorkerHealth,
) -> Result<(), Error> {
    let current = dataset.status.clone().unwrap_or_default();
    let referrers = referrers(ctx, key);
    let body = status_bodies::dataset(&current, key, &dataset.spec.mounts, phase, health, referrers, &now());
    if body == status_bodies::dataset_ours(&current) {
        return Ok(());
    }
    let was = current.conditions.iter().find(|c| c.type_ == status_bodies::DATASET_CONDITION);
    if health.failing() && was.and_then(|c| c.message.as_deref()) != Some(health.message.as_str()) {
        ctx.events.warning(&rt.object_ref(&()), status_bodies::WORKERS_FAILING, health.message.clone()).await;
        ctx.events.warning(&dataset.object_ref(&()), status_bodies::WORKERS_FAILING, health.message.clone()).await;
    }
    // An event when the phase changes — but not for a new dataset's NotBound (the dataset-controller
    // set that; nothing happened).
    let news = current.phase != Some(phase)
        && (phase != DatasetPhase::NotBound
            || matches!(current.phase, Some(DatasetPhase::Bound | DatasetPhase::Failed)));
    if news {
        let reason = match phase {
            DatasetPhase::Bound => "DatasetBound",
            DatasetPhase::Failed => "DatasetFailed",
            _ => "DatasetNotBound",
        };
        let note = format!("dataset {} is {phase:?}: {}", dataset.name_any(), health.message);
        let r = rt.object_ref(&());
        if phase == DatasetPhase::Failed {
            ctx.events.warning(&r, reason, note).await;
        } else {
            ctx.events.normal(&r, reason, note).await;
        }
    }
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &key.namespace);
    apply::status(&api, &key.name, &body, "dataset status").await
}

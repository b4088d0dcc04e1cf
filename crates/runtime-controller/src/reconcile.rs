//! One JuiceFSRuntime's reconcile: dereference the dataset, validate, build, apply, update status;
//! and, on deletion, an ordered and idempotent cleanup.

use crate::apply::{Conflict, Current, Deletion};
use crate::context::{CONTROLLER, Context};
use crate::error::{Error, Step};
use crate::juicefs_config::{self, JuiceFsConfig};
use crate::{apply, fuse, labels, node_labels, ports, status, volume, worker};
use ferrofluid_api::common::condition;
use ferrofluid_api::dataset::RuntimeRef;
use ferrofluid_api::juicefs_runtime::HostPorts;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{Dataset, DatasetPhase, DatasetStatus, JuiceFSRuntime, JuiceFSRuntimeStatus, RuntimePhase};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(rt: Arc<JuiceFSRuntime>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let ns = rt.namespace().ok_or_else(|| Error::NoNamespace(rt.name_any()))?;
    let api: Api<JuiceFSRuntime> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, keys::FINALIZER_RUNTIME, rt, |event| async {
        match event {
            Finalizer::Apply(rt) => apply_runtime(&rt, &ctx).await,
            Finalizer::Cleanup(rt) => cleanup(&rt, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(_rt: Arc<JuiceFSRuntime>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failure(CONTROLLER, error.metric_label());
    match error {
        Error::Waiting(_) => Action::requeue(Duration::from_secs(3)),
        Error::Finalizer(e) if matches!(**e, kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(_))) => {
            tracing::info!(%error, "cleanup waiting");
            Action::requeue(Duration::from_secs(3))
        }
        _ => {
            tracing::warn!(%error, "reconcile failed");
            Action::requeue(Duration::from_secs(10))
        }
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// Resync period with ±10% jitter so runtimes do not all resync together.
fn resync(ctx: &Context) -> Action {
    let base = ctx.resync.as_secs_f64();
    Action::requeue(Duration::from_secs_f64(base * (0.9 + rand::random::<f64>() * 0.2)))
}

async fn event(ctx: &Context, rt: &JuiceFSRuntime, type_: EventType, reason: &str, note: String) {
    event_on(ctx, &rt.object_ref(&()), type_, reason, note).await;
}

async fn event_on(ctx: &Context, object: &ObjectReference, type_: EventType, reason: &str, note: String) {
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, object).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// A runtime that cannot proceed: condition + Warning event, status phases NotReady, check again later.
async fn blocked(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    reason: &str,
    message: String,
    retry: Duration,
) -> Result<Action, Error> {
    event(ctx, rt, EventType::Warning, reason, message.clone()).await;
    let existing = rt.status.clone().unwrap_or_default();
    let st = JuiceFSRuntimeStatus {
        worker_phase: Some(RuntimePhase::NotReady),
        fuse_phase: Some(RuntimePhase::NotReady),
        conditions: vec![condition(&existing.conditions, "Ready", false, reason, message, &now())],
        // Pods may still run with these ports: they stay held until the runtime is deleted.
        host_ports: existing.host_ports,
        ..Default::default()
    };
    let api: Api<JuiceFSRuntime> = Api::namespaced(ctx.client.clone(), &rt.namespace().unwrap_or_default());
    apply::status(&api, &rt.name_any(), &st, "runtime status").await?;
    Ok(Action::requeue(retry))
}

/// Objects of this runtime that exist already, each ours (none is foreign once this is built).
struct Existing {
    pv: Current<PersistentVolume>,
    pvc: Current<PersistentVolumeClaim>,
    workers: Current<StatefulSet>,
    fuse: Current<DaemonSet>,
}

/// Reads what exists under the names this runtime uses; `Err` lists every same-name object that is
/// not this runtime's (left untouched).
async fn existing(ctx: &Context, key: &DatasetKey, uid: &str) -> Result<Result<Existing, Vec<Conflict>>, Error> {
    let client = &ctx.client;
    let ns = Some(key.namespace.as_str());
    let pv = apply::current(&Api::all(client.clone()), None, &key.pv_name(), uid, "get pv").await?;
    let pvc =
        apply::current(&Api::namespaced(client.clone(), &key.namespace), ns, &key.pvc_name(), uid, "get pvc").await?;
    let workers = apply::current(
        &Api::namespaced(client.clone(), &key.namespace),
        ns,
        &key.worker_statefulset_name(),
        uid,
        "get worker statefulset",
    )
    .await?;
    let fuse = apply::current(
        &Api::namespaced(client.clone(), &key.namespace),
        ns,
        &key.fuse_daemonset_name(),
        uid,
        "get fuse daemonset",
    )
    .await?;
    Ok(match (pv, pvc, workers, fuse) {
        (Ok(pv), Ok(pvc), Ok(workers), Ok(fuse)) => Ok(Existing { pv, pvc, workers, fuse }),
        (pv, pvc, workers, fuse) => {
            Err([pv.err(), pvc.err(), workers.err(), fuse.err()].into_iter().flatten().collect())
        }
    })
}

/// The metrics port a workload already serves on (used when the status lost its record).
fn served_port(template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>, container: &str) -> Option<i32> {
    let spec = template?.spec.as_ref()?;
    let c = spec.containers.iter().find(|c| c.name == container)?;
    c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(keys::METRICS_PORT_NAME)).map(|p| p.container_port)
}

/// Host ports of this runtime: those it holds (status, else what its workloads serve on), kept stable;
/// new ones from the controller's range for host-network pods that have none.
fn host_ports(ctx: &Context, rt: &JuiceFSRuntime, existing: &Existing) -> Result<HostPorts, ports::Exhausted> {
    let uid = rt.metadata.uid.clone().unwrap_or_default();
    let wanted = ports::Wanted { worker: worker::host_network(rt), fuse: fuse::host_network(rt) };
    let recorded = rt.status.as_ref().and_then(|s| s.host_ports).unwrap_or_default();
    let sts_template = existing.workers.as_ref().and_then(|s| s.spec.as_ref()).map(|s| &s.template);
    let ds_template = existing.fuse.as_ref().and_then(|d| d.spec.as_ref()).map(|d| &d.template);
    let current = HostPorts {
        worker_metrics: recorded.worker_metrics.or_else(|| served_port(sts_template, keys::WORKER_CONTAINER)),
        fuse_metrics: recorded.fuse_metrics.or_else(|| served_port(ds_template, keys::FUSE_CONTAINER)),
    };
    let others: Vec<ports::Claim> = ctx
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

fn age_key(rt: &JuiceFSRuntime) -> (String, String) {
    let created = rt.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    (created, rt.metadata.uid.clone().unwrap_or_default())
}

async fn apply_runtime(rt: &JuiceFSRuntime, ctx: &Context) -> Result<Action, Error> {
    let ns = rt.namespace().unwrap_or_default();
    let name = rt.name_any();
    let key = DatasetKey::new(&ns, &name);
    let client = &ctx.client;
    let uid = rt.metadata.uid.clone().unwrap_or_default();

    // 1. Dereference: the dataset of the same name.
    let datasets: Api<Dataset> = Api::namespaced(client.clone(), &ns);
    let Some(dataset) = datasets.get_opt(&name).await.step("get dataset")? else {
        let msg = format!("no Dataset {ns}/{name}; the runtime proceeds as soon as one is created");
        return blocked(ctx, rt, "DatasetNotFound", msg, Duration::from_secs(60)).await;
    };
    let ds_status = dataset.status.clone().unwrap_or_default();
    if let Some(other) = ds_status.runtimes.iter().find(|r| r.name != name || r.type_.as_deref() != Some(keys::JUICEFS))
    {
        let msg = format!(
            "Dataset {ns}/{name} is bound to {} runtime {}; delete that runtime first",
            other.type_.as_deref().unwrap_or("another"),
            other.name
        );
        return blocked(ctx, rt, "DatasetBoundElsewhere", msg, Duration::from_secs(60)).await;
    }

    // 2. The dataset owns the runtime (deleting the dataset deletes the runtime).
    let runtimes: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &ns);
    if let Some(owner) = dataset.controller_owner_ref(&()) {
        let owned = rt.owner_references().iter().any(|o| o.uid == owner.uid);
        if !owned {
            let mut owner = owner;
            owner.controller = Some(false);
            let body = serde_json::json!({
                "apiVersion": JuiceFSRuntime::api_version(&()), "kind": JuiceFSRuntime::kind(&()),
                "metadata": {"name": name, "ownerReferences": [owner]},
            });
            runtimes
                .patch(&name, &PatchParams::apply(crate::context::MANAGER).force(), &Patch::Apply(body))
                .await
                .step("owner reference")?;
        }
    }

    // 3. Validate.
    let cfg = match juicefs_config::build(&dataset.spec, &rt.spec) {
        Ok(cfg) => cfg,
        Err(e) => return blocked(ctx, rt, "InvalidSpec", e.to_string(), Duration::from_secs(60)).await,
    };

    // 4. Only objects of our own, or none: a same-name object of anyone else stops everything here.
    let existing = match existing(ctx, &key, &uid).await? {
        Ok(existing) => existing,
        Err(conflicts) => {
            let list: Vec<String> = conflicts.iter().map(Conflict::to_string).collect();
            let msg = format!(
                "{}; ferrofluid creates, changes and deletes only objects carrying its own mark \
                 (first owner keeps a name): remove or rename that object, or use another dataset name",
                list.join("; ")
            );
            return blocked(ctx, rt, "NameConflict", msg, Duration::from_secs(60)).await;
        }
    };

    // 5. Host ports for host-network pods, recorded before any pod can use them.
    let ports = match host_ports(ctx, rt, &existing) {
        Ok(p) => p,
        Err(e) => return blocked(ctx, rt, "HostPortsExhausted", e.to_string(), Duration::from_secs(30)).await,
    };
    let recorded = rt.status.as_ref().and_then(|s| s.host_ports).filter(|p| *p != HostPorts::default());
    let wanted_record = Some(ports).filter(|p| *p != HostPorts::default());
    if recorded != wanted_record {
        let mut st = status::ours(&rt.status.clone().unwrap_or_default());
        st.host_ports = wanted_record;
        apply::status(&runtimes, &name, &st, "runtime host ports").await?;
    }
    let worker_port = ports.worker_metrics.unwrap_or(keys::DEFAULT_METRICS_PORT);
    let fuse_port = ports.fuse_metrics.unwrap_or(keys::DEFAULT_METRICS_PORT);

    // 6. Build and apply: the PV first (it holds the cluster-wide name), then the workloads.
    let pv = volume::persistent_volume(rt, &key, &dataset.spec, &ctx.mount_root);
    apply::object(&Api::all(client.clone()), &pv, &existing.pv, "pv").await?;
    let sts = worker::build(rt, &dataset.spec, &key, &cfg, worker_port);
    let sts =
        apply::object(&Api::namespaced(client.clone(), &ns), &sts, &existing.workers, "worker statefulset").await?;
    let ds = fuse::build(rt, &key, &cfg, &ctx.mount_root, fuse_port);
    let ds = apply::object(&Api::namespaced(client.clone(), &ns), &ds, &existing.fuse, "fuse daemonset").await?;

    // 7. Status from the workloads; dataset phase; the PVC once bound.
    let workers = status::workers(rt.spec.replicas.unwrap_or(1), Some(&sts));
    let fuses = status::fuses(Some(&ds));
    let phase = status::dataset_phase(&workers, ds_status.phase);
    if phase == DatasetPhase::Bound {
        apply::object(
            &Api::namespaced(client.clone(), &ns),
            &volume::persistent_volume_claim(rt, &key, &dataset.spec),
            &existing.pvc,
            "pvc",
        )
        .await?;
    }
    let pods = status::controlled_by(worker_pods(ctx, &key).await?, sts.metadata.uid.as_deref());
    let failures = status::worker_failures(&pods);
    let health = WorkerHealth::new(&workers, &failures);
    if !failures.is_empty() {
        event(ctx, rt, EventType::Warning, "WorkersFailing", health.message.clone()).await;
        event_on(ctx, &dataset.object_ref(&()), EventType::Warning, "WorkersFailing", health.message.clone()).await;
    }
    write_dataset_status(ctx, rt, &dataset, phase, &health).await?;

    // 8. Cache labels on the nodes where workers run.
    sync_worker_labels(ctx, &key, &cfg, &pods).await?;

    write_runtime_status(ctx, rt, &key, &workers, &fuses, &health, wanted_record).await?;
    Ok(resync(ctx))
}

/// Worker health as a condition: ready or not, and why (failing containers' own words).
struct WorkerHealth {
    ok: bool,
    reason: &'static str,
    message: String,
}

impl WorkerHealth {
    fn new(workers: &status::Counts, failures: &[String]) -> Self {
        let ok = matches!(workers.phase, RuntimePhase::Ready | RuntimePhase::PartialReady);
        let mut message = format!("{} of {} workers ready", workers.ready, workers.desired);
        if !failures.is_empty() {
            message.push_str(&format!("; failing: {}", failures.join("; ")));
        }
        let reason = match (ok, failures.is_empty()) {
            (true, _) => "WorkersReady",
            (false, false) => "WorkersFailing",
            (false, true) => "WorkersNotReady",
        };
        Self { ok, reason, message }
    }
}

async fn write_dataset_status(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    dataset: &Dataset,
    phase: DatasetPhase,
    health: &WorkerHealth,
) -> Result<(), Error> {
    let current = dataset.status.clone().unwrap_or_default();
    let conditions =
        vec![condition(&current.conditions, "RuntimeReady", health.ok, health.reason, health.message.clone(), &now())];
    let st = DatasetStatus {
        phase: Some(phase),
        runtimes: vec![RuntimeRef {
            name: rt.name_any(),
            namespace: rt.namespace().unwrap_or_default(),
            category: Some("Accelerate".into()),
            type_: Some(keys::JUICEFS.into()),
            engine_type: Some(keys::JUICEFS.into()),
            master_replicas: None,
        }],
        mounts: dataset.spec.mounts.clone(),
        conditions,
        ..Default::default()
    };
    if current.phase != Some(phase) {
        let (type_, reason) = match phase {
            DatasetPhase::Bound => (EventType::Normal, "DatasetBound"),
            DatasetPhase::Failed => (EventType::Warning, "DatasetFailed"),
            _ => (EventType::Normal, "DatasetNotBound"),
        };
        let note = format!("dataset {} is {phase:?}: runtime workers {}", dataset.name_any(), worker_summary(rt));
        event(ctx, rt, type_, reason, note).await;
    }
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &rt.namespace().unwrap_or_default());
    apply::status(&api, &dataset.name_any(), &st, "dataset status").await
}

fn worker_summary(rt: &JuiceFSRuntime) -> String {
    let st = rt.status.clone().unwrap_or_default();
    format!("{}/{} ready", st.worker_number_ready.unwrap_or(0), rt.spec.replicas.unwrap_or(1))
}

async fn write_runtime_status(
    ctx: &Context,
    rt: &JuiceFSRuntime,
    key: &DatasetKey,
    workers: &status::Counts,
    fuses: &status::Counts,
    health: &WorkerHealth,
    host_ports: Option<HostPorts>,
) -> Result<(), Error> {
    let existing = rt.status.clone().unwrap_or_default();
    let t = now();
    let workers_ok = health.ok;
    let setup_duration = existing.setup_duration.clone().or_else(|| {
        let created = rt.metadata.creation_timestamp.as_ref()?.0;
        workers_ok.then(|| status::human_duration(Timestamp::now().duration_since(created).as_secs()))
    });
    let conditions = vec![
        condition(&existing.conditions, "Ready", workers_ok, health.reason, health.message.clone(), &t),
        condition(
            &existing.conditions,
            "FusesReady",
            fuses.phase == RuntimePhase::Ready,
            if fuses.phase == RuntimePhase::Ready { "FusesReady" } else { "FusesNotReady" },
            format!("{} of {} FUSE clients ready", fuses.ready, fuses.desired),
            &t,
        ),
    ];
    let st = JuiceFSRuntimeStatus {
        worker_phase: Some(workers.phase),
        desired_worker_number_scheduled: Some(workers.desired),
        current_worker_number_scheduled: Some(workers.current),
        worker_number_ready: Some(workers.ready),
        worker_number_available: Some(workers.available),
        worker_number_unavailable: Some(workers.unavailable),
        fuse_phase: Some(fuses.phase),
        desired_fuse_number_scheduled: Some(fuses.desired),
        current_fuse_number_scheduled: Some(fuses.current),
        fuse_number_ready: Some(fuses.ready),
        fuse_number_available: Some(fuses.available),
        fuse_number_unavailable: Some(fuses.unavailable),
        conditions,
        selector: Some(labels::to_selector_string(&labels::selector(key, keys::ROLE_WORKER))),
        setup_duration,
        host_ports,
        ..Default::default()
    };
    let api: Api<JuiceFSRuntime> = Api::namespaced(ctx.client.clone(), &key.namespace);
    apply::status(&api, &key.name, &st, "runtime status").await
}

/// This dataset's worker pods.
async fn worker_pods(ctx: &Context, key: &DatasetKey) -> Result<Vec<Pod>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let selector = labels::to_selector_string(&labels::selector(key, keys::ROLE_WORKER));
    Ok(pods.list(&ListParams::default().labels(&selector)).await.step("list worker pods")?.items)
}

/// Label patches are guarded by the node's resourceVersion (so `dataset-num` is counted from what is
/// really there); when another writer got in first, re-read the node and plan again, a few times.
async fn patch_node(
    nodes: &Api<Node>,
    node: &Node,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> Result<(), Error> {
    const ATTEMPTS: usize = 8;
    let mut node = node.clone();
    for attempt in 1..=ATTEMPTS {
        let current = node.metadata.labels.clone().unwrap_or_default();
        let Some(patch) = node_labels::plan(&current, set, remove, node.metadata.resource_version.as_deref()) else {
            return Ok(());
        };
        match nodes.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(rand::random_range(10..100))).await;
                match nodes.get_opt(&node.name_any()).await.step("get node")? {
                    Some(fresh) => node = fresh,
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(e).step("patch node labels")?,
        }
    }
    Ok(())
}

async fn sync_worker_labels(ctx: &Context, key: &DatasetKey, cfg: &JuiceFsConfig, pods: &[Pod]) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let want = status::worker_nodes(pods);
    let (mem, disk) = worker::capacity_bytes(&cfg.cache);
    let set = node_labels::worker_labels(key, mem, disk);
    for name in &want {
        if let Some(node) = nodes.get_opt(name).await.step("get node")? {
            patch_node(&nodes, &node, &set, &[]).await?;
        }
    }
    let labelled =
        nodes.list(&ListParams::default().labels(&key.juicefs_worker_node_label())).await.step("list nodes")?;
    let keys = node_labels::worker_label_keys(key);
    for node in labelled.items.iter().filter(|n| !want.contains(&n.name_any())) {
        patch_node(&nodes, node, &BTreeMap::new(), &keys).await?;
    }
    Ok(())
}

/// Removes `label_keys` from every node that carries `selector_key`.
async fn strip_nodes(ctx: &Context, selector_key: &str, label_keys: &[String]) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let labelled = nodes.list(&ListParams::default().labels(selector_key)).await.step("list labelled nodes")?;
    for node in &labelled.items {
        patch_node(&nodes, node, &BTreeMap::new(), label_keys).await?;
    }
    Ok(())
}

/// Ordered, idempotent cleanup; safe to interrupt and run again at any point. Deletes only objects
/// carrying this runtime's mark; the PV goes last, since holding it is what entitles the runtime to the
/// node label keys it shares with any other dataset whose `<ns>-<name>` is the same string.
async fn cleanup(rt: &JuiceFSRuntime, ctx: &Context) -> Result<Action, Error> {
    let ns = rt.namespace().unwrap_or_default();
    let key = DatasetKey::new(&ns, rt.name_any());
    let client = &ctx.client;
    let uid = rt.metadata.uid.clone().unwrap_or_default();

    // PVC first: Kubernetes keeps it while a pod uses it; wait for that.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    if apply::delete_ours(&pvcs, &key.pvc_name(), &uid, "delete pvc").await? == Deletion::Deleting {
        let msg = format!("PVC {ns}/{} is still used by a pod; waiting before tearing down", key.pvc_name());
        event(ctx, rt, EventType::Normal, "WaitingForPVC", msg.clone()).await;
        return Err(Error::Waiting(msg));
    }
    let workers = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    apply::delete_ours(&workers, &key.worker_statefulset_name(), &uid, "delete workers").await?;
    let fuse = Api::<DaemonSet>::namespaced(client.clone(), &ns);
    apply::delete_ours(&fuse, &key.fuse_daemonset_name(), &uid, "delete fuse").await?;

    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let holds_name = matches!(apply::current(&pvs, None, &key.pv_name(), &uid, "get pv").await?, Ok(Current::Ours(_)));
    if holds_name {
        strip_nodes(ctx, &key.juicefs_worker_node_label(), &node_labels::worker_label_keys(&key)).await?;
        strip_nodes(ctx, &key.worker_node_label(), &node_labels::worker_label_keys(&key)).await?;
        strip_nodes(ctx, &key.fuse_node_label(), &[key.fuse_node_label()]).await?;
    }
    if apply::delete_ours(&pvs, &key.pv_name(), &uid, "delete pv").await? == Deletion::Deleting {
        return Err(Error::Waiting(format!("PV {} is being deleted", key.pv_name())));
    }
    ctx.ports.release(&uid);

    // The dataset is unbound — unless it is bound to another runtime, which this one never was.
    let datasets: Api<Dataset> = Api::namespaced(client.clone(), &ns);
    if let Some(dataset) = datasets.get_opt(&key.name).await.step("get dataset")? {
        let runtimes = dataset.status.map(|s| s.runtimes).unwrap_or_default();
        if runtimes.iter().all(|r| r.name == key.name && r.type_.as_deref() == Some(keys::JUICEFS)) {
            let st = DatasetStatus { phase: Some(DatasetPhase::NotBound), ..Default::default() };
            apply::status(&datasets, &key.name, &st, "dataset status").await?;
        }
    }
    event(ctx, rt, EventType::Normal, "Cleaned", "removed this runtime's PV, PVC, workloads and node labels".into())
        .await;
    Ok(Action::await_change())
}

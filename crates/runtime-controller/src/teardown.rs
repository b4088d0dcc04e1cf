//! A runtime's ordered, idempotent cleanup — safe to interrupt and run again at any point. It deletes
//! only objects carrying this runtime's mark (UID precondition), reading them from the watch caches;
//! the PV goes last, since holding it is what entitles the runtime to the node label keys it shares
//! with any other dataset whose `<ns>-<name>` is the same string.

use crate::apply::{self, Current, Deletion};
use crate::context::Context;
use crate::error::{Error, waiting};
use crate::{cache_cleanup, cache_sync, node_labels, node_sync, status_bodies, stores};
use ferrofluid_api::juicefs_runtime::CacheNode;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{Dataset, DatasetPhase, DatasetStatus, JuiceFSRuntime};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use std::collections::BTreeSet;

pub async fn teardown(rt: &JuiceFSRuntime, ctx: &Context) -> Result<Action, Error> {
    let ns = rt.namespace().unwrap_or_default();
    let key = DatasetKey::new(&ns, rt.name_any());
    let (client, s) = (&ctx.client, &ctx.stores);
    let uid = rt.metadata.uid.clone().unwrap_or_default();

    // PVC first: Kubernetes keeps it while a pod uses it; wait for that (said once, when it starts).
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pvc = stores::get(&s.claims, Some(&ns), &key.pvc_name());
    let already_waiting = pvc.as_ref().is_some_and(|p| p.metadata.deletion_timestamp.is_some());
    if apply::delete_ours(&pvcs, pvc, &uid, "delete pvc").await? == Deletion::Deleting {
        let msg = format!("PVC {ns}/{} is still used by a pod; waiting before tearing down", key.pvc_name());
        if !already_waiting {
            ctx.events.normal(&rt.object_ref(&()), "WaitingForPVC", msg.clone()).await;
        }
        return Err(waiting(msg));
    }
    let workers = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    apply::delete_ours(
        &workers,
        stores::get(&s.workers, Some(&ns), &key.worker_statefulset_name()),
        &uid,
        "delete workers",
    )
    .await?;
    let fuse = Api::<DaemonSet>::namespaced(client.clone(), &ns);
    apply::delete_ours(&fuse, stores::get(&s.fuses, Some(&ns), &key.fuse_daemonset_name()), &uid, "delete fuse")
        .await?;

    // No JuiceFS client may still use the cache directories when they are removed.
    let clients = cache_sync::client_nodes(ctx, &key);
    if !clients.is_empty() {
        return Err(waiting(format!(
            "waiting for the JuiceFS clients on {} to stop",
            clients.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let recorded = rt.status.as_ref().map(|s| s.cache_nodes.clone()).unwrap_or_default();
    let plan = cache_cleanup::plan(
        &recorded,
        &BTreeSet::new(),
        &[],
        |n| cache_sync::known(ctx, n),
        Timestamp::now(),
        ctx.cache_grace,
        true,
    );
    let due: Vec<&CacheNode> = plan.nodes.iter().collect();
    let cleaned = cache_sync::clean(ctx, rt, &key, &due).await?;
    if !cleaned.is_empty() {
        // Recorded, so a restart (or the next pass) does not clean those nodes again.
        let existing = rt.status.clone().unwrap_or_default();
        let mut body = status_bodies::runtime_ours(&existing);
        body.cache_nodes.retain(|c| !cleaned.contains(&c.node));
        let api: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &ns);
        apply::status(&api, &key.name, &body, "runtime status").await?;
    }
    let pending: BTreeSet<&str> = due.iter().map(|c| c.node.as_str()).filter(|n| !cleaned.contains(*n)).collect();
    cache_sync::sweep(ctx, rt, &key, &pending).await?;
    if !pending.is_empty() {
        let pending: Vec<&str> = pending.into_iter().collect();
        return Err(waiting(format!("removing the cache directories on {}", pending.join(", "))));
    }

    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = stores::get(&s.volumes, None, &key.pv_name());
    let holds_name = matches!(
        apply::current(&pvs, pv.clone(), false, None, &key.pv_name(), &uid, "get pv").await?,
        Ok(Current::Ours(_))
    );
    if holds_name {
        node_sync::strip(ctx, &key.juicefs_worker_node_label(), &node_labels::worker_label_keys(&key)).await?;
        node_sync::strip(ctx, &key.worker_node_label(), &node_labels::worker_label_keys(&key)).await?;
        node_sync::strip(ctx, &key.fuse_node_label(), &[key.fuse_node_label()]).await?;
    }
    if apply::delete_ours(&pvs, pv, &uid, "delete pv").await? == Deletion::Deleting {
        return Err(waiting(format!("PV {} is being deleted", key.pv_name())));
    }
    ctx.ports.release(&uid);

    // The dataset is unbound — unless it is bound to another runtime, which this one never was.
    if let Some(dataset) = stores::get(&s.datasets, Some(&ns), &key.name) {
        let st = dataset.status.clone().unwrap_or_default();
        let ours = st.runtimes.iter().all(|r| r.name == key.name && r.type_.as_deref() == Some(keys::JUICEFS));
        if ours && st.phase != Some(DatasetPhase::NotBound) {
            let datasets: Api<Dataset> = Api::namespaced(client.clone(), &ns);
            let body = DatasetStatus {
                phase: Some(DatasetPhase::NotBound),
                dataset_ref: crate::setup::referrers(ctx, &key),
                ..Default::default()
            };
            apply::status(&datasets, &key.name, &body, "dataset status").await?;
        }
    }
    ctx.events
        .normal(&rt.object_ref(&()), "Cleaned", "removed this runtime's PV, PVC, workloads and node labels")
        .await;
    Ok(Action::await_change())
}

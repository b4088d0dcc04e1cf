//! The second controller of the runtime-controller: datasets that refer to another one
//! (`dataset://<ns>/<name>`, see `share.rs`). While the source allows it and is `Bound`, the referring
//! dataset gets its own PV and PVC (marked with its UID) served by the source's cache, and is `Bound`;
//! otherwise it is `NotBound` with a condition and an event saying why — and, when the source refuses or
//! is gone, loses the PV and PVC again (Kubernetes keeps the PVC while a pod still uses it). Deleting the
//! referring dataset removes both behind the finalizer `ferrofluid.io/dataset-share`. Reads come from
//! the runtime-controller's watch caches; a pass that finds everything as it should be writes nothing.

use crate::apply::{self, Conflict, Deletion};
use crate::context::{Context, MANAGER};
use crate::error::{Error, Step, waiting};
use crate::in_sync::fingerprinted;
use crate::setup::{now, nudge_claim};
use crate::share::{self, Share};
use crate::stores;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::sharing::{self, key_of};
use ferrofluid_api::{Dataset, DatasetPhase};
use ferrofluid_service::reconcile::{Adding, Scaffold};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use std::sync::Arc;

pub const CONTROLLER: &str = "dataset-share";

/// The runtime-controller's context, with this controller's own metrics and backoff.
pub struct ShareContext {
    pub ctx: Arc<Context>,
    pub scaffold: Scaffold,
}

pub async fn reconcile(ds: Arc<Dataset>, sc: Arc<ShareContext>) -> Result<Action, Error> {
    let ctx: &Context = &sc.ctx;
    ctx.stores.ready().await.map_err(Error::Cache)?;
    let held = ds.finalizers().iter().any(|f| f == keys::FINALIZER_SHARE);
    if !sharing::is_reference(&ds.spec) && !held {
        // A dataset with a runtime of its own: the other controller's.
        return Ok(Action::await_change());
    }
    sc.scaffold
        .finalized(
            &ctx.client,
            keys::FINALIZER_SHARE,
            Adding::ByApply,
            ds,
            move |ds| async move {
                ensure_finalizer(&ds, ctx).await?;
                apply(&ds, ctx).await
            },
            move |ds| async move { release(&ds, ctx).await.map(|()| Action::await_change()) },
        )
        .await
}

pub fn error_policy(ds: Arc<Dataset>, error: &Error, sc: Arc<ShareContext>) -> Action {
    sc.scaffold.error_policy(ds.as_ref(), error)
}

/// Adds this controller's finalizer by server-side apply, before anything is created: the finalizer
/// list is a set, so the dataset-controller's own finalizer, added at the same moment, is no conflict.
async fn ensure_finalizer(ds: &Dataset, ctx: &Context) -> Result<(), Error> {
    if !sharing::is_reference(&ds.spec) || ds.finalizers().iter().any(|f| f == keys::FINALIZER_SHARE) {
        return Ok(());
    }
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let fields = serde_json::json!({"metadata": {"name": ds.name_any(), "finalizers": [keys::FINALIZER_SHARE]}});
    ferrofluid_service::ssa::fields(&api, MANAGER, &ds.name_any(), fields, false).await.step("add finalizer")?;
    Ok(())
}

async fn apply(ds: &Dataset, ctx: &Context) -> Result<Action, Error> {
    if !sharing::is_reference(&ds.spec) {
        // It referred to another dataset once and no longer does: give back what that held.
        release(ds, ctx).await?;
        return Ok(Action::await_change());
    }
    let key = key_of(ds);
    let source = sharing::source_of(ds);
    let source = source.as_ref().and_then(|k| stores::get(&ctx.stores.datasets, Some(&k.namespace), &k.name));
    let mut decision = share::decide(ds, source.as_deref());
    let mut bind_check = None;
    match &decision {
        Share::Serve { source } => match bind(ds, ctx, &key, source).await? {
            Ok(check) => bind_check = check,
            Err(conflicts) => {
                let list: Vec<String> = conflicts.iter().map(Conflict::to_string).collect();
                let message = format!(
                    "{}; ferrofluid creates, changes and deletes only objects carrying its own mark: remove or \
                     rename that object, or use another dataset name",
                    list.join("; ")
                );
                decision = Share::Refuse { reason: "NameConflict", message };
            }
        },
        Share::Wait { .. } => {}
        Share::Refuse { reason, .. } if *reason != "NameConflict" => release(ds, ctx).await?,
        Share::Refuse { .. } => {}
    }
    write_status(ds, ctx, source.as_deref(), &decision).await?;
    Ok(match bind_check {
        Some(due) if due < ctx.resync => Action::requeue(due),
        _ => Action::requeue(ctx.resync),
    })
}

/// Makes the PV and PVC what they should be (nothing sent when they are); `Err` lists same-name
/// objects that are not this dataset's (left alone). `Ok` says when to look at the binding again.
async fn bind(
    ds: &Dataset,
    ctx: &Context,
    key: &DatasetKey,
    source: &DatasetKey,
) -> Result<Result<Option<std::time::Duration>, Vec<Conflict>>, Error> {
    let (client, s) = (&ctx.client, &ctx.stores);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &key.namespace);
    // The caches hold every PV and PVC in scope: a miss is an absence.
    let pv_now = stores::get(&s.volumes, None, &key.pv_name());
    let pvc_now = stores::get(&s.claims, Some(&key.namespace), &key.pvc_name());
    let (pv_name, pvc_name) = (key.pv_name(), key.pvc_name());
    let (pv_now, pvc_now) = futures::try_join!(
        apply::current(&pvs, pv_now, false, None, &pv_name, &uid, "get pv"),
        apply::current(&pvcs, pvc_now, false, Some(&key.namespace), &pvc_name, &uid, "get pvc"),
    )?;
    let (pv_now, pvc_now) = match (pv_now, pvc_now) {
        (Ok(pv), Ok(pvc)) => (pv, pvc),
        (pv, pvc) => return Ok(Err([pv.err(), pvc.err()].into_iter().flatten().collect())),
    };
    let pv = fingerprinted(share::persistent_volume(ds, key, source, &ctx.mount_root));
    apply::object(&pvs, &pv, &pv_now, "pv").await?;
    let pvc = fingerprinted(share::persistent_volume_claim(ds, key));
    let pvc = apply::object(&pvcs, &pvc, &pvc_now, "pvc").await?;
    Ok(Ok(nudge_claim(&pvcs, pv_now.as_ref(), &pvc).await?))
}

/// Deletes this dataset's PVC, then its PV (each only if it carries this dataset's mark); waits while
/// either is still being deleted (a pod still uses the PVC).
async fn release(ds: &Dataset, ctx: &Context) -> Result<(), Error> {
    let key = key_of(ds);
    let (client, s) = (&ctx.client, &ctx.stores);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &key.namespace);
    let pvc = stores::get(&s.claims, Some(&key.namespace), &key.pvc_name());
    if apply::delete_ours(&pvcs, pvc, &uid, "delete pvc").await? == Deletion::Deleting {
        return Err(waiting(format!("PVC {}/{} is still used by a pod", key.namespace, key.pvc_name())));
    }
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = stores::get(&s.volumes, None, &key.pv_name());
    if apply::delete_ours(&pvs, pv, &uid, "delete pv").await? == Deletion::Deleting {
        return Err(waiting(format!("PV {} is being deleted", key.pv_name())));
    }
    Ok(())
}

/// The status `share::status` builds, written only when it differs from what this controller last
/// wrote; an event when the dataset binds or stops being bound, or is refused for a new reason.
async fn write_status(ds: &Dataset, ctx: &Context, source: Option<&Dataset>, decision: &Share) -> Result<(), Error> {
    let current = ds.status.clone().unwrap_or_default();
    let referrers = crate::setup::referrers(ctx, &key_of(ds));
    let body = share::status(&current, ds, source, decision, referrers, &now());
    if body == crate::status_bodies::dataset_ours(&current) {
        return Ok(());
    }
    let r = ds.object_ref(&());
    let message = body.conditions.first().and_then(|c| c.message.clone()).unwrap_or_default();
    let reason = body.conditions.first().and_then(|c| c.reason.clone()).unwrap_or_default();
    let was = current.conditions.iter().find(|c| c.type_ == crate::status_bodies::DATASET_CONDITION);
    match decision {
        Share::Serve { .. } if current.phase != Some(DatasetPhase::Bound) => {
            ctx.events.normal(&r, "DatasetBound", message).await;
        }
        Share::Wait { .. } | Share::Refuse { .. } if was.and_then(|c| c.reason.as_deref()) != Some(reason.as_str()) => {
            ctx.events.warning(&r, &reason, message).await;
        }
        _ => {}
    }
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    apply::status(&api, &ds.name_any(), &body, "dataset status").await
}

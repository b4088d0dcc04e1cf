//! One Dataset's reconcile: `NotBound` on creation, validation conditions and events, and deletion
//! protection while pods still use the dataset's PVC or other datasets refer to it (`dataset://`).

use crate::validate::{self, Problem};
use ferrofluid_api::common::condition;
use ferrofluid_api::keys;
use ferrofluid_api::sharing;
use ferrofluid_api::{Dataset, DatasetPhase, DatasetStatus};
use ferrofluid_service::error::Step;
use ferrofluid_service::events::Events;
use ferrofluid_service::reconcile::Scaffold;
use ferrofluid_service::ssa;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub const MANAGER: &str = "ferrofluid-dataset-controller";
pub const CONTROLLER: &str = "dataset";
/// Condition type this controller owns on Datasets.
pub const VALIDATED: &str = "Validated";

pub struct Context {
    pub client: kube::Client,
    pub events: Events,
    /// Metrics, backoff and the finalizer-wrapped pass, shared with the other controller.
    pub scaffold: Scaffold,
    /// Every dataset in scope, from the watch cache: a source's deletion waits for those that refer to it.
    pub datasets: Store<Dataset>,
    /// Pods (slimmed to their claims), from the watch cache: the deletion wait reads them here.
    pub pods: Store<Pod>,
    /// Passes wait on this for the pod cache, not on the store itself (see `ReadyOnce`).
    pub pods_ready: ReadyOnce,
    /// How often a dataset with invalid input is checked again (Secrets are not watched).
    pub recheck: Duration,
    /// Check that the Secrets named in `encryptOptions` exist and hold the keys (`--check-secrets`; needs
    /// `get` on Secrets in the datasets' namespaces). Off: only what needs no Secret access is checked.
    pub check_secrets: bool,
}

use ferrofluid_service::ready::ReadyOnce;
pub use ferrofluid_service::reconcile::Error;
use ferrofluid_service::reconcile::{Adding, RACE_RETRY};

pub async fn reconcile(ds: Arc<Dataset>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.pods_ready.wait(|| ctx.pods.wait_until_ready()).await.map_err(Error::Cache)?;
    let c: &Context = &ctx;
    c.scaffold
        .finalized(
            &c.client,
            keys::FINALIZER_DATASET,
            Adding::Patch,
            ds,
            move |ds| async move { apply(&ds, c).await },
            move |ds| async move { cleanup(&ds, c).await },
        )
        .await
}

pub fn error_policy(ds: Arc<Dataset>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.scaffold.error_policy(ds.as_ref(), error)
}

/// How often a deletion waiting for pods checks again, besides the pod events that wake it first.
pub const IN_USE_RECHECK: Duration = Duration::from_secs(30);

async fn event(ctx: &Context, ds: &Dataset, type_: EventType, reason: &str, note: String) {
    ctx.events.publish(&ds.object_ref(&()), type_, reason, note).await;
}

async fn apply(ds: &Dataset, ctx: &Context) -> Result<Action, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ns);
    let status = ds.status.clone().unwrap_or_default();

    let secrets = if ctx.check_secrets {
        Some(read_secrets(ctx, &ns, &validate::referenced_secrets(&ds.spec)).await?)
    } else {
        None
    };
    let problems = validate::validate(&ds.spec, &ns, &name, secrets.as_ref());
    let ok = problems.is_empty();
    let message = if ok { "the dataset's input is valid".to_string() } else { join(&problems) };
    let reason = if ok { "Valid" } else { "InvalidInput" };
    let cond = condition(&status.conditions, VALIDATED, ok, reason, message.clone(), &Timestamp::now().to_string());
    let unchanged = status.conditions.contains(&cond);
    if matches!(status.phase, None | Some(DatasetPhase::None)) {
        // A new dataset is NotBound, and says whether its input is valid — one write. Guarded by
        // resourceVersion: if a runtime bound it meanwhile, this fails with a conflict instead of
        // overwriting `Bound` (or the runtime's condition: the list sent is the stored one plus ours).
        let mut conditions: Vec<_> = status.conditions.iter().filter(|c| c.type_ != VALIDATED).cloned().collect();
        conditions.push(cond);
        let patch = json!({
            "metadata": {"resourceVersion": ds.resource_version()},
            "status": {"phase": "NotBound", "conditions": conditions},
        });
        let params = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
        match api.patch_status(&name, &params, &Patch::Merge(patch)).await {
            Ok(_) => {}
            // Written meanwhile (a runtime bound it, or the runtime-controller judged a reference).
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::requeue(RACE_RETRY)),
            Err(e) => return Err(e).step("set NotBound")?,
        }
    } else if !unchanged {
        let body = DatasetStatus { conditions: vec![cond], ..Default::default() };
        ssa::status(&api, MANAGER, &name, &body).await.step("validated condition")?;
    }
    if ok {
        Ok(Action::requeue(Duration::from_secs(300)))
    } else {
        if !unchanged {
            event(ctx, ds, EventType::Warning, "InvalidInput", message).await;
        }
        Ok(Action::requeue(ctx.recheck))
    }
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

/// What the Secrets named by the dataset hold: their key sets (values are never read into logs or
/// events), or that this controller may not read them.
async fn read_secrets(ctx: &Context, ns: &str, names: &BTreeSet<String>) -> Result<validate::SecretKeys, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut found = BTreeMap::new();
    for name in names {
        match api.get_opt(name).await {
            Ok(Some(secret)) => {
                let mut keys: BTreeSet<String> = secret.data.unwrap_or_default().into_keys().collect();
                keys.extend(secret.string_data.unwrap_or_default().into_keys());
                found.insert(name.clone(), validate::SecretView::Keys(keys));
            }
            Ok(None) => {}
            Err(kube::Error::Api(s)) if s.code == 403 => {
                found.insert(name.clone(), validate::SecretView::Forbidden);
            }
            Err(e) => return Err(e).step("get secret")?,
        }
    }
    Ok(found)
}

/// Pods (not yet terminated) that mount the dataset's PVC.
pub fn pods_using_claim<'a>(pods: &'a [Pod], claim: &str) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed")))
        .filter(|p| {
            p.spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == claim))
        })
        .collect()
}

async fn cleanup(ds: &Dataset, ctx: &Context) -> Result<Action, Error> {
    let ns = ds.namespace().unwrap_or_default();
    // A source goes only after every dataset that refers to it (their deletion wakes this one).
    let datasets = ctx.datasets.state();
    let referring = sharing::referrers(datasets.iter().map(|d| d.as_ref()), &sharing::key_of(ds));
    if !referring.is_empty() {
        let shown = referring.join(", ");
        let note = format!("deletion waits: datasets refer to this one with dataset://{ns}/{}: {shown}", ds.name_any());
        event(ctx, ds, EventType::Warning, "DatasetReferenced", note).await;
        return Err(Error::waiting(
            "referenced",
            format!("dataset {} is referred to by {shown}", ds.name_any()),
            IN_USE_RECHECK,
        ));
    }
    let pods: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .map(|p| (**p).clone())
        .collect();
    let users = pods_using_claim(&pods, &ds.name_any());
    if users.is_empty() {
        return Ok(Action::await_change());
    }
    let mut names: Vec<String> = users.iter().map(|p| p.name_any()).collect();
    names.sort();
    let shown = if names.len() > 5 {
        format!("{} and {} more", names[..5].join(", "), names.len() - 5)
    } else {
        names.join(", ")
    };
    event(
        ctx,
        ds,
        EventType::Warning,
        "DatasetInUse",
        format!("deletion waits: pods still use PVC {}: {shown}", ds.name_any()),
    )
    .await;
    Err(Error::waiting("in_use", format!("dataset {} is in use by pods: {shown}", ds.name_any()), IN_USE_RECHECK))
}

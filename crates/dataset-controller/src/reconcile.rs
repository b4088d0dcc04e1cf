//! One Dataset's reconcile: `NotBound` on creation, validation conditions and events, and deletion
//! protection while pods still use the dataset's PVC.

use crate::validate::{self, Problem};
use ferrofluid_api::common::condition;
use ferrofluid_api::keys;
use ferrofluid_api::{Dataset, DatasetPhase};
use ferrofluid_service::error::{KubeError, Step};
use ferrofluid_service::metrics::ReconcileMetrics;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
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
    pub recorder: Recorder,
    pub metrics: ReconcileMetrics,
    /// How often a dataset with invalid input is checked again (Secrets are not watched).
    pub recheck: Duration,
    /// Check that the Secrets named in `encryptOptions` exist and hold the keys (`--check-secrets`; needs
    /// `get` on Secrets in the datasets' namespaces). Off: only what needs no Secret access is checked.
    pub check_secrets: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("dataset {0} is in use by pods: {1}")]
    InUse(String, String),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::InUse(..) => "in_use",
            Error::Finalizer(e) => match **e {
                kube::runtime::finalizer::Error::CleanupFailed(Error::InUse(..)) => "in_use",
                _ => "finalizer",
            },
            Error::NoNamespace(_) => "input",
        }
    }
}

pub async fn reconcile(ds: Arc<Dataset>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.start(CONTROLLER);
    let ns = ds.namespace().ok_or_else(|| Error::NoNamespace(ds.name_any()))?;
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, keys::FINALIZER_DATASET, ds, |event| async {
        match event {
            Finalizer::Apply(ds) => apply(&ds, &ctx).await,
            Finalizer::Cleanup(ds) => cleanup(&ds, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(_ds: Arc<Dataset>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failure(CONTROLLER, error.metric_label());
    if error.metric_label() == "in_use" {
        return Action::requeue(Duration::from_secs(3));
    }
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

async fn event(ctx: &Context, ds: &Dataset, type_: EventType, reason: &str, note: String) {
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &ds.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

async fn apply(ds: &Dataset, ctx: &Context) -> Result<Action, Error> {
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ns);
    let status = ds.status.clone().unwrap_or_default();

    // A new dataset is NotBound. Guarded by resourceVersion: if a runtime bound it meanwhile, this fails
    // with a conflict instead of overwriting `Bound`.
    if matches!(status.phase, None | Some(DatasetPhase::None)) {
        let patch = json!({
            "metadata": {"resourceVersion": ds.resource_version()},
            "status": {"phase": "NotBound"},
        });
        api.patch_status(
            &name,
            &PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() },
            &Patch::Merge(patch),
        )
        .await
        .step("set NotBound")?;
        event(ctx, ds, EventType::Normal, "NotBound", "no runtime is bound to this dataset yet".into()).await;
    }

    let secrets = if ctx.check_secrets {
        Some(read_secrets(ctx, &ns, &validate::referenced_secrets(&ds.spec)).await?)
    } else {
        None
    };
    let problems = validate::validate(&ds.spec, secrets.as_ref());
    let ok = problems.is_empty();
    let message = if ok { "the dataset's input is valid".to_string() } else { join(&problems) };
    let reason = if ok { "Valid" } else { "InvalidInput" };
    let cond = condition(&status.conditions, VALIDATED, ok, reason, message.clone(), &Timestamp::now().to_string());
    let unchanged = status.conditions.contains(&cond);
    if !unchanged {
        let body = json!({
            "apiVersion": Dataset::api_version(&()), "kind": Dataset::kind(&()),
            "status": {"conditions": [cond]},
        });
        api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
            .await
            .step("validated condition")?;
    }
    if ok {
        Ok(Action::requeue(Duration::from_secs(300)))
    } else {
        event(ctx, ds, EventType::Warning, "InvalidInput", message).await;
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
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let list = pods.list(&ListParams::default()).await.step("list pods")?;
    let users = pods_using_claim(&list.items, &ds.name_any());
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
    Err(Error::InUse(ds.name_any(), shown))
}

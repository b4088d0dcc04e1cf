//! The reconcile scaffold both controllers share: one error type, the finalizer-wrapped pass (timed,
//! namespaced, its finalizer's own failures named as steps), and the error policy — waiting on
//! something outside is checked again at a fixed pace, a failure backs off per object.

use crate::args::ControllerArgs;
use crate::backoff::ErrorBackoff;
use crate::error::KubeError;
use crate::metrics::ReconcileMetrics;
use crate::runner::drain;
use futures::{TryFuture, TryFutureExt};
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a reconcile pass did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed; the step names it.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Waiting for something outside the controller (pods still using a PVC, a PV being deleted): not a
    /// failure. Checked again after `recheck`, besides the watch events that usually come first.
    #[error("waiting: {message}")]
    Waiting { kind: &'static str, message: String, recheck: Duration },
    #[error("{0} has no namespace")]
    NoNamespace(String),
    /// The watch caches a pass reads are not available.
    #[error("watch cache: {0}")]
    Cache(String),
    /// A bug: e.g. an object the controller built does not serialize.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// Waiting of `kind` (the failure metric's label) with `message`, checked again after `recheck`.
    pub fn waiting(kind: &'static str, message: impl Into<String>, recheck: Duration) -> Self {
        Error::Waiting { kind, message: message.into(), recheck }
    }

    /// The `error_kind` label of `ferrofluid_reconcile_failures_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Waiting { kind, .. } => kind,
            Error::NoNamespace(_) => "input",
            Error::Cache(_) => "cache",
            Error::Internal(_) => "internal",
        }
    }

    /// The API's refusal behind the error, as `"<step>: <code> <reason>: <message>"` — for refusals a
    /// retry does not fix by itself (bad request, forbidden, not found, invalid, denied by admission),
    /// not for conflicts or outages.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Error::Kube(KubeError { step, source: kube::Error::Api(s) }) if matches!(s.code, 400 | 403 | 404 | 422) => {
                Some(format!("{step}: {} {}: {}", s.code, s.reason, s.message))
            }
            _ => None,
        }
    }
}

/// How a live object without the controller's finalizer gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adding {
    /// A JSON patch that tests the finalizer list as it was read; the pass ends there and the patch's
    /// own watch event starts the next one (whose writes then see the object as it is now).
    Patch,
    /// `apply` adds it with its first write, in the same pass (it must, before it creates anything that
    /// needs cleaning up): one request and one pass less per new object.
    ByApply,
}

/// Adds `finalizer` — only to the list as it was read (the test fails the patch otherwise, and the pass
/// is retried on a fresh read).
async fn add_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    json_patch(api, &obj.name_any(), adding_ops(obj.finalizers(), finalizer), "add finalizer").await
}

/// When a pass whose guarded write lost a race with another writer looks again: at once, at the object as
/// the cache has it then — not after an error backoff.
pub const RACE_RETRY: Duration = Duration::from_millis(200);

/// Whether a JSON patch failed on its `test` operation: the API server answers 422 without naming any
/// field (a validation failure names the fields it refuses).
fn test_failed(e: &Error) -> bool {
    matches!(e, Error::Kube(KubeError { source: kube::Error::Api(s), .. })
        if s.code == 422 && s.details.as_ref().is_none_or(|d| d.causes.is_empty()))
}

/// The JSON patch that adds `finalizer` to exactly the list `current`.
fn adding_ops(current: &[String], finalizer: &str) -> serde_json::Value {
    if current.is_empty() {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ])
    } else {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ])
    }
}

/// The JSON patch that removes `finalizer` if it still is at `index`.
fn removing_ops(index: usize, finalizer: &str) -> serde_json::Value {
    let path = format!("/metadata/finalizers/{index}");
    serde_json::json!([
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ])
}

async fn json_patch<K>(api: &Api<K>, name: &str, ops: serde_json::Value, step: &'static str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|e| Error::Internal(format!("{step}: {e}")))?;
    match api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Json::<()>(patch)).await {
        Ok(_) => Ok(()),
        Err(source) => Err(KubeError { step, source }.into()),
    }
}

/// Removes `finalizer` at `index` — only if it still is there (the test fails the patch otherwise, and
/// the pass is retried on a fresh read). An object already gone is fine.
async fn remove_finalizer<K>(api: &Api<K>, name: &str, index: usize, finalizer: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    match json_patch(api, name, removing_ops(index, finalizer), "remove finalizer").await {
        // Gone already: a pass on a cache that had not seen the removal yet.
        Err(Error::Kube(KubeError { source: kube::Error::Api(s), .. })) if s.code == 404 => Ok(()),
        other => other,
    }
}

fn object_key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What a controller's passes share: its name (the metrics' `controller` label), its metrics, and the
/// per-object error backoff.
pub struct Scaffold {
    pub controller: &'static str,
    pub metrics: ReconcileMetrics,
    pub backoff: ErrorBackoff,
}

impl Scaffold {
    /// Backoff from 2 s, doubling to at most 5 min.
    pub fn new(controller: &'static str, metrics: ReconcileMetrics) -> Self {
        Self { controller, metrics, backoff: ErrorBackoff::new(Duration::from_secs(2), Duration::from_secs(300)) }
    }

    /// One pass over a namespaced object behind `finalizer_name`: `apply` while it lives, `cleanup` once
    /// it is being deleted. A live object without the finalizer gets it as `adding` says. Once the object
    /// is being deleted: `cleanup`, then the finalizer removed by a JSON patch that tests it is still where
    /// it was read; an object without it is left alone. Timed; a success resets the object's backoff.
    pub async fn finalized<K, A, AF, C, CF>(
        &self,
        client: &kube::Client,
        finalizer_name: &str,
        adding: Adding,
        obj: Arc<K>,
        apply: A,
        cleanup: C,
    ) -> Result<Action, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        A: FnOnce(Arc<K>) -> AF,
        AF: Future<Output = Result<Action, Error>>,
        C: FnOnce(Arc<K>) -> CF,
        CF: Future<Output = Result<Action, Error>>,
    {
        let _timer = self.metrics.start(self.controller);
        let ns = obj.namespace().ok_or_else(|| Error::NoNamespace(obj.name_any()))?;
        let key = object_key(obj.as_ref());
        let api: Api<K> = Api::namespaced(client.clone(), &ns);
        let at = obj.finalizers().iter().position(|f| f == finalizer_name);
        let result = match (obj.meta().deletion_timestamp.is_some(), at) {
            (false, None) if adding == Adding::Patch => match add_finalizer(&api, obj.as_ref(), finalizer_name).await {
                Ok(()) => Ok(Action::await_change()),
                // The list changed since it was read (another controller added its own finalizer): the test
                // failed. Look again shortly, at the object as it is then — no error backoff for a race.
                Err(e) if test_failed(&e) => Ok(Action::requeue(RACE_RETRY)),
                Err(e) => Err(e),
            },
            (false, _) => apply(obj).await,
            (true, None) => Ok(Action::await_change()),
            (true, Some(index)) => match cleanup(obj.clone()).await {
                Ok(_) => {
                    remove_finalizer(&api, &obj.name_any(), index, finalizer_name).await?;
                    Ok(Action::await_change())
                }
                Err(e) => Err(e),
            },
        };
        if result.is_ok() {
            self.backoff.reset(&key);
        }
        result
    }

    /// After a failed pass: waiting is checked again at its own pace; anything else backs off.
    pub fn error_policy<K: Resource>(&self, obj: &K, error: &Error) -> Action {
        self.metrics.failure(self.controller, error.metric_label());
        if let Error::Waiting { recheck, .. } = error {
            tracing::info!(%error, "waiting");
            return Action::requeue(*recheck);
        }
        let delay = self.backoff.next(&object_key(obj));
        tracing::warn!(%error, retry_in = ?delay, "reconcile failed");
        Action::requeue(delay)
    }
}

/// How long a stop waits for the passes that are running to finish.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs `controller` with the shared settings (`--concurrency`) until it ends or `stop` fires. On a stop
/// no new pass starts and the running ones get [`STOP_GRACE`] to finish; requeues scheduled for later are
/// dropped (the next leader's initial list reconciles every object anyway). kube's own graceful shutdown
/// would also wait for every scheduled requeue — minutes, at the resync period.
pub async fn serve<K, Fut, Ctx>(
    controller: Controller<K>,
    args: &ControllerArgs,
    stop: CancellationToken,
    mut reconciler: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    error_policy: impl Fn(Arc<K>, &Fut::Error, Arc<Ctx>) -> Action,
    ctx: Arc<Ctx>,
) where
    K: Clone + Resource + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
    Fut: TryFuture<Ok = Action> + Send + 'static,
    Fut::Error: std::error::Error + Send + 'static,
{
    // Each running pass holds a token of `running`; a stop closes it and waits for the tokens to go.
    let running = TaskTracker::new();
    let stopping = stop.clone();
    let counted = {
        let running = running.clone();
        move |obj: Arc<K>, ctx: Arc<Ctx>| {
            // A pass that would start after the stop is not started.
            let pass = (!stopping.is_cancelled()).then(|| (running.token(), reconciler(obj, ctx)));
            Box::pin(async move {
                match pass {
                    Some((_token, pass)) => TryFutureExt::into_future(pass).await,
                    None => Ok(Action::await_change()),
                }
            })
        }
    };
    let controller = controller.with_config(controller::Config::default().concurrency(args.concurrency));
    let mut run = std::pin::pin!(drain(controller.run(counted, error_policy, ctx)));
    tokio::select! {
        _ = &mut run => return,
        _ = stop.cancelled() => {}
    }
    running.close();
    let grace = tokio::time::sleep(STOP_GRACE);
    tokio::select! {
        _ = &mut run => {}
        _ = running.wait() => {}
        _ = grace => tracing::warn!(running = running.len(), "stopping with passes still running"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn refused(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status { code, ..Status::failure(message, reason) }.boxed())
    }

    fn api_error(code: u16) -> Error {
        KubeError { step: "pvc", source: refused(code, "R", "m") }.into()
    }

    #[test]
    fn refusals_are_told_apart_from_retries() {
        assert_eq!(api_error(403).refusal().as_deref(), Some("pvc: 403 R: m"));
        assert!(api_error(422).refusal().is_some());
        assert!(api_error(409).refusal().is_none(), "a conflict resolves itself");
        assert!(api_error(500).refusal().is_none());
        assert!(Error::waiting("waiting", "x", Duration::from_secs(1)).refusal().is_none());
    }

    /// The patches apply to exactly the list they were built from, and fail on any other.
    #[test]
    fn finalizer_patches_test_what_they_change() {
        let apply = |doc: serde_json::Value, ops: serde_json::Value| {
            let mut doc = doc;
            let patch: json_patch::Patch = serde_json::from_value(ops).expect("patch");
            json_patch::patch(&mut doc, &patch.0).map(|_| doc["metadata"]["finalizers"].clone())
        };
        // The API server (evanphx/json-patch) tests a missing member as null; this crate does not, so
        // the object without finalizers is spelled with an explicit null here. The real path runs in every
        // e2e test that creates a Dataset.
        let bare = serde_json::json!({"metadata": {"name": "x", "finalizers": null}});
        assert_eq!(apply(bare.clone(), adding_ops(&[], "f")).expect("added"), serde_json::json!(["f"]));
        let other = serde_json::json!({"metadata": {"name": "x", "finalizers": ["a"]}});
        assert!(apply(other.clone(), adding_ops(&[], "f")).is_err(), "someone added one meanwhile");
        let current = ["a".to_string()];
        assert_eq!(apply(other.clone(), adding_ops(&current, "f")).expect("added"), serde_json::json!(["a", "f"]));
        let both = serde_json::json!({"metadata": {"name": "x", "finalizers": ["a", "f"]}});
        assert_eq!(apply(both.clone(), removing_ops(1, "f")).expect("removed"), serde_json::json!(["a"]));
        assert!(apply(both, removing_ops(0, "f")).is_err(), "not at that index any more");
    }
}

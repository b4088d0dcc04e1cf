//! One pod bound to the agent's node, from bind to deletion: its CSI volumes are staged and
//! published (any pod), and — for pods ferrofluid created — its init containers run to completion,
//! then its containers run until the pod goes away, after which everything is undone in reverse.

use crate::container::{self, Kind, Outcome};
use crate::ctx::AgentCtx;
use crate::pod_status::{self, PodStatusReporter};
use crate::status::{self, PodRecord};
use crate::volumes::{self, CsiVolume};
use ferrofluid_api::keys::{LABEL_MANAGED_BY, LABEL_OPERATION_UID, MANAGED_BY};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Pods whose containers the agent runs: those ferrofluid created (worker and FUSE pods).
pub fn runs_containers(pod: &Pod) -> bool {
    pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(MANAGED_BY)
}

/// Pods the agent runs to completion once: ferrofluid's with `restartPolicy` `Never` or `OnFailure`
/// (Job pods: cache cleanups, data operations). They are not stopped when kwok marks them finished.
pub fn runs_to_completion(pod: &Pod) -> bool {
    runs_containers(pod)
        && matches!(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()), Some("Never" | "OnFailure"))
}

/// Run-to-completion pods whose `phase` the agent reports (`Succeeded`/`Failed` once their containers
/// have ended, as kubelet does): data-operation pods (label `ferrofluid.io/operation-uid`), which kwok's
/// `pod-complete` stage leaves alone (`hack/kwok-stages.yaml`). Other Job pods get their phase from kwok.
pub fn reports_phase(pod: &Pod) -> bool {
    runs_to_completion(pod) && pod.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_OPERATION_UID))
}

/// Whether the pod mounts any claim (whose PV may be a ferrofluid CSI volume).
fn uses_claims(pod: &Pod) -> bool {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).any(|v| v.persistent_volume_claim.is_some())
}

/// Kubelet knows the pod IP before it starts containers; here kwok assigns it, so wait for it.
fn has_ip(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    let ip =
        if host_network { status.and_then(|s| s.host_ip.as_ref()) } else { status.and_then(|s| s.pod_ip.as_ref()) };
    ip.is_some_and(|i| !i.is_empty())
}

/// How long a pod may wait for kwok to give it an IP before the agent touches it. kwok skips a pod
/// event that arrives while it does not see its own node lease in its cache (it treats the node as not
/// its own then) and does not look at the pod again until the pod changes.
const NUDGE_AFTER: Duration = Duration::from_secs(10);

/// Changes an annotation of the pod (nothing reads it) so kwok gets an event for it again.
async fn nudge(client: &kube::Client, ns: &str, name: &str, n: u32) {
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"annotations": {"agent.ferrofluid.io/ip-nudges": n.to_string()}}});
    if let Err(e) = api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await {
        tracing::warn!(pod = %name, namespace = %ns, error = %e, "cannot touch pod");
    }
}

pub async fn run(ctx: Arc<AgentCtx>, mut rx: watch::Receiver<Pod>, cancel: CancellationToken) {
    let pod = rx.borrow().clone();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let status_path = ctx.layout.pod_status(&ns, &name);
    let mut rec = PodRecord {
        namespace: ns.clone(),
        pod: name.clone(),
        uid: uid.clone(),
        runs_containers: runs_containers(&pod),
        phase: "preparing-volumes".into(),
        ..Default::default()
    };
    if !rec.runs_containers {
        rec.message = Some(format!("containers not run: pod lacks {LABEL_MANAGED_BY}={MANAGED_BY}"));
    }
    status::write(&status_path, &rec);
    tracing::info!(pod = %name, namespace = %ns, runs_containers = rec.runs_containers, "pod bound to this node");

    let mut published: Vec<CsiVolume> = Vec::new();
    let mut containers = JoinSet::new();
    'setup: {
        if uses_claims(&pod) {
            let Some(csi) = ctx.csi.clone() else {
                rec.message = Some("pod uses claims but this agent runs no CSI plugin".into());
                status::write(&status_path, &rec);
                break 'setup;
            };
            let vols = match retry_until(&cancel, || volumes::resolve(&ctx.client, &pod)).await {
                Some(v) => v,
                None => break 'setup,
            };
            for vol in vols {
                // Counted before the attempt: a cancelled setup may have staged it, teardown undoes that.
                published.push(vol.clone());
                if !csi.setup(&pod, &vol, &cancel).await {
                    break 'setup;
                }
                rec.csi_volumes.push(vol.pv.clone());
                status::write(&status_path, &rec);
            }
        }
        if !rec.runs_containers {
            rec.phase = "running".into();
            status::write(&status_path, &rec);
            break 'setup;
        }
        rec.phase = "waiting-for-ip".into();
        status::write(&status_path, &rec);
        let mut nudges = 0u32;
        while !has_ip(&rx.borrow()) {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break 'setup },
                _ = cancel.cancelled() => break 'setup,
                _ = tokio::time::sleep(NUDGE_AFTER) => {
                    nudges += 1;
                    tracing::warn!(pod = %name, namespace = %ns, nudges, "pod has no IP yet; touching it so kwok sees it again");
                    nudge(&ctx.client, &ns, &name, nudges).await;
                }
            }
        }
        let layout = ctx.layout.clone();
        if retry_until(&cancel, || {
            let layout = layout.clone();
            let pod = rx.borrow().clone();
            async move { volumes::prepare_local(&layout, &pod) }
        })
        .await
        .is_none()
        {
            break 'setup;
        }
        rec.phase = "running".into();
        status::write(&status_path, &rec);
        let spec = pod.spec.clone().unwrap_or_default();
        // Reported only from here on: kwok has set the pod Running (it gave it an IP) and does not
        // touch a pod with an IP again, so the agent's status is not overwritten. While init containers
        // run, the regular ones wait (`PodInitializing`) and the pod is not Ready, as with kubelet.
        let reporter = Arc::new(PodStatusReporter::new(ctx.client.clone(), rx.clone(), reports_phase(&pod)));
        let inits = spec.init_containers.clone().unwrap_or_default();
        if !inits.is_empty() {
            for c in &spec.containers {
                let state = pod_status::waiting("PodInitializing", String::new());
                let image = c.image.clone().unwrap_or_default();
                reporter.report(pod_status::container_status(&c.name, &image, false, 0, state, None), false).await;
            }
        }
        for c in inits {
            let r = Some(reporter.clone());
            match container::supervise(ctx.clone(), rx.clone(), c, Kind::Init, cancel.clone(), r).await {
                Outcome::Completed => {}
                Outcome::Failed | Outcome::Stopped => break 'setup,
            }
        }
        for c in spec.containers {
            let r = Some(reporter.clone());
            containers.spawn(container::supervise(ctx.clone(), rx.clone(), c, Kind::Regular, cancel.clone(), r));
        }
    }

    cancel.cancelled().await;
    rec.phase = "stopping".into();
    status::write(&status_path, &rec);
    while containers.join_next().await.is_some() {}
    if let Some(csi) = &ctx.csi {
        for vol in &published {
            if let Err(e) = csi.teardown(&uid, vol, 10).await {
                tracing::warn!(pod = %name, pv = %vol.pv, error = %e, "cannot tear down volume");
                ctx.event(&pod, EventType::Warning, "FailedUnmount", format!("volume {}: {e}", vol.pv)).await;
            }
        }
    }
    volumes::remove_pod_dir(&ctx.layout, &uid);
    rec.phase = "stopped".into();
    status::write(&status_path, &rec);
    tracing::info!(pod = %name, namespace = %ns, "pod stopped");
}

/// Retries `attempt` every few seconds until it succeeds; `None` when cancelled first.
async fn retry_until<T, F, Fut>(cancel: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => tracing::info!(error = %e, retry_in = ?delay, "pod not ready to start"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

//! The agent's main loop: watch the pods bound to this node and keep one task per pod, started when
//! the pod appears and cancelled when it is deleted (or marked for deletion, or finished).

use crate::ctx::AgentCtx;
use crate::pod;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

struct PodTask {
    tx: watch::Sender<Pod>,
    cancel: CancellationToken,
    runs_containers: bool,
}

pub struct Supervisor {
    ctx: Arc<AgentCtx>,
    pods: HashMap<String, PodTask>,
    tasks: JoinSet<()>,
    ready: bool,
}

/// Whether the pod is to be stopped (or not started): it is being deleted, or it has finished. For
/// the pods the agent runs to completion itself (ferrofluid's, with `restartPolicy` `Never` or
/// `OnFailure`) the phase is kwok's or the agent's:
/// - cache-cleanup Jobs: kwok marks a Job's pod Succeeded the moment it runs, before or while the agent
///   runs it, so that phase says nothing about its containers. They run once, to their end, unless the
///   pod is deleted first — else a cleanup the agent saw late (its watch reconnecting after an API
///   server restart) would never have run at all.
/// - data-operation pods ([`pod::reports_phase`]): kwok leaves their phase alone and the agent sets it
///   once their containers have ended, so a terminal phase means they ran: they are done, and are not
///   run again (also not by an agent started later).
fn finished(pod: &Pod) -> bool {
    let terminal = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    let phase_is_kwoks = pod::runs_to_completion(pod) && !pod::reports_phase(pod);
    pod.metadata.deletion_timestamp.is_some() || (terminal && !phase_is_kwoks)
}

/// The pod watch's retry delays: 200 ms, doubling, at most 1 s. kube's default grows to 30 s over an
/// API server outage, and a stand-in kubelet that sleeps that long misses pods whose whole life falls in
/// the gap — a cache-cleanup pod that kwok marks Succeeded at once is deleted with its Job seconds later,
/// never run (seen after a kube-apiserver restart in `faults_control_plane`).
struct PodWatchBackoff {
    next: Duration,
}

impl PodWatchBackoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(1);
}

impl Default for PodWatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for PodWatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(Self::MAX);
        Some(now)
    }
}

impl Backoff for PodWatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Supervisor {
    pub fn new(ctx: Arc<AgentCtx>) -> Self {
        Self { ctx, pods: HashMap::new(), tasks: JoinSet::new(), ready: false }
    }

    /// Runs until `shutdown` fires, then stops every pod (pods using volumes first, so volumes are
    /// unpublished while the FUSE pods behind them still run) and returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", self.ctx.node));
        let mut events = watcher(api, cfg).backoff(PodWatchBackoff::default()).boxed();
        let mut listing: Option<HashSet<String>> = None;
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) => self.handle(ev, &mut listing),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                    None => break,
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!(pods = self.pods.len(), "stopping all pods");
        let (apps, rest): (Vec<_>, Vec<_>) = self.pods.drain().partition(|(_, t)| !t.runs_containers);
        for (_, t) in &apps {
            t.cancel.cancel();
        }
        // App pods (whose volumes the agent publishes) go first: a FUSE process stopped before them
        // would leave their bind mounts dangling until they are unpublished.
        while !apps.iter().all(|(_, t)| t.tx.is_closed()) {
            if self.tasks.join_next().await.is_none() {
                break;
            }
        }
        for (_, t) in &rest {
            t.cancel.cancel();
        }
        while self.tasks.join_next().await.is_some() {}
        let _ = std::fs::remove_file(self.ctx.layout.ready_file());
    }

    fn handle(&mut self, ev: watcher::Event<Pod>, listing: &mut Option<HashSet<String>>) {
        match ev {
            watcher::Event::Init => *listing = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (listing.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                self.apply(pod);
            }
            watcher::Event::InitDone => {
                if let Some(seen) = listing.take() {
                    let gone: Vec<String> = self.pods.keys().filter(|u| !seen.contains(*u)).cloned().collect();
                    gone.iter().for_each(|uid| self.stop(uid));
                }
                if !self.ready {
                    self.ready = true;
                    let path = self.ctx.layout.ready_file();
                    if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot write ready file");
                    }
                    tracing::info!(node = %self.ctx.node, pods = self.pods.len(), "node agent ready");
                }
            }
            watcher::Event::Apply(pod) => self.apply(pod),
            watcher::Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    self.stop(&uid);
                }
            }
        }
    }

    fn apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        if finished(&pod) {
            self.stop(&uid);
            return;
        }
        match self.pods.get(&uid) {
            Some(task) => {
                task.tx.send_replace(pod);
            }
            None => {
                let runs_containers = pod::runs_containers(&pod);
                let (tx, rx) = watch::channel(pod);
                let cancel = CancellationToken::new();
                self.tasks.spawn(pod::run(self.ctx.clone(), rx, cancel.clone()));
                self.pods.insert(uid, PodTask { tx, cancel, runs_containers });
            }
        }
    }

    fn stop(&mut self, uid: &str) {
        if let Some(task) = self.pods.remove(uid) {
            task.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::keys::{LABEL_MANAGED_BY, LABEL_OPERATION_UID, MANAGED_BY};
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::collections::BTreeMap;

    fn pod(labels: &[(&str, &str)], policy: &str, phase: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels =
            Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>());
        p.spec = Some(PodSpec { restart_policy: Some(policy.into()), ..Default::default() });
        p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
        p
    }

    const OURS: (&str, &str) = (LABEL_MANAGED_BY, MANAGED_BY);
    const OPERATION: (&str, &str) = (LABEL_OPERATION_UID, "0a6c1d1e-5c1f-4d0e-9f3e-2f0f2d9a7b11");

    #[test]
    fn the_pod_watch_retries_within_a_second_and_starts_over_after_a_reset() {
        let mut b = PodWatchBackoff::default();
        let first: Vec<u128> = b.by_ref().take(5).map(|d| d.as_millis()).collect();
        assert_eq!(first, [200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(200)));
    }

    #[test]
    fn kwoks_phase_does_not_finish_a_cleanup_job_pod() {
        for phase in ["Succeeded", "Failed"] {
            assert!(!finished(&pod(&[OURS], "Never", phase)), "{phase}");
            assert!(!finished(&pod(&[OURS], "OnFailure", phase)), "{phase}");
        }
        assert!(!pod::reports_phase(&pod(&[OURS], "Never", "Running")));
    }

    #[test]
    fn an_operation_pod_is_finished_by_the_phase_the_agent_set() {
        assert!(pod::reports_phase(&pod(&[OURS, OPERATION], "Never", "Running")));
        assert!(!finished(&pod(&[OURS, OPERATION], "Never", "Running")));
        for phase in ["Succeeded", "Failed"] {
            assert!(finished(&pod(&[OURS, OPERATION], "Never", phase)), "{phase}: not run again");
            assert!(finished(&pod(&[OURS, OPERATION], "OnFailure", phase)), "{phase}: not run again");
        }
        // Without ferrofluid's mark the agent does not run it, and the label alone changes nothing.
        assert!(!pod::reports_phase(&pod(&[OPERATION], "Never", "Running")));
        assert!(finished(&pod(&[OPERATION], "Never", "Succeeded")));
    }

    #[test]
    fn other_pods_finish_with_their_phase_and_any_pod_with_its_deletion() {
        assert!(finished(&pod(&[OURS], "Always", "Succeeded")));
        assert!(!finished(&pod(&[OURS], "Always", "Running")));
        assert!(finished(&pod(&[], "Never", "Failed")));
        for labels in [&[OURS][..], &[OURS, OPERATION][..], &[][..]] {
            let mut p = pod(labels, "Never", "Running");
            p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
            assert!(finished(&p), "{labels:?}");
        }
    }
}

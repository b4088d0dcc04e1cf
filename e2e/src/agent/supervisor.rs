//! The agent's main loop: watch the pods bound to this node and keep one task per pod, started when
//! the pod appears and cancelled when it is deleted (or marked for deletion, or finished).

use crate::agent::ctx::AgentCtx;
use crate::agent::pod;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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

/// Whether the pod is to be stopped (or not started): it is being deleted, or it has finished. Not
/// finished by its phase alone are the pods the agent runs to completion itself (ferrofluid's, with
/// `restartPolicy` `Never` or `OnFailure`: the cache-cleanup Jobs): kwok marks a Job's pod Succeeded
/// the moment it runs, before or while the agent runs it, so that phase says nothing about its
/// containers. They run once, to their end, unless the pod is deleted first — else a cleanup the agent
/// saw late (its watch reconnecting after an API server restart) would never have run at all.
fn finished(pod: &Pod) -> bool {
    let terminal = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    let run_to_completion = pod::runs_containers(pod)
        && matches!(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()), Some("Never" | "OnFailure"));
    pod.metadata.deletion_timestamp.is_some() || (terminal && !run_to_completion)
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
        let mut events = watcher(api, cfg).default_backoff().boxed();
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

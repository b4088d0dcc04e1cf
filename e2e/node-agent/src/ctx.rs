//! What every pod task of one agent shares.

use crate::layout::NodeLayout;
use crate::volumes::CsiVolumes;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use std::sync::Arc;
use std::time::Duration;

/// Restart delays: `initial`, doubled after each failure up to `max`, back to `initial` once a process
/// has run for `reset_after` (kubelet's CrashLoopBackOff, shorter).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Backoff {
    pub fn next(&self, current: Option<Duration>) -> Duration {
        match current {
            None => self.initial,
            Some(d) => (d * 2).min(self.max),
        }
    }
}

pub struct AgentCtx {
    pub client: kube::Client,
    pub node: String,
    pub layout: NodeLayout,
    pub recorder: Recorder,
    pub backoff: Backoff,
    /// Upper bound on a pod's termination grace period (the agent must stop in bounded time).
    pub max_grace: Duration,
    /// How long a restarted container must keep running before it is reported ready again.
    pub ready_after: Duration,
    /// `PATH` given to containers (there is no image to provide one).
    pub container_path: String,
    pub csi: Option<Arc<CsiVolumes>>,
}

impl AgentCtx {
    /// Publishes a kubelet-style event on `pod`; failures are only logged.
    pub async fn event(&self, pod: &Pod, type_: EventType, reason: &str, note: String) {
        let reference: ObjectReference = pod.object_ref(&());
        let ev = Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::debug!(error = %e, reason, "cannot publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(5),
            reset_after: Duration::from_secs(60),
        };
        assert_eq!(b.next(None), Duration::from_secs(2));
        assert_eq!(b.next(Some(Duration::from_secs(2))), Duration::from_secs(4));
        assert_eq!(b.next(Some(Duration::from_secs(4))), Duration::from_secs(5));
    }
}

//! Runtime and dataset status derived from the workloads. Pure.

use ferrofluid_api::DatasetPhase;
use ferrofluid_api::RuntimePhase;
use ferrofluid_api::redact::redact;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
    pub phase: RuntimePhase,
}

fn phase(desired: i32, ready: i32) -> RuntimePhase {
    match (desired, ready) {
        (0, _) => RuntimePhase::Ready,
        (d, r) if r >= d => RuntimePhase::Ready,
        (_, r) if r >= 1 => RuntimePhase::PartialReady,
        _ => RuntimePhase::NotReady,
    }
}

/// Whether a pod counts as a serving worker: not being deleted, running, and Ready per its own
/// condition (the kubelet's word, as fresh as the pod watch).
fn serving_pod(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Workers, counted from the worker pods themselves (those the StatefulSet controls) rather than from
/// the StatefulSet's status, which trails the pods — under load by minutes. Ready when all desired
/// workers are ready, PartialReady with at least one.
pub fn workers(desired: i32, pods: &[Pod]) -> Counts {
    let current = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count() as i32;
    let ready = pods.iter().filter(|p| serving_pod(p)).count() as i32;
    Counts {
        desired,
        current,
        ready,
        available: ready,
        unavailable: (desired - ready).max(0),
        phase: phase(desired, ready),
    }
}

/// FUSE clients: Ready when every scheduled client is ready (zero scheduled is Ready: none is needed yet).
pub fn fuses(ds: Option<&DaemonSet>) -> Counts {
    let status = ds.and_then(|d| d.status.clone()).unwrap_or_default();
    Counts {
        desired: status.desired_number_scheduled,
        current: status.current_number_scheduled,
        ready: status.number_ready,
        available: status.number_available.unwrap_or(0),
        unavailable: status.number_unavailable.unwrap_or(0),
        phase: if ds.is_none() {
            RuntimePhase::NotReady
        } else {
            phase(status.desired_number_scheduled, status.number_ready)
        },
    }
}

/// Condition types this controller owns on a JuiceFSRuntime.
pub const RUNTIME_CONDITIONS: &[&str] = &["Ready", "FusesReady"];

/// Dataset phase from worker health: Bound once a worker serves. A bound dataset turns Failed only
/// for a named failure — no worker serves and a worker container fails (`failing`, the reasons the
/// condition names) — and is Bound again as soon as one serves (Fluid stays stuck in Failed). Workers
/// that are merely not ready yet (rescheduled, starting, a pod status not yet reported) change
/// nothing: the data stays reachable through the FUSE clients, so the phase does not flap.
pub fn dataset_phase(workers: &Counts, failing: bool, current: Option<DatasetPhase>) -> DatasetPhase {
    let serving = matches!(workers.phase, RuntimePhase::Ready | RuntimePhase::PartialReady);
    match (serving, current) {
        (true, _) => DatasetPhase::Bound,
        (false, Some(DatasetPhase::Bound)) if failing => DatasetPhase::Failed,
        (false, Some(p @ (DatasetPhase::Bound | DatasetPhase::Failed))) => p,
        (false, _) => DatasetPhase::NotBound,
    }
}

/// `1m5s`-style duration.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(phase: &str, ready: bool) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ready_pods(n: usize) -> Vec<Pod> {
        (0..n).map(|_| pod("Running", true)).collect()
    }

    #[test]
    fn worker_phases_come_from_the_pods() {
        assert_eq!(workers(3, &ready_pods(3)).phase, RuntimePhase::Ready);
        assert_eq!(workers(4, &ready_pods(3)).phase, RuntimePhase::PartialReady);
        assert_eq!(workers(4, &ready_pods(3)).unavailable, 1);
        assert_eq!(workers(3, &[]).phase, RuntimePhase::NotReady);
        assert_eq!(workers(0, &[]).phase, RuntimePhase::Ready);
    }

    #[test]
    fn only_running_ready_live_pods_serve() {
        let mut deleting = pod("Running", true);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let pods = [pod("Running", false), pod("Pending", true), deleting, pod("Running", true)];
        let counts = workers(4, &pods);
        assert_eq!((counts.current, counts.ready, counts.available), (3, 1, 1));
        assert_eq!(counts.phase, RuntimePhase::PartialReady);
    }

    #[test]
    fn bound_turns_failed_only_for_a_named_failure_and_recovers() {
        let up = workers(2, &ready_pods(1));
        let down = workers(2, &[]);
        assert_eq!(dataset_phase(&down, false, Some(DatasetPhase::NotBound)), DatasetPhase::NotBound);
        assert_eq!(dataset_phase(&down, true, None), DatasetPhase::NotBound, "never bound: not Failed");
        assert_eq!(dataset_phase(&up, false, Some(DatasetPhase::NotBound)), DatasetPhase::Bound);
        assert_eq!(
            dataset_phase(&down, false, Some(DatasetPhase::Bound)),
            DatasetPhase::Bound,
            "not ready is no failure"
        );
        assert_eq!(dataset_phase(&down, true, Some(DatasetPhase::Bound)), DatasetPhase::Failed);
        assert_eq!(dataset_phase(&down, false, Some(DatasetPhase::Failed)), DatasetPhase::Failed, "no flap back");
        assert_eq!(dataset_phase(&up, true, Some(DatasetPhase::Failed)), DatasetPhase::Bound);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(7), "7s");
        assert_eq!(human_duration(65), "1m5s");
        assert_eq!(human_duration(3725), "1h2m5s");
    }
}

/// The pods among `pods` that the worker StatefulSet with `uid` controls (label look-alikes are ignored).
pub fn controlled_by(pods: Vec<Pod>, uid: Option<&str>) -> Vec<Pod> {
    let Some(uid) = uid else { return Vec::new() };
    pods.into_iter()
        .filter(|p| p.metadata.owner_references.iter().flatten().any(|o| o.controller == Some(true) && o.uid == uid))
        .collect()
}

/// Nodes running a (running, not terminating) worker.
pub fn worker_nodes(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect()
}

/// Why workers fail, from their container statuses (init containers included): one line per failing
/// container, e.g. `jfsdemo-worker-0/juicefs-worker: CrashLoopBackOff, exit 1: <last log line>`, with
/// credentials in that line redacted. Empty when none fails.
pub fn worker_failures(pods: &[Pod]) -> Vec<String> {
    let mut lines = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let statuses = pod
            .status
            .iter()
            .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()));
        for cs in statuses {
            if cs.ready {
                continue;
            }
            // Waiting for the init containers or for the runtime to create it is no failure.
            let waiting = cs
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .filter(|w| !matches!(w.reason.as_deref(), Some("PodInitializing" | "ContainerCreating")));
            let terminated = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            if waiting.is_none() && terminated.is_none() {
                continue;
            }
            let mut line = format!("{name}/{}", cs.name);
            if let Some(reason) = waiting.and_then(|w| w.reason.as_deref()) {
                line.push_str(&format!(": {reason}"));
            }
            if let Some(t) = terminated {
                line.push_str(&format!(", exit {}", t.exit_code));
                let last = t.message.as_deref().unwrap_or_default().lines().rev().find(|l| !l.trim().is_empty());
                if let Some(msg) = last {
                    let msg: String = redact(msg.trim()).chars().take(300).collect();
                    line.push_str(&format!(": {msg}"));
                }
            }
            lines.push(line);
        }
    }
    lines.sort();
    lines
}

#[cfg(test)]
mod failure_tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, PodStatus,
    };

    fn pod(name: &str, ready: bool, failed: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "juicefs-worker".into(),
                ready,
                state: failed.then(|| ContainerState {
                    waiting: Some(ContainerStateWaiting { reason: Some("CrashLoopBackOff".into()), message: None }),
                    ..Default::default()
                }),
                last_state: failed.then(|| ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 1,
                        message: Some(
                            "formatting\nMeta redis://:hunter2@127.0.0.1:6379/x is not available: refused\n".into(),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn failures_name_pod_reason_and_last_log_line() {
        let pods = [pod("w-0", true, false), pod("w-1", false, true)];
        assert_eq!(
            worker_failures(&pods),
            [
                "w-1/juicefs-worker: CrashLoopBackOff, exit 1: Meta redis://:****@127.0.0.1:6379/x is not available: refused"
            ]
        );
        assert!(worker_failures(&[pod("w-0", false, false)]).is_empty(), "not ready yet is no failure");
        let mut initializing = pod("w-2", false, false);
        if let Some(cs) = initializing.status.as_mut().and_then(|s| s.container_statuses.as_mut()) {
            cs[0].state = Some(ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some("PodInitializing".into()), message: None }),
                ..Default::default()
            });
        }
        assert!(worker_failures(&[initializing]).is_empty(), "waiting for init containers is no failure");
    }
}

//! Runtime and dataset status derived from the workloads. Pure.

use ferrofluid_api::DatasetPhase;
use ferrofluid_api::RuntimePhase;
use ferrofluid_api::redact::redact;
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
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

/// Workers: Ready when all desired workers are available (ready for the StatefulSet's
/// `minReadySeconds`), PartialReady with at least one.
pub fn workers(desired: i32, sts: Option<&StatefulSet>) -> Counts {
    let status = sts.and_then(|s| s.status.clone()).unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    Counts {
        desired,
        current: status.current_replicas.unwrap_or(status.replicas),
        ready,
        available,
        unavailable: (desired - available).max(0),
        phase: if sts.is_none() { RuntimePhase::NotReady } else { phase(desired, available) },
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

/// Dataset phase from worker health: Bound while at least one worker serves; Failed when a bound
/// dataset loses all workers — and Bound again as soon as one is back (Fluid stays stuck in Failed).
pub fn dataset_phase(workers: &Counts, current: Option<DatasetPhase>) -> DatasetPhase {
    let serving = matches!(workers.phase, RuntimePhase::Ready | RuntimePhase::PartialReady);
    let was_bound = matches!(current, Some(DatasetPhase::Bound) | Some(DatasetPhase::Failed));
    match (serving, was_bound) {
        (true, _) => DatasetPhase::Bound,
        (false, true) => DatasetPhase::Failed,
        (false, false) => DatasetPhase::NotBound,
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
    use k8s_openapi::api::apps::v1::StatefulSetStatus;

    fn sts(ready: i32) -> StatefulSet {
        StatefulSet {
            status: Some(StatefulSetStatus {
                replicas: 3,
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn worker_phases() {
        assert_eq!(workers(3, Some(&sts(3))).phase, RuntimePhase::Ready);
        assert_eq!(workers(4, Some(&sts(3))).phase, RuntimePhase::PartialReady);
        assert_eq!(workers(4, Some(&sts(3))).unavailable, 1);
        assert_eq!(workers(3, Some(&sts(0))).phase, RuntimePhase::NotReady);
        assert_eq!(workers(3, None).phase, RuntimePhase::NotReady);
        assert_eq!(workers(0, Some(&sts(0))).phase, RuntimePhase::Ready);
    }

    #[test]
    fn ready_but_not_yet_available_is_not_ready() {
        let mut s = sts(1);
        s.status.as_mut().expect("status").available_replicas = Some(0);
        let counts = workers(1, Some(&s));
        assert_eq!(counts.ready, 1);
        assert_eq!(counts.phase, RuntimePhase::NotReady);
    }

    #[test]
    fn dataset_recovers_from_failed() {
        let up = workers(2, Some(&sts(1)));
        let down = workers(2, Some(&sts(0)));
        assert_eq!(dataset_phase(&down, Some(DatasetPhase::NotBound)), DatasetPhase::NotBound);
        assert_eq!(dataset_phase(&up, Some(DatasetPhase::NotBound)), DatasetPhase::Bound);
        assert_eq!(dataset_phase(&down, Some(DatasetPhase::Bound)), DatasetPhase::Failed);
        assert_eq!(dataset_phase(&up, Some(DatasetPhase::Failed)), DatasetPhase::Bound);
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

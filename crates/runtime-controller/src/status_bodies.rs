//! The status bodies the runtime-controller writes, pure: what the runtime's and the dataset's status
//! should say, built from what the reconcile saw. Each writer compares its body with the fields it owns
//! in the cached object and writes only on a difference, so nothing is written at rest.

use crate::labels;
use crate::status::{Counts, RUNTIME_CONDITIONS, human_duration};
use ferrofluid_api::common::condition;
use ferrofluid_api::dataset::RuntimeRef;
use ferrofluid_api::juicefs_runtime::{CacheNode, HostPorts};
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{DatasetPhase, DatasetStatus, JuiceFSRuntimeStatus, Mount, RuntimePhase};

/// Condition type this controller owns on Datasets.
pub const DATASET_CONDITION: &str = "RuntimeReady";

/// The condition reason (and event) when no worker serves and one fails for a named reason.
pub const WORKERS_FAILING: &str = "WorkersFailing";

/// Worker health as a condition: ready or not, and why (failing containers' own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerHealth {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl WorkerHealth {
    /// No worker serves and one fails for a named reason.
    pub fn failing(&self) -> bool {
        self.reason == WORKERS_FAILING
    }

    pub fn new(workers: &Counts, failures: &[String]) -> Self {
        let ok = matches!(workers.phase, RuntimePhase::Ready | RuntimePhase::PartialReady);
        let mut message = format!("{} of {} workers ready", workers.ready, workers.desired);
        if !failures.is_empty() {
            message.push_str(&format!("; failing: {}", failures.join("; ")));
        }
        let reason = match (ok, failures.is_empty()) {
            (true, _) => "WorkersReady",
            (false, false) => WORKERS_FAILING,
            (false, true) => "WorkersNotReady",
        };
        Self { ok, reason, message }
    }
}

/// What a pass saw of the runtime's workloads.
#[derive(Debug, Clone)]
pub struct Observed {
    pub workers: Counts,
    pub fuses: Counts,
    pub health: WorkerHealth,
    /// Nodes whose FUSE client runs an outdated template.
    pub outdated_fuse_nodes: Vec<String>,
}

/// The runtime's status while it serves: counts and phases from the workloads, `Ready` from worker
/// health, `FusesReady`, the worker selector, the time it first became ready, its host ports.
/// `since_creation` is the runtime's age in seconds now.
pub fn serving(
    existing: &JuiceFSRuntimeStatus,
    key: &DatasetKey,
    observed: &Observed,
    host_ports: Option<HostPorts>,
    cache_nodes: Vec<CacheNode>,
    since_creation: Option<i64>,
    now: &str,
) -> JuiceFSRuntimeStatus {
    let Observed { workers, fuses, health, outdated_fuse_nodes } = observed;
    let setup_duration =
        existing.setup_duration.clone().or_else(|| health.ok.then_some(since_creation).flatten().map(human_duration));
    let mount_time = existing.mount_time.clone().or_else(|| health.ok.then(|| now.to_string()));
    let outdated = match outdated_fuse_nodes.len() {
        0 => String::new(),
        n => format!("; {n} run an outdated spec (replaced when deleted, or by cleanPolicy OnFuseChanged)"),
    };
    let fuses_ready = fuses.phase == RuntimePhase::Ready;
    let conditions = vec![
        condition(&existing.conditions, "Ready", health.ok, health.reason, health.message.clone(), now),
        condition(
            &existing.conditions,
            "FusesReady",
            fuses_ready,
            if fuses_ready { "FusesReady" } else { "FusesNotReady" },
            format!("{} of {} FUSE clients ready{outdated}", fuses.ready, fuses.desired),
            now,
        ),
    ];
    JuiceFSRuntimeStatus {
        worker_phase: Some(workers.phase),
        desired_worker_number_scheduled: Some(workers.desired),
        current_worker_number_scheduled: Some(workers.current),
        worker_number_ready: Some(workers.ready),
        worker_number_available: Some(workers.available),
        worker_number_unavailable: Some(workers.unavailable),
        fuse_phase: Some(fuses.phase),
        desired_fuse_number_scheduled: Some(fuses.desired),
        current_fuse_number_scheduled: Some(fuses.current),
        fuse_number_ready: Some(fuses.ready),
        fuse_number_available: Some(fuses.available),
        fuse_number_unavailable: Some(fuses.unavailable),
        conditions,
        selector: Some(labels::to_selector_string(&labels::selector(key, keys::ROLE_WORKER))),
        setup_duration,
        mount_time,
        host_ports,
        cache_nodes,
        outdated_fuse_nodes: outdated_fuse_nodes.clone(),
        ..Default::default()
    }
}

/// The runtime's status when it cannot proceed: phases NotReady, `Ready=False` with the reason. Host
/// ports stay held: pods may still run with them until the runtime is deleted.
pub fn blocked(existing: &JuiceFSRuntimeStatus, reason: &str, message: &str, now: &str) -> JuiceFSRuntimeStatus {
    JuiceFSRuntimeStatus {
        worker_phase: Some(RuntimePhase::NotReady),
        fuse_phase: Some(RuntimePhase::NotReady),
        conditions: vec![condition(&existing.conditions, "Ready", false, reason, message, now)],
        setup_duration: existing.setup_duration.clone(),
        mount_time: existing.mount_time.clone(),
        host_ports: existing.host_ports,
        cache_nodes: existing.cache_nodes.clone(),
        outdated_fuse_nodes: existing.outdated_fuse_nodes.clone(),
        ..Default::default()
    }
}

/// The part of a runtime's status this controller owns, as it stands. A server-side apply of status
/// removes every owned field it does not name, so a write that changes one field starts from this, and
/// a body equal to this needs no write.
pub fn runtime_ours(st: &JuiceFSRuntimeStatus) -> JuiceFSRuntimeStatus {
    JuiceFSRuntimeStatus {
        worker_phase: st.worker_phase,
        desired_worker_number_scheduled: st.desired_worker_number_scheduled,
        current_worker_number_scheduled: st.current_worker_number_scheduled,
        worker_number_ready: st.worker_number_ready,
        worker_number_available: st.worker_number_available,
        worker_number_unavailable: st.worker_number_unavailable,
        fuse_phase: st.fuse_phase,
        desired_fuse_number_scheduled: st.desired_fuse_number_scheduled,
        current_fuse_number_scheduled: st.current_fuse_number_scheduled,
        fuse_number_ready: st.fuse_number_ready,
        fuse_number_available: st.fuse_number_available,
        fuse_number_unavailable: st.fuse_number_unavailable,
        conditions: st.conditions.iter().filter(|c| RUNTIME_CONDITIONS.contains(&c.type_.as_str())).cloned().collect(),
        selector: st.selector.clone(),
        setup_duration: st.setup_duration.clone(),
        mount_time: st.mount_time.clone(),
        host_ports: st.host_ports,
        cache_nodes: st.cache_nodes.clone(),
        outdated_fuse_nodes: st.outdated_fuse_nodes.clone(),
        ..Default::default()
    }
}

/// The dataset's status as this runtime binds it: phase, the runtime, the mounts, `RuntimeReady`, and
/// the datasets that refer to it (`datasetRef`).
pub fn dataset(
    existing: &DatasetStatus,
    key: &DatasetKey,
    mounts: &[Mount],
    phase: DatasetPhase,
    health: &WorkerHealth,
    referrers: Vec<String>,
    now: &str,
) -> DatasetStatus {
    DatasetStatus {
        phase: Some(phase),
        runtimes: vec![RuntimeRef {
            name: key.name.clone(),
            namespace: key.namespace.clone(),
            category: Some("Accelerate".into()),
            type_: Some(keys::JUICEFS.into()),
            engine_type: Some(keys::JUICEFS.into()),
            master_replicas: None,
        }],
        mounts: mounts.to_vec(),
        conditions: vec![condition(
            &existing.conditions,
            DATASET_CONDITION,
            health.ok,
            health.reason,
            health.message.clone(),
            now,
        )],
        dataset_ref: referrers,
        ..Default::default()
    }
}

/// The part of a dataset's status this controller owns, as it stands.
pub fn dataset_ours(st: &DatasetStatus) -> DatasetStatus {
    DatasetStatus {
        phase: st.phase,
        runtimes: st.runtimes.clone(),
        mounts: st.mounts.clone(),
        conditions: st.conditions.iter().filter(|c| c.type_ == DATASET_CONDITION).cloned().collect(),
        dataset_ref: st.dataset_ref.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ready: i32) -> Counts {
        Counts {
            desired: 1,
            current: 1,
            ready,
            available: ready,
            unavailable: 1 - ready,
            phase: if ready > 0 { RuntimePhase::Ready } else { RuntimePhase::NotReady },
        }
    }

    #[test]
    fn the_same_state_twice_is_the_same_body() {
        let key = DatasetKey::new("ns", "a");
        let health = WorkerHealth::new(&counts(1), &[]);
        let observed = Observed {
            workers: counts(1),
            fuses: counts(0),
            health: health.clone(),
            outdated_fuse_nodes: vec!["n1".into()],
        };
        let first = serving(&Default::default(), &key, &observed, None, Vec::new(), Some(12), "t1");
        assert_eq!(first.setup_duration.as_deref(), Some("12s"));
        assert_eq!(first.mount_time.as_deref(), Some("t1"), "first served at t1, kept from then on");
        assert_eq!(first.outdated_fuse_nodes, ["n1"]);
        let fuses = first.conditions.iter().find(|c| c.type_ == "FusesReady").and_then(|c| c.message.clone());
        assert!(fuses.unwrap_or_default().contains("1 run an outdated spec"));
        let again = serving(&first, &key, &observed, None, Vec::new(), Some(99), "t2");
        assert_eq!(again, first, "a second pass with nothing changed writes nothing");
        assert_eq!(runtime_ours(&first), first);
        let refs = vec!["b/mine".to_string()];
        let ds = dataset(&Default::default(), &key, &[], DatasetPhase::Bound, &health, refs.clone(), "t1");
        assert_eq!(dataset(&ds, &key, &[], DatasetPhase::Bound, &health, refs, "t2"), ds);
        assert_eq!(ds.dataset_ref, ["b/mine"]);
        assert_eq!(dataset_ours(&ds), ds);
    }

    #[test]
    fn ours_leaves_other_writers_fields_out() {
        let health = WorkerHealth::new(&counts(1), &[]);
        let observed = Observed { workers: counts(1), fuses: counts(0), health, outdated_fuse_nodes: Vec::new() };
        let mut st = serving(
            &Default::default(),
            &DatasetKey::new("ns", "a"),
            &observed,
            Some(HostPorts { worker_metrics: None, fuse_metrics: Some(20001) }),
            Vec::new(),
            None,
            "t",
        );
        st.cache_states = Some(Default::default());
        st.conditions.push(condition(&[], "SomeoneElses", true, "R", "m", "t"));
        let ours = runtime_ours(&st);
        assert!(ours.cache_states.is_none());
        assert_eq!(ours.conditions.len(), 2);
        assert_eq!(ours.host_ports.and_then(|p| p.fuse_metrics), Some(20001));
    }

    #[test]
    fn failures_name_the_reason() {
        let h = WorkerHealth::new(&counts(0), &["w-0/juicefs-format: CrashLoopBackOff".into()]);
        assert_eq!(h.reason, "WorkersFailing");
        assert!(h.message.contains("failing: w-0/juicefs-format"));
        assert_eq!(WorkerHealth::new(&counts(0), &[]).reason, "WorkersNotReady");
    }
}

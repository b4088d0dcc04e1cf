//! What wakes an operation's pass, pure: its spec, deletion, finalizers and phase (a phase change wakes
//! it once more: that pass finds nothing to write, or schedules a Cron's next run); its Jobs' progress
//! and their pods' reports; its dataset's phase and lock; the phase of the operation it runs after; a
//! DataLoad's cache nodes (their labels). Caches keep only what the passes read.

use crate::op::Op;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::operation::Policy;
use ferrofluid_api::{DataLoad, Dataset};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use std::hash::{Hash, Hasher};

fn hash_of(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

pub fn operation<K: Op>(o: &K) -> u64 {
    let phase = o.op_status().map(|s| format!("{:?}", s.phase));
    hash_of((o.meta().generation, o.meta().deletion_timestamp.is_some(), o.finalizers(), phase))
}

pub fn job(j: &Job) -> u64 {
    let s = j.status.as_ref();
    let conds: Vec<(String, String)> = s
        .and_then(|s| s.conditions.as_ref())
        .map(|c| c.iter().map(|c| (c.type_.clone(), c.status.clone())).collect())
        .unwrap_or_default();
    hash_of((s.and_then(|s| s.succeeded), s.and_then(|s| s.failed), conds, j.metadata.deletion_timestamp.is_some()))
}

pub fn dataset(d: &Dataset) -> u64 {
    let s = d.status.as_ref();
    hash_of((s.and_then(|s| s.phase).map(|p| format!("{p:?}")), s.map(|s| s.operation_ref.clone())))
}

/// The operation of kind `K` a Job belongs to: its controller owner.
pub fn owner_of<K: Op>(job: &Job) -> Option<ObjectRef<K>> {
    let ns = job.namespace()?;
    let o = job.owner_references().iter().find(|o| o.controller == Some(true) && o.kind == K::KIND)?;
    Some(ObjectRef::new(&o.name).within(&ns))
}

/// The unfinished operations of kind `K` on a dataset (from that kind's cache).
pub fn of_dataset<K: Op>(ds: &Dataset, ops: &Store<K>) -> Vec<ObjectRef<K>> {
    let Some(ns) = ds.namespace() else { return Vec::new() };
    let name = ds.name_any();
    ops.state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns.as_str()) && o.dataset().0 == name)
        .filter(|o| !o.op_status().is_some_and(|s| s.phase.finished()))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The operations of kind `K` that run after operation `kind`/`name` of `ns` (its phase changed).
pub fn dependents<K: Op>(kind: &str, ns: &str, name: &str, ops: &Store<K>) -> Vec<ObjectRef<K>> {
    ops.state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .filter(|o| o.run_after().is_some_and(|a| a.kind == kind && a.name == name))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The DataLoads a node's labels concern: those whose dataset caches on it and that are unfinished
/// (waiting for a cache node) or `OnEvent` (a new cache node starts a run).
pub fn loads_on_node(node: &Node, loads: &Store<DataLoad>) -> Vec<ObjectRef<DataLoad>> {
    let labels = node.labels();
    loads
        .state()
        .iter()
        .filter(|l| {
            let key = DatasetKey::new(l.namespace().unwrap_or_default(), &l.spec.dataset.name);
            labels.get(&key.worker_node_label()).map(String::as_str) == Some(keys::LABEL_TRUE)
        })
        .filter(|l| l.policy() == Policy::OnEvent || !l.op_status().is_some_and(|s| s.phase.finished()))
        .map(|l| ObjectRef::from_obj(l.as_ref()))
        .collect()
}

/// A node's labels (where the cache-node labels are).
pub fn node(n: &Node) -> u64 {
    hash_of(n.labels())
}

/// A Job's pod: its phase and termination messages (a warm-up part's report).
pub fn pod(p: &Pod) -> u64 {
    let s = p.status.as_ref();
    hash_of((s.and_then(|s| s.phase.clone()), termination_messages(p)))
}

/// The messages of a pod's ended containers.
pub fn termination_messages(p: &Pod) -> Vec<String> {
    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.into_iter().flatten().filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone()).collect()
}

/// The Job a pod belongs to: its controller owner.
pub fn job_of(p: &Pod) -> Option<ObjectRef<Job>> {
    let ns = p.namespace()?;
    let o = p.owner_references().iter().find(|o| o.controller == Some(true) && o.kind == "Job")?;
    Some(ObjectRef::new(&o.name).within(&ns))
}

/// The operation of kind `K` a pod belongs to: the controller owner of its Job (from that kind's Job cache).
pub fn owner_through_job<K: Op>(jobs: &Store<Job>, pod: &Pod) -> Option<ObjectRef<K>> {
    owner_of::<K>(jobs.get(&job_of(pod)?)?.as_ref())
}

/// Pods are kept with their owner, phase and containers' termination messages.
pub fn slim_pod(p: &mut Pod) {
    p.metadata.managed_fields = None;
    p.metadata.annotations = None;
    p.spec = None;
    if let Some(s) = p.status.as_mut() {
        s.conditions = None;
        s.init_container_statuses = None;
        s.host_ips = None;
        s.pod_ips = None;
    }
}

/// Nodes are kept with their labels only (the cache-node labels are all a pass reads).
pub fn slim_node(n: &mut Node) {
    n.metadata.managed_fields = None;
    n.metadata.annotations = None;
    n.spec = None;
    n.status = None;
}

/// Jobs are kept with what progress reads.
pub fn slim_job(j: &mut Job) {
    j.metadata.managed_fields = None;
    j.spec = None;
}

/// Datasets: spec (a migration's metadata Secret and mount point), status phase and lock, identity.
pub fn slim_dataset(d: &mut Dataset) {
    d.metadata.managed_fields = None;
    if let Some(s) = d.status.as_mut() {
        s.cache_states = None;
        s.mounts.clear();
        s.conditions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::{DataLoad, DataMigrate, DatasetStatus};
    use k8s_openapi::api::batch::v1::JobStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    #[test]
    fn a_job_wakes_its_controller_owner_of_its_kind() {
        let mut j = Job::default();
        j.metadata.namespace = Some("ns".into());
        j.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "data.fluid.io/v1alpha1".into(),
            kind: "DataLoad".into(),
            name: "warm".into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        assert_eq!(owner_of::<DataLoad>(&j), Some(ObjectRef::new("warm").within("ns")));
        assert_eq!(owner_of::<DataMigrate>(&j), None);
        j.metadata.owner_references.as_mut().expect("owners")[0].controller = None;
        assert_eq!(owner_of::<DataLoad>(&j), None);
    }

    #[test]
    fn progress_changes_the_job_fingerprint_and_labels_do_not() {
        let mut j = Job::default();
        let before = job(&j);
        j.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(job(&j), before);
        j.status = Some(JobStatus { succeeded: Some(1), ..Default::default() });
        assert_ne!(job(&j), before);
    }

    #[test]
    fn the_dataset_lock_changes_its_fingerprint() {
        let mut d = Dataset::new("d", Default::default());
        let before = dataset(&d);
        d.status = Some(DatasetStatus {
            operation_ref: [("DataLoad".to_string(), "a".to_string())].into(),
            ..Default::default()
        });
        assert_ne!(dataset(&d), before);
    }
}

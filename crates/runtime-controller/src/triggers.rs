//! What wakes a runtime's reconcile, pure: for each watched kind, a fingerprint of the fields that
//! matter (an event whose fingerprint did not change is dropped), and the runtime an object belongs to.
//! Status the controller writes itself (but for the cache nodes it records), and the collector's
//! `cacheStates`, are in no fingerprint, so writing them wakes nothing.

use ferrofluid_api::keys;
use ferrofluid_api::keys::DatasetKey;
use ferrofluid_api::{Dataset, JuiceFSRuntime, sharing};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use std::hash::{Hash, Hasher};

fn hash_of(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

/// A runtime: its spec (generation), deletion, finalizers and labels, and the cache nodes it records
/// (a node whose cleanup was recorded lets its finished Job go) — not the rest of its status.
pub fn runtime(rt: &JuiceFSRuntime) -> u64 {
    let cache_nodes: Vec<(&str, Option<&str>)> = rt
        .status
        .iter()
        .flat_map(|s| s.cache_nodes.iter())
        .map(|c| (c.node.as_str(), c.idle_since.as_deref()))
        .collect();
    hash_of((rt.meta().generation, deleting(rt), rt.finalizers(), rt.labels(), cache_nodes))
}

/// A dataset: its spec, deletion and finalizers, whom it shares with (`ferrofluid.io/share-with`) and
/// its phase — not the rest of its status (cacheStates, conditions). The phase and the annotation matter
/// to the datasets that refer to it; a runtime woken by its own dataset's phase change finds nothing to do.
pub fn dataset(ds: &Dataset) -> u64 {
    let phase = ds.status.as_ref().and_then(|s| s.phase);
    hash_of((
        ds.meta().generation,
        deleting(ds),
        ds.finalizers(),
        ds.annotations().get(keys::ANNOTATION_SHARE_WITH),
        phase,
    ))
}

/// The runtimes a dataset's change concerns: its own (same name) and, for a dataset that refers to
/// another, the source's, whose dataset lists it in `datasetRef`.
pub fn dataset_runtimes(ds: &Dataset) -> Vec<ObjectRef<JuiceFSRuntime>> {
    let source = sharing::source_of(ds);
    same_name(ds).into_iter().chain(source.map(|k| ObjectRef::new(&k.name).within(&k.namespace))).collect()
}

/// The datasets that refer to `key`'s dataset.
pub fn referring(key: &DatasetKey, datasets: &Store<Dataset>) -> Vec<ObjectRef<Dataset>> {
    let all = datasets.state();
    sharing::referring(all.iter().map(|d| d.as_ref()), key)
        .into_iter()
        .map(|k| ObjectRef::new(&k.name).within(&k.namespace))
        .collect()
}

/// The referring dataset a PV or PVC belongs to: only objects with a dataset's ownership mark; a PV by
/// the claim it is pre-bound to (the dataset's namespace and name), a PVC by its own.
pub fn share_volume(pv: &PersistentVolume) -> Option<ObjectRef<Dataset>> {
    pv.labels().get(keys::LABEL_DATASET_UID)?;
    let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(ObjectRef::new(claim.name.as_deref()?).within(claim.namespace.as_deref()?))
}

pub fn share_claim(pvc: &PersistentVolumeClaim) -> Option<ObjectRef<Dataset>> {
    pvc.labels().get(keys::LABEL_DATASET_UID)?;
    Some(ObjectRef::new(&pvc.name_any()).within(pvc.meta().namespace.as_deref()?))
}

/// A worker StatefulSet: its spec and deletion — not its status: worker readiness is read from the
/// worker pods, whose own events wake the runtime.
pub fn workers(sts: &StatefulSet) -> u64 {
    hash_of((sts.meta().generation, deleting(sts)))
}

/// A FUSE DaemonSet: its spec and how many clients are scheduled and ready.
pub fn fuses(ds: &DaemonSet) -> u64 {
    let st = ds.status.clone().unwrap_or_default();
    hash_of((
        ds.meta().generation,
        deleting(ds),
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.number_available,
            st.number_unavailable,
            st.updated_number_scheduled,
        ),
    ))
}

pub fn claim(pvc: &PersistentVolumeClaim) -> u64 {
    hash_of((deleting(pvc), pvc.status.as_ref().and_then(|s| s.phase.clone())))
}

pub fn volume(pv: &PersistentVolume) -> u64 {
    hash_of((deleting(pv), pv.status.as_ref().and_then(|s| s.phase.clone())))
}

/// A worker, FUSE or cleanup pod: where it runs, whether it runs and is ready, and how its containers fail.
pub fn pod(pod: &Pod) -> u64 {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    let containers: Vec<_> = status
        .into_iter()
        .flat_map(|s| s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten()))
        .map(|c| {
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.clone());
            let last_exit = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code);
            (c.name.clone(), c.ready, waiting, last_exit)
        })
        .collect();
    hash_of((
        deleting(pod),
        pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        status.and_then(|s| s.phase.clone()),
        ready,
        containers,
    ))
}

/// A cache cleanup Job: whether it finished.
pub fn job(job: &Job) -> u64 {
    let st = job.status.clone().unwrap_or_default();
    let conditions: Vec<(String, String)> =
        st.conditions.iter().flatten().map(|c| (c.type_.clone(), c.status.clone())).collect();
    hash_of((deleting(job), st.succeeded, st.failed, conditions))
}

/// The runtime of the same namespace and name as `obj` (datasets).
pub fn same_name<K: Resource>(obj: &K) -> Option<ObjectRef<JuiceFSRuntime>> {
    Some(ObjectRef::new(obj.meta().name.as_deref()?).within(obj.meta().namespace.as_deref()?))
}

/// The runtime a pod of ours belongs to: its `release` label, in its namespace.
pub fn pod_runtime(pod: &Pod) -> Option<ObjectRef<JuiceFSRuntime>> {
    let release = pod.labels().get(keys::LABEL_RELEASE)?;
    Some(ObjectRef::new(release).within(pod.meta().namespace.as_deref()?))
}

/// The runtime a PV belongs to: the claim it is pre-bound to has the runtime's namespace and name.
pub fn pv_runtime(pv: &PersistentVolume) -> Option<ObjectRef<JuiceFSRuntime>> {
    let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(ObjectRef::new(claim.name.as_deref()?).within(claim.namespace.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::common::CacheStates;
    use ferrofluid_api::{DatasetPhase, DatasetStatus, JuiceFSRuntimeStatus};
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use kube::runtime::watcher;

    #[test]
    fn status_writes_are_not_changes() {
        let mut rt = JuiceFSRuntime::new("a", Default::default());
        rt.metadata.generation = Some(1);
        let before = runtime(&rt);
        rt.status = Some(JuiceFSRuntimeStatus {
            cache_states: Some(CacheStates { cached: Some("1MiB".into()), ..Default::default() }),
            worker_number_ready: Some(1),
            ..Default::default()
        });
        rt.metadata.resource_version = Some("99".into());
        assert_eq!(runtime(&rt), before, "status and resourceVersion do not wake the runtime");
        rt.metadata.generation = Some(2);
        assert_ne!(runtime(&rt), before, "a spec change does");

        let mut ds = Dataset::new("a", Default::default());
        let before = dataset(&ds);
        ds.status = Some(DatasetStatus { cache_states: Some(Default::default()), ..Default::default() });
        assert_eq!(dataset(&ds), before, "the collector's cache states wake nothing");
        ds.status = Some(DatasetStatus { phase: Some(DatasetPhase::Bound), ..Default::default() });
        assert_ne!(dataset(&ds), before, "the phase wakes the datasets that refer to it");
        let before = dataset(&ds);
        ds.metadata.annotations = Some([(keys::ANNOTATION_SHARE_WITH.to_string(), "b".to_string())].into());
        assert_ne!(dataset(&ds), before, "so does whom it shares with");
        let before = dataset(&ds);
        ds.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_ne!(dataset(&ds), before, "deletion does");
    }

    #[test]
    fn worker_readiness_wakes_through_the_pods_not_the_statefulset() {
        let mut sts = StatefulSet::default();
        let before = workers(&sts);
        sts.status = Some(StatefulSetStatus { ready_replicas: Some(1), ..Default::default() });
        assert_eq!(workers(&sts), before, "the StatefulSet's trailing status wakes nothing");
        sts.metadata.generation = Some(2);
        assert_ne!(workers(&sts), before, "a spec change does");

        let mut p = Pod::default();
        let before = pod(&p);
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_ne!(pod(&p), before, "a worker pod turning ready does");
    }

    #[tokio::test]
    async fn unchanged_updates_are_dropped_deletions_pass() {
        let mut a = JuiceFSRuntime::new("a", Default::default());
        a.metadata.uid = Some("u".into());
        let mut a_status = a.clone();
        a_status.status = Some(JuiceFSRuntimeStatus { worker_number_ready: Some(3), ..Default::default() });
        let events = futures::stream::iter(vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(a.clone())),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(a_status.clone())),
            Ok(watcher::Event::Delete(a_status)),
        ]);
        let out: Vec<_> = ferrofluid_service::watch::changes(events, runtime).collect().await;
        assert_eq!(out.len(), 2, "the first sight and the deletion, not the status update");
    }

    #[test]
    fn owners_of_pods_and_volumes() {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.labels = Some([(keys::LABEL_RELEASE.to_string(), "data".to_string())].into());
        assert_eq!(pod_runtime(&pod), Some(ObjectRef::new("data").within("ns")));
        let _ = super::pod(&pod);
        let pv = PersistentVolume {
            spec: Some(k8s_openapi::api::core::v1::PersistentVolumeSpec {
                claim_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                    namespace: Some("a".into()),
                    name: Some("b-c".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(pv_runtime(&pv), Some(ObjectRef::new("b-c").within("a")));
        assert_eq!(share_volume(&pv), None, "a runtime's PV concerns no referring dataset");
    }

    #[test]
    fn a_reference_wakes_itself_and_its_sources_runtime_a_source_its_referrers() {
        let mut mine = Dataset::new("mine", Default::default());
        mine.metadata.namespace = Some("b".into());
        mine.spec.mounts = vec![ferrofluid_api::Mount { mount_point: "dataset://a/src".into(), ..Default::default() }];
        let mut src = Dataset::new("src", Default::default());
        src.metadata.namespace = Some("a".into());
        let (reader, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&watcher::Event::Apply(mine.clone()));
        writer.apply_watcher_event(&watcher::Event::Apply(src.clone()));
        assert_eq!(dataset_runtimes(&mine), [ObjectRef::new("mine").within("b"), ObjectRef::new("src").within("a")]);
        assert_eq!(referring(&sharing::key_of(&src), &reader), [ObjectRef::new("mine").within("b")]);
        assert!(referring(&sharing::key_of(&mine), &reader).is_empty());
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.name = Some("mine".into());
        pvc.metadata.namespace = Some("b".into());
        assert_eq!(share_claim(&pvc), None);
        pvc.metadata.labels = Some([(keys::LABEL_DATASET_UID.to_string(), "u".to_string())].into());
        assert_eq!(share_claim(&pvc), Some(ObjectRef::new("mine").within("b")));
    }
}

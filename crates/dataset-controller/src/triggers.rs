//! What wakes a dataset's reconcile, pure: its spec, deletion, finalizers and labels — not its status,
//! which the runtime-controller and the metrics-collector write — and pods starting or stopping to use
//! its claim (the deletion wait). Pods are cached slimmed to what that needs.

use ferrofluid_api::{Dataset, sharing};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus, Volume};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::hash::{Hash, Hasher};

fn hash_of(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

pub fn dataset(ds: &Dataset) -> u64 {
    hash_of((ds.meta().generation, ds.meta().deletion_timestamp.is_some(), ds.finalizers(), ds.labels()))
}

/// The source a referring dataset (`dataset://<ns>/<name>`) names.
pub fn source_of(ds: &Dataset) -> Option<ObjectRef<Dataset>> {
    let key = sharing::source_of(ds)?;
    Some(ObjectRef::new(&key.name).within(&key.namespace))
}

/// The claims a pod mounts.
pub fn claims(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
        .collect()
}

pub fn pod(pod: &Pod) -> u64 {
    hash_of((pod.meta().deletion_timestamp.is_some(), pod.status.as_ref().and_then(|s| s.phase.clone()), claims(pod)))
}

/// The datasets a pod uses: its claims' names (a dataset's PVC has the dataset's name), in its namespace.
pub fn datasets_of(pod: &Pod) -> Vec<ObjectRef<Dataset>> {
    let Some(ns) = pod.namespace() else { return Vec::new() };
    claims(pod).iter().map(|c| ObjectRef::new(c).within(&ns)).collect()
}

/// A pod as the cache keeps it: identity, deletion, the claims it mounts and its phase — nothing else.
pub fn slim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    pod.metadata.labels = None;
    pod.metadata.owner_references = None;
    let volumes: Vec<Volume> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| v.persistent_volume_claim.is_some())
        .map(|v| Volume {
            name: v.name.clone(),
            persistent_volume_claim: v.persistent_volume_claim.clone(),
            ..Default::default()
        })
        .collect();
    pod.spec = Some(PodSpec { volumes: Some(volumes), ..Default::default() });
    pod.status = Some(PodStatus { phase: pod.status.as_ref().and_then(|s| s.phase.clone()), ..Default::default() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::{DatasetPhase, DatasetStatus};
    use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimVolumeSource};

    #[test]
    fn dataset_status_writes_wake_nothing() {
        let mut ds = Dataset::new("d", Default::default());
        let before = dataset(&ds);
        ds.status = Some(DatasetStatus { phase: Some(DatasetPhase::Bound), ..Default::default() });
        assert_eq!(dataset(&ds), before);
        ds.metadata.finalizers = Some(vec!["f".into()]);
        assert_ne!(dataset(&ds), before);
    }

    #[test]
    fn pods_map_to_the_datasets_they_mount_and_are_slimmed() {
        let mut p = Pod::default();
        p.metadata.namespace = Some("ns".into());
        p.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        p.spec = Some(PodSpec {
            containers: vec![Container { name: "c".into(), image: Some("big".into()), ..Default::default() }],
            volumes: Some(vec![
                Volume {
                    name: "data".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: "jfsdemo".into(),
                        read_only: None,
                    }),
                    ..Default::default()
                },
                Volume { name: "tmp".into(), empty_dir: Some(Default::default()), ..Default::default() },
            ]),
            ..Default::default()
        });
        assert_eq!(datasets_of(&p), vec![ObjectRef::new("jfsdemo").within("ns")]);
        let print = pod(&p);
        slim_pod(&mut p);
        assert_eq!(pod(&p), print, "slimming keeps what the fingerprint reads");
        assert_eq!(claims(&p), ["jfsdemo"]);
        assert!(p.spec.as_ref().is_some_and(|s| s.containers.is_empty()) && p.metadata.labels.is_none());
    }
}

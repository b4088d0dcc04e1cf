//! The PersistentVolume `<ns>-<name>` (CSI driver `fuse.csi.fluid.io`) and the PVC `<name>` bound to it.

use crate::labels;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{DatasetSpec, JuiceFSRuntime};
use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// Nominal size of dataset volumes; the real size is whatever the remote storage holds.
pub const CAPACITY: &str = "100Pi";

/// Attributes the CSI plugin reads in NodeStage/NodePublish.
pub fn volume_attributes(key: &DatasetKey, mount_root: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::ATTR_FLUID_PATH.into(), key.fuse_mount_path(mount_root)),
        (keys::ATTR_MOUNT_TYPE.into(), keys::MOUNT_TYPE_JUICEFS.into()),
        (keys::ATTR_RUNTIME_NAMESPACE.into(), key.namespace.clone()),
        (keys::ATTR_RUNTIME_NAME.into(), key.name.clone()),
        (keys::ATTR_NODE_SELECTOR_KEY.into(), key.fuse_node_label()),
    ])
}

/// The PV. It is created before the workloads, as the runtime's claim on the cluster-wide name
/// `<ns>-<name>` (which node label keys share): the first runtime to hold it keeps it, a runtime of
/// another namespace whose name maps to the same PV name is refused (`NameConflict`).
pub fn persistent_volume(
    runtime: &JuiceFSRuntime,
    key: &DatasetKey,
    dataset: &DatasetSpec,
    mount_root: &str,
) -> PersistentVolume {
    let mut labels = labels::common(key);
    labels.insert(key.worker_node_label(), keys::LABEL_TRUE.into());
    let attributes = volume_attributes(key, mount_root);
    pre_bound_volume(key, labels::marked(labels, runtime), dataset.effective_access_modes(), attributes)
}

pub fn persistent_volume_claim(
    runtime: &JuiceFSRuntime,
    key: &DatasetKey,
    dataset: &DatasetSpec,
) -> PersistentVolumeClaim {
    let mut pvc = claim(key, labels::marked(labels::common(key), runtime), dataset.effective_access_modes());
    pvc.metadata.owner_references = labels::owned_by(runtime).map(|o| vec![o]);
    pvc
}

/// The PV `<ns>-<name>` of `key`'s dataset, pre-bound to its claim, with the CSI `attributes` that say
/// which FUSE mount serves it.
pub fn pre_bound_volume(
    key: &DatasetKey,
    labels: BTreeMap<String, String>,
    access_modes: Vec<String>,
    attributes: BTreeMap<String, String>,
) -> PersistentVolume {
    PersistentVolume {
        metadata: ObjectMeta { name: Some(key.pv_name()), labels: Some(labels), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            access_modes: Some(access_modes),
            capacity: Some(BTreeMap::from([("storage".to_string(), Quantity(CAPACITY.into()))])),
            csi: Some(CSIPersistentVolumeSource {
                driver: keys::CSI_DRIVER_NAME.into(),
                volume_handle: key.pv_name(),
                volume_attributes: Some(attributes),
                ..Default::default()
            }),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            storage_class_name: Some(keys::STORAGE_CLASS.into()),
            volume_mode: Some("Filesystem".into()),
            // Pre-bound: the PV binder pairs exactly this claim with it.
            claim_ref: Some(ObjectReference {
                namespace: Some(key.namespace.clone()),
                name: Some(key.pvc_name()),
                kind: Some("PersistentVolumeClaim".into()),
                api_version: Some("v1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// The PVC `<name>` of `key`'s dataset, asking for exactly its PV.
pub fn claim(key: &DatasetKey, labels: BTreeMap<String, String>, access_modes: Vec<String>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(key.pvc_name()),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), Quantity(CAPACITY.into()))])),
                ..Default::default()
            }),
            storage_class_name: Some(keys::STORAGE_CLASS.into()),
            volume_mode: Some("Filesystem".into()),
            volume_name: Some(key.pv_name()),
            ..Default::default()
        }),
        status: None,
    }
}

/// How long a claim may stay `Pending` after its PV went `Bound` before it is touched.
pub const BIND_GRACE: Duration = Duration::from_secs(1);

/// Where the binding of a runtime's claim to its volume stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Bound, not yet bindable (the PV is not `Bound` to this claim), or touched once already: nothing to do.
    Settled,
    /// The PV is `Bound` to the claim, which is still `Pending`: look again after this long.
    Grace(Duration),
    /// The claim stayed `Pending` past [`BIND_GRACE`]: touch it (annotation [`keys::ANNOTATION_BIND_NUDGE`]).
    Nudge,
}

/// Pure: whether the pair needs the touch that makes the PV binder look at the claim again.
pub fn binding(pv: Option<&PersistentVolume>, pvc: Option<&PersistentVolumeClaim>, now: Timestamp) -> Binding {
    let (Some(pv), Some(pvc)) = (pv, pvc) else { return Binding::Settled };
    let pending = pvc.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|p| p == "Pending");
    let touched = pvc.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(keys::ANNOTATION_BIND_NUDGE));
    let status = pv.status.as_ref();
    let pv_bound = status.and_then(|s| s.phase.as_deref()) == Some("Bound");
    let to_this_claim = pvc.metadata.uid.is_some()
        && pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).and_then(|c| c.uid.as_ref())
            == pvc.metadata.uid.as_ref();
    if !pending || touched || !pv_bound || !to_this_claim || pvc.metadata.deletion_timestamp.is_some() {
        return Binding::Settled;
    }
    let since = status.and_then(|s| s.last_phase_transition_time.as_ref()).map(|t| now.duration_since(t.0));
    // Without a transition time, or with one ahead of this clock, the wait cannot be told: touch it.
    match since.and_then(|s| Duration::try_from(s).ok()) {
        Some(elapsed) if elapsed < BIND_GRACE => Binding::Grace(BIND_GRACE - elapsed),
        _ => Binding::Nudge,
    }
}

//! Labels and owner references on the objects the runtime-controller creates.

use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use std::collections::BTreeMap;

/// Labels shared by every object of one runtime.
pub fn common(key: &DatasetKey) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::LABEL_APP.to_string(), keys::APP_JUICEFS.to_string()),
        (keys::LABEL_RELEASE.to_string(), key.name.clone()),
        (keys::LABEL_DATASET_ID.to_string(), key.dataset_id()),
        (keys::LABEL_MANAGED_BY.to_string(), keys::MANAGED_BY.to_string()),
    ])
}

/// Selector labels of a role's pods (stable for the life of the workload).
pub fn selector(key: &DatasetKey, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::LABEL_APP.to_string(), keys::APP_JUICEFS.to_string()),
        (keys::LABEL_RELEASE.to_string(), key.name.clone()),
        (keys::LABEL_ROLE.to_string(), role.to_string()),
    ])
}

/// Labels of a role's pods and workload.
pub fn for_role(key: &DatasetKey, role: &str) -> BTreeMap<String, String> {
    let mut labels = common(key);
    labels.extend(selector(key, role));
    labels
}

/// `labels` plus the ownership mark of `runtime` (see `owned.rs`): for the objects the controller
/// creates itself (workloads, PV, PVC), not for the pods their controllers create.
pub fn marked(mut labels: BTreeMap<String, String>, runtime: &JuiceFSRuntime) -> BTreeMap<String, String> {
    crate::owned::mark(&mut labels, runtime.metadata.uid.as_deref().unwrap_or_default());
    labels
}

/// `a=b,c=d` form of a label map.
pub fn to_selector_string(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Controller owner reference to the runtime, so its workloads are garbage-collected with it and
/// their changes wake the runtime's reconcile.
pub fn owned_by(runtime: &JuiceFSRuntime) -> Option<OwnerReference> {
    runtime.controller_owner_ref(&())
}

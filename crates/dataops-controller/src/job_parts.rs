//! What every data operation's Jobs carry, pure: our labels with the operation's UID (the controller
//! selects its Jobs by it), and the operation as their controller owner.

use ferrofluid_api::common::PodMetadata;
use ferrofluid_api::keys;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::BTreeMap;

/// Labels of an operation's Jobs and pods: ours, the role, and the operation's UID.
pub fn labels<K: Resource>(op: &K, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (keys::LABEL_MANAGED_BY.to_string(), keys::MANAGED_BY.to_string()),
        (keys::LABEL_ROLE.to_string(), role.to_string()),
        (keys::LABEL_OPERATION_UID.to_string(), op.meta().uid.clone().unwrap_or_default()),
    ])
}

/// The operation as its Jobs' controller owner (without `blockOwnerDeletion`, which would need update on
/// the operation's `finalizers` subresource where the OwnerReferencesPermissionEnforcement admission
/// plugin runs).
pub fn owner<K: Resource<DynamicType = ()>>(op: &K) -> Option<OwnerReference> {
    let mut o = op.controller_owner_ref(&())?;
    o.block_owner_deletion = None;
    Some(o)
}

/// Metadata of an operation's pods: its labels, then the user's `podMetadata` (labels that do not
/// replace ours, and annotations).
pub fn pod_meta<K: Resource>(op: &K, role: &str, user: Option<&PodMetadata>) -> ObjectMeta {
    let mut pod_labels = labels(op, role);
    let mut annotations = BTreeMap::new();
    if let Some(pm) = user {
        for (k, v) in &pm.labels {
            pod_labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        annotations.extend(pm.annotations.clone());
    }
    ObjectMeta {
        labels: Some(pod_labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::DataLoad;

    #[test]
    fn the_users_pod_labels_never_replace_ours() {
        let mut op = DataLoad::new("warm", Default::default());
        op.metadata.uid = Some("u".into());
        let user = PodMetadata {
            labels: [(keys::LABEL_ROLE.to_string(), "mine".to_string()), ("team".to_string(), "a".to_string())].into(),
            annotations: [("note".to_string(), "x".to_string())].into(),
        };
        let m = pod_meta(&op, keys::ROLE_DATALOAD, Some(&user));
        let labels = m.labels.expect("labels");
        assert_eq!(labels.get(keys::LABEL_ROLE).map(String::as_str), Some(keys::ROLE_DATALOAD));
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(labels.get(keys::LABEL_OPERATION_UID).map(String::as_str), Some("u"));
        assert_eq!(m.annotations.expect("annotations").get("note").map(String::as_str), Some("x"));
    }
}

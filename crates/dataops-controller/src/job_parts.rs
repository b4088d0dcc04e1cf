//! What every data operation's Jobs carry, pure: our labels with the operation's UID (the controller
//! selects its Jobs by it), and the operation as their controller owner.

use ferrofluid_api::keys;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
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

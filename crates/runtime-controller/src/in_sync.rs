//! Whether an object in the watch cache already is what the controller would apply, so a pass at rest
//! sends no request. Pure.
//!
//! Two checks: the object carries the fingerprint (`ferrofluid.io/desired-hash`) of exactly the desired
//! object — which catches every change of what ferrofluid wants, removals included — and every field
//! ferrofluid sets still has its value — which catches someone else editing the object. Fields the API
//! server or other controllers add (defaults, status) do not matter.

use ferrofluid_api::keys::ANNOTATION_DESIRED_HASH;
use ferrofluid_api::naming::fnv1a64;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;

/// `obj` with its fingerprint annotation (an FNV-1a-64 hash of the object without it).
pub fn fingerprinted<K: Resource + Serialize>(mut obj: K) -> K {
    let hash = format!("{:016x}", fnv1a64(serde_json::to_string(&obj).unwrap_or_default().as_bytes()));
    obj.meta_mut().annotations.get_or_insert_with(Default::default).insert(ANNOTATION_DESIRED_HASH.into(), hash);
    obj
}

/// Whether `live` (from the cache) is `desired` (a [`fingerprinted`] object).
pub fn in_sync<K: Resource + Serialize>(live: &K, desired: &K) -> bool {
    let hash = |k: &K| k.meta().annotations.as_ref().and_then(|a| a.get(ANNOTATION_DESIRED_HASH)).cloned();
    if hash(live).is_none() || hash(live) != hash(desired) {
        return false;
    }
    let (Ok(live), Ok(desired)) = (serde_json::to_value(live), serde_json::to_value(desired)) else {
        return false;
    };
    ["labels", "annotations", "ownerReferences"]
        .iter()
        .all(|f| contains(&live["metadata"][*f], &desired["metadata"][*f]))
        && contains(&live["spec"], &desired["spec"])
}

/// A zero value, which the API server (Go's `omitempty`) stores as an absent field.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Whether every field of `wanted` is in `have` with the same value (lists element by element); a zero
/// value wanted matches an absent one.
fn contains(have: &Value, wanted: &Value) -> bool {
    match (have, wanted) {
        (_, Value::Null) => true,
        (Value::Null, w) => is_zero(w),
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, v)| contains(h.get(k).unwrap_or(&Value::Null), v)),
        (Value::Array(h), Value::Array(w)) => h.len() == w.len() && h.iter().zip(w).all(|(h, w)| contains(h, w)),
        (h, w) => h == w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};

    fn pvc(modes: &[&str], class: &str) -> PersistentVolumeClaim {
        let mut p = PersistentVolumeClaim::default();
        p.metadata.name = Some("c".into());
        p.metadata.labels = Some([("a".to_string(), "1".to_string())].into());
        p.spec = Some(PersistentVolumeClaimSpec {
            access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
            storage_class_name: Some(class.into()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn defaults_added_by_the_server_are_in_sync() {
        let desired = fingerprinted(pvc(&["ReadWriteMany"], "fluid"));
        let mut live = desired.clone();
        live.metadata.uid = Some("u".into());
        live.metadata.resource_version = Some("7".into());
        live.metadata.labels.as_mut().expect("labels").insert("added".into(), "x".into());
        live.spec.as_mut().expect("spec").volume_mode = Some("Filesystem".into());
        live.status = Some(Default::default());
        assert!(in_sync(&live, &desired));
    }

    #[test]
    fn changes_removals_and_edits_are_not() {
        let desired = fingerprinted(pvc(&["ReadWriteMany"], "fluid"));
        // What ferrofluid wants changed (a removal included): the fingerprint differs.
        let mut fewer = pvc(&["ReadWriteMany"], "fluid");
        fewer.metadata.labels = None;
        assert!(!in_sync(&desired, &fingerprinted(fewer)));
        // Someone edited a field ferrofluid sets.
        let mut edited = desired.clone();
        edited.spec.as_mut().expect("spec").storage_class_name = Some("other".into());
        assert!(!in_sync(&edited, &desired));
        let mut relabelled = desired.clone();
        relabelled.metadata.labels.as_mut().expect("labels").insert("a".into(), "2".into());
        assert!(!in_sync(&relabelled, &desired));
        // An object without the fingerprint (created by an older version) is applied once.
        let mut old = desired.clone();
        old.metadata.annotations = None;
        assert!(!in_sync(&old, &desired));
        // A wanted `false` is stored as nothing (omitempty); a wanted `true` is not.
        let mut flag = fingerprinted(pvc(&["ReadWriteMany"], "fluid"));
        flag.spec.as_mut().expect("spec").volume_name = Some(String::new());
        let mut stored = flag.clone();
        stored.spec.as_mut().expect("spec").volume_name = None;
        assert!(in_sync(&stored, &flag));
        // A list that grew.
        let mut more = desired.clone();
        more.spec.as_mut().expect("spec").access_modes = Some(vec!["ReadWriteMany".into(), "ReadOnlyMany".into()]);
        assert!(!in_sync(&more, &desired));
    }
}

//! The ownership mark on every object the runtime-controller creates: `app.kubernetes.io/managed-by:
//! ferrofluid` plus `ferrofluid.io/runtime-uid: <UID of the owning JuiceFSRuntime>` — or, on the PV and
//! PVC of a dataset that refers to another one, `ferrofluid.io/dataset-uid: <UID of that Dataset>`. An
//! object that lacks either, or names another owner, is someone else's: it is never applied to or
//! deleted, even when its name is the one this owner would use. UIDs are unique across kinds, so one
//! UID names exactly one owner whichever label carries it. Pure.

use ferrofluid_api::keys::{LABEL_DATASET_UID, LABEL_MANAGED_BY, LABEL_RUNTIME_UID, MANAGED_BY};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Adds the ownership mark of the runtime with `runtime_uid` to an object's labels.
pub fn mark(labels: &mut BTreeMap<String, String>, runtime_uid: &str) {
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    labels.insert(LABEL_RUNTIME_UID.into(), runtime_uid.into());
}

/// Adds the ownership mark of the referring dataset with `dataset_uid` to an object's labels.
pub fn mark_dataset(labels: &mut BTreeMap<String, String>, dataset_uid: &str) {
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    labels.insert(LABEL_DATASET_UID.into(), dataset_uid.into());
}

/// Whose an existing object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Carries this runtime's mark.
    Ours,
    /// Not ours; the reason, e.g. "is not managed by ferrofluid".
    Foreign(&'static str),
}

/// Whether an object carries ferrofluid's managed-by label (whichever runtime it belongs to).
pub fn managed_by_ferrofluid(meta: &ObjectMeta) -> bool {
    meta.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(MANAGED_BY)
}

/// Whether the object is the one of the owner (runtime or referring dataset) with `owner_uid`.
pub fn ownership(meta: &ObjectMeta, owner_uid: &str) -> Ownership {
    let labels = meta.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if !managed_by_ferrofluid(meta) {
        return Ownership::Foreign("is not managed by ferrofluid");
    }
    match (label(LABEL_RUNTIME_UID), label(LABEL_DATASET_UID)) {
        (Some(uid), _) | (None, Some(uid)) if uid == owner_uid && !uid.is_empty() => Ownership::Ours,
        (Some(_), _) => Ownership::Foreign("belongs to another JuiceFSRuntime"),
        (None, Some(_)) => Ownership::Foreign("belongs to another dataset (ferrofluid.io/dataset-uid)"),
        (None, None) => Ownership::Foreign("carries no ferrofluid.io/runtime-uid label"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_full_mark_of_this_runtime_is_ours() {
        let mut labels = BTreeMap::new();
        mark(&mut labels, "uid-1");
        let m = ObjectMeta { labels: Some(labels), ..Default::default() };
        assert_eq!(ownership(&m, "uid-1"), Ownership::Ours);
        assert!(matches!(ownership(&m, "uid-2"), Ownership::Foreign(why) if why.contains("another")));
        let mut labels = BTreeMap::new();
        mark_dataset(&mut labels, "ds-1");
        let d = ObjectMeta { labels: Some(labels), ..Default::default() };
        assert_eq!(ownership(&d, "ds-1"), Ownership::Ours);
        assert!(matches!(ownership(&d, "uid-1"), Ownership::Foreign(why) if why.contains("another dataset")));
        assert!(matches!(ownership(&ObjectMeta::default(), "uid-1"), Ownership::Foreign(_)));
        assert!(matches!(ownership(&meta(&[(LABEL_RUNTIME_UID, "uid-1")]), "uid-1"), Ownership::Foreign(_)));
        assert!(matches!(ownership(&meta(&[(LABEL_MANAGED_BY, MANAGED_BY)]), "uid-1"), Ownership::Foreign(_)));
        assert!(matches!(
            ownership(&meta(&[(LABEL_MANAGED_BY, "helm"), (LABEL_RUNTIME_UID, "uid-1")]), "uid-1"),
            Ownership::Foreign(_)
        ));
        // An object without a UID label can never match an (impossible) empty runtime UID.
        assert!(matches!(
            ownership(&meta(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_RUNTIME_UID, "")]), ""),
            Ownership::Foreign(_)
        ));
    }
}

//! The dataset's per-kind operation lock, `status.operationRef.<Kind>` (Fluid's): one operation of a
//! kind at a time per dataset. Taken and released by merge patches on the status that carry the Dataset's
//! resourceVersion, so two passes racing for it cannot both win: the second gets a conflict and looks
//! again.

use crate::plan::Lock;
use ferrofluid_api::Dataset;
use kube::ResourceExt;
use serde_json::{Value, json};

/// Who holds `dataset`'s `kind` lock, as operation `name` sees it. A holder that no longer exists or
/// has finished does not count (`finished_or_gone` tells, by name).
pub fn state(dataset: &Dataset, kind: &str, name: &str, finished_or_gone: impl Fn(&str) -> bool) -> Lock {
    match holder(dataset, kind) {
        None => Lock::Free,
        Some(h) if h == name => Lock::Ours,
        Some(h) if finished_or_gone(&h) => Lock::Free,
        Some(h) => Lock::HeldBy(h),
    }
}

pub fn holder(dataset: &Dataset, kind: &str) -> Option<String> {
    dataset.status.as_ref().and_then(|s| s.operation_ref.get(kind)).filter(|h| !h.is_empty()).cloned()
}

/// Sets (`Some`) or clears (`None`) the `kind` holder, only on the Dataset as read (`resourceVersion`).
pub fn patch(dataset: &Dataset, kind: &str, holder: Option<&str>) -> Value {
    json!({
        "metadata": {"resourceVersion": dataset.resource_version()},
        "status": {"operationRef": {kind: holder}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::DatasetStatus;
    use std::collections::BTreeMap;

    fn ds(holder: Option<&str>) -> Dataset {
        let mut d = Dataset::new("data", Default::default());
        d.metadata.resource_version = Some("42".into());
        d.status = Some(DatasetStatus {
            operation_ref: holder
                .map(|h| BTreeMap::from([("DataLoad".to_string(), h.to_string())]))
                .unwrap_or_default(),
            ..Default::default()
        });
        d
    }

    #[test]
    fn a_live_holder_keeps_the_lock_and_a_finished_one_does_not() {
        assert_eq!(state(&ds(None), "DataLoad", "a", |_| false), Lock::Free);
        assert_eq!(state(&ds(Some("a")), "DataLoad", "a", |_| false), Lock::Ours);
        assert_eq!(state(&ds(Some("b")), "DataLoad", "a", |_| false), Lock::HeldBy("b".into()));
        assert_eq!(state(&ds(Some("b")), "DataLoad", "a", |n| n == "b"), Lock::Free);
        assert_eq!(state(&ds(Some("b")), "DataMigrate", "a", |_| false), Lock::Free, "locks are per kind");
    }

    #[test]
    fn patches_are_conditional_on_the_version_read() {
        let p = patch(&ds(None), "DataLoad", Some("a"));
        assert_eq!(p["metadata"]["resourceVersion"], "42");
        assert_eq!(p["status"]["operationRef"]["DataLoad"], "a");
        assert!(patch(&ds(Some("a")), "DataLoad", None)["status"]["operationRef"]["DataLoad"].is_null());
    }
}

//! Status writes: server-side apply on the status subresource under the collector's own field manager,
//! with a body holding only `cacheStates` (and `ufsTotal` on the Dataset), so no other status field is
//! touched. Building the bodies and deciding whether to write are pure; [`StatusWriter`] does the I/O.

use ferrofluid_api::{CacheStates, Dataset, DatasetKey, JuiceFSRuntime};
use ferrofluid_service::ssa;
use kube::api::Api;
use serde_json::{Value, json};

/// The collector's field manager: it owns `status.cacheStates.*` and `status.ufsTotal` (when nobody else does).
pub const FIELD_MANAGER: &str = "ferrofluid-metrics-collector";

/// What the collector wants in one dataset's status.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub cache_states: CacheStates,
    pub ufs_total: Option<String>,
}

/// Apply body for a JuiceFSRuntime's status.
pub fn runtime_patch(key: &DatasetKey, states: &CacheStates) -> Value {
    ssa::body::<JuiceFSRuntime>(json!({
        "metadata": { "name": key.name, "namespace": key.namespace },
        "status": { "cacheStates": states },
    }))
}

/// Apply body for a Dataset's status; `ufs_total` only when the collector is to own it.
pub fn dataset_patch(key: &DatasetKey, states: &CacheStates, ufs_total: Option<&str>) -> Value {
    let mut status = json!({ "cacheStates": states });
    if let (Some(ufs), Some(map)) = (ufs_total, status.as_object_mut()) {
        map.insert("ufsTotal".into(), Value::String(ufs.to_owned()));
    }
    ssa::body::<Dataset>(json!({
        "metadata": { "name": key.name, "namespace": key.namespace },
        "status": status,
    }))
}

/// True when a field manager other than the collector owns `status.ufsTotal` (the runtime-controller
/// fills it): then the collector leaves it alone.
pub fn ufs_total_owned_by_other(dataset: &Dataset) -> bool {
    dataset.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() != Some(FIELD_MANAGER)
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:status"))
                .is_some_and(|status| status.get("f:ufsTotal").is_some())
    })
}

/// The Dataset apply body for `desired`, given the Dataset as last seen.
pub fn dataset_patch_for(key: &DatasetKey, desired: &Desired, current: &Dataset) -> Value {
    let ufs = if ufs_total_owned_by_other(current) { None } else { desired.ufs_total.as_deref() };
    dataset_patch(key, &desired.cache_states, ufs)
}

/// True when the runtime as last seen already shows `states`: nothing to write (e.g. after a restart).
pub fn runtime_shows(current: &JuiceFSRuntime, states: &CacheStates) -> bool {
    current.status.as_ref().and_then(|s| s.cache_states.as_ref()) == Some(states)
}

/// True when the dataset as last seen already shows what `patch` would write.
pub fn dataset_shows(current: &Dataset, patch: &Value) -> bool {
    let status = current.status.as_ref();
    let states_match = serde_json::to_value(status.and_then(|s| s.cache_states.as_ref())).ok().as_ref()
        == Some(&patch["status"]["cacheStates"]);
    let ufs_match = match patch["status"].get("ufsTotal") {
        Some(Value::String(ufs)) => status.and_then(|s| s.ufs_total.as_deref()) == Some(ufs.as_str()),
        _ => true,
    };
    states_match && ufs_match
}

/// Applies status bodies through the API server.
#[derive(Clone)]
pub struct StatusWriter {
    client: kube::Client,
}

impl StatusWriter {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    // Forced: the collector is the one writer of these fields; a stale owner must not block it.
    pub async fn apply_runtime(&self, key: &DatasetKey, patch: &Value) -> kube::Result<()> {
        let api: Api<JuiceFSRuntime> = Api::namespaced(self.client.clone(), &key.namespace);
        ssa::status(&api, FIELD_MANAGER, &key.name, &patch["status"]).await.map(|_| ())
    }

    pub async fn apply_dataset(&self, key: &DatasetKey, patch: &Value) -> kube::Result<()> {
        let api: Api<Dataset> = Api::namespaced(self.client.clone(), &key.namespace);
        ssa::status(&api, FIELD_MANAGER, &key.name, &patch["status"]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::{DatasetSpec, DatasetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn states() -> CacheStates {
        CacheStates {
            cached: Some("1.20GiB".into()),
            cache_capacity: Some("2.00GiB".into()),
            cache_hit_ratio: Some("50.0%".into()),
            ..Default::default()
        }
    }

    fn dataset(managers: &[(&str, Value)]) -> Dataset {
        let mut ds = Dataset::new("demo", DatasetSpec::default());
        ds.metadata.managed_fields = Some(
            managers
                .iter()
                .map(|(m, f)| ManagedFieldsEntry {
                    manager: Some((*m).into()),
                    subresource: Some("status".into()),
                    fields_v1: Some(FieldsV1(f.clone())),
                    ..Default::default()
                })
                .collect(),
        );
        ds
    }

    #[test]
    fn bodies_hold_only_the_collectors_fields() {
        let key = DatasetKey::new("ns", "demo");
        let rt = runtime_patch(&key, &states());
        assert_eq!(rt["apiVersion"], "data.fluid.io/v1alpha1");
        assert_eq!(rt["kind"], "JuiceFSRuntime");
        assert_eq!(
            rt["status"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["cacheStates".to_string()])
        );
        assert_eq!(rt["status"]["cacheStates"]["cached"], "1.20GiB");
        assert!(
            rt["status"]["cacheStates"].get("cachedPercentage").is_none(),
            "unknown fields are left out, not nulled"
        );
        assert!(rt.get("spec").is_none());

        let ds = dataset_patch(&key, &states(), Some("4.00GiB"));
        assert_eq!(ds["kind"], "Dataset");
        assert_eq!(ds["status"]["ufsTotal"], "4.00GiB");
        let mut keys: Vec<_> = ds["status"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        assert_eq!(keys, ["cacheStates", "ufsTotal"]);
        assert!(dataset_patch(&key, &states(), None)["status"].get("ufsTotal").is_none());
    }

    #[test]
    fn ufs_total_left_to_another_owner() {
        let key = DatasetKey::new("ns", "demo");
        let desired = Desired { cache_states: states(), ufs_total: Some("4.00GiB".into()) };
        let phase_only = dataset(&[("ferrofluid-dataset-controller", json!({"f:status": {"f:phase": {}}}))]);
        assert!(!ufs_total_owned_by_other(&phase_only));
        assert_eq!(dataset_patch_for(&key, &desired, &phase_only)["status"]["ufsTotal"], "4.00GiB");

        let other = dataset(&[("ferrofluid-runtime-controller", json!({"f:status": {"f:ufsTotal": {}}}))]);
        assert!(ufs_total_owned_by_other(&other));
        assert!(dataset_patch_for(&key, &desired, &other)["status"].get("ufsTotal").is_none());

        let ours = dataset(&[(FIELD_MANAGER, json!({"f:status": {"f:ufsTotal": {}, "f:cacheStates": {}}}))]);
        assert!(!ufs_total_owned_by_other(&ours));
    }

    #[test]
    fn no_write_when_the_object_already_shows_the_values() {
        let key = DatasetKey::new("ns", "demo");
        let mut ds = dataset(&[]);
        let patch = dataset_patch(&key, &states(), Some("4.00GiB"));
        assert!(!dataset_shows(&ds, &patch), "no status yet");
        ds.status = Some(DatasetStatus {
            cache_states: Some(states()),
            ufs_total: Some("4.00GiB".into()),
            ..Default::default()
        });
        assert!(dataset_shows(&ds, &patch));
        if let Some(status) = ds.status.as_mut() {
            status.ufs_total = Some("3.00GiB".into());
        }
        assert!(!dataset_shows(&ds, &patch), "ufsTotal differs");
        assert!(dataset_shows(&ds, &dataset_patch(&key, &states(), None)), "ufsTotal not ours to write");

        let mut rt = JuiceFSRuntime::new("demo", Default::default());
        assert!(!runtime_shows(&rt, &states()));
        rt.status = Some(ferrofluid_api::JuiceFSRuntimeStatus { cache_states: Some(states()), ..Default::default() });
        assert!(runtime_shows(&rt, &states()));
    }
}

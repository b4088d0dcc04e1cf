//! `DataLoad` (data.fluid.io/v1alpha1): warm a dataset's cache before it is read — Fluid's fields, and
//! progress per cache node besides.

use crate::common::{Condition, PodMetadata};
use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Loads the files under `target` of a dataset into its cache on every node that caches it.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "data.fluid.io",
    version = "v1alpha1",
    kind = "DataLoad",
    namespaced,
    status = "OperationStatus",
    category = "fluid",
    shortname = "load",
    printcolumn = r#"{"name":"Dataset","type":"string","jsonPath":".spec.dataset.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress.summary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63").message("metadata.name must be at most 63 characters: the warm-up Jobs are named after it"),
)]
#[serde(rename_all = "camelCase")]
pub struct DataLoadSpec {
    /// The dataset to warm.
    pub dataset: TargetDataset,
    /// Paths inside the dataset to load (`/` is its root); all of it when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub target: Vec<TargetPath>,
    /// Load the metadata too. JuiceFS keeps metadata in its metadata engine, where it already is: accepted
    /// for Fluid compatibility, nothing to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_metadata: Option<bool>,
    /// Warm-up settings: `threads` (concurrent block fetches per node, 1–255, default 10; another value
    /// fails the DataLoad with a condition naming it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8))]
    #[x_kube(validation = Rule::new("self.all(k, k == 'threads')").message("spec.options: the only option is threads"))]
    pub options: BTreeMap<String, String>,
    /// `Once` (default); `Cron` and `OnEvent` are Fluid's, not run by ferrofluid yet (the DataLoad fails
    /// saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Cron schedule, for `policy: Cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Start only after this operation (in this namespace unless it says) is `Complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<OperationRef>,
    /// Delete the DataLoad this many seconds after it finished (Complete or Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Fluid's tolerations of the loader pods. Accepted; ferrofluid's warm-up pods run on the dataset's
    /// cache nodes and tolerate their taints already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Resources of the warm-up container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Labels and annotations added to the warm-up pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Scheduler of the warm-up pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetDataset {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The DataLoad's own namespace; another one is refused (a DataLoad warms only its own namespace's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.path.startsWith('/') && !(self.path + '/').contains('/../') && !(self.path + '/').contains('/./')").message("spec.target[].path must be an absolute path inside the dataset, without '.' or '..' parts"))]
pub struct TargetPath {
    /// Path inside the dataset, e.g. `/train`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[^\x00-\x1f\x7f]*$"))]
    pub path: String,
    /// Fluid's cache replicas; JuiceFS warms the cache of every node that caches the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Policy {
    #[default]
    Once,
    Cron,
    OnEvent,
}

/// Another data operation, e.g. `{kind: DataLoad, name: prepare}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationRef {
    /// `DataLoad` (the only kind ferrofluid runs so far).
    pub kind: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Fluid's placement of the following operation; accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub affinity_strategy: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum OperationPhase {
    #[default]
    #[serde(rename = "")]
    None,
    Pending,
    Executing,
    Complete,
    Failed,
}

impl OperationPhase {
    pub fn finished(self) -> bool {
        matches!(self, OperationPhase::Complete | OperationPhase::Failed)
    }
}

/// Status of a data operation (Fluid's fields, plus `progress`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    #[serde(default)]
    pub phase: OperationPhase,
    /// Time from start to finish (or until now while it runs), e.g. `1m3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// `Complete` or `Failed` once finished, with the reason; `Waiting` while it may not start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When it started executing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Fluid's free-form details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub infos: BTreeMap<String, String>,
    /// Work done, per cache node, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// Each cache node's warm-up is split into `shards` parts of the file list; a part counts when it is
/// fully loaded on that node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// e.g. `5/8 parts (62%)`.
    pub summary: String,
    pub parts_done: i32,
    pub parts: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub nodes: Vec<NodeProgress>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    pub node: String,
    /// The Job warming this node.
    pub job: String,
    pub parts_done: i32,
    pub parts: i32,
    /// `Pending`, `Executing`, `Complete` or `Failed`.
    pub phase: OperationPhase,
    /// Why it failed, from the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An object whose fields the schema keeps as given.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

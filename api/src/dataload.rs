//! `DataLoad` (data.fluid.io/v1alpha1): warm a dataset's cache before it is read — Fluid's fields, and
//! progress per cache node besides.

use crate::common::PodMetadata;
pub use crate::operation::{
    NodeProgress, OperationPhase, OperationRef, OperationStatus, Policy, Progress, TargetDataset,
};
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
    validation = Rule::new("!has(self.spec.policy) || self.spec.policy != 'Cron' || has(self.spec.schedule)").message("spec.schedule is required with policy Cron"),
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
    /// `Once` (default), `Cron` (a run at each `schedule`) or `OnEvent` (a run, then another each time
    /// the operation in `runAfter` completes again or the dataset gains a cache node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Cron schedule (five fields, UTC), for `policy: Cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Start only after this operation (in this namespace unless it says) is `Complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<OperationRef>,
    /// Delete the DataLoad this many seconds after it finished (Complete or Failed); not with `Cron`.
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
#[x_kube(validation = Rule::new("self.path.startsWith('/') && !(self.path + '/').contains('/../') && !(self.path + '/').contains('/./')").message("spec.target[].path must be an absolute path inside the dataset, without '.' or '..' parts"))]
pub struct TargetPath {
    /// Path inside the dataset, e.g. `/train`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[^\x00-\x1f\x7f]*$"))]
    pub path: String,
    /// Fluid's cache replicas; JuiceFS warms the cache of every node that caches the dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

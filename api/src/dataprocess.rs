//! `DataProcess` (data.fluid.io/v1alpha1): run the user's pod with a dataset mounted — the step between
//! "load" and "train".

use crate::common::PodMetadata;
pub use crate::operation::{OperationRef, OperationStatus, Policy};
use k8s_openapi::api::core::v1::{EnvVar, PodSpec, ResourceRequirements, Volume, VolumeMount};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Runs `processor` once with the dataset's PVC at `dataset.mountPath`.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "data.fluid.io",
    version = "v1alpha1",
    kind = "DataProcess",
    namespaced,
    status = "OperationStatus",
    category = "fluid",
    printcolumn = r#"{"name":"Dataset","type":"string","jsonPath":".spec.dataset.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress.summary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    validation = Rule::new("size(self.metadata.name) <= 52").message("metadata.name must be at most 52 characters: its Job is named after it"),
    validation = Rule::new("has(self.spec.processor.script) != has(self.spec.processor.job)").message("spec.processor: give exactly one of script and job"),
    validation = Rule::new("!has(self.spec.policy) || self.spec.policy != 'Cron' || has(self.spec.schedule)").message("spec.schedule is required with policy Cron"),
)]
#[serde(rename_all = "camelCase")]
pub struct DataProcessSpec {
    pub dataset: DatasetMount,
    pub processor: Processor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<OperationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// `Once` (default), `Cron` (a run at each `schedule`) or `OnEvent` (a run, then another each time
    /// the operation in `runAfter` completes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Cron schedule (five fields, UTC), for `policy: Cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mountPath.startsWith('/')").message("spec.dataset.mountPath must be an absolute path"))]
pub struct DatasetMount {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Must be the DataProcess's own namespace when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Where the dataset is mounted in every container of the processor.
    #[schemars(length(min = 1, max = 1024))]
    pub mount_path: String,
    /// A directory of the dataset to mount instead of its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !('/' + self + '/').contains('/../')").message("spec.dataset.subPath must be relative, without '..' parts"))]
    pub sub_path: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Processor {
    /// Service account of the processor's pod (default: the namespace's `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    /// A script run by `command` (e.g. `["bash"]`, the default `["sh"]`) in `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptProcessor>,
    /// A whole pod spec (its `restartPolicy` is `Never` or `OnFailure`; `Never` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobProcessor>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScriptProcessor {
    #[schemars(length(min = 1))]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// The interpreter; the script is its last argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The script itself.
    #[schemars(length(min = 1))]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobProcessor {
    pub pod_spec: PodSpec,
}

//! `DataMigrate` (data.fluid.io/v1alpha1): copy data into or out of a dataset with `juicefs sync`.

use crate::common::{EncryptOption, PodMetadata};
pub use crate::operation::{OperationRef, OperationStatus, Policy};
use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Copies `from` to `to` (one side a dataset of this namespace, the other a dataset or a storage URI).
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "data.fluid.io",
    version = "v1alpha1",
    kind = "DataMigrate",
    namespaced,
    status = "OperationStatus",
    category = "fluid",
    shortname = "migrate",
    printcolumn = r#"{"name":"From","type":"string","jsonPath":".spec.from.dataset.name"}"#,
    printcolumn = r#"{"name":"To","type":"string","jsonPath":".spec.to.dataset.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress.summary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    validation = Rule::new("size(self.metadata.name) <= 52").message("metadata.name must be at most 52 characters: the copy Jobs are named after it"),
    validation = Rule::new("has(self.spec.from.dataset) || has(self.spec.to.dataset)").message("spec.from or spec.to must be a dataset"),
    validation = Rule::new("!has(self.spec.policy) || self.spec.policy != 'Cron' || has(self.spec.schedule)").message("spec.schedule is required with policy Cron"),
)]
#[serde(rename_all = "camelCase")]
pub struct DataMigrateSpec {
    pub from: DataToMigrate,
    pub to: DataToMigrate,
    /// `juicefs sync` flags without `--` (e.g. `update: ""`, `exclude: "*.tmp"`, `threads: "20"`); values
    /// empty for flags that take none. Credentials are refused here: they come from `encryptOptions`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub options: BTreeMap<String, String>,
    /// Copy Jobs run at the same time, each on its own range of keys (1–16, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub parallelism: Option<i32>,
    /// `Once` (default), `Cron` (a run at each `schedule`) or `OnEvent` (a run, then another each time
    /// the operation in `runAfter` completes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Cron schedule (five fields, UTC), for `policy: Cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<OperationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Image of the copy Jobs; default the dataset's runtime's FUSE image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// One side of a migration: a dataset or an external storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.dataset) != has(self.externalStorage)").message("give exactly one of dataset and externalStorage"))]
pub struct DataToMigrate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetToMigrate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_storage: Option<ExternalStorage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.path) || (self.path.startsWith('/') && !(self.path + '/').contains('/../'))").message("path must be absolute inside the dataset, without '..' parts"))]
pub struct DatasetToMigrate {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Must be the DataMigrate's own namespace when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Directory inside the dataset (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^\x00-\x1f\x7f]*$"))]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalStorage {
    /// A `juicefs sync` address without credentials: `s3://bucket.endpoint/prefix/`, `minio://host:port/bucket/prefix/`,
    /// `file:///dir/`, …
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^[a-z0-9]+://[^@\s]*$"))]
    pub uri: String,
    /// `access-key` and `secret-key` from Secrets (as the storage's environment credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub encrypt_options: Vec<EncryptOption>,
}

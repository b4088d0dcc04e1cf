//! What every data operation shares (DataLoad, DataMigrate, DataProcess): the dataset it works on,
//! its policy, the operation it runs after, and its status — Fluid's fields, and progress besides.

use crate::common::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetDataset {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The DataLoad's own namespace; another one is refused (a DataLoad warms only its own namespace's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
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
    /// `DataLoad`, `DataMigrate` or `DataProcess`.
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
    /// `Cron`: when the last run was started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// `Cron`: when a run last completed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<String>,
    /// Fluid's free-form details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub infos: BTreeMap<String, String>,
    /// Work done, per cache node, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// The work split into parts — a DataLoad's per cache node (parts of that node's file list), a
/// DataMigrate's key ranges, a DataProcess's one run — and how many are done; a DataLoad's also in
/// files and bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// e.g. `5/8 parts, 80/128 files, 320 MiB/512 MiB (62%) on 2 nodes`.
    pub summary: String,
    pub parts_done: i32,
    pub parts: i32,
    /// DataLoad: files and bytes over all nodes (a file counts once per node that caches it); the
    /// totals once every node has reported its list.
    #[serde(flatten)]
    pub counts: FileCounts,
    /// Per unit of work: a DataLoad's cache node, a DataMigrate's key range (`range-<i>`), a DataProcess's
    /// run (`process`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub nodes: Vec<NodeProgress>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    /// The cache node (DataLoad), or the unit's name.
    pub node: String,
    /// The Job doing it.
    pub job: String,
    pub parts_done: i32,
    pub parts: i32,
    /// DataLoad: files and bytes of the node's list (the totals known once its first part has ended).
    #[serde(flatten)]
    pub counts: FileCounts,
    /// `Pending`, `Executing`, `Complete` or `Failed`.
    pub phase: OperationPhase,
    /// Why it failed, from the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A DataLoad's files and bytes, warmed so far and to warm; counted as each part of a node's list ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileCounts {
    /// DataLoad: files warmed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_done: Option<i64>,
    /// DataLoad: files to warm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<i64>,
    /// DataLoad: bytes of the files warmed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_done: Option<i64>,
    /// DataLoad: bytes of the files to warm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
}

/// An object whose fields the schema keeps as given.
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

//! `Dataset` (data.fluid.io/v1alpha1): where the data lives and who may cache it.

use crate::common::{CacheStates, Condition, EncryptOption, SecretKeySelector};
use k8s_openapi::api::core::v1::{NodeSelector, Toleration};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A set of data in external storage that pods use through a PVC of the same name.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "data.fluid.io",
    version = "v1alpha1",
    kind = "Dataset",
    namespaced,
    status = "DatasetStatus",
    category = "fluid",
    printcolumn = r#"{"name":"Ufs Total Size","type":"string","jsonPath":".status.ufsTotal"}"#,
    printcolumn = r#"{"name":"Cached","type":"string","jsonPath":".status.cacheStates.cached"}"#,
    printcolumn = r#"{"name":"Cache Capacity","type":"string","jsonPath":".status.cacheStates.cacheCapacity"}"#,
    printcolumn = r#"{"name":"Cached Percentage","type":"string","jsonPath":".status.cacheStates.cachedPercentage"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"HCFS URL","type":"string","jsonPath":".status.hcfs.endpoint","priority":10}"#,
    printcolumn = r#"{"name":"Total Files","type":"string","jsonPath":".status.fileNum","priority":11}"#,
    printcolumn = r#"{"name":"Cache Hit Ratio","type":"string","jsonPath":".status.cacheStates.cacheHitRatio","priority":10}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52").message("metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter) of at most 52 characters, because workloads and PVs are named after it"),
)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSpec {
    /// Where the data lives. For JuiceFS one mount: `name` is the file-system name, `mountPoint` is
    /// `juicefs:///<subdir>`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("self.all(m, !has(m.name) || self.exists_one(o, has(o.name) && o.name == m.name))").message("mount names must be unique"))]
    #[x_kube(validation = Rule::new("size(self) == 1 || self.all(m, !m.mountPoint.startsWith('dataset://'))").message("a dataset://<namespace>/<name> mount must be the dataset's only mount"))]
    pub mounts: Vec<Mount>,
    /// Options that apply to every mount (merged under each mount's own `options`). Keys are JuiceFS flag
    /// names without `--`; secrets go in `sharedEncryptOptions`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = crate::options::flag_name_rule(), validation = crate::options::no_secret_rule())]
    pub shared_options: BTreeMap<String, String>,
    /// Secret-backed options that apply to every mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_encrypt_options: Vec<EncryptOption>,
    /// Access modes of the PV/PVC; default `ReadOnlyMany` (as in Fluid). With `ReadOnlyMany` among them
    /// the FUSE clients mount read-only (`--read-only`, and 7200 s attribute/entry caches unless the
    /// options set them): ask for `ReadWriteMany` to write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^(ReadWriteOnce|ReadOnlyMany|ReadWriteMany|ReadWriteOncePod)$")))]
    pub access_modes: Vec<String>,
    /// Constrains the nodes that may hold this dataset's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<CacheableNodeAffinity>,
    /// Tolerations the cache workers get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// `Exclusive` (default): at most one cache worker of this dataset per node (its workers repel each
    /// other, required). `Shared`: its workers prefer distinct nodes but may share one. Workers of
    /// different datasets may always share a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementMode>,
    /// The user that owns the files seen through the dataset (cache engines that run as a user). The
    /// JuiceFS runtime refuses it: JuiceFS keeps every file's own POSIX owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<User>,
}

/// One source of data.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Where the data is: `<scheme>://<path>`, e.g. `juicefs:///demo` (subdirectory `/demo` of the file system),
    /// or `dataset://<namespace>/<name>` to read through another dataset's cache (its only mount; the
    /// source must allow it with the annotation `ferrofluid.io/share-with`).
    #[x_kube(validation = Rule::new("self.matches('^[a-z][a-z0-9+.-]*://')").message("mountPoint must be <scheme>://<path>, e.g. juicefs:///demo"))]
    #[x_kube(validation = Rule::new("!self.contains('/../') && !self.endsWith('/..')").message("mountPoint must not contain '..' path segments"))]
    #[x_kube(validation = Rule::new("!self.startsWith('dataset://') || self.matches('^dataset://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z]([-a-z0-9]*[a-z0-9])?$')").message("a dataset reference must be dataset://<namespace>/<dataset name>"))]
    #[schemars(length(min = 1, max = 1024))]
    pub mount_point: String,
    /// Mount options (for JuiceFS: `bucket`, `storage`, and `juicefs format`/`mount` settings). Keys are
    /// JuiceFS flag names without `--`; each goes to `juicefs format` when that command takes it, else
    /// to `juicefs mount`. Secrets go in `encryptOptions`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = crate::options::flag_name_rule(), validation = crate::options::no_secret_rule())]
    pub options: BTreeMap<String, String>,
    /// Name of the mount; for JuiceFS the file-system name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    /// Path inside the volume where this mount appears (multi-mount datasets). The JuiceFS runtime
    /// serves its one mount at the volume's root: only `/` or `/<name>` (Fluid's default) are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Mount read-only: the JuiceFS clients (workers and FUSE) mount with `--read-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Shared across namespaces (other runtimes). The JuiceFS runtime refuses `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    /// Options whose values come from Secrets (`metaurl`, `access-key`, `secret-key`, …); never copied
    /// into ConfigMaps, arguments or logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encrypt_options: Vec<EncryptOption>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheableNodeAffinity {
    /// Nodes that may hold the cache must match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<NodeSelector>,
}

/// The access mode of a dataset that names none (Fluid's default).
pub const DEFAULT_ACCESS_MODE: &str = "ReadOnlyMany";
/// The access mode that makes the FUSE clients read-only.
pub const READ_ONLY_MANY: &str = "ReadOnlyMany";

impl DatasetSpec {
    /// The access modes of the dataset's PV/PVC: as given, or [`DEFAULT_ACCESS_MODE`].
    pub fn effective_access_modes(&self) -> Vec<String> {
        if self.access_modes.is_empty() { vec![DEFAULT_ACCESS_MODE.into()] } else { self.access_modes.clone() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PlacementMode {
    #[default]
    Exclusive,
    Shared,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub uid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub gid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// Where a dataset is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum DatasetPhase {
    #[default]
    #[serde(rename = "")]
    None,
    Pending,
    NotBound,
    Bound,
    Failed,
    Updating,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetStatus {
    /// `NotBound`, `Bound`, `Failed`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DatasetPhase>,
    /// The mounts as the runtime sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub mounts: Vec<Mount>,
    /// Size of the data in the underlying storage, e.g. `1.20GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ufs_total: Option<String>,
    /// Number of files in the underlying storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_num: Option<String>,
    /// Conditions, one per type; each component owns the types it writes (server-side apply list map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_states: Option<CacheStates>,
    /// Runtimes bound to this dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<RuntimeRef>,
    /// HCFS access point (kept for Fluid compatibility; unused by JuiceFS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcfs: Option<Hcfs>,
    /// The data operation running on this dataset, by kind (`DataLoad: <name>`): one at a time per kind,
    /// as in Fluid; the others wait. Written only by the dataops-controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operation_ref: BTreeMap<String, String>,
    /// On a source dataset: the datasets (`<namespace>/<name>`) that refer to it with
    /// `dataset://<namespace>/<name>`. It is not deleted while any remains. Written by the runtime-controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_ref: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRef {
    pub name: String,
    pub namespace: String,
    /// `Accelerate` for cache runtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Runtime type, e.g. `juicefs`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hcfs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlayer_file_system_version: Option<String>,
}

/// Scheme of JuiceFS mount points: `juicefs:///<subdir>`.
pub const SCHEME: &str = "juicefs://";

/// `juicefs:///demo` → `Some("/demo")`, `juicefs:///` or `juicefs://` → `None`.
pub fn parse_mount_point(mount_point: &str) -> Result<Option<String>, String> {
    let Some(path) = mount_point.strip_prefix(SCHEME) else {
        return Err(format!("{mount_point:?} is not a JuiceFS mount point; use juicefs:///<subdir>"));
    };
    if path.is_empty() || path == "/" {
        return Ok(None);
    }
    if !path.starts_with('/') {
        return Err(format!("{mount_point:?} names a host; use juicefs:///<subdir> (three slashes)"));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(format!("{mount_point:?} must not contain '..'"));
    }
    Ok(Some(path.trim_end_matches('/').to_string()))
}

impl DatasetSpec {
    /// The Secret key holding the metadata engine URL: the `metaurl` encryptOption of the (one) mount,
    /// else the shared one.
    pub fn metaurl_secret(&self) -> Option<&SecretKeySelector> {
        let own = self.mounts.first().into_iter().flat_map(|m| m.encrypt_options.iter());
        own.chain(self.shared_encrypt_options.iter())
            .find(|o| o.name == "metaurl")
            .map(|o| &o.value_from.secret_key_ref)
    }
}

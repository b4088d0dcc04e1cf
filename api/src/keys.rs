//! Label, annotation and finalizer keys, and the naming rules that derive object names, paths and
//! label keys from a dataset's namespace and name. Every component uses these; none spells a key itself.

use crate::naming::{bounded_label_name, bounded_label_value, is_valid_label_name};

/// API group and version of every ferrofluid custom resource (Fluid-compatible).
pub const GROUP: &str = "data.fluid.io";
pub const VERSION: &str = "v1alpha1";

/// Prefix of every label key ferrofluid puts on nodes.
pub const LABEL_PREFIX: &str = "fluid.io/";

/// Start of the name part (after [`LABEL_PREFIX`]) of FUSE node labels, `fluid.io/f-<ns>-<name>`: the
/// only labels the CSI plugin sets on its Node.
pub const FUSE_LABEL_NAME_PREFIX: &str = "f-";

/// Name of the CSI driver; must equal what the driver answers from `GetPluginInfo`.
pub const CSI_DRIVER_NAME: &str = "fuse.csi.fluid.io";

/// Storage class named on the PVs and PVCs ferrofluid creates.
pub const STORAGE_CLASS: &str = "fluid";

/// Runtime type name as it appears in label keys and paths.
pub const JUICEFS: &str = "juicefs";

/// `mount_type` volume attribute for JuiceFS volumes.
pub const MOUNT_TYPE_JUICEFS: &str = "JuiceFS";

/// Root under which FUSE clients mount, on every node.
pub const DEFAULT_MOUNT_ROOT: &str = "/runtime-mnt";

/// Node label counting how many datasets cache on a node.
pub const LABEL_DATASET_NUM: &str = "fluid.io/dataset-num";

/// Pod annotation (Fluid's): the datasets the pod mounts, sorted, comma-separated; set by the webhook.
pub const ANNOTATION_DATASETS_IN_USE: &str = "fluid.io/datasets-in-use";

/// Label of a MutatingWebhookConfiguration whose `caBundle` the webhook keeps (`"true"`): the chart's own
/// mark, as Helm replaces `app.kubernetes.io/managed-by` on what it installs.
pub const LABEL_INJECT_CA_BUNDLE: &str = "ferrofluid.io/inject-ca-bundle";

/// Label on ferrofluid-created objects naming the dataset they belong to (`<ns>-<name>`, bounded).
pub const LABEL_DATASET_ID: &str = "fluid.io/dataset-id";

/// Fluid-style labels on worker and FUSE pods: `app=juicefs`, `release=<runtime name>`, `role=…`.
/// The metrics-collector finds a pod's runtime by its namespace and `release`.
pub const LABEL_APP: &str = "app";
pub const APP_JUICEFS: &str = "juicefs";
pub const LABEL_RELEASE: &str = "release";

/// Label on worker and FUSE pods telling which role they play.
pub const LABEL_ROLE: &str = "role";
pub const ROLE_WORKER: &str = "juicefs-worker";
pub const ROLE_FUSE: &str = "juicefs-fuse";
/// Jobs that remove a runtime's cache directories from a node (on deletion and scale-in).
pub const ROLE_CACHE_CLEANUP: &str = "juicefs-cache-cleanup";

/// Name of the container port on worker and FUSE pods where JuiceFS serves Prometheus metrics.
pub const METRICS_PORT_NAME: &str = "metrics";
/// Default JuiceFS metrics port (`juicefs mount --metrics <ip>:<port>`).
pub const DEFAULT_METRICS_PORT: i32 = 9567;
/// Container names in worker and FUSE pods.
pub const WORKER_CONTAINER: &str = "juicefs-worker";
pub const FUSE_CONTAINER: &str = "juicefs-fuse";
pub const CACHE_CLEANUP_CONTAINER: &str = "cache-cleanup";

/// Standard labels on everything ferrofluid creates.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "ferrofluid";

/// Label on every object the runtime-controller creates (workloads, PV, PVC): the UID of the
/// JuiceFSRuntime that owns it. With `LABEL_MANAGED_BY` it is the ownership mark: an object without
/// both is never changed or deleted, even when its name is the one ferrofluid would use.
pub const LABEL_RUNTIME_UID: &str = "ferrofluid.io/runtime-uid";

/// Label on the pods of a data operation's Job (e.g. a DataLoad's warm-up): the UID of the operation
/// object. On the local cluster such a pod's phase is left to the node agent, which sets it
/// `Succeeded` or `Failed` when its containers end (kwok's `pod-complete` stage skips it), so the
/// Job's status follows the work actually done.
pub const LABEL_OPERATION_UID: &str = "ferrofluid.io/operation-uid";

/// Label on the objects the runtime-controller creates for a dataset that refers to another one
/// (`dataset://<ns>/<name>`: its PV and PVC): the UID of that referring Dataset. With `LABEL_MANAGED_BY`
/// it is their ownership mark, as `LABEL_RUNTIME_UID` is for a runtime's objects.
pub const LABEL_DATASET_UID: &str = "ferrofluid.io/dataset-uid";

/// Annotation on a source dataset: the namespaces (comma-separated, or `*` for all) whose datasets may
/// refer to it with `dataset://<ns>/<name>` and so read through its cache.
pub const ANNOTATION_SHARE_WITH: &str = "ferrofluid.io/share-with";

/// Annotation on a cache cleanup Job naming the node it cleans.
pub const ANNOTATION_NODE: &str = "ferrofluid.io/node";
/// Annotation the runtime-controller sets, once, on a PVC left `Pending` behind its `Bound` PV: the
/// update makes the controller-manager's PV binder sync the claim again (its claim and volume workers
/// race on a pre-bound pair, and the losing claim otherwise waits for the binder's 15 s resync).
pub const ANNOTATION_BIND_NUDGE: &str = "ferrofluid.io/bind-nudge";
/// FUSE pod template label (Fluid's key): a hash of the template, so a FUSE pod running an outdated
/// spec is told apart (the DaemonSet updates `OnDelete`).
pub const LABEL_FUSE_GENERATION: &str = "fuse.runtime.fluid.io/generation";

/// Annotation on the objects the runtime-controller applies: a hash of what it last wanted the object to
/// be. An object whose hash and fields already match is not applied again (nothing is written at rest).
pub const ANNOTATION_DESIRED_HASH: &str = "ferrofluid.io/desired-hash";

/// Finalizers.
pub const FINALIZER_DATASET: &str = "fluid-dataset-controller-finalizer";
pub const FINALIZER_RUNTIME: &str = "juicefs-runtime-controller-finalizer";
/// On a referring dataset while the runtime-controller may hold a PV and PVC for it.
pub const FINALIZER_SHARE: &str = "ferrofluid.io/dataset-share";
/// On data operations while the dataops-controller may hold their dataset's operation lock or run Jobs.
pub const FINALIZER_DATALOAD: &str = "ferrofluid.io/dataload-controller";
pub const FINALIZER_DATAMIGRATE: &str = "ferrofluid.io/datamigrate-controller";
pub const FINALIZER_DATAPROCESS: &str = "ferrofluid.io/dataprocess-controller";

/// Kinds of the data operations: their keys in a Dataset's `status.operationRef` and in `runAfter.kind`.
pub const KIND_DATALOAD: &str = "DataLoad";
pub const KIND_DATAMIGRATE: &str = "DataMigrate";
pub const KIND_DATAPROCESS: &str = "DataProcess";
/// Role label of the data operations' Jobs and their pods: warm-up, copy, and the user's processor.
pub const ROLE_DATALOAD: &str = "dataload";
pub const ROLE_DATAMIGRATE: &str = "datamigrate";
pub const ROLE_DATAPROCESS: &str = "dataprocess";
/// Annotation on warm-up Jobs naming the node they warm.
pub const ANNOTATION_OPERATION_NODE: &str = "ferrofluid.io/operation-node";

/// Volume attribute keys on the PVs ferrofluid creates (read by the CSI plugin).
pub const ATTR_FLUID_PATH: &str = "fluid_path";
pub const ATTR_MOUNT_TYPE: &str = "mount_type";
pub const ATTR_RUNTIME_NAMESPACE: &str = "runtime_namespace";
pub const ATTR_RUNTIME_NAME: &str = "runtime_name";
/// The FUSE node label key, as Fluid writes it.
pub const ATTR_NODE_SELECTOR_KEY: &str = "mount_pod_node_selector_key";
/// The same, as ferrofluid wrote it before it matched Fluid's name (PVs are immutable: still read).
pub const ATTR_LEGACY_NODE_SELECTOR_KEY: &str = "fuse_node_selector_key";

/// Value of every boolean node label ferrofluid sets.
pub const LABEL_TRUE: &str = "true";

/// The cache medium a capacity label reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityKind {
    /// Memory-backed cache (`MEM`).
    Memory,
    /// Disk-backed cache (`SSD`, `HDD`).
    Disk,
    /// Sum of all media.
    Total,
}

impl CapacityKind {
    fn code(self) -> &'static str {
        match self {
            CapacityKind::Memory => "m",
            CapacityKind::Disk => "d",
            CapacityKind::Total => "t",
        }
    }
}

/// Identifies one dataset (and its runtime, which shares its name) and derives every name from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetKey {
    pub namespace: String,
    pub name: String,
}

impl DatasetKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }

    fn ns_name(&self) -> String {
        format!("{}-{}", self.namespace, self.name)
    }

    /// `fluid.io/s-<ns>-<name>`: on nodes where a worker of this dataset runs.
    pub fn worker_node_label(&self) -> String {
        prefixed_label("s-", &self.ns_name())
    }

    /// `fluid.io/s-juicefs-<ns>-<name>`: on nodes where a JuiceFS worker of this dataset runs.
    pub fn juicefs_worker_node_label(&self) -> String {
        prefixed_label(&format!("s-{JUICEFS}-"), &self.ns_name())
    }

    /// `fluid.io/f-<ns>-<name>`: on nodes that need this dataset's FUSE client (set by the CSI plugin).
    pub fn fuse_node_label(&self) -> String {
        prefixed_label(FUSE_LABEL_NAME_PREFIX, &self.ns_name())
    }

    /// `fluid.io/s-h-juicefs-<m|d|t>-<ns>-<name>`: cache capacity a worker offers on a node.
    pub fn capacity_node_label(&self, kind: CapacityKind) -> String {
        prefixed_label(&format!("s-h-{JUICEFS}-{}-", kind.code()), &self.ns_name())
    }

    /// Value of `fluid.io/dataset-id` on objects of this dataset.
    pub fn dataset_id(&self) -> String {
        bounded_label_value(&self.ns_name())
    }

    /// PV name: `<ns>-<name>` (also the CSI `volumeHandle`).
    pub fn pv_name(&self) -> String {
        self.ns_name()
    }

    /// The directory JuiceFS clients of this dataset cache in, below each hostPath tiered-store level:
    /// `<ns>-<name>`, the PV's name, which one runtime at a time holds — so no two runtimes ever share
    /// a cache directory (two datasets of one file system would otherwise) and a cleanup removes only
    /// its own runtime's cache.
    pub fn cache_dir_name(&self) -> String {
        self.ns_name()
    }

    /// PVC name: the dataset's own name.
    pub fn pvc_name(&self) -> String {
        self.name.clone()
    }

    pub fn worker_statefulset_name(&self) -> String {
        format!("{}-worker", self.name)
    }

    pub fn fuse_daemonset_name(&self) -> String {
        format!("{}-fuse", self.name)
    }

    /// Directory on the node that holds this dataset's FUSE mount point (mounted with Bidirectional propagation).
    pub fn fuse_host_dir(&self, mount_root: &str) -> String {
        format!("{}/{JUICEFS}/{}/{}", mount_root.trim_end_matches('/'), self.namespace, self.name)
    }

    /// `fluid_path`: where the FUSE client mounts, e.g. `/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse`.
    pub fn fuse_mount_path(&self, mount_root: &str) -> String {
        format!("{}/{JUICEFS}-fuse", self.fuse_host_dir(mount_root))
    }
}

fn prefixed_label(prefix: &str, rest: &str) -> String {
    format!("{LABEL_PREFIX}{}", bounded_label_name(&format!("{prefix}{rest}")))
}

/// Whether `key` is a FUSE node label: `fluid.io/f-…` with a valid label name after the prefix. Keys
/// from [`DatasetKey::fuse_node_label`] always are; no other ferrofluid label is.
pub fn is_fuse_node_label(key: &str) -> bool {
    key.strip_prefix(LABEL_PREFIX)
        .is_some_and(|name| name.starts_with(FUSE_LABEL_NAME_PREFIX) && is_valid_label_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> DatasetKey {
        DatasetKey::new("default", "jfsdemo")
    }

    #[test]
    fn seed_names_match_fluid() {
        let k = seed();
        assert_eq!(k.worker_node_label(), "fluid.io/s-default-jfsdemo");
        assert_eq!(k.juicefs_worker_node_label(), "fluid.io/s-juicefs-default-jfsdemo");
        assert_eq!(k.fuse_node_label(), "fluid.io/f-default-jfsdemo");
        assert_eq!(k.capacity_node_label(CapacityKind::Memory), "fluid.io/s-h-juicefs-m-default-jfsdemo");
        assert_eq!(k.capacity_node_label(CapacityKind::Disk), "fluid.io/s-h-juicefs-d-default-jfsdemo");
        assert_eq!(k.capacity_node_label(CapacityKind::Total), "fluid.io/s-h-juicefs-t-default-jfsdemo");
        assert_eq!(k.pv_name(), "default-jfsdemo");
        assert_eq!(k.pvc_name(), "jfsdemo");
        assert_eq!(k.dataset_id(), "default-jfsdemo");
        assert_eq!(k.worker_statefulset_name(), "jfsdemo-worker");
        assert_eq!(k.fuse_daemonset_name(), "jfsdemo-fuse");
        assert_eq!(k.fuse_mount_path(DEFAULT_MOUNT_ROOT), "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse");
        assert_eq!(k.fuse_mount_path("/runtime-mnt/"), "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse");
    }

    #[test]
    fn long_names_give_valid_distinct_label_keys() {
        let ns = "a-very-long-namespace-name-for-the-data-platform-team";
        let a = DatasetKey::new(ns, "imagenet-training-set-2026-full");
        let b = DatasetKey::new(ns, "imagenet-training-set-2026-fulL".to_lowercase() + "x");
        for key in [a.worker_node_label(), a.fuse_node_label(), b.fuse_node_label(), a.juicefs_worker_node_label()] {
            let name = key.strip_prefix(LABEL_PREFIX).expect("prefix");
            assert!(name.len() <= 63, "{key} too long");
            assert!(crate::naming::is_valid_label_name(name), "{key} invalid");
        }
        assert_ne!(a.fuse_node_label(), b.fuse_node_label());
        assert_ne!(a.fuse_node_label(), a.worker_node_label());
        // Stable: the same dataset always gets the same key.
        assert_eq!(a.fuse_node_label(), DatasetKey::new(ns, "imagenet-training-set-2026-full").fuse_node_label());
        assert!(a.dataset_id().len() <= 63);
        assert!(is_fuse_node_label(&a.fuse_node_label()), "a shortened key keeps the FUSE prefix");
    }

    #[test]
    fn only_fuse_labels_are_fuse_labels() {
        let k = seed();
        assert!(is_fuse_node_label(&k.fuse_node_label()));
        assert!(is_fuse_node_label("fluid.io/f-ns-x"));
        for other in [
            k.worker_node_label(),
            k.juicefs_worker_node_label(),
            k.capacity_node_label(CapacityKind::Total),
            LABEL_DATASET_NUM.to_string(),
            LABEL_DATASET_ID.to_string(),
            "fluid.io/f-".into(),
            "fluid.io/f-bad key".into(),
            "fluid.io/fuse-x".into(),
            "example.com/f-ns-x".into(),
            "f-ns-x".into(),
            "node-role.kubernetes.io/control-plane".into(),
        ] {
            assert!(!is_fuse_node_label(&other), "{other}");
        }
    }
}

//! `JuiceFSRuntime` (data.fluid.io/v1alpha1): a JuiceFS cache cluster for the dataset of the same name.

use crate::common::{CacheStates, Condition, PodMetadata};
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cache workers and FUSE clients for a Dataset, run with JuiceFS.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "data.fluid.io",
    version = "v1alpha1",
    kind = "JuiceFSRuntime",
    namespaced,
    status = "JuiceFSRuntimeStatus",
    category = "fluid",
    shortname = "juicefs",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.currentWorkerNumberScheduled","labelSelectorPath":".status.selector"}"#,
    printcolumn = r#"{"name":"Worker Phase","type":"string","jsonPath":".status.workerPhase"}"#,
    printcolumn = r#"{"name":"Fuse Phase","type":"string","jsonPath":".status.fusePhase"}"#,
    printcolumn = r#"{"name":"Ready Workers","type":"integer","jsonPath":".status.workerNumberReady","priority":10}"#,
    printcolumn = r#"{"name":"Desired Workers","type":"integer","jsonPath":".status.desiredWorkerNumberScheduled","priority":10}"#,
    printcolumn = r#"{"name":"Ready Fuses","type":"integer","jsonPath":".status.fuseNumberReady","priority":10}"#,
    printcolumn = r#"{"name":"Desired Fuses","type":"integer","jsonPath":".status.desiredFuseNumberScheduled","priority":10}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct JuiceFSRuntimeSpec {
    /// Number of cache workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Cache media of the workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tieredstore: Option<TieredStore>,
    /// Default image for workers and FUSE clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub juicefs_version: Option<VersionSpec>,
    /// Cache worker settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<ComponentSpec>,
    /// FUSE client settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse: Option<FuseSpec>,
    /// Extra volumes for worker and FUSE pods (referenced from `volumeMounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Labels and annotations for every generated pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    /// Do not expose JuiceFS metrics from workers and FUSE clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_prometheus: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TieredStore {
    /// Cache levels, fastest first.
    #[schemars(length(min = 1, max = 8))]
    pub levels: Vec<Level>,
}

/// One cache level.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.high) || !has(self.low) || double(self.low) <= double(self.high)").message("low must not exceed high"))]
pub struct Level {
    /// Medium of the cache: `MEM`, `SSD` or `HDD`.
    pub mediumtype: MediumType,
    /// `hostPath` (default) or `emptyDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<VolumeType>,
    /// Cache directory on the node; several may be joined with `:`. Each must be absolute.
    #[schemars(length(min = 1, max = 4096), regex(pattern = r"^/[^:]*(:/[^:]*)*$"))]
    pub path: String,
    /// Cache size: a quantity (`500Mi`, `2Gi`) or a bare number meaning MiB (`40960` = 40 GiB). Must be positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("type(self) == int ? self > 0 : isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message("quota must be a positive quantity, e.g. 40960 (MiB), 500Mi or 2Gi"))]
    pub quota: Option<IntOrString>,
    /// Ratio of the cache that may be used before eviction starts, `0`–`1` (e.g. `0.95`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$"))]
    pub high: Option<String>,
    /// Ratio of the cache kept free, `0`–`1` (e.g. `0.7`); becomes JuiceFS `--free-space-ratio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0(\.[0-9]+)?|1(\.0+)?)$"))]
    pub low: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MediumType {
    #[default]
    #[serde(rename = "MEM")]
    Mem,
    #[serde(rename = "SSD")]
    Ssd,
    #[serde(rename = "HDD")]
    Hdd,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VolumeType {
    #[default]
    HostPath,
    EmptyDir,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// The pods' network: `HostNetwork` or `""` (the default, as in Fluid: the node's network, for workers
/// and FUSE clients alike), or `ContainerNetwork` (the pod's own network).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum NetworkMode {
    HostNetwork,
    #[default]
    #[serde(rename = "")]
    Default,
    ContainerNetwork,
}

/// Image of JuiceFS containers when neither the component nor `juicefsVersion` names one, unless the
/// controllers are given another with `--juicefs-image` ([`DefaultImage`]).
pub const DEFAULT_IMAGE: &str = "juicedata/juicefs-fuse";
pub const DEFAULT_IMAGE_TAG: &str = "ce-v1.2.3";

/// The image JuiceFS containers run when a runtime names none: the controllers' `--juicefs-image`
/// (`DEFAULT_IMAGE:DEFAULT_IMAGE_TAG` unless given), so that clusters pulling from their own registry
/// need not set it in every runtime. Repository and tag are kept apart because a runtime may set only
/// one of them and keep the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultImage {
    /// The repository, with its registry (and port) if any: `registry.local:5000/juicefs/fuse`.
    pub image: String,
    pub tag: String,
}

impl Default for DefaultImage {
    fn default() -> Self {
        DefaultImage { image: DEFAULT_IMAGE.into(), tag: DEFAULT_IMAGE_TAG.into() }
    }
}

impl std::fmt::Display for DefaultImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.image, self.tag)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefaultImageError {
    #[error("image {0:?} has no tag: give it as <repository>:<tag>, e.g. registry.local:5000/juicefs/fuse:1.4")]
    NoTag(String),
    #[error("image {0:?} has an empty repository: give it as <repository>:<tag>")]
    EmptyRepository(String),
    #[error("image {0:?} has an empty tag: give it as <repository>:<tag>")]
    EmptyTag(String),
    #[error(
        "image {0:?} is pinned by digest: give <repository>:<tag> (runtimes that set only `imageTag` combine it \
         with the default repository)"
    )]
    Digest(String),
    #[error("image {0:?} contains whitespace")]
    Whitespace(String),
}

impl std::str::FromStr for DefaultImage {
    type Err = DefaultImageError;

    /// `<repository>:<tag>`, split at the last `:` after the last `/` (a registry's port is not a tag).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(char::is_whitespace) {
            return Err(DefaultImageError::Whitespace(s.into()));
        }
        if s.contains('@') {
            return Err(DefaultImageError::Digest(s.into()));
        }
        let name_start = s.rfind('/').map_or(0, |i| i + 1);
        let colon = s[name_start..].rfind(':').ok_or_else(|| DefaultImageError::NoTag(s.into()))? + name_start;
        let (image, tag) = (&s[..colon], &s[colon + 1..]);
        if image.is_empty() || image.ends_with('/') {
            return Err(DefaultImageError::EmptyRepository(s.into()));
        }
        if tag.is_empty() {
            return Err(DefaultImageError::EmptyTag(s.into()));
        }
        Ok(DefaultImage { image: image.into(), tag: tag.into() })
    }
}

/// Image from the component's own setting, else `juicefsVersion`, else the default — repository and tag
/// each on their own.
pub fn image_of(spec: &JuiceFSRuntimeSpec, image: Option<&str>, tag: Option<&str>, default: &DefaultImage) -> String {
    let version = spec.juicefs_version.as_ref();
    let image = image.or_else(|| version.and_then(|v| v.image.as_deref())).unwrap_or(&default.image);
    let tag = tag.or_else(|| version.and_then(|v| v.image_tag.as_deref())).unwrap_or(&default.tag);
    format!("{image}:{tag}")
}

/// Pull policy from the component's own setting, else `juicefsVersion`'s; unset when neither says.
pub fn pull_policy(spec: &JuiceFSRuntimeSpec, own: Option<PullPolicy>) -> Option<String> {
    let policy = own.or_else(|| spec.juicefs_version.as_ref().and_then(|v| v.image_pull_policy))?;
    Some(format!("{policy:?}"))
}

/// The FUSE client's image: what data operations run in, so they use the same `juicefs` as app reads.
pub fn fuse_image(spec: &JuiceFSRuntimeSpec, default: &DefaultImage) -> String {
    let fuse = spec.fuse.as_ref().map(|f| &f.component);
    image_of(spec, fuse.and_then(|f| f.image.as_deref()), fuse.and_then(|f| f.image_tag.as_deref()), default)
}

impl NetworkMode {
    /// Whether pods of this mode use the node's network (everything but `ContainerNetwork`).
    pub fn is_host(mode: Option<NetworkMode>) -> bool {
        mode != Some(NetworkMode::ContainerNetwork)
    }
}

/// When a node's FUSE client is removed (by removing the node's FUSE label once no pod there uses the
/// dataset any more).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum CleanPolicy {
    /// `""`: the default, `OnRuntimeDeleted`.
    #[serde(rename = "")]
    Unset,
    /// As soon as no pod on the node uses the dataset.
    OnDemand,
    /// Only when the runtime is deleted (default).
    #[default]
    OnRuntimeDeleted,
    /// When no pod on the node uses the dataset and the node's FUSE client runs an outdated spec (the
    /// runtime lists such nodes in `status.outdatedFuseNodes`): the next pod gets a current client.
    OnFuseChanged,
}

impl CleanPolicy {
    /// The policy in effect (`""` and unset are `OnRuntimeDeleted`).
    pub fn effective(policy: Option<CleanPolicy>) -> CleanPolicy {
        match policy {
            None | Some(CleanPolicy::Unset) => CleanPolicy::OnRuntimeDeleted,
            Some(p) => p,
        }
    }
}

/// Settings for the worker or FUSE pods.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Extra `juicefs mount` options (`key: value`, value empty for flags); keys are flag names without
    /// `--`. Worker options reach only the workers, FUSE options only the FUSE clients.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = crate::options::flag_name_rule(), validation = crate::options::no_secret_rule())]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Pods run only on nodes matching this selector (FUSE pods: in addition to the dataset's FUSE label).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
}

/// Settings for the FUSE client pods: those of any component, plus when clients are removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FuseSpec {
    #[serde(flatten)]
    pub component: ComponentSpec,
    /// `OnRuntimeDeleted` (default, also `""`), `OnDemand` or `OnFuseChanged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_policy: Option<CleanPolicy>,
}

/// Readiness of a runtime's workers or FUSE clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RuntimePhase {
    #[default]
    #[serde(rename = "")]
    None,
    NotReady,
    PartialReady,
    Ready,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JuiceFSRuntimeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_phase: Option<RuntimePhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_worker_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_worker_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_number_ready: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_number_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_number_unavailable: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_phase: Option<RuntimePhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_fuse_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_fuse_number_scheduled: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_number_ready: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_number_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_number_unavailable: Option<i32>,
    /// Conditions, one per type; each component owns the types it writes (server-side apply list map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_states: Option<CacheStates>,
    /// Label selector of the worker pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Time from creation to first Ready, e.g. `12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_duration: Option<String>,
    /// When the workers first served the file system (RFC 3339), written once, as `setupDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_time: Option<String>,
    /// Nodes whose FUSE client runs an outdated spec (the FUSE DaemonSet updates `OnDelete`, so a
    /// client in use is never restarted under its pods); with `fuse.cleanPolicy: OnFuseChanged` such a
    /// client is replaced once no pod on its node uses the dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub outdated_fuse_nodes: Vec<String>,
    /// Node ports the runtime's host-network pods listen on, allocated by the runtime-controller from
    /// its `--host-port-range` so that no two runtimes ever use the same port on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ports: Option<HostPorts>,
    /// Nodes where the runtime's JuiceFS clients have cached (hostPath tiered-store levels): their cache
    /// directories are removed once no client runs there any more, and on deletion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub cache_nodes: Vec<CacheNode>,
}

/// A node holding the runtime's cache directories.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheNode {
    pub node: String,
    /// The cache directories the clients used there (`<level path>/<file-system name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    /// Since when no client of the runtime runs on the node (RFC 3339); unset while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<String>,
}

/// Ports a runtime holds on every node where its host-network pods run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPorts {
    /// JuiceFS metrics port of the workers (set while workers use the host network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_metrics: Option<i32>,
    /// JuiceFS metrics port of the FUSE clients (set while FUSE clients use the host network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuse_metrics: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<(String, String), DefaultImageError> {
        s.parse::<DefaultImage>().map(|d| (d.image, d.tag))
    }

    fn pair(image: &str, tag: &str) -> (String, String) {
        (image.into(), tag.into())
    }

    #[test]
    fn the_default_is_the_constants() {
        let d = DefaultImage::default();
        assert_eq!((d.image.as_str(), d.tag.as_str()), (DEFAULT_IMAGE, DEFAULT_IMAGE_TAG));
        assert_eq!(d.to_string(), "juicedata/juicefs-fuse:ce-v1.2.3");
        assert_eq!(d.to_string().parse::<DefaultImage>(), Ok(d));
    }

    #[test]
    fn an_image_splits_at_the_last_colon_after_the_last_slash() {
        assert_eq!(parsed("juicedata/juicefs-fuse:ce-v1.3.0"), Ok(pair("juicedata/juicefs-fuse", "ce-v1.3.0")));
        assert_eq!(parsed("registry.local:5000/juicefs/fuse:1.4"), Ok(pair("registry.local:5000/juicefs/fuse", "1.4")));
        assert_eq!(parsed("localhost:5000/fuse:latest"), Ok(pair("localhost:5000/fuse", "latest")));
        assert_eq!(parsed("fuse:1"), Ok(pair("fuse", "1")));
        let round = "registry.local:5000/juicefs/fuse:1.4".parse::<DefaultImage>().expect("valid");
        assert_eq!(round.to_string(), "registry.local:5000/juicefs/fuse:1.4");
    }

    #[test]
    fn an_image_without_repository_or_tag_is_refused() {
        let no_tag = |s: &str| Err(DefaultImageError::NoTag(s.into()));
        // A registry's port is not a tag.
        assert_eq!(parsed("registry.local:5000/juicefs/fuse"), no_tag("registry.local:5000/juicefs/fuse"));
        assert_eq!(parsed("juicedata/juicefs-fuse"), no_tag("juicedata/juicefs-fuse"));
        assert_eq!(parsed(""), no_tag(""));
        assert_eq!(
            parsed("juicedata/juicefs-fuse:"),
            Err(DefaultImageError::EmptyTag("juicedata/juicefs-fuse:".into()))
        );
        assert_eq!(parsed(":1.4"), Err(DefaultImageError::EmptyRepository(":1.4".into())));
        assert_eq!(
            parsed("registry.local:5000/:1.4"),
            Err(DefaultImageError::EmptyRepository("registry.local:5000/:1.4".into()))
        );
        let digest = "juicedata/juicefs-fuse@sha256:0123abcd";
        assert_eq!(parsed(digest), Err(DefaultImageError::Digest(digest.into())));
        assert_eq!(
            parsed("juicedata/juicefs-fuse:ce-v1.2.3\n"),
            Err(DefaultImageError::Whitespace("juicedata/juicefs-fuse:ce-v1.2.3\n".into()))
        );
        let msg = "registry.local:5000/jfs".parse::<DefaultImage>().expect_err("no tag").to_string();
        assert!(msg.contains("\"registry.local:5000/jfs\" has no tag") && msg.contains("<repository>:<tag>"), "{msg}");
    }

    #[test]
    fn a_runtimes_own_image_and_tag_win_over_the_default_each_on_its_own() {
        let mirror: DefaultImage = "registry.local:5000/jfs:1.4.2".parse().expect("valid");
        let mut spec = JuiceFSRuntimeSpec::default();
        assert_eq!(image_of(&spec, None, None, &mirror), "registry.local:5000/jfs:1.4.2");
        assert_eq!(image_of(&spec, None, None, &DefaultImage::default()), "juicedata/juicefs-fuse:ce-v1.2.3");
        assert_eq!(fuse_image(&spec, &mirror), "registry.local:5000/jfs:1.4.2");

        // Only a tag: the default repository with it; only a repository: the default tag.
        spec.juicefs_version = Some(VersionSpec { image_tag: Some("1.5.0".into()), ..Default::default() });
        assert_eq!(image_of(&spec, None, None, &mirror), "registry.local:5000/jfs:1.5.0");
        spec.juicefs_version = Some(VersionSpec { image: Some("team/juicefs".into()), ..Default::default() });
        assert_eq!(image_of(&spec, None, None, &mirror), "team/juicefs:1.4.2");

        // The component's own settings win over juicefsVersion, again each on its own.
        spec.juicefs_version =
            Some(VersionSpec { image: Some("team/juicefs".into()), image_tag: Some("v".into()), ..Default::default() });
        assert_eq!(image_of(&spec, None, Some("own"), &mirror), "team/juicefs:own");
        assert_eq!(image_of(&spec, Some("own/image"), None, &mirror), "own/image:v");
        spec.juicefs_version = None;
        spec.fuse = Some(FuseSpec {
            component: ComponentSpec { image: Some("fuse/only".into()), ..Default::default() },
            ..Default::default()
        });
        assert_eq!(fuse_image(&spec, &mirror), "fuse/only:1.4.2");
    }
}

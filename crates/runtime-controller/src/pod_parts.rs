//! Pieces shared by the worker and FUSE pod templates: image, environment, cache volumes, the format
//! init container and the readiness probe. Every command is exec-form argv; no shell runs.

use crate::juicefs_config::{CacheLevel, JuiceFsConfig, format_command};
use crate::labels;
use ferrofluid_api::common::PodMetadata;
use ferrofluid_api::juicefs_runtime::MediumType;
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HostPathVolumeSource,
    ObjectFieldSelector, Probe, SecretKeySelector, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

pub use ferrofluid_api::juicefs_runtime::{image_of, pull_policy};

/// Name of the init container that formats the file system (idempotent) before the client mounts it.
pub const FORMAT_CONTAINER: &str = "juicefs-format";

/// A failed container's last log lines become its termination message (kubelet reads at most 80 lines
/// or 2 KiB), so worker failures can be explained in the runtime's status — after redaction.
pub const TERMINATION_MESSAGE_POLICY: &str = "FallbackToLogsOnError";

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Environment of a JuiceFS container: pod IP and node name from the downward API, secrets as
/// `secretKeyRef` (never values), then the user's own variables.
pub fn container_env(cfg: &JuiceFsConfig, user: &[EnvVar]) -> Vec<EnvVar> {
    let mut env = vec![field_env("POD_IP", "status.podIP"), field_env("NODE_NAME", "spec.nodeName")];
    env.extend(cfg.secrets.iter().map(|s| EnvVar {
        name: s.env.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s.secret.clone(),
                key: s.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }));
    env.extend(user.iter().cloned());
    env
}

/// One volume per cache directory: hostPath (created if missing) or emptyDir (memory-backed for MEM).
pub fn cache_volumes(cache: &[CacheLevel]) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, level) in cache.iter().enumerate() {
        for (j, path) in level.paths.iter().enumerate() {
            let name = format!("cache-{i}-{j}");
            let volume = if level.empty_dir {
                Volume {
                    name: name.clone(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: (level.medium == MediumType::Mem).then(|| "Memory".to_string()),
                        size_limit: None,
                    }),
                    ..Default::default()
                }
            } else {
                Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource {
                        path: path.clone(),
                        type_: Some("DirectoryOrCreate".into()),
                    }),
                    ..Default::default()
                }
            };
            volumes.push(volume);
            mounts.push(VolumeMount { name, mount_path: path.clone(), ..Default::default() });
        }
    }
    (volumes, mounts)
}

/// The container's metrics port (named, so the collector finds it); none with `disablePrometheus`.
pub fn metrics_ports(port: Option<i32>) -> Option<Vec<ContainerPort>> {
    port.map(|p| {
        vec![ContainerPort {
            name: Some(keys::METRICS_PORT_NAME.into()),
            container_port: p,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]
    })
}

/// Metadata of a role's pod template: the role's labels, then the user's labels and annotations from the
/// runtime and the component, then the selector labels again so that user labels cannot break the selector.
pub fn template_metadata(key: &DatasetKey, role: &str, user: [Option<&PodMetadata>; 2]) -> ObjectMeta {
    let mut pod_labels = labels::for_role(key, role);
    let mut annotations = BTreeMap::new();
    for meta in user.into_iter().flatten() {
        pod_labels.extend(meta.labels.clone());
        annotations.extend(meta.annotations.clone());
    }
    pod_labels.extend(labels::selector(key, role));
    ObjectMeta {
        labels: Some(pod_labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

/// The init container running `juicefs format --no-update`: creates the file system on first use and
/// never changes an existing one. Same image and environment as the client.
pub fn format_init_container(
    cfg: &JuiceFsConfig,
    image: &str,
    pull_policy: Option<String>,
    env: &[EnvVar],
) -> Container {
    Container {
        name: FORMAT_CONTAINER.into(),
        image: Some(image.into()),
        image_pull_policy: pull_policy,
        command: Some(format_command(cfg)),
        env: Some(env.to_vec()),
        termination_message_policy: Some(TERMINATION_MESSAGE_POLICY.into()),
        ..Default::default()
    }
}

/// Ready only while JuiceFS is mounted at `mount_path`: a client still formatting, or stuck on an
/// unreachable metadata engine, is not ready, so the dataset is not bound on its account.
pub fn mounted_probe(mount_path: &str) -> Probe {
    let pattern = format!(" {} .* - fuse\\.juicefs ", mount_path.replace('.', "\\."));
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["grep".into(), "-qE".into(), pattern, "/proc/self/mountinfo".into()]),
        }),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

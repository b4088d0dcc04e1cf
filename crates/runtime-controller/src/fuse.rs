//! The FUSE DaemonSet `<name>-fuse`: one JuiceFS client per node that runs pods using the dataset.
//! Its node selector includes the dataset's FUSE label, which the CSI plugin sets on a node when a pod
//! there needs the volume — so it starts with zero pods.

use crate::juicefs_config::{JuiceFsConfig, mount_script};
use crate::labels;
use crate::pod_parts::{cache_volumes, container_env, image_of, mounted_probe, pull_policy, template_metadata};
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::juicefs_runtime::NetworkMode;
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, HostPathVolumeSource, Lifecycle, LifecycleHandler, PodSpec, PodTemplateSpec,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// Metrics port of a host-network FUSE client. Clients of different datasets share the node's
/// network, so each dataset gets its own port in 20000–29999, derived from its namespace and name.
pub fn fuse_metrics_port(key: &DatasetKey) -> i32 {
    let h = ferrofluid_api::naming::fnv1a64(format!("{}/{}", key.namespace, key.name).as_bytes());
    20000 + i32::try_from(h % 10000).unwrap_or(0)
}

pub fn build(runtime: &JuiceFSRuntime, key: &DatasetKey, cfg: &JuiceFsConfig, mount_root: &str) -> DaemonSet {
    let spec = &runtime.spec;
    let fuse = spec.fuse.clone().unwrap_or_default().component;
    let selector = labels::selector(key, keys::ROLE_FUSE);

    let host_network = fuse.network_mode != Some(NetworkMode::ContainerNetwork);
    let port = if host_network { fuse_metrics_port(key) } else { keys::DEFAULT_METRICS_PORT };
    let fluid_path = key.fuse_mount_path(mount_root);
    let host_dir = key.fuse_host_dir(mount_root);

    let mut node_selector = fuse.node_selector.clone();
    node_selector.insert(key.fuse_node_label(), keys::LABEL_TRUE.into());

    let (mut volumes, mut mounts) = cache_volumes(&cfg.cache);
    volumes.push(Volume {
        name: "fuse-mount".into(),
        host_path: Some(HostPathVolumeSource { path: host_dir.clone(), type_: Some("DirectoryOrCreate".into()) }),
        ..Default::default()
    });
    // Bidirectional: the FUSE mount made inside the container must appear on the host for the CSI plugin.
    mounts.push(VolumeMount {
        name: "fuse-mount".into(),
        mount_path: host_dir,
        mount_propagation: Some("Bidirectional".into()),
        ..Default::default()
    });
    mounts.extend(fuse.volume_mounts.clone());
    volumes.extend(spec.volumes.clone());

    let container = Container {
        name: keys::FUSE_CONTAINER.into(),
        image: Some(image_of(spec, fuse.image.as_deref(), fuse.image_tag.as_deref())),
        image_pull_policy: pull_policy(spec, fuse.image_pull_policy),
        command: Some(vec!["sh".into(), "-c".into()]),
        args: Some(vec![mount_script(cfg, &fluid_path, port, &fuse.options)]),
        env: Some(container_env(cfg, &fuse.env)),
        ports: Some(vec![ContainerPort {
            name: Some(keys::METRICS_PORT_NAME.into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        resources: fuse.resources.clone(),
        readiness_probe: Some(mounted_probe(&fluid_path)),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext { privileged: Some(true), ..Default::default() }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        "sh".into(),
                        "-c".into(),
                        format!("umount {fluid_path} || umount -l {fluid_path}"),
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    DaemonSet {
        metadata: ObjectMeta {
            name: Some(key.fuse_daemonset_name()),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels::for_role(key, keys::ROLE_FUSE)),
            owner_references: labels::owned_by(runtime).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector { match_labels: Some(selector), ..Default::default() },
            // A FUSE client restart breaks every mount on the node: roll only when a pod is deleted.
            update_strategy: Some(DaemonSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() }),
            template: PodTemplateSpec {
                metadata: Some(template_metadata(
                    key,
                    keys::ROLE_FUSE,
                    [spec.pod_metadata.as_ref(), fuse.pod_metadata.as_ref()],
                )),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    node_selector: Some(node_selector),
                    host_network: Some(host_network),
                    dns_policy: host_network.then(|| "ClusterFirstWithHostNet".to_string()),
                    // Applications may run on tainted nodes; their FUSE client must follow them.
                    tolerations: Some(vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

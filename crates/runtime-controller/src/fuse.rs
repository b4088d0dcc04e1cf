//! The FUSE DaemonSet `<name>-fuse`: one JuiceFS client per node that runs pods using the dataset.
//! Its node selector includes the dataset's FUSE label, which the CSI plugin sets on a node when a pod
//! there needs the volume — so it starts with zero pods.

use crate::juicefs_config::{JuiceFsConfig, Role, fuse_start_command, literal, mount_command};
use crate::labels;
use crate::pod_parts::{
    TERMINATION_MESSAGE_POLICY, cache_volumes, container_env, format_init_container, image_of, metrics_ports,
    mounted_probe, pull_policy, template_metadata,
};
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::juicefs_runtime::{DefaultImage, NetworkMode};
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::naming::fnv1a64;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, HostPathVolumeSource, Lifecycle, LifecycleHandler, PodSpec, PodTemplateSpec,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// Whether the FUSE clients use the node's network (the default, as in Fluid).
pub fn host_network(runtime: &JuiceFSRuntime) -> bool {
    NetworkMode::is_host(runtime.spec.fuse.as_ref().and_then(|f| f.component.network_mode))
}

/// The FUSE DaemonSet; `metrics_port` is the runtime's allocated host port when [`host_network`],
/// else the default port inside the pod's own network; `None` with `disablePrometheus`. The pod
/// template carries [`keys::LABEL_FUSE_GENERATION`]: a hash of the rest of the template. `default_image`
/// is used where the runtime names no image.
pub fn build(
    runtime: &JuiceFSRuntime,
    key: &DatasetKey,
    cfg: &JuiceFsConfig,
    default_image: &DefaultImage,
    mount_root: &str,
    metrics_port: Option<i32>,
) -> DaemonSet {
    let spec = &runtime.spec;
    let fuse = spec.fuse.clone().unwrap_or_default().component;
    let selector = labels::selector(key, keys::ROLE_FUSE);

    let host_network = host_network(runtime);
    let port = metrics_port;
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

    let image = image_of(spec, fuse.image.as_deref(), fuse.image_tag.as_deref(), default_image);
    let env = container_env(cfg, &fuse.env);
    let init = format_init_container(cfg, &image, pull_policy(spec, fuse.image_pull_policy), &env);
    let container = Container {
        name: keys::FUSE_CONTAINER.into(),
        image: Some(image),
        image_pull_policy: pull_policy(spec, fuse.image_pull_policy),
        command: Some(fuse_start_command(mount_command(cfg, Role::Fuse, &fluid_path, port))),
        env: Some(env),
        termination_message_policy: Some(TERMINATION_MESSAGE_POLICY.into()),
        ports: metrics_ports(port),
        resources: fuse.resources.clone(),
        readiness_probe: Some(mounted_probe(&fluid_path)),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext { privileged: Some(true), ..Default::default() }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                // Detach the mount (lazily: pods may still hold it) before the client is stopped.
                exec: Some(ExecAction { command: Some(vec!["umount".into(), "-l".into(), literal(&fluid_path)]) }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut template = PodTemplateSpec {
        metadata: Some(template_metadata(
            key,
            keys::ROLE_FUSE,
            [spec.pod_metadata.as_ref(), fuse.pod_metadata.as_ref()],
        )),
        spec: Some(PodSpec {
            init_containers: Some(vec![init]),
            containers: vec![container],
            volumes: Some(volumes),
            node_selector: Some(node_selector),
            host_network: Some(host_network),
            dns_policy: host_network.then(|| "ClusterFirstWithHostNet".to_string()),
            // Applications may run on tainted nodes; their FUSE client must follow them.
            tolerations: Some(vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
            ..Default::default()
        }),
    };
    let generation = generation(&template);
    if let Some(meta) = template.metadata.as_mut() {
        meta.labels.get_or_insert_with(Default::default).insert(keys::LABEL_FUSE_GENERATION.into(), generation);
    }

    DaemonSet {
        metadata: ObjectMeta {
            name: Some(key.fuse_daemonset_name()),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels::marked(labels::for_role(key, keys::ROLE_FUSE), runtime)),
            owner_references: labels::owned_by(runtime).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector { match_labels: Some(selector), ..Default::default() },
            // A FUSE client restart breaks every mount on the node: roll only when a pod is deleted.
            update_strategy: Some(DaemonSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() }),
            template,
            ..Default::default()
        }),
        status: None,
    }
}

/// The FUSE template's generation: a hash of the template (without this label).
fn generation(template: &PodTemplateSpec) -> String {
    format!("{:016x}", fnv1a64(serde_json::to_string(template).unwrap_or_default().as_bytes()))
}

/// The nodes whose FUSE pod (of `pods`: this runtime's, from the cache) runs a template other than
/// `desired`'s; sorted.
pub fn outdated_nodes(desired: &DaemonSet, pods: &[std::sync::Arc<k8s_openapi::api::core::v1::Pod>]) -> Vec<String> {
    let want = desired
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(keys::LABEL_FUSE_GENERATION));
    let mut nodes: Vec<String> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get(keys::LABEL_FUSE_GENERATION)) != want)
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

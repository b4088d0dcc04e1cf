//! The worker StatefulSet `<name>-worker`: JuiceFS cache workers spread over nodes.

use crate::juicefs_config::{CacheLevel, JuiceFsConfig, Role, mount_command};
use crate::labels;
use crate::pod_parts::{
    TERMINATION_MESSAGE_POLICY, cache_volumes, container_env, format_init_container, image_of, metrics_ports,
    mounted_probe, pull_policy, template_metadata,
};
use ferrofluid_api::dataset::PlacementMode;
use ferrofluid_api::juicefs_runtime::DefaultImage;
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{DatasetSpec, JuiceFSRuntime};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity,
    PodSpec, PodTemplateSpec, PreferredSchedulingTerm, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

const HOSTNAME_TOPOLOGY: &str = "kubernetes.io/hostname";

/// Where a worker mounts the file system inside its container (it caches; applications never read here).
pub fn worker_mount_path(key: &DatasetKey) -> String {
    format!("/runtime-mnt/{}/{}/{}/juicefs-worker", keys::JUICEFS, key.namespace, key.name)
}

/// Whether the workers use the node's network (`spec.worker.networkMode` `HostNetwork` or `""`/unset, as
/// in Fluid; not `ContainerNetwork`).
pub fn host_network(runtime: &JuiceFSRuntime) -> bool {
    ferrofluid_api::juicefs_runtime::NetworkMode::is_host(runtime.spec.worker.as_ref().and_then(|w| w.network_mode))
}

/// The worker StatefulSet; `metrics_port` is the runtime's allocated host port when [`host_network`],
/// else the default port inside the pod's own network; `None` with `disablePrometheus`. `default_image`
/// is used where the runtime names no image.
pub fn build(
    runtime: &JuiceFSRuntime,
    dataset: &DatasetSpec,
    key: &DatasetKey,
    cfg: &JuiceFsConfig,
    default_image: &DefaultImage,
    metrics_port: Option<i32>,
) -> StatefulSet {
    let spec = &runtime.spec;
    let worker = spec.worker.clone().unwrap_or_default();
    let selector = labels::selector(key, keys::ROLE_WORKER);

    let (volumes, mut mounts) = cache_volumes(&cfg.cache);
    mounts.extend(worker.volume_mounts.clone());
    let image = image_of(spec, worker.image.as_deref(), worker.image_tag.as_deref(), default_image);
    let env = container_env(cfg, &worker.env);
    let init = format_init_container(cfg, &image, pull_policy(spec, worker.image_pull_policy), &env);
    let container = Container {
        name: keys::WORKER_CONTAINER.into(),
        image: Some(image),
        image_pull_policy: pull_policy(spec, worker.image_pull_policy),
        command: Some(mount_command(cfg, Role::Worker, &worker_mount_path(key), metrics_port)),
        env: Some(env),
        termination_message_policy: Some(TERMINATION_MESSAGE_POLICY.into()),
        ports: metrics_ports(metrics_port),
        resources: worker.resources.clone(),
        readiness_probe: Some(mounted_probe(&worker_mount_path(key))),
        volume_mounts: Some(mounts),
        security_context: Some(k8s_openapi::api::core::v1::SecurityContext {
            privileged: Some(true), // FUSE needs /dev/fuse and mount(2)
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut all_volumes = volumes;
    all_volumes.extend(spec.volumes.clone());

    StatefulSet {
        metadata: ObjectMeta {
            name: Some(key.worker_statefulset_name()),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels::marked(labels::for_role(key, keys::ROLE_WORKER), runtime)),
            owner_references: labels::owned_by(runtime).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas.unwrap_or(1)),
            service_name: Some(key.worker_statefulset_name()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(template_metadata(
                    key,
                    keys::ROLE_WORKER,
                    [spec.pod_metadata.as_ref(), worker.pod_metadata.as_ref()],
                )),
                spec: Some(PodSpec {
                    init_containers: Some(vec![init]),
                    containers: vec![container],
                    volumes: (!all_volumes.is_empty()).then_some(all_volumes),
                    affinity: Some(affinity(dataset, key, &selector)),
                    node_selector: (!worker.node_selector.is_empty()).then(|| worker.node_selector.clone()),
                    tolerations: (!dataset.tolerations.is_empty()).then(|| dataset.tolerations.clone()),
                    host_network: Some(host_network(runtime)),
                    dns_policy: host_network(runtime).then(|| "ClusterFirstWithHostNet".to_string()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn affinity(dataset: &DatasetSpec, key: &DatasetKey, selector: &BTreeMap<String, String>) -> Affinity {
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector { match_labels: Some(selector.clone()), ..Default::default() }),
        topology_key: HOSTNAME_TOPOLOGY.into(),
        ..Default::default()
    };
    let anti = match dataset.placement.unwrap_or_default() {
        PlacementMode::Exclusive => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..Default::default()
        },
        PlacementMode::Shared => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: term,
            }]),
            ..Default::default()
        },
    };
    // Prefer nodes whose applications already use the dataset (they carry its FUSE label).
    let near_apps = PreferredSchedulingTerm {
        weight: 100,
        preference: NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.fuse_node_label(),
                operator: "In".into(),
                values: Some(vec![keys::LABEL_TRUE.into()]),
            }]),
            ..Default::default()
        },
    };
    Affinity {
        pod_anti_affinity: Some(anti),
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: dataset
                .node_affinity
                .as_ref()
                .and_then(|a| a.required.clone()),
            preferred_during_scheduling_ignored_during_execution: Some(vec![near_apps]),
        }),
        ..Default::default()
    }
}

/// Total cache a worker offers, in bytes, by medium (for node capacity labels).
pub fn capacity_bytes(cache: &[CacheLevel]) -> (u64, u64) {
    let mib = 1u64 << 20;
    cache.iter().fold((0, 0), |(mem, disk), l| match l.medium {
        ferrofluid_api::MediumType::Mem => (mem + l.size_mib * mib, disk),
        _ => (mem, disk + l.size_mib * mib),
    })
}

//! Unit tests of the pure builders: worker StatefulSet, FUSE DaemonSet, PV and PVC.

use crate::juicefs_config::{self, tests::seed};
use crate::{fuse, volume, worker};
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::common::PodMetadata;
use ferrofluid_api::dataset::{CacheableNodeAffinity, PlacementMode};
use ferrofluid_api::juicefs_runtime::{ComponentSpec, DefaultImage, FuseSpec, NetworkMode, VersionSpec};
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use std::time::Duration;

fn runtime(spec: ferrofluid_api::JuiceFSRuntimeSpec) -> JuiceFSRuntime {
    let mut rt = JuiceFSRuntime::new("jfsdemo", spec);
    rt.metadata.namespace = Some("default".into());
    rt.metadata.uid = Some("uid-1".into());
    rt
}

fn key() -> DatasetKey {
    DatasetKey::new("default", "jfsdemo")
}

/// The image `--juicefs-image` gives runtimes that name none, as in an air-gapped cluster.
fn mirror() -> DefaultImage {
    "registry.local:5000/jfs:1.4.2".parse().expect("image")
}

#[test]
fn worker_statefulset() {
    let (mut ds, mut rt_spec) = seed();
    rt_spec.replicas = Some(3);
    rt_spec.worker = Some(ComponentSpec {
        pod_metadata: Some(PodMetadata {
            labels: [("role".to_string(), "hijack".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    ds.node_affinity = Some(CacheableNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "zone".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into()]),
                }]),
                ..Default::default()
            }],
        }),
    });
    let rt = runtime(rt_spec);
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    let sts = worker::build(&rt, &ds, &key(), &cfg, &DefaultImage::default(), Some(9567));
    assert_eq!(sts.metadata.name.as_deref(), Some("jfsdemo-worker"));
    assert_eq!(sts.metadata.owner_references.as_ref().expect("owner")[0].uid, "uid-1");
    assert_owned_by_runtime(&sts.metadata);
    let spec = sts.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let selector = spec.selector.match_labels.expect("selector");
    let template = spec.template;
    let labels = template.metadata.expect("meta").labels.expect("labels");
    for (k, v) in &selector {
        assert_eq!(labels.get(k), Some(v), "pod labels must keep selector label {k}");
    }
    assert_eq!(labels["role"], "juicefs-worker", "user labels cannot override the role");
    let pod = template.spec.expect("pod");
    let affinity = pod.affinity.expect("affinity");
    let anti = affinity.pod_anti_affinity.expect("anti");
    let required = anti.required_during_scheduling_ignored_during_execution.expect("Exclusive → required");
    assert_eq!(required[0].topology_key, "kubernetes.io/hostname");
    let node = affinity.node_affinity.expect("node affinity");
    assert_eq!(
        node.required_during_scheduling_ignored_during_execution.expect("required").node_selector_terms.len(),
        1
    );
    let preferred = node.preferred_during_scheduling_ignored_during_execution.expect("preferred");
    let expr = &preferred[0].preference.match_expressions.as_ref().expect("exprs")[0];
    assert_eq!(expr.key, "fluid.io/f-default-jfsdemo");
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("juicedata/juicefs-fuse:ce-v1.2.3"), "the runtime names no image");
    assert_eq!(c.ports.as_ref().expect("ports")[0].name.as_deref(), Some("metrics"));
    let env = c.env.as_ref().expect("env");
    let meta = env.iter().find(|e| e.name == "METAURL").expect("METAURL");
    assert!(meta.value.is_none());
    assert_eq!(
        meta.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).map(|s| s.key.as_str()),
        Some("metaurl")
    );
    let volumes = pod.volumes.expect("volumes");
    assert_eq!(volumes[0].host_path.as_ref().map(|h| h.path.as_str()), Some("/dev/shm"));
    let argv = c.command.as_ref().expect("exec-form command");
    assert!(c.args.is_none(), "no shell script as args");
    assert_eq!(argv[..2], ["juicefs", "mount"]);
    assert!(argv.contains(&"--cache-size=40960".to_string()));
    assert!(argv.contains(&"--metrics=$(POD_IP):9567".to_string()));
    assert_eq!(c.termination_message_policy.as_deref(), Some("FallbackToLogsOnError"));
    let init = &pod.init_containers.as_ref().expect("format init container")[0];
    assert_eq!(init.command.as_ref().expect("argv")[..3], ["juicefs", "format", "--no-update"]);
    assert_eq!(init.env, c.env, "the format step sees the same secrets as the client");
    assert_eq!(init.image, c.image);
    // Fluid's default network mode ("" or unset) is the host network, for workers too.
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
}

fn assert_owned_by_runtime(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    assert_eq!(crate::owned::ownership(meta, "uid-1"), crate::owned::Ownership::Ours, "{:?}", meta.labels);
}

#[test]
fn host_network_workers_serve_on_their_allocated_port() {
    let (ds, mut rt_spec) = seed();
    rt_spec.worker = Some(ComponentSpec { network_mode: Some(NetworkMode::HostNetwork), ..Default::default() });
    let rt = runtime(rt_spec);
    assert!(worker::host_network(&rt));
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    let sts = worker::build(&rt, &ds, &key(), &cfg, &mirror(), Some(20007));
    let pod = sts.spec.and_then(|s| s.template.spec).expect("pod");
    assert_eq!(pod.host_network, Some(true));
    let c = &pod.containers[0];
    assert_eq!(c.ports.as_ref().expect("ports")[0].container_port, 20007);
    assert!(c.command.as_ref().expect("argv").contains(&"--metrics=$(POD_IP):20007".to_string()));
}

#[test]
fn a_runtimes_own_image_settings_win_over_the_default_image() {
    let (ds, mut rt_spec) = seed();
    rt_spec.juicefs_version = Some(VersionSpec { image_tag: Some("ce-v1.3.0".into()), ..Default::default() });
    rt_spec.fuse = Some(FuseSpec {
        component: ComponentSpec { image: Some("team/juicefs".into()), ..Default::default() },
        ..Default::default()
    });
    let rt = runtime(rt_spec);
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    let image = |pod: Option<k8s_openapi::api::core::v1::PodSpec>| pod.expect("pod").containers[0].image.clone();
    // Only a tag: the default repository keeps it; the FUSE client's own repository keeps that tag.
    let sts = worker::build(&rt, &ds, &key(), &cfg, &mirror(), Some(9567));
    assert_eq!(image(sts.spec.and_then(|s| s.template.spec)).as_deref(), Some("registry.local:5000/jfs:ce-v1.3.0"));
    let d = fuse::build(&rt, &key(), &cfg, &mirror(), "/runtime-mnt", Some(9567));
    assert_eq!(image(d.spec.and_then(|s| s.template.spec)).as_deref(), Some("team/juicefs:ce-v1.3.0"));
}

#[test]
fn shared_placement_prefers_spreading() {
    let (mut ds, rt_spec) = seed();
    ds.placement = Some(PlacementMode::Shared);
    let rt = runtime(rt_spec);
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    let sts = worker::build(&rt, &ds, &key(), &cfg, &mirror(), Some(9567));
    let anti = sts.spec.and_then(|s| s.template.spec).and_then(|p| p.affinity).and_then(|a| a.pod_anti_affinity);
    let anti = anti.expect("anti affinity");
    assert!(anti.required_during_scheduling_ignored_during_execution.is_none());
    assert_eq!(anti.preferred_during_scheduling_ignored_during_execution.expect("preferred")[0].weight, 100);
}

#[test]
fn fuse_daemonset() {
    let (ds, mut rt_spec) = seed();
    rt_spec.fuse = Some(FuseSpec {
        component: ComponentSpec {
            node_selector: [("pool".to_string(), "gpu".to_string())].into(),
            options: [("writeback".to_string(), String::new())].into(),
            ..Default::default()
        },
        clean_policy: None,
    });
    let rt = runtime(rt_spec);
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    assert!(fuse::host_network(&rt), "FUSE clients use the host network by default, as in Fluid");
    let d = fuse::build(&rt, &key(), &cfg, &mirror(), "/runtime-mnt", Some(20001));
    assert_eq!(d.metadata.name.as_deref(), Some("jfsdemo-fuse"));
    assert_owned_by_runtime(&d.metadata);
    let spec = d.spec.expect("spec");
    assert_eq!(spec.update_strategy.and_then(|u| u.type_).as_deref(), Some("OnDelete"));
    let pod = spec.template.spec.expect("pod");
    let selector = pod.node_selector.expect("node selector");
    assert_eq!(selector["pool"], "gpu");
    assert_eq!(selector["fluid.io/f-default-jfsdemo"], "true");
    assert_eq!(pod.host_network, Some(true));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.local:5000/jfs:1.4.2"), "the runtime names no image");
    assert_eq!(c.security_context.as_ref().and_then(|s| s.privileged), Some(true));
    let mount = c.volume_mounts.as_ref().expect("mounts").iter().find(|m| m.name == "fuse-mount").expect("fuse mount");
    assert_eq!(mount.mount_path, "/runtime-mnt/juicefs/default/jfsdemo");
    assert_eq!(mount.mount_propagation.as_deref(), Some("Bidirectional"));
    let argv = c.command.as_ref().expect("exec-form command");
    assert_eq!(argv.last().map(String::as_str), Some("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse"));
    assert!(argv.contains(&"--writeback".to_string()), "fuse options reach the mount: {argv:?}");
    assert_eq!(c.ports.as_ref().expect("ports")[0].container_port, 20001);
    assert!(argv.contains(&"--metrics=$(POD_IP):20001".to_string()));
    let pre_stop = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.exec.as_ref());
    assert_eq!(
        pre_stop.and_then(|e| e.command.clone()).expect("preStop unmount"),
        ["umount", "-l", "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse"]
    );
    let init = pod.init_containers.as_ref().expect("init");
    assert_eq!(init.len(), 1);
    assert_eq!(init[0].image, c.image);

    let mut container_net = rt.clone();
    container_net.spec.fuse.as_mut().expect("fuse").component.network_mode = Some(NetworkMode::ContainerNetwork);
    assert!(!fuse::host_network(&container_net));
    let d = fuse::build(&container_net, &key(), &cfg, &mirror(), "/runtime-mnt", Some(9567));
    let pod = d.spec.and_then(|s| s.template.spec).expect("pod");
    assert_eq!(pod.host_network, Some(false));
    assert_eq!(pod.containers[0].ports.as_ref().expect("ports")[0].container_port, 9567);

    // disablePrometheus: no metrics port at all.
    let d = fuse::build(&rt, &key(), &cfg, &mirror(), "/runtime-mnt", None);
    assert!(d.spec.and_then(|s| s.template.spec).expect("pod").containers[0].ports.is_none());
}

#[test]
fn fuse_pods_of_an_older_template_are_outdated() {
    let (ds, rt_spec) = seed();
    let rt = runtime(rt_spec);
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    let generation = |d: &k8s_openapi::api::apps::v1::DaemonSet| {
        d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.as_ref()).expect("labels")
            [ferrofluid_api::keys::LABEL_FUSE_GENERATION]
            .clone()
    };
    let build =
        |rt: &JuiceFSRuntime, image: &DefaultImage| fuse::build(rt, &key(), &cfg, image, "/runtime-mnt", Some(20001));
    let old = build(&rt, &DefaultImage::default());
    assert_eq!(generation(&old), generation(&build(&rt, &DefaultImage::default())));
    // Another --juicefs-image is another template for runtimes that name no image.
    assert_ne!(generation(&old), generation(&build(&rt, &mirror())));
    let mut changed = rt.clone();
    changed.spec.fuse = Some(FuseSpec {
        component: ComponentSpec { image_tag: Some("ce-v1.3.0".into()), ..Default::default() },
        ..Default::default()
    });
    let new = build(&changed, &DefaultImage::default());
    assert_ne!(generation(&old), generation(&new), "any template change is a new generation");
    let pod = |node: &str, of: &k8s_openapi::api::apps::v1::DaemonSet| {
        let mut p = k8s_openapi::api::core::v1::Pod::default();
        p.metadata.labels = of.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone());
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec { node_name: Some(node.into()), ..Default::default() });
        std::sync::Arc::new(p)
    };
    let pods = [pod("n2", &old), pod("n1", &new), pod("n3", &old)];
    assert_eq!(fuse::outdated_nodes(&new, &pods), ["n2", "n3"]);
    assert!(fuse::outdated_nodes(&old, &[pod("n1", &old)]).is_empty());
}

#[test]
fn pv_and_pvc() {
    let (mut ds, rt_spec) = seed();
    let rt = runtime(rt_spec);
    let pv = volume::persistent_volume(&rt, &key(), &ds, "/runtime-mnt");
    assert_eq!(pv.metadata.name.as_deref(), Some("default-jfsdemo"));
    assert_owned_by_runtime(&pv.metadata);
    let spec = pv.spec.expect("spec");
    let csi = spec.csi.expect("csi");
    assert_eq!(csi.driver, "fuse.csi.fluid.io");
    assert_eq!(csi.volume_handle, "default-jfsdemo");
    let attrs = csi.volume_attributes.expect("attrs");
    assert_eq!(attrs["fluid_path"], "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse");
    assert_eq!(attrs["mount_type"], "JuiceFS");
    assert_eq!(attrs["mount_pod_node_selector_key"], "fluid.io/f-default-jfsdemo");
    assert_eq!(spec.access_modes.as_deref(), Some(&["ReadOnlyMany".to_string()][..]), "Fluid's default");
    assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Retain"));
    assert_eq!(spec.claim_ref.and_then(|c| c.name).as_deref(), Some("jfsdemo"));

    ds.access_modes = vec!["ReadWriteMany".into()];
    let pvc = volume::persistent_volume_claim(&rt, &key(), &ds);
    assert_owned_by_runtime(&pvc.metadata);
    let spec = pvc.spec.expect("spec");
    assert_eq!(spec.volume_name.as_deref(), Some("default-jfsdemo"));
    assert_eq!(spec.storage_class_name.as_deref(), Some("fluid"));
    assert_eq!(spec.access_modes.as_deref(), Some(&["ReadWriteMany".to_string()][..]));
    // ReadOnlyMany makes the FUSE clients read-only (the workers stay writable, so they can create the
    // subdirectory); an explicit readOnly mount makes every client read-only.
    let cfg = juicefs_config::build(&ds, &rt.spec, &key()).expect("valid");
    assert!(!cfg.read_only && !cfg.fuse_read_only);
    ds.access_modes = vec!["ReadWriteMany".into(), "ReadOnlyMany".into()];
    assert!(juicefs_config::build(&ds, &rt.spec, &key()).expect("valid").fuse_read_only, "any ReadOnlyMany, as Fluid");
    ds.mounts[0].read_only = Some(true);
    assert!(juicefs_config::build(&ds, &rt.spec, &key()).expect("valid").read_only);
}

#[test]
fn a_claim_pending_behind_its_bound_volume_is_touched_once_after_the_grace() {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimStatus, PersistentVolumeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::{Timestamp, ToSpan};
    use volume::{BIND_GRACE, Binding, binding};
    let (ds, rt_spec) = seed();
    let rt = runtime(rt_spec);
    let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
    let bound_at = |t: Timestamp, claim_uid: &str| {
        let mut pv = volume::persistent_volume(&rt, &key(), &ds, "/runtime-mnt");
        let claim_ref = pv.spec.as_mut().and_then(|s| s.claim_ref.as_mut()).expect("pre-bound");
        claim_ref.uid = Some(claim_uid.into());
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Bound".into()),
            last_phase_transition_time: Some(Time(t)),
            ..Default::default()
        });
        pv
    };
    let claim = |phase: &str| {
        let mut pvc = volume::persistent_volume_claim(&rt, &key(), &ds);
        pvc.metadata.uid = Some("claim-uid".into());
        pvc.status = Some(PersistentVolumeClaimStatus { phase: Some(phase.into()), ..Default::default() });
        pvc
    };
    let pv = bound_at(now - 300.milliseconds(), "claim-uid");
    assert_eq!(
        binding(Some(&pv), Some(&claim("Pending")), now),
        Binding::Grace(BIND_GRACE - Duration::from_millis(300))
    );
    let pv = bound_at(now - 2.seconds(), "claim-uid");
    assert_eq!(binding(Some(&pv), Some(&claim("Pending")), now), Binding::Nudge);
    assert_eq!(binding(Some(&pv), Some(&claim("Bound")), now), Binding::Settled);
    let mut touched = claim("Pending");
    touched.metadata.annotations =
        Some([(keys::ANNOTATION_BIND_NUDGE.to_string(), now.to_string())].into_iter().collect());
    assert_eq!(binding(Some(&pv), Some(&touched), now), Binding::Settled, "once only");
    let other = bound_at(now - 2.seconds(), "an-earlier-claim");
    assert_eq!(binding(Some(&other), Some(&claim("Pending")), now), Binding::Settled, "the PV is not bound to it");
    let mut available = pv.clone();
    available.status.as_mut().expect("status").phase = Some("Available".into());
    assert_eq!(binding(Some(&available), Some(&claim("Pending")), now), Binding::Settled, "the binder's own work");
    assert_eq!(binding(Some(&pv), None, now), Binding::Settled);
    let ahead = bound_at(now + 1.hours(), "claim-uid");
    assert_eq!(binding(Some(&ahead), Some(&claim("Pending")), now), Binding::Nudge, "a clock ahead cannot hold it");
}

#[test]
fn readiness_probe_matches_only_a_juicefs_mount_at_the_path() {
    let probe = crate::pod_parts::mounted_probe("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse");
    let cmd = probe.exec.and_then(|e| e.command).expect("exec");
    assert_eq!(cmd.last().map(String::as_str), Some("/proc/self/mountinfo"));
    let run = |mountinfo: &str| {
        let dir = std::env::temp_dir().join(format!("probe-{}-{}", std::process::id(), mountinfo.len()));
        std::fs::write(&dir, mountinfo).expect("write");
        // The probe's own argv, reading the test file instead of /proc/self/mountinfo; no shell.
        let mut argv = cmd.clone();
        *argv.last_mut().expect("file") = dir.display().to_string();
        let status = std::process::Command::new(&argv[0]).args(&argv[1..]).status().expect("grep");
        let _ = std::fs::remove_file(&dir);
        status.success()
    };
    let line = |path: &str, fs: &str| format!("36 35 0:50 / {path} rw,relatime shared:1 - {fs} JuiceFS:test rw\n");
    assert!(run(&line("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", "fuse.juicefs")));
    assert!(!run(&line("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", "tmpfs")), "not JuiceFS");
    assert!(!run(&line("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse/sub", "fuse.juicefs")), "other path");
    assert!(!run(""), "nothing mounted");
}

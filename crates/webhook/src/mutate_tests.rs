use super::*;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSpec, Volume, VolumeMount};

fn pod(labels: &[(&str, &str)]) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some("app".into());
    p.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    p.spec = Some(PodSpec {
        containers: vec![Container {
            name: "app".into(),
            volume_mounts: Some(vec![
                VolumeMount { name: "data".into(), mount_path: "/data".into(), ..Default::default() },
                VolumeMount { name: "scratch".into(), mount_path: "/tmp".into(), ..Default::default() },
            ]),
            ..Default::default()
        }],
        volumes: Some(vec![
            Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "jfsdemo".into(),
                    read_only: None,
                }),
                ..Default::default()
            },
            Volume { name: "scratch".into(), ..Default::default() },
        ]),
        ..Default::default()
    });
    p
}

fn facts(has_cache_nodes: bool) -> DatasetFacts {
    DatasetFacts { name: "jfsdemo".into(), has_cache_nodes, ..Default::default() }
}

fn affinity(p: &Pod) -> &NodeAffinity {
    p.spec.as_ref().and_then(|s| s.affinity.as_ref()).and_then(|a| a.node_affinity.as_ref()).expect("node affinity")
}

const CACHE: &str = "fluid.io/s-default-jfsdemo";

#[test]
fn a_dataset_pod_prefers_its_cache_nodes_sees_fuse_restarts_and_says_what_it_uses() {
    let m = mutate(&pod(&[]), "default", &[facts(true)], Settings::default());
    let p = m.pod.expect("mutated");
    let pref = affinity(&p).preferred_during_scheduling_ignored_during_execution.as_ref().expect("preferred");
    assert_eq!(pref.len(), 1);
    assert_eq!(pref[0].weight, 100);
    let e = &pref[0].preference.match_expressions.as_ref().expect("exprs")[0];
    assert_eq!(
        (e.key.as_str(), e.operator.as_str(), e.values.as_deref()),
        (CACHE, "In", Some(&["true".to_string()][..]))
    );
    assert!(affinity(&p).required_during_scheduling_ignored_during_execution.is_none());
    let mounts = p.spec.as_ref().expect("spec").containers[0].volume_mounts.as_ref().expect("mounts");
    assert_eq!(mounts[0].mount_propagation.as_deref(), Some("HostToContainer"));
    assert_eq!(mounts[1].mount_propagation, None, "other volumes untouched");
    let ann = p.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(ann.get("fluid.io/datasets-in-use").map(String::as_str), Some("jfsdemo"));
    assert!(m.warnings.is_empty());
}

#[test]
fn mutating_twice_changes_nothing_the_second_time() {
    let once = mutate(&pod(&[]), "default", &[facts(true)], Settings::default()).pod.expect("mutated");
    assert_eq!(mutate(&once, "default", &[facts(true)], Settings::default()).pod, None);
    let labels = [("fluid.io/dataset.jfsdemo.sched", "required")];
    let once = mutate(&pod(&labels), "default", &[facts(true)], Settings::default()).pod.expect("mutated");
    assert_eq!(mutate(&once, "default", &[facts(true)], Settings::default()).pod, None);
}

#[test]
fn required_is_anded_into_every_existing_term_with_the_datasets_tolerations() {
    let mut p = pod(&[("fluid.io/dataset.jfsdemo.sched", "required")]);
    let zone = |z: &str| NodeSelectorTerm {
        match_expressions: Some(vec![requirement("zone", "In", Some(z))]),
        ..Default::default()
    };
    node_affinity(&mut p).required_during_scheduling_ignored_during_execution =
        Some(NodeSelector { node_selector_terms: vec![zone("a"), zone("b")] });
    let tol = Toleration { key: Some("dedicated".into()), operator: Some("Exists".into()), ..Default::default() };
    let ds = DatasetFacts { tolerations: vec![tol.clone()], ..facts(true) };
    let p = mutate(&p, "default", &[ds], Settings::default()).pod.expect("mutated");
    let req = affinity(&p).required_during_scheduling_ignored_during_execution.as_ref().expect("required");
    assert_eq!(req.node_selector_terms.len(), 2, "still two alternatives");
    for t in &req.node_selector_terms {
        let keys: Vec<&str> = t.match_expressions.iter().flatten().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["zone", CACHE]);
    }
    assert!(affinity(&p).preferred_during_scheduling_ignored_during_execution.is_none());
    assert_eq!(p.spec.as_ref().and_then(|s| s.tolerations.clone()), Some(vec![tol]));
}

#[test]
fn required_without_cache_nodes_never_makes_an_unschedulable_pod() {
    let labels = [("fluid.io/dataset.jfsdemo.sched", "required")];
    let m = mutate(&pod(&labels), "default", &[facts(false)], Settings::default());
    let p = m.pod.expect("mutated");
    assert!(affinity(&p).required_during_scheduling_ignored_during_execution.is_none());
    assert!(affinity(&p).preferred_during_scheduling_ignored_during_execution.is_some());
    assert_eq!(m.warnings.len(), 1);
    // With a nodeAffinity of its own, the dataset's nodes are required instead: where its cache can go.
    let gpu = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: Some(vec![requirement("gpu", "Exists", None)]),
            ..Default::default()
        }],
    };
    let ds = DatasetFacts { required: Some(gpu.clone()), ..facts(false) };
    let p = mutate(&pod(&labels), "default", &[ds], Settings::default()).pod.expect("mutated");
    assert_eq!(affinity(&p).required_during_scheduling_ignored_during_execution.as_ref(), Some(&gpu));
}

#[test]
fn a_referring_dataset_prefers_its_sources_cache_nodes() {
    let ds = DatasetFacts { served_by: Some(ferrofluid_api::DatasetKey::new("team-a", "src")), ..facts(true) };
    let p = mutate(&pod(&[]), "default", &[ds], Settings::default()).pod.expect("mutated");
    let preferred = affinity(&p).preferred_during_scheduling_ignored_during_execution.as_ref().expect("preferred");
    let keys: Vec<&str> = preferred[0].preference.match_expressions.iter().flatten().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["fluid.io/s-team-a-src"]);
}

#[test]
fn pods_without_datasets_are_untouched_unless_they_prefer_nodes_without_cache() {
    assert_eq!(mutate(&pod(&[]), "default", &[], Settings::default()), Mutation::default());
    let on = Settings { prefer_nodes_without_cache: true };
    let p = mutate(&pod(&[]), "default", &[], on).pod.expect("mutated");
    let pref = affinity(&p).preferred_during_scheduling_ignored_during_execution.as_ref().expect("preferred");
    let e = &pref[0].preference.match_expressions.as_ref().expect("exprs")[0];
    assert_eq!((e.key.as_str(), e.operator.as_str()), ("fluid.io/dataset-num", "DoesNotExist"));
    assert!(p.metadata.annotations.is_none(), "no datasets-in-use without datasets");
}

#[test]
fn the_annotation_merges_with_what_is_there() {
    let mut p = pod(&[]);
    p.metadata.annotations = Some([("fluid.io/datasets-in-use".to_string(), "zeta, alpha".to_string())].into());
    let p = mutate(&p, "default", &[facts(true)], Settings::default()).pod.expect("mutated");
    let ann = p.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(ann.get("fluid.io/datasets-in-use").map(String::as_str), Some("alpha,jfsdemo,zeta"));
}

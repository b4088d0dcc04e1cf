//! dataset-controller and runtime-controller on the real control plane: the seed flow, scaling and
//! node labels, FUSE placement, ordering, deletion protection, crash restarts, leader election.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::cluster::{kubectl_in as get, leftovers, wait_field};
use ferrofluid_e2e::controllers::{Controllers, start_dataset};
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::redis::free_port;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn json(ns: &str, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
    let out = kubectl(&["-n", ns, "get", kind, name, "-o", "json", "--ignore-not-found"], None)?;
    anyhow::ensure!(out.ok, "{}", out.stderr);
    if out.stdout.trim().is_empty() { Ok(None) } else { Ok(Some(serde_json::from_str(&out.stdout)?)) }
}

fn apply(ns: &str, yaml: &str) {
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(yaml)).expect("apply");
}

fn seed(ns: &str, replicas: i32) {
    apply(ns, &manifest("seed-dataset-with-secret.yaml"));
    apply(ns, &manifest("seed-runtime.yaml").replace("replicas: 1", &format!("replicas: {replicas}")));
}

async fn field(ns: &str, kind: &str, name: &str, path: &str, want: &str) {
    wait_field(ns, kind, name, path, want, T).await
}

fn node_labels(node: &str) -> BTreeMap<String, String> {
    let out = kubectl_ok(&["get", "node", node, "-o", "jsonpath={.metadata.labels}"], None).expect("node");
    serde_json::from_str(&out).expect("labels")
}

/// `fluid.io/dataset-num` must equal the number of datasets whose worker labels the node carries.
fn assert_dataset_num_consistent(node: &str) {
    let labels = node_labels(node);
    let count = labels.keys().filter(|k| k.starts_with("fluid.io/s-juicefs-")).count();
    let num = labels.get("fluid.io/dataset-num").map(String::as_str).unwrap_or("0");
    assert_eq!(num, count.to_string(), "node {node}: {labels:?}");
}

fn worker_nodes(ns: &str) -> Vec<String> {
    let out = get(ns, &["get", "pods", "-l", "role=juicefs-worker", "-o", "jsonpath={.items[*].spec.nodeName}"])
        .expect("pods");
    let mut nodes: Vec<String> = out.split_whitespace().map(String::from).collect();
    nodes.sort();
    nodes
}

fn all_nodes() -> Vec<String> {
    kubectl_ok(&["get", "nodes", "-l", "type=kwok", "-o", "jsonpath={.items[*].metadata.name}"], None)
        .expect("nodes")
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn seed_flow_binds_dataset_and_volume() {
    let ns = TestNamespace::new("flow").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    apply(&ns.name, &manifest("seed-dataset-with-secret.yaml"));
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "NotBound").await;
    apply(&ns.name, &manifest("seed-runtime.yaml"));

    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerPhase", "Ready").await;
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    field(&ns.name, "pvc", "jfsdemo", ".status.phase", "Bound").await;
    let pv_name = format!("{}-jfsdemo", ns.name);
    field(&ns.name, "pv", &pv_name, ".status.phase", "Bound").await;

    let pv = json(&ns.name, "pv", &pv_name).expect("pv").expect("exists");
    let csi = &pv["spec"]["csi"];
    assert_eq!(csi["driver"], "fuse.csi.fluid.io");
    assert_eq!(csi["volumeHandle"], pv_name);
    let attrs = &csi["volumeAttributes"];
    assert_eq!(attrs["fluid_path"], format!("/runtime-mnt/juicefs/{}/jfsdemo/juicefs-fuse", ns.name));
    assert_eq!(attrs["mount_type"], "JuiceFS");
    assert_eq!(attrs["runtime_name"], "jfsdemo");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["storageClassName"], "fluid");
    assert_eq!(pv["spec"]["accessModes"][0], "ReadOnlyMany", "Fluid's default");

    // Owner reference runtime → dataset, finalizers on both.
    let rt = json(&ns.name, "juicefsruntime", "jfsdemo").expect("rt").expect("exists");
    assert_eq!(rt["metadata"]["ownerReferences"][0]["kind"], "Dataset");
    assert!(rt["metadata"]["finalizers"].to_string().contains("juicefs-runtime-controller-finalizer"));
    let ds = json(&ns.name, "dataset", "jfsdemo").expect("ds").expect("exists");
    assert!(ds["metadata"]["finalizers"].to_string().contains("fluid-dataset-controller-finalizer"));
    assert_eq!(ds["status"]["runtimes"][0]["type"], "juicefs");

    // Worker pod running; its node labelled; the FUSE DaemonSet selects no node yet.
    let nodes = worker_nodes(&ns.name);
    assert_eq!(nodes.len(), 1);
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let labels = node_labels(&nodes[0]);
    assert_eq!(labels.get(&key.worker_node_label()).map(String::as_str), Some("true"));
    assert_eq!(labels.get(&key.juicefs_worker_node_label()).map(String::as_str), Some("true"));
    assert_eq!(
        labels.get(&key.capacity_node_label(ferrofluid_api::keys::CapacityKind::Memory)).map(String::as_str),
        Some("40GiB")
    );
    assert_dataset_num_consistent(&nodes[0]);
    let fuse = json(&ns.name, "daemonset", "jfsdemo-fuse").expect("ds").expect("exists");
    assert_eq!(fuse["spec"]["template"]["spec"]["nodeSelector"][key.fuse_node_label()], "true");
    assert_eq!(fuse["status"]["desiredNumberScheduled"], 0);
    // Secrets only by reference.
    let sts = get(&ns.name, &["get", "statefulset", "jfsdemo-worker", "-o", "json"]).expect("sts");
    assert!(!sts.contains("redis://"), "metaurl leaked into the StatefulSet");
    assert!(sts.contains("secretKeyRef"));

    // Deleting the runtime unwinds everything but the dataset, which goes back to NotBound.
    get(&ns.name, &["delete", "juicefsruntime", "jfsdemo", "--wait=false"]).expect("delete");
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "NotBound").await;
    eventually("runtime gone", T, || async {
        Ok(json(&ns.name, "juicefsruntime", "jfsdemo")?.is_none().then_some(()))
    })
    .await;
    for (kind, name) in
        [("pvc", "jfsdemo"), ("pv", pv_name.as_str()), ("statefulset", "jfsdemo-worker"), ("daemonset", "jfsdemo-fuse")]
    {
        assert!(json(&ns.name, kind, name).expect("get").is_none(), "{kind}/{name} left behind");
    }
    for node in all_nodes() {
        let labels = node_labels(&node);
        assert!(!labels.keys().any(|k| k.contains(&format!("{}-jfsdemo", ns.name))), "{node}: {labels:?}");
        assert_dataset_num_consistent(&node);
    }
}

#[tokio::test]
async fn scaling_moves_node_labels() {
    let ns = TestNamespace::new("scale").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    seed(&ns.name, 4);
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerPhase", "PartialReady").await;
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerNumberReady", "3").await;
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let pods = get(&ns.name, &["get", "pods", "-l", "role=juicefs-worker", "-o", "name"]).expect("pods");
    assert_eq!(pods.lines().count(), 4, "4 worker pods");
    let mut nodes = worker_nodes(&ns.name);
    assert_eq!(nodes.len(), 3, "one worker pod stays unscheduled");
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "workers spread over distinct nodes");
    eventually("labels on 3 nodes", T, || async {
        let labelled =
            all_nodes().into_iter().filter(|n| node_labels(n).contains_key(&key.worker_node_label())).count();
        Ok((labelled == 3).then_some(()))
    })
    .await;

    kubectl_ok(&["scale", "juicefsruntime", "jfsdemo", "-n", &ns.name, "--replicas=1"], None).expect("scale");
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerPhase", "Ready").await;
    eventually("labels on 1 node", T, || async {
        let labelled: Vec<_> =
            all_nodes().into_iter().filter(|n| node_labels(n).contains_key(&key.worker_node_label())).collect();
        Ok((labelled.len() == 1 && labelled == worker_nodes(&ns.name)).then_some(()))
    })
    .await;
    for node in all_nodes() {
        assert_dataset_num_consistent(&node);
    }
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=true", "--timeout=60s"]).expect("delete dataset");
}

#[tokio::test]
async fn fuse_pods_follow_the_fuse_label() {
    let ns = TestNamespace::new("fuse").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    seed(&ns.name, 1);
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    // Spec changes roll into the workloads.
    let patch = r#"{"spec":{"fuse":{"options":{"writeback":""}},"worker":{"resources":{"limits":{"memory":"1Gi"}}}}}"#;
    get(&ns.name, &["patch", "juicefsruntime", "jfsdemo", "--type=merge", "-p", patch]).expect("patch runtime");
    eventually("FUSE option in the DaemonSet", T, || async {
        let args = get(
            &ns.name,
            &["get", "daemonset", "jfsdemo-fuse", "-o", "jsonpath={.spec.template.spec.containers[0].command}"],
        )?;
        Ok(args.contains("\"--writeback\"").then_some(()))
    })
    .await;
    field(
        &ns.name,
        "statefulset",
        "jfsdemo-worker",
        ".spec.template.spec.containers[0].resources.limits.memory",
        "1Gi",
    )
    .await;
    let label = DatasetKey::new(&ns.name, "jfsdemo").fuse_node_label();
    kubectl_ok(&["label", "node", "node-2", &format!("{label}=true")], None).expect("label");
    field(&ns.name, "daemonset", "jfsdemo-fuse", ".status.numberReady", "1").await;
    let fuse_node =
        get(&ns.name, &["get", "pods", "-l", "role=juicefs-fuse", "-o", "jsonpath={.items[*].spec.nodeName}"])
            .expect("pods");
    assert_eq!(fuse_node, "node-2");
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.fuseNumberReady", "1").await;
    kubectl_ok(&["label", "node", "node-2", &format!("{label}-")], None).expect("unlabel");
    eventually("FUSE pod gone", T, || async {
        let left = get(&ns.name, &["get", "pods", "-l", "role=juicefs-fuse", "-o", "name"])?;
        Ok(left.trim().is_empty().then_some(()))
    })
    .await;
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=true", "--timeout=60s"]).expect("delete dataset");
}

#[tokio::test]
async fn runtime_created_before_its_dataset_converges() {
    let ns = TestNamespace::new("order").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    apply(&ns.name, &manifest("seed-runtime.yaml"));
    eventually("DatasetNotFound event", T, || async {
        let ev = get(&ns.name, &["get", "events", "--field-selector", "reason=DatasetNotFound", "-o", "name"])?;
        Ok((!ev.trim().is_empty()).then_some(()))
    })
    .await;
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.conditions[?(@.type==\"Ready\")].reason", "DatasetNotFound")
        .await;
    apply(&ns.name, &manifest("seed-dataset-with-secret.yaml"));
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    field(&ns.name, "pvc", "jfsdemo", ".status.phase", "Bound").await;
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=true", "--timeout=60s"]).expect("delete dataset");
}

#[tokio::test]
async fn dataset_deletion_waits_for_pods_then_cleans_everything() {
    let ns = TestNamespace::new("del").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    seed(&ns.name, 1);
    field(&ns.name, "pvc", "jfsdemo", ".status.phase", "Bound").await;
    // The seed's demo-app pod, placed on a node directly (kwok runs it).
    let pod = manifest("seed-pod.yaml").replace("spec:\n", "spec:\n  nodeName: node-3\n");
    apply(&ns.name, &pod);
    field(&ns.name, "pod", "demo-app", ".status.phase", "Running").await;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    kubectl_ok(&["label", "node", "node-3", &format!("{}=true", key.fuse_node_label())], None).expect("fuse label");

    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=false"]).expect("delete");
    eventually("DatasetInUse event naming the pod", T, || async {
        let ev = get(
            &ns.name,
            &["get", "events", "--field-selector", "reason=DatasetInUse", "-o", "jsonpath={.items[*].message}"],
        )?;
        Ok(ev.contains("demo-app").then_some(()))
    })
    .await;
    assert!(json(&ns.name, "dataset", "jfsdemo").expect("get").is_some(), "dataset deleted while in use");
    assert!(json(&ns.name, "pvc", "jfsdemo").expect("get").is_some());

    get(&ns.name, &["delete", "pod", "demo-app", "--grace-period=0", "--force"]).expect("delete pod");
    eventually("everything cleaned up", Duration::from_secs(90), || async {
        Ok(leftovers(&key)?.is_empty().then_some(()))
    })
    .await;
    for node in all_nodes() {
        assert_dataset_num_consistent(&node);
    }
}

#[tokio::test]
async fn killed_controllers_converge_without_leaks() {
    let ns = TestNamespace::new("crash").expect("ns");
    let mut ctl = Controllers::start(&ns.name).expect("controllers");
    seed(&ns.name, 2);
    // Kill the runtime-controller as soon as it has started building, mid-setup.
    eventually("worker StatefulSet", T, || async { Ok(json(&ns.name, "statefulset", "jfsdemo-worker")?.map(|_| ())) })
        .await;
    ctl.runtime.kill();
    ctl.dataset.kill();
    ctl.dataset = start_dataset(&ns.name, "dsctl2").expect("restart dataset-controller");
    ctl.restart_runtime().expect("restart runtime-controller");
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerNumberReady", "2").await;
    let sts = get(&ns.name, &["get", "statefulsets", "-o", "name"]).expect("sts");
    assert_eq!(sts.lines().count(), 1, "{sts}");
    let finalizers =
        get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.metadata.finalizers}"]).expect("f");
    assert_eq!(finalizers.matches("juicefs-runtime-controller-finalizer").count(), 1, "{finalizers}");

    // Kill it again in the middle of deletion; a fresh one finishes the job.
    get(&ns.name, &["delete", "juicefsruntime", "jfsdemo", "--wait=false"]).expect("delete");
    eventually("PVC gone", T, || async { Ok(json(&ns.name, "pvc", "jfsdemo")?.is_none().then_some(())) }).await;
    ctl.restart_runtime().expect("restart");
    eventually("runtime gone", T, || async {
        Ok(json(&ns.name, "juicefsruntime", "jfsdemo")?.is_none().then_some(()))
    })
    .await;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    assert!(json(&ns.name, "pv", &key.pv_name()).expect("get").is_none());
    assert!(json(&ns.name, "statefulset", "jfsdemo-worker").expect("get").is_none());
    for node in all_nodes() {
        assert!(!node_labels(&node).contains_key(&key.worker_node_label()), "{node} keeps a worker label");
        assert_dataset_num_consistent(&node);
    }
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "NotBound").await;
}

/// A restarted controller reconciles every runtime (each of its first passes waits for the watch caches
/// at the same time — a wait that woke only one of them left the others hung for good), and SIGTERM
/// stops it promptly with a clean exit even though every Bound runtime has a requeue scheduled.
#[tokio::test]
async fn a_restarted_controller_reconciles_every_runtime_and_stops_cleanly() {
    const PAIRS: usize = 4;
    const STOPS_WITHIN: Duration = Duration::from_secs(15);
    let ns = TestNamespace::new("restart").expect("ns");
    let mut ctl = Controllers::start(&ns.name).expect("controllers");
    let names: Vec<String> = (1..=PAIRS).map(|i| format!("pair-{i}")).collect();
    for name in &names {
        let pair = format!("name: {name}");
        apply(&ns.name, &manifest("seed-dataset-with-secret.yaml").replace("name: jfsdemo", &pair));
        apply(&ns.name, &manifest("seed-runtime.yaml").replace("name: jfsdemo", &pair));
    }
    for name in &names {
        field(&ns.name, "dataset", name, ".status.phase", "Bound").await;
    }

    // Each check comes after a fresh controller is running again, so a failing one still cleans up.
    let at_rest = ctl.runtime.terminate(STOPS_WITHIN);
    for name in &names {
        get(&ns.name, &["patch", "juicefsruntime", name, "--type", "merge", "-p", r#"{"spec":{"replicas":2}}"#])
            .expect("scale");
    }
    ctl.start_runtime().expect("start runtime-controller");
    assert!(at_rest.is_some_and(|s| s.success()), "SIGTERM at rest: {at_rest:?} (None: killed after {STOPS_WITHIN:?})");
    for name in &names {
        field(&ns.name, "statefulset", &format!("{name}-worker"), ".spec.replicas", "2").await;
        field(&ns.name, "juicefsruntime", name, ".status.workerNumberReady", "2").await;
    }
    let after_scaling = ctl.runtime.terminate(STOPS_WITHIN);
    ctl.start_runtime().expect("start again for the cleanup");
    assert!(after_scaling.is_some_and(|s| s.success()), "SIGTERM after scaling: {after_scaling:?}");
}

#[tokio::test]
async fn invalid_input_is_reported_and_recovers() {
    let ns = TestNamespace::new("invalid").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    // The dataset names a Secret that does not exist yet.
    let yaml = manifest("seed-dataset-with-secret.yaml");
    let dataset_only = yaml.split("---").nth(1).expect("dataset document");
    apply(&ns.name, dataset_only);
    field(&ns.name, "dataset", "jfsdemo", ".status.conditions[?(@.type==\"Validated\")].status", "False").await;
    let msg = get(
        &ns.name,
        &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.conditions[?(@.type==\"Validated\")].message}"],
    )
    .expect("message");
    assert!(msg.contains("spec.mounts[0].encryptOptions[0].valueFrom.secretKeyRef.name"), "{msg}");
    eventually("InvalidInput warning event", T, || async {
        let ev = get(
            &ns.name,
            &[
                "get",
                "events",
                "--field-selector",
                "reason=InvalidInput,type=Warning",
                "-o",
                "jsonpath={.items[*].message}",
            ],
        )?;
        Ok(ev.contains("secretKeyRef.name").then_some(()))
    })
    .await;
    // Fixing the input is enough: no restart, no edit of the dataset.
    apply(&ns.name, yaml.split("---").next().expect("secret document"));
    field(&ns.name, "dataset", "jfsdemo", ".status.conditions[?(@.type==\"Validated\")].status", "True").await;
    // The secret value never shows up in events.
    let events = get(&ns.name, &["get", "events", "-o", "json"]).expect("events");
    assert!(!events.contains("redis://127.0.0.1:6379"), "secret value in events");
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=true", "--timeout=60s"]).expect("delete dataset");
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_dies() {
    let ns = TestNamespace::new("lease").expect("ns");
    let start = |label: &str| {
        let addr = format!("127.0.0.1:{}", free_port().expect("port"));
        Component::start(
            "dataset-controller",
            &format!("{label}-{}", ns.name),
            &["--namespace", &ns.name, "--http-addr", &addr, "--lease-namespace", &ns.name, "--lease-seconds", "4"],
        )
        .expect("start")
    };
    let mut a = start("leader-a");
    let holder = || async {
        let h = get(
            &ns.name,
            &[
                "get",
                "lease",
                "ferrofluid-dataset-controller",
                "-o",
                "jsonpath={.spec.holderIdentity}",
                "--ignore-not-found",
            ],
        )?;
        Ok((!h.is_empty()).then_some(h))
    };
    let first = eventually("a leader", T, holder).await;
    let mut b = start("leader-b");
    apply(&ns.name, &manifest("seed-dataset-with-secret.yaml"));
    field(&ns.name, "dataset", "jfsdemo", ".status.phase", "NotBound").await;
    // Only the leader works: B is standby while A holds the lease.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(holder().await.expect("holder"), Some(first.clone()));
    a.kill();
    let second =
        eventually("a new leader", Duration::from_secs(30), || async { Ok(holder().await?.filter(|h| *h != first)) })
            .await;
    // The new leader works: a second dataset gets its phase.
    apply(&ns.name, &manifest("seed-dataset-with-secret.yaml").replace("name: jfsdemo", "name: other"));
    field(&ns.name, "dataset", "other", ".status.phase", "NotBound").await;
    assert!(b.log_text().contains("became leader"), "standby never led: {second}");
    b.stop();
    for name in ["jfsdemo", "other"] {
        kubectl(
            &["-n", &ns.name, "patch", "dataset", name, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#],
            None,
        )
        .expect("drop finalizer");
    }
}

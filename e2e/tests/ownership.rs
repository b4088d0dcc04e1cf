//! ferrofluid is a guest in a shared cluster: it creates, changes and deletes only objects carrying its
//! ownership mark (`app.kubernetes.io/managed-by: ferrofluid` + `ferrofluid.io/runtime-uid`).
//!
//! - Another team's PVC, StatefulSet and PV that happen to have the names a runtime would use survive
//!   the creation and deletion of that Dataset/JuiceFSRuntime unchanged (same UID, same spec and
//!   labels); the runtime says `Ready=False`, reason `NameConflict`, naming each object, with a Warning.
//! - PV names `<ns>-<name>` are ambiguous across namespaces (`a` + `b-c` and `a-b` + `c`): the first
//!   runtime keeps the name, the second is refused the same way, and deleting it leaves the first Bound
//!   with its PV and node labels.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

fn json(ns: Option<&str>, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
    let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    let out = kubectl(&args, None)?;
    anyhow::ensure!(out.ok, "{}", out.stderr);
    if out.stdout.trim().is_empty() { Ok(None) } else { Ok(Some(serde_json::from_str(&out.stdout)?)) }
}

fn apply(ns: &str, yaml: &str) {
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(yaml)).expect("apply");
}

/// The seed's Secret, Dataset and JuiceFSRuntime under another name.
fn seed_named(ns: &str, name: &str) {
    apply(ns, &manifest("seed-dataset-with-secret.yaml").replace("name: jfsdemo", &format!("name: {name}")));
    apply(ns, &manifest("seed-runtime.yaml").replace("name: jfsdemo", &format!("name: {name}")));
}

/// What must not change about someone else's object: identity, spec, labels, and that it is not
/// being deleted.
fn fingerprint(obj: &Value) -> Value {
    serde_json::json!({
        "uid": obj["metadata"]["uid"],
        "labels": obj["metadata"]["labels"],
        "deleting": obj["metadata"]["deletionTimestamp"],
        "spec": obj["spec"],
    })
}

async fn ready_condition(ns: &str, name: &str, reason: &str) -> String {
    let path = ".status.conditions[?(@.type==\"Ready\")]";
    eventually(&format!("runtime {name} Ready=False reason {reason}"), T, || async {
        let r = get(ns, &["get", "juicefsruntime", name, "-o", &format!("jsonpath={{{path}.reason}}")])?;
        let m = get(ns, &["get", "juicefsruntime", name, "-o", &format!("jsonpath={{{path}.message}}")])?;
        Ok((r == reason).then_some(m))
    })
    .await
}

async fn warning_event(ns: &str, object: &str, reason: &str) {
    eventually(&format!("Warning {reason} on {object}"), T, || async {
        let ev = get(
            ns,
            &[
                "get",
                "events",
                "--field-selector",
                &format!("reason={reason},type=Warning,involvedObject.name={object}"),
                "-o",
                "name",
            ],
        )?;
        Ok((!ev.trim().is_empty()).then_some(()))
    })
    .await
}

#[tokio::test]
async fn foreign_objects_with_our_names_are_reported_and_never_touched() {
    let ns = TestNamespace::new("own").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    let key = DatasetKey::new(&ns.name, "data");
    let pv_name = key.pv_name();
    // Another team's database claim, a StatefulSet and a PV: the names runtime `data` would use.
    apply(
        &ns.name,
        &format!(
            r#"apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv_name}, labels: {{team: db}}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: team-db-archive
  hostPath: {{path: /tmp/ferrofluid-foreign-pv}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, labels: {{team: db}}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: team-db
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: data-worker, labels: {{team: db}}}}
spec:
  replicas: 0
  serviceName: data-worker
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: [{{name: db, image: postgres}}]
"#
        ),
    );
    let pv_before = fingerprint(&json(None, "pv", &pv_name).expect("get").expect("pv"));
    let pvc_before = fingerprint(&json(Some(&ns.name), "pvc", "data").expect("get").expect("pvc"));
    let sts_before = fingerprint(&json(Some(&ns.name), "statefulset", "data-worker").expect("get").expect("sts"));

    seed_named(&ns.name, "data");
    let message = ready_condition(&ns.name, "data", "NameConflict").await;
    for object in [
        format!("PersistentVolume {pv_name}"),
        format!("PersistentVolumeClaim {}/data", ns.name),
        format!("StatefulSet {}/data-worker", ns.name),
    ] {
        assert!(message.contains(&object), "the condition must name {object}: {message}");
    }
    warning_event(&ns.name, "data", "NameConflict").await;
    // Nothing of its own was created either, and the dataset stays unbound.
    assert!(json(Some(&ns.name), "daemonset", "data-fuse").expect("get").is_none(), "created a FUSE DaemonSet");
    let phase = get(&ns.name, &["get", "dataset", "data", "-o", "jsonpath={.status.phase}"]).expect("phase");
    assert_eq!(phase, "NotBound");

    // Deleting the pair completes (no stuck finalizer) and removes nothing of the other team's.
    get(&ns.name, &["delete", "dataset", "data", "--wait=false"]).expect("delete dataset");
    eventually("dataset and runtime gone", T, || async {
        let left = get(&ns.name, &["get", "datasets,juicefsruntimes", "-o", "name"])?;
        Ok(left.trim().is_empty().then_some(()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fingerprint(&json(None, "pv", &pv_name).expect("get").expect("pv survives")), pv_before);
    assert_eq!(fingerprint(&json(Some(&ns.name), "pvc", "data").expect("get").expect("pvc survives")), pvc_before);
    assert_eq!(
        fingerprint(&json(Some(&ns.name), "statefulset", "data-worker").expect("get").expect("sts survives")),
        sts_before
    );
    let _ = kubectl(&["delete", "pv", &pv_name, "--wait=false"], None);
}

#[tokio::test]
async fn cross_namespace_pv_name_collision_keeps_the_first_tenant() {
    // `<first>` + dataset `b-c` and `<first>-b` + dataset `c` both map to PV `<first>-b-c`.
    let first = TestNamespace::new("pvx").expect("ns");
    let second_name = format!("{}-b", first.name);
    kubectl_ok(&["create", "namespace", &second_name], None).expect("second namespace");
    let second = TestNamespace { name: second_name };
    let (a, b) = (DatasetKey::new(&first.name, "b-c"), DatasetKey::new(&second.name, "c"));
    assert_eq!(a.pv_name(), b.pv_name(), "the test needs colliding names");
    assert_eq!(a.worker_node_label(), b.worker_node_label(), "node label keys collide the same way");
    let _ctl_a = Controllers::start(&first.name).expect("controllers a");
    let _ctl_b = Controllers::start(&second.name).expect("controllers b");

    seed_named(&first.name, "b-c");
    wait_field(&first.name, "dataset", "b-c", ".status.phase", "Bound", T).await;
    wait_field(&first.name, "pvc", "b-c", ".status.phase", "Bound", T).await;
    let pv_before = json(None, "pv", &a.pv_name()).expect("get").expect("pv");
    let labelled = |key: &DatasetKey| {
        kubectl_ok(&["get", "nodes", "-l", &key.worker_node_label(), "-o", "name"], None).expect("nodes")
    };
    let nodes_before = labelled(&a);
    assert!(!nodes_before.trim().is_empty(), "the first tenant's worker node is labelled");

    seed_named(&second.name, "c");
    let message = ready_condition(&second.name, "c", "NameConflict").await;
    assert!(message.contains(&format!("PersistentVolume {}", a.pv_name())), "{message}");
    warning_event(&second.name, "c", "NameConflict").await;
    let phase = get(&second.name, &["get", "dataset", "c", "-o", "jsonpath={.status.phase}"]).expect("phase");
    assert_eq!(phase, "NotBound");

    // Deleting the second tenant's pair leaves the first one Bound, its PV untouched and still bound to
    // its own claim, and its node labels in place (they share keys with the second's).
    get(&second.name, &["delete", "dataset", "c", "--wait=false"]).expect("delete second");
    eventually("second dataset and runtime gone", T, || async {
        let left = get(&second.name, &["get", "datasets,juicefsruntimes", "-o", "name"])?;
        Ok(left.trim().is_empty().then_some(()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pv_after = json(None, "pv", &a.pv_name()).expect("get").expect("pv kept");
    assert_eq!(pv_after["metadata"]["uid"], pv_before["metadata"]["uid"]);
    assert_eq!(pv_after["spec"]["claimRef"]["namespace"], first.name.as_str());
    assert_eq!(pv_after["spec"]["claimRef"]["name"], "b-c");
    assert_eq!(pv_after["status"]["phase"], "Bound");
    assert_eq!(get(&first.name, &["get", "dataset", "b-c", "-o", "jsonpath={.status.phase}"]).expect("phase"), "Bound");
    assert_eq!(labelled(&a), nodes_before, "the first tenant's node labels must stay");
}

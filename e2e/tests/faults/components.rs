//! kill -9 of ferrofluid's control-plane components at each step of a dataset's life, on kwok nodes
//! (the control plane's view; real mounts are `data_path.rs`'s). At each step the dataset-controller,
//! the runtime-controller and the metrics-collector all get SIGKILL at once and fresh processes take
//! over (the collector only after its predecessor's Lease expired). Each step is held on purpose —
//! a runtime without its dataset, workers that cannot schedule yet, a pod using the claim, a PV kept
//! by a finalizer of the test's — so the kill lands exactly there, every run. Then the dataset must
//! converge (Bound, or gone) with nothing left: no object, node label, Job or pod.

use crate::support::{NodeLabel, T, Tenant, converged, nothing_left};
use ferrofluid_e2e::cluster::wait_field;
use ferrofluid_e2e::controllers::start_collector;
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::{kubectl_ok, manifest};
use std::time::Instant;

/// The kwok node where the deletion scenarios' app pod (and so a FUSE pod) runs.
const APP_NODE: &str = "node-3";
/// A node the held scenario's workers may use once the hold is released.
const HOLD_NODE: &str = "node-2";
const HOLD_KEY: &str = "ferrofluid.io/fault-hold";
/// A finalizer of the test's that keeps the PV in deletion.
const PV_HOLD: &str = "ferrofluid.io/fault-hold";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// The runtime carries its finalizer and waits for its dataset: no workload, no PV yet.
    RuntimeAccepted,
    /// PV and workloads applied, no worker ready: the dataset is not Bound, there is no PVC.
    VolumeNotBound,
    /// Dataset Bound, PVC bound.
    Bound,
    /// The dataset is deleted while a pod uses its PVC: its deletion waits (`DatasetInUse`).
    DatasetInUse,
    /// The runtime is deleted while a pod uses the PVC: the PVC is deleted and waited for.
    WaitingForPvc,
    /// Workloads deleted, a cache-cleanup Job runs.
    CacheCleanup,
    /// Node labels removed and the PV deleted — kept by the test's finalizer — the runtime's
    /// finalizer not released yet.
    PvDeleting,
}

struct Stack {
    /// Dropped first: the collector stops, then the tenant's controllers clean up.
    collector: Component,
    tenant: Tenant,
    collector_starts: u32,
}

impl Stack {
    fn start(step: Step) -> Self {
        let tag = format!("{step:?}").to_lowercase();
        let tenant = Tenant::new(&format!("kill-{}", &tag[..tag.len().min(12)]), &[]).expect("tenant");
        let collector = start_collector(tenant.ns(), "coll1").expect("collector");
        Self { collector, tenant, collector_starts: 1 }
    }

    /// SIGKILL to all three components, then fresh processes.
    fn crash(&mut self, step: Step) {
        self.collector.kill();
        self.tenant.ctl.crash_and_restart().expect("restart controllers");
        self.collector_starts += 1;
        self.collector =
            start_collector(self.tenant.ns(), &format!("coll{}", self.collector_starts)).expect("restart collector");
        eprintln!("[fault-matrix] {}: components killed at {step:?}", self.tenant.ns());
    }

    fn dataset(&self, extra_spec: &str) -> String {
        format!("{}\n{extra_spec}", manifest("seed-dataset-with-secret.yaml").trim_end())
    }

    /// Bound, PVC bound, one ready worker, exactly one finalizer of each controller.
    async fn in_service(&self) {
        let ns = self.tenant.ns();
        wait_field(ns, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
        wait_field(ns, "pvc", "jfsdemo", ".status.phase", "Bound", T).await;
        wait_field(ns, "juicefsruntime", "jfsdemo", ".status.workerNumberReady", "1", T).await;
        for (kind, finalizer) in [
            ("juicefsruntime", "juicefs-runtime-controller-finalizer"),
            ("dataset", "fluid-dataset-controller-finalizer"),
        ] {
            let f = self.tenant.field(kind, "jfsdemo", ".metadata.finalizers").expect("finalizers");
            assert_eq!(f.matches(finalizer).count(), 1, "{kind}: {f}");
        }
        let sts = self.tenant.get(&["get", "statefulsets", "-o", "name"]).expect("statefulsets");
        assert_eq!(sts.lines().count(), 1, "{sts}");
    }

    async fn gone(&self, what: &str) {
        nothing_left(what, T, || self.tenant.leaks()).await;
    }
}

async fn killed_during_setup(step: Step) {
    let mut s = Stack::start(step);
    let t = &s.tenant;
    let held = format!(
        "  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n        - matchExpressions:\n            - {{key: {HOLD_KEY}, operator: In, values: [\"{}\"]}}\n",
        t.ns()
    );
    let mut release = None;
    match step {
        Step::RuntimeAccepted => {
            t.apply(&manifest("seed-runtime.yaml")).expect("runtime");
            eventually("the runtime's finalizer, and a DatasetNotFound wait", T, || async {
                let f = t.field("juicefsruntime", "jfsdemo", ".metadata.finalizers")?;
                let reason = t.field("juicefsruntime", "jfsdemo", ".status.conditions[?(@.type==\"Ready\")].reason")?;
                Ok((f.contains("juicefs-runtime-controller-finalizer") && reason == "DatasetNotFound").then_some(()))
            })
            .await;
            assert!(!t.exists("pv", &t.key.pv_name()).expect("pv"), "a PV before the dataset exists");
        }
        Step::VolumeNotBound => {
            t.apply(&s.dataset(&held)).expect("dataset");
            t.apply(&manifest("seed-runtime.yaml")).expect("runtime");
            eventually("PV, StatefulSet and DaemonSet applied", T, || async {
                let all = t.exists("pv", &t.key.pv_name())?
                    && t.exists("statefulset", "jfsdemo-worker")?
                    && t.exists("daemonset", "jfsdemo-fuse")?;
                Ok(all.then_some(()))
            })
            .await;
        }
        Step::Bound => {
            t.apply(&s.dataset("")).expect("dataset");
            t.apply(&manifest("seed-runtime.yaml")).expect("runtime");
            s.in_service().await;
        }
        _ => unreachable!("not a setup step"),
    }
    if step != Step::Bound {
        assert!(!t.exists("pvc", "jfsdemo").expect("pvc"), "{step:?}: the PVC exists already");
        assert_ne!(t.field("dataset", "jfsdemo", ".status.phase").expect("phase"), "Bound");
    }

    s.crash(step);
    let since = Instant::now();
    match step {
        Step::RuntimeAccepted => s.tenant.apply(&s.dataset("")).expect("dataset"),
        Step::VolumeNotBound => release = Some(NodeLabel::set(HOLD_NODE, HOLD_KEY, s.tenant.ns()).expect("label")),
        _ => {}
    }
    if step == Step::VolumeNotBound {
        // Most of this row is kube-scheduler retrying the worker it could not place before.
        eventually("the worker scheduled", T, || async {
            Ok((!s.tenant.node_of("jfsdemo-worker-0")?.is_empty()).then_some(()))
        })
        .await;
        eprintln!("[fault-matrix]   worker scheduled after {:.1} s", since.elapsed().as_secs_f64());
    }
    s.in_service().await;
    converged(&format!("controllers+collector killed at {step:?} → Bound"), since);

    s.tenant.delete("dataset", "jfsdemo").expect("delete dataset");
    s.gone("the dataset after deletion").await;
    drop(release);
}

async fn killed_during_deletion(step: Step) {
    let mut s = Stack::start(step);
    let t = &s.tenant;
    t.apply(&s.dataset("")).expect("dataset");
    t.apply(&manifest("seed-runtime.yaml")).expect("runtime");
    s.in_service().await;
    // An app pod on a kwok node, and the FUSE label the CSI plugin would put there: a FUSE pod runs
    // there too, so deletion has a node label to strip and two nodes' cache directories to clean.
    let pod = manifest("seed-pod.yaml").replace("spec:\n", &format!("spec:\n  nodeName: {APP_NODE}\n"));
    t.apply(&pod).expect("pod");
    wait_field(t.ns(), "pod", "demo-app", ".status.phase", "Running", T).await;
    // The guard only matters if the test fails first: deletion itself must remove the label.
    let _fuse_label = NodeLabel::set(APP_NODE, &t.key.fuse_node_label(), "true").expect("label");
    wait_field(t.ns(), "daemonset", "jfsdemo-fuse", ".status.numberReady", "1", T).await;

    let pv = t.key.pv_name();
    let since = match step {
        Step::DatasetInUse => {
            t.delete("dataset", "jfsdemo").expect("delete");
            eventually("DatasetInUse", T, || async { Ok(t.has_event("DatasetInUse")?.then_some(())) }).await;
            s.crash(step);
            assert!(s.tenant.exists("dataset", "jfsdemo").expect("dataset"), "deleted while in use");
            s.tenant.delete_pod("demo-app").expect("delete pod");
            Instant::now()
        }
        Step::WaitingForPvc => {
            t.delete("juicefsruntime", "jfsdemo").expect("delete");
            eventually("the PVC held in deletion by its pod", T, || async {
                Ok((!t.field("pvc", "jfsdemo", ".metadata.deletionTimestamp")?.is_empty()).then_some(()))
            })
            .await;
            s.crash(step);
            assert!(s.tenant.exists("statefulset", "jfsdemo-worker").expect("sts"), "workers gone under a pod");
            s.tenant.delete_pod("demo-app").expect("delete pod");
            Instant::now()
        }
        Step::CacheCleanup => {
            t.delete_pod("demo-app").expect("delete pod");
            eventually("the app pod gone", T, || async { Ok((!t.exists("pod", "demo-app")?).then_some(())) }).await;
            t.delete("dataset", "jfsdemo").expect("delete");
            eventually("a cache-cleanup Job", T, || async {
                let jobs = t.get(&["get", "jobs", "-l", "role=juicefs-cache-cleanup", "-o", "name"])?;
                Ok((!jobs.trim().is_empty() && !t.exists("statefulset", "jfsdemo-worker")?).then_some(()))
            })
            .await;
            s.crash(step);
            Instant::now()
        }
        Step::PvDeleting => {
            let hold = format!(r#"[{{"op":"add","path":"/metadata/finalizers/-","value":"{PV_HOLD}"}}]"#);
            kubectl_ok(&["patch", "pv", &pv, "--type=json", "-p", &hold], None).expect("hold the PV");
            let _unhold = PvHold(pv.clone());
            t.delete_pod("demo-app").expect("delete pod");
            t.delete("dataset", "jfsdemo").expect("delete");
            eventually("the PV in deletion, the runtime still there", T, || async {
                let deleting = !t.field("pv", &pv, ".metadata.deletionTimestamp")?.is_empty();
                Ok((deleting && t.exists("juicefsruntime", "jfsdemo")?).then_some(()))
            })
            .await;
            s.crash(step);
            let since = Instant::now();
            release_pv(&pv);
            since
        }
        _ => unreachable!("not a deletion step"),
    };
    if step == Step::WaitingForPvc {
        // The runtime goes; its dataset stays, NotBound.
        eventually("the runtime gone", T, || async {
            Ok((!s.tenant.exists("juicefsruntime", "jfsdemo")?).then_some(()))
        })
        .await;
        wait_field(s.tenant.ns(), "dataset", "jfsdemo", ".status.phase", "NotBound", T).await;
        let left: Vec<String> =
            s.tenant.leaks().expect("leaks").into_iter().filter(|l| !l.contains("dataset")).collect();
        assert!(left.is_empty(), "left after the runtime's deletion: {left:?}");
        converged(&format!("controllers+collector killed at {step:?} → runtime gone"), since);
        s.tenant.delete("dataset", "jfsdemo").expect("delete dataset");
        s.gone("the dataset after deletion").await;
    } else {
        s.gone("the dataset after deletion").await;
        converged(&format!("controllers+collector killed at {step:?} → all gone"), since);
    }
    assert_dataset_num_consistent(APP_NODE);
}

/// Removes the test's finalizer from the PV, keeping the others.
fn release_pv(pv: &str) {
    let Ok(list) = kubectl_ok(&["get", "pv", pv, "-o", "jsonpath={.metadata.finalizers}", "--ignore-not-found"], None)
    else {
        return;
    };
    let Ok(finalizers) = serde_json::from_str::<Vec<String>>(if list.is_empty() { "[]" } else { &list }) else {
        return;
    };
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != PV_HOLD).collect();
    let patch = serde_json::json!({"metadata": {"finalizers": kept}}).to_string();
    let _ = kubectl_ok(&["patch", "pv", pv, "--type=merge", "-p", &patch], None);
}

/// Releases the PV if the test ends (or fails) before it did.
struct PvHold(String);

impl Drop for PvHold {
    fn drop(&mut self) {
        release_pv(&self.0);
    }
}

/// `fluid.io/dataset-num` equals the number of datasets whose worker labels the node carries.
fn assert_dataset_num_consistent(node: &str) {
    let out = kubectl_ok(&["get", "node", node, "-o", "jsonpath={.metadata.labels}"], None).expect("node");
    let labels: std::collections::BTreeMap<String, String> = serde_json::from_str(&out).expect("labels");
    let count = labels.keys().filter(|k| k.starts_with("fluid.io/s-juicefs-")).count();
    let num = labels.get("fluid.io/dataset-num").map(String::as_str).unwrap_or("0");
    assert_eq!(num, count.to_string(), "node {node}: {labels:?}");
}

#[tokio::test]
async fn killed_when_the_runtime_waits_for_its_dataset() {
    killed_during_setup(Step::RuntimeAccepted).await;
}

#[tokio::test]
async fn killed_with_the_volume_applied_but_not_bound() {
    killed_during_setup(Step::VolumeNotBound).await;
}

#[tokio::test]
async fn killed_once_bound() {
    killed_during_setup(Step::Bound).await;
}

#[tokio::test]
async fn killed_while_the_dataset_deletion_waits_for_a_pod() {
    killed_during_deletion(Step::DatasetInUse).await;
}

#[tokio::test]
async fn killed_while_the_runtime_deletion_waits_for_the_pvc() {
    killed_during_deletion(Step::WaitingForPvc).await;
}

#[tokio::test]
async fn killed_while_cache_directories_are_cleaned() {
    killed_during_deletion(Step::CacheCleanup).await;
}

#[tokio::test]
async fn killed_with_the_pv_in_deletion_before_the_finalizer_goes() {
    killed_during_deletion(Step::PvDeleting).await;
}

//! Status tells the truth and does not flap (real apiserver, controller-manager and kwok). Worker
//! readiness comes from the worker pods: a StatefulSet status that trails them changes nothing; a worker
//! that is only not ready leaves a Bound dataset Bound (the condition says what is missing); only a
//! named failure turns it Failed, and a ready worker turns it Bound again. The test plays the kubelet's
//! part by writing the worker pod's status (kwok leaves a running pod's status alone).

use ferrofluid_api::{Dataset, DatasetPhase};
use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl_ok, manifest};
use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// Every phase the dataset showed, in order, as its watch saw it.
fn record_phases(api: Api<Dataset>) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        let cfg = watcher::Config::default().fields("metadata.name=jfsdemo");
        let mut stream = watcher(api, cfg).applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            let ds = match ev {
                Ok(ds) => ds,
                Err(e) => {
                    eprintln!("dataset watch: {e}");
                    continue;
                }
            };
            let phase = ds.status.and_then(|s| s.phase).map(|p| format!("{p:?}")).unwrap_or_default();
            let mut seen = out.lock().expect("lock");
            if seen.last() != Some(&phase) {
                seen.push(phase);
            }
        }
    });
    seen
}

fn phases_since(seen: &Arc<Mutex<Vec<String>>>, from: usize) -> Vec<String> {
    seen.lock().expect("lock")[from..].to_vec()
}

fn worker_status(ns: &str, status: Value) {
    let patch = json!({ "status": status }).to_string();
    get(ns, &["patch", "pod", "jfsdemo-worker-0", "--subresource=status", "--type=merge", "-p", &patch])
        .expect("patch worker pod status");
}

fn condition(ready: bool) -> Value {
    json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}])
}

fn container(ready: bool, failing: bool) -> Value {
    let mut c = json!({"name": "juicefs-worker", "image": "juicedata/juicefs-fuse", "imageID": "", "ready": ready,
        "restartCount": if failing { 3 } else { 0 }, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}});
    if failing {
        c["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        c["lastState"] = json!({"terminated": {"exitCode": 1, "message": "cannot reach the object store"}});
    }
    json!([c])
}

fn rt_field(ns: &str, path: &str) -> String {
    get(ns, &["get", "juicefsruntime", "jfsdemo", "-o", &format!("jsonpath={{{path}}}")]).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_stays_bound_until_a_named_failure_and_comes_back() {
    let ns = TestNamespace::new("truth").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    let api: Api<Dataset> = Api::namespaced(ferrofluid_e2e::client().await.expect("client"), &ns.name);
    let seen = record_phases(api);
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-dataset-with-secret.yaml"))).expect("ds");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-runtime.yaml"))).expect("runtime");
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
    eventually("the watch has seen Bound", T, || async {
        Ok(seen.lock().expect("lock").last().is_some_and(|p| p == "Bound").then_some(()))
    })
    .await;
    let mark = seen.lock().expect("lock").len();

    // 1. The StatefulSet's status says no worker is ready (as it does while it trails its pods): the
    //    runtime still counts the ready pod, the dataset stays Bound.
    let zero = json!({"status": {"readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0}}).to_string();
    get(&ns.name, &["patch", "statefulset", "jfsdemo-worker", "--subresource=status", "--type=merge", "-p", &zero])
        .expect("patch statefulset status");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rt_field(&ns.name, ".status.workerNumberReady"), "1");

    // 2. The worker is running but not ready, with no failure: Bound stays, the condition says why.
    worker_status(&ns.name, json!({"conditions": condition(false), "containerStatuses": container(false, false)}));
    eventually("RuntimeReady=False on the dataset", T, || async {
        let reason = get(
            &ns.name,
            &["get", "dataset", "jfsdemo", "-o", r#"jsonpath={.status.conditions[?(@.type=="RuntimeReady")].reason}"#],
        )?;
        Ok((reason == "WorkersNotReady").then_some(()))
    })
    .await;
    assert_eq!(rt_field(&ns.name, ".status.workerPhase"), "NotReady");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phases_since(&seen, mark), Vec::<String>::new(), "a worker only not ready moved the phase");

    // 3. A named failure: the worker container crash-loops. Failed, and the condition names it.
    worker_status(&ns.name, json!({"conditions": condition(false), "containerStatuses": container(false, true)}));
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Failed", T).await;
    let message = get(
        &ns.name,
        &["get", "dataset", "jfsdemo", "-o", r#"jsonpath={.status.conditions[?(@.type=="RuntimeReady")].message}"#],
    )
    .expect("condition");
    assert!(
        message.contains("jfsdemo-worker-0/juicefs-worker: CrashLoopBackOff, exit 1: cannot reach the object store"),
        "{message}"
    );

    // 4. Ready again: Bound at once.
    worker_status(&ns.name, json!({"conditions": condition(true), "containerStatuses": container(true, false)}));
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
    eventually("the watch has seen Bound again", T, || async {
        Ok((phases_since(&seen, mark).last().map(String::as_str) == Some("Bound")).then_some(()))
    })
    .await;
    assert_eq!(
        phases_since(&seen, mark),
        [format!("{:?}", DatasetPhase::Failed), format!("{:?}", DatasetPhase::Bound)],
        "exactly one Failed, for the named failure, then Bound"
    );
}

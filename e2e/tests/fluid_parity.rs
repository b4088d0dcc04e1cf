//! What Fluid accepts works here, on the real stack; what JuiceFS cannot honour is refused naming the
//! field, never silently ignored.
//!
//! - kwok nodes: `networkMode: ""` is accepted and means the host network for workers and FUSE clients;
//!   the default access mode is `ReadOnlyMany`; the PV carries Fluid's `mount_pod_node_selector_key`;
//!   `mountTime` is written once the workers serve; `disablePrometheus` leaves no metrics port and no
//!   host port; `mounts[].path` elsewhere, `shared: true` and `owner` are refused with `InvalidSpec`
//!   naming the field, and the runtime proceeds once the field is fixed.
//! - agent-backed nodes, real JuiceFS: `cleanPolicy: OnFuseChanged` keeps a current FUSE client when
//!   its last pod leaves, lists a client running an outdated template in `status.outdatedFuseNodes`,
//!   and replaces that client once its node's last pod leaves.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::agent_cluster::{AgentCluster, dataset_yaml, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::redis::RedisServer;
use ferrofluid_e2e::{TempDir, TestNamespace, kubectl_ok, manifest};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn apply(ns: &str, yaml: &str) {
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(yaml)).expect("apply");
}

fn json(ns: &str, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&get(ns, &args).expect("get")).expect("json")
}

/// The runtime's `Ready` condition as `(status, reason, message)`.
fn ready(ns: &str, name: &str) -> (String, String, String) {
    let rt = json(ns, &["juicefsruntime", name]);
    let c = rt["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready").cloned();
    let s = |k: &str| c.as_ref().and_then(|c| c[k].as_str()).unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

#[tokio::test]
async fn fluid_defaults_work_and_unsupported_fields_are_refused() {
    let ns = TestNamespace::new("parity").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");

    // Fluid's defaults: networkMode "" (host network, workers too), no accessModes (ReadOnlyMany).
    apply(&ns.name, &manifest("seed-dataset-with-secret.yaml"));
    let runtime = manifest("seed-runtime.yaml").replace(
        "spec:\n",
        "spec:\n  worker:\n    networkMode: \"\"\n  fuse:\n    networkMode: \"\"\n    cleanPolicy: \"\"\n",
    );
    apply(&ns.name, &runtime);
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let sts = json(&ns.name, &["statefulset", &key.worker_statefulset_name()]);
    let ds = json(&ns.name, &["daemonset", &key.fuse_daemonset_name()]);
    for (what, pod) in
        [("workers", &sts["spec"]["template"]["spec"]), ("FUSE clients", &ds["spec"]["template"]["spec"])]
    {
        assert_eq!(pod["hostNetwork"], true, "{what}: networkMode \"\" is the host network");
        assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet", "{what}");
    }
    let fuse_argv = ds["spec"]["template"]["spec"]["containers"][0]["command"].to_string();
    assert!(fuse_argv.contains("--read-only") && fuse_argv.contains("--attr-cache=7200"), "{fuse_argv}");
    let pv = json("default", &["pv", &key.pv_name()]);
    assert_eq!(pv["spec"]["accessModes"][0], "ReadOnlyMany");
    assert_eq!(pv["spec"]["csi"]["volumeAttributes"]["mount_pod_node_selector_key"], key.fuse_node_label());
    let rt = json(&ns.name, &["juicefsruntime", "jfsdemo"]);
    let mount_time = rt["status"]["mountTime"].as_str().unwrap_or_default().to_string();
    assert!(mount_time.parse::<k8s_openapi::jiff::Timestamp>().is_ok(), "mountTime: {:?}", rt["status"]);
    let ports = &rt["status"]["hostPorts"];
    assert!(ports["workerMetrics"].is_number() && ports["fuseMetrics"].is_number(), "{ports}");

    // disablePrometheus: no metrics port on either workload, no host port held.
    let quiet = manifest("seed-runtime.yaml").replace("spec:\n", "spec:\n  disablePrometheus: true\n");
    apply(&ns.name, &quiet);
    eventually("metrics ports gone", T, || async {
        let sts = json(&ns.name, &["statefulset", &key.worker_statefulset_name()]);
        let ds = json(&ns.name, &["daemonset", &key.fuse_daemonset_name()]);
        let rt = json(&ns.name, &["juicefsruntime", "jfsdemo"]);
        let none = |w: &Value| w["spec"]["template"]["spec"]["containers"][0]["ports"].is_null();
        Ok((none(&sts) && none(&ds) && rt["status"]["hostPorts"].is_null()).then_some(()))
    })
    .await;
    let argv = json(&ns.name, &["daemonset", &key.fuse_daemonset_name()])["spec"]["template"]["spec"]["containers"][0]
        ["command"]
        .to_string();
    assert!(argv.contains("--metrics=127.0.0.1:0"), "{argv}");
    let rt = json(&ns.name, &["juicefsruntime", "jfsdemo"]);
    assert_eq!(rt["status"]["mountTime"].as_str(), Some(mount_time.as_str()), "mountTime is written once");

    // Fields JuiceFS cannot honour: refused, naming the field; fixed, the runtime serves again.
    let dataset = manifest("seed-dataset-with-secret.yaml");
    for (edit, field) in [
        (("      mountPoint:", "      path: /elsewhere\n      mountPoint:"), "spec.mounts[0].path"),
        (("      mountPoint:", "      shared: true\n      mountPoint:"), "spec.mounts[0].shared"),
        (("spec:\n  mounts:", "spec:\n  owner: {uid: 1000, gid: 1000}\n  mounts:"), "spec.owner"),
    ] {
        apply(&ns.name, &dataset.replacen(edit.0, edit.1, 1));
        let message = eventually(&format!("InvalidSpec naming {field}"), T, || async {
            let (status, reason, message) = ready(&ns.name, "jfsdemo");
            Ok((status == "False" && reason == "InvalidSpec").then_some(message))
        })
        .await;
        assert!(message.contains(field), "{message}");
        apply(&ns.name, &dataset);
        eventually("Ready again", T, || async {
            let (status, _, _) = ready(&ns.name, "jfsdemo");
            Ok((status == "True").then_some(()))
        })
        .await;
    }
    // Fluid's default path (`/<name>`) is accepted.
    apply(&ns.name, &dataset.replacen("      mountPoint:", "      path: /test\n      mountPoint:", 1));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ready(&ns.name, "jfsdemo").0, "True");
}

/// The FUSE label of `node`, if set.
fn fuse_label(node: &str, key: &DatasetKey) -> Option<String> {
    let labels = kubectl_ok(&["get", "node", node, "-o", "json"], None).ok()?;
    let v: Value = serde_json::from_str(&labels).ok()?;
    v["metadata"]["labels"][key.fuse_node_label()].as_str().map(str::to_string)
}

/// The FUSE pod on `node`: its name and template generation label.
fn fuse_pod(ns: &str, node: &str) -> Option<(String, String)> {
    let pods = json(ns, &["pods", "-l", "role=juicefs-fuse"]);
    pods["items"].as_array().into_iter().flatten().find(|p| p["spec"]["nodeName"] == node).map(|p| {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        (s(&p["metadata"]["name"]), s(&p["metadata"]["labels"]["fuse.runtime.fluid.io/generation"]))
    })
}

#[tokio::test]
async fn on_fuse_changed_replaces_only_outdated_clients() {
    let ns = TestNamespace::new("fusechg").expect("ns");
    let redis = RedisServer::start().expect("redis");
    let bucket = TempDir::new("ferrofluid-fusechg-bucket").expect("bucket");
    let cluster = AgentCluster::start("fusechg", 201).expect("agent nodes");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    apply(&ns.name, &dataset_yaml(&redis.meta_url(1), &bucket.0.display().to_string(), &cluster.scenario, ""));
    let runtime = |env: &str| {
        manifest("seed-runtime.yaml").replace(
            "spec:\n",
            &format!(
                "spec:\n  fuse:\n    cleanPolicy: OnFuseChanged\n    env: [{{name: REVISION, value: \"{env}\"}}]\n"
            ),
        )
    };
    apply(&ns.name, &runtime("1"));
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
    let node = cluster.nodes[0].name.clone();
    let run_pod = |name: &'static str| {
        let node = node.clone();
        let ns = ns.name.clone();
        let pv = key.pv_name();
        let cluster = &cluster;
        async move {
            apply(&ns, &pod_yaml(name, &node));
            let dir = pod_volume_dir(&ns, name, &pv).expect("dir");
            eventually(&format!("{name} published"), T, || async {
                Ok(cluster.fuse_mounts(&node)?.contains(&format!(" {dir} ")).then_some(()))
            })
            .await;
        }
    };

    // A current client stays when its last pod leaves.
    run_pod("app-1").await;
    let (first, generation) = fuse_pod(&ns.name, &node).expect("FUSE pod");
    get(&ns.name, &["delete", "pod", "app-1", "--wait=true"]).expect("delete");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fuse_label(&node, &key).as_deref(), Some("true"), "a current client is kept");
    assert_eq!(fuse_pod(&ns.name, &node).map(|p| p.0), Some(first.clone()));

    // The FUSE template changes while a pod reads: the running client is outdated, and stays.
    run_pod("app-2").await;
    apply(&ns.name, &runtime("2"));
    let listed = eventually("the node listed in status.outdatedFuseNodes", T, || async {
        let rt = json(&ns.name, &["juicefsruntime", "jfsdemo"]);
        let nodes: Vec<String> = rt["status"]["outdatedFuseNodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        Ok((!nodes.is_empty()).then_some(nodes))
    })
    .await;
    assert_eq!(listed, std::slice::from_ref(&node));
    assert_eq!(fuse_pod(&ns.name, &node).map(|p| p.0), Some(first.clone()), "never restarted under its pods");

    // Its last pod leaves: the outdated client goes; the next pod gets a current one.
    get(&ns.name, &["delete", "pod", "app-2", "--wait=true"]).expect("delete");
    eventually("the outdated FUSE client removed", T, || async {
        Ok((fuse_label(&node, &key).is_none() && fuse_pod(&ns.name, &node).is_none()).then_some(()))
    })
    .await;
    run_pod("app-3").await;
    let (second, new_generation) = fuse_pod(&ns.name, &node).expect("FUSE pod");
    assert_ne!(second, first);
    assert_ne!(new_generation, generation, "the new client runs the current template");
    eventually("no node outdated any more", T, || async {
        let rt = json(&ns.name, &["juicefsruntime", "jfsdemo"]);
        Ok(rt["status"]["outdatedFuseNodes"].is_null().then_some(()))
    })
    .await;
    get(&ns.name, &["delete", "pod", "app-3", "--wait=true"]).expect("delete");
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=true", "--timeout=120s"]).expect("delete dataset");
    drop(redis);
}

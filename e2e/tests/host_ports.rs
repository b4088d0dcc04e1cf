//! Any number of datasets per node: host-network worker and FUSE pods of different datasets never ask
//! for the same host port. The runtime-controller hands out ports from `--host-port-range`, records
//! them in `status.hostPorts`, keeps them across restarts and frees them with the runtime.
//!
//! 40 datasets with host-network workers (placement Shared, so workers of several datasets share each
//! node) and their FUSE clients all on one node, with a range of exactly 80 ports: every pod is
//! scheduled and Running (the scheduler refuses a second pod asking for a host port already taken on a
//! node, so before ports were allocated most workers stayed Pending on 9567). A 41st runtime finds the
//! range full and says so; deleting one frees its ports for it. A restarted controller keeps every
//! port where it was.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::cluster::kubectl_in as get;
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl_ok, manifest};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const DATASETS: usize = 40;
const FIRST_PORT: u16 = 30000;
const T: Duration = Duration::from_secs(240);

fn name(i: usize) -> String {
    format!("ds{i:02}")
}

/// Seed-like Dataset + JuiceFSRuntime `name`: Shared placement, host-network workers.
fn pair(name: &str) -> String {
    let dataset = manifest("seed-dataset-with-secret.yaml")
        .replace("name: jfsdemo", &format!("name: {name}"))
        .replace("spec:\n  mounts:", "spec:\n  placement: Shared\n  mounts:");
    let runtime = manifest("seed-runtime.yaml")
        .replace("name: jfsdemo", &format!("name: {name}"))
        .replace("spec:\n", "spec:\n  worker:\n    networkMode: HostNetwork\n");
    format!("{dataset}\n---\n{runtime}")
}

fn pods(ns: &str) -> Vec<Value> {
    let out = get(ns, &["get", "pods", "-o", "json"]).expect("pods");
    serde_json::from_str::<Value>(&out).expect("json")["items"].as_array().cloned().unwrap_or_default()
}

fn host_ports(ns: &str) -> BTreeMap<String, Value> {
    let out = get(ns, &["get", "juicefsruntimes", "-o", "json"]).expect("runtimes");
    let list: Value = serde_json::from_str(&out).expect("json");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|rt| (rt["metadata"]["name"].as_str().unwrap_or_default().to_string(), rt["status"]["hostPorts"].clone()))
        .collect()
}

/// Host ports of the Running worker and FUSE pods, by node and role — once all `want_pods` run.
type Placement = BTreeMap<String, BTreeMap<String, Vec<i64>>>;

fn running_ports(ns: &str, want_pods: usize) -> Option<Placement> {
    let pods = pods(ns);
    let ours: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["labels"]["app"] == "juicefs").collect();
    if ours.len() != want_pods || ours.iter().any(|p| p["status"]["phase"] != "Running") {
        return None;
    }
    let mut by_node: Placement = BTreeMap::new();
    for p in ours {
        assert_eq!(p["spec"]["hostNetwork"], true, "{}", p["metadata"]["name"]);
        let node = p["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
        let role = p["metadata"]["labels"]["role"].as_str().unwrap_or_default().to_string();
        let port = p["spec"]["containers"][0]["ports"][0]["hostPort"].as_i64().unwrap_or_default();
        by_node.entry(node).or_default().entry(role).or_default().push(port);
    }
    Some(by_node)
}

#[tokio::test]
async fn forty_datasets_on_one_node_never_clash() {
    let ns = TestNamespace::new("ports").expect("ns");
    let range = format!("{FIRST_PORT}-{}", FIRST_PORT + 2 * DATASETS as u16 - 1);
    let mut ctl = Controllers::start_with(&ns.name, &["--host-port-range", &range]).expect("controllers");
    let all: String = (0..DATASETS).map(|i| pair(&name(i))).collect::<Vec<_>>().join("\n---\n");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&all)).expect("datasets");

    // Every dataset's FUSE client on node-1 (the CSI plugin sets these labels for pods there).
    let labels: Vec<String> =
        (0..DATASETS).map(|i| format!("{}=true", DatasetKey::new(&ns.name, name(i)).fuse_node_label())).collect();
    let mut args = vec!["label", "node", "node-1", "--overwrite"];
    args.extend(labels.iter().map(String::as_str));
    kubectl_ok(&args, None).expect("fuse labels");

    let by_node =
        eventually("40 workers and 40 FUSE pods Running", T, || async { Ok(running_ports(&ns.name, 2 * DATASETS)) })
            .await;
    for (node, roles) in &by_node {
        let ports: Vec<i64> = roles.values().flatten().copied().collect();
        let distinct: BTreeSet<&i64> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "host ports clash on {node}: {roles:?}");
    }
    let fuse_on_1 = by_node.get("node-1").and_then(|r| r.get("juicefs-fuse")).map_or(0, Vec::len);
    assert_eq!(fuse_on_1, DATASETS, "every FUSE pod on node-1: {by_node:?}");
    let most_workers = by_node.values().filter_map(|r| r.get("juicefs-worker")).map(Vec::len).max().unwrap_or(0);
    assert!(most_workers >= 10, "workers of many datasets share a node: {by_node:?}");
    let recorded = host_ports(&ns.name);
    let used: BTreeSet<i64> = recorded
        .values()
        .flat_map(|p| [p["workerMetrics"].as_i64(), p["fuseMetrics"].as_i64()])
        .map(|p| p.expect("both ports recorded"))
        .collect();
    assert_eq!(used.len(), 2 * DATASETS, "each runtime holds two ports of its own");
    assert!(used.iter().all(|p| (i64::from(FIRST_PORT)..i64::from(FIRST_PORT) + 80).contains(p)));

    // The range is full: a 41st runtime waits and says why.
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&pair("extra"))).expect("extra");
    let path = ".status.conditions[?(@.type==\"Ready\")].reason";
    eventually("extra reports HostPortsExhausted", T, || async {
        let r = get(&ns.name, &["get", "juicefsruntime", "extra", "-o", &format!("jsonpath={{{path}}}")])?;
        Ok((r == "HostPortsExhausted").then_some(()))
    })
    .await;

    // A restart keeps every port where it was (the controller reads them back from the runtimes).
    ctl.restart_runtime().expect("restart");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = host_ports(&ns.name);
    for (rt, ports) in &recorded {
        assert_eq!(after.get(rt), Some(ports), "{rt} moved after a restart");
    }

    // Deleting one runtime frees its two ports for the waiting one.
    let freed = &recorded[&name(7)];
    get(&ns.name, &["delete", "dataset", &name(7), "--wait=false"]).expect("delete");
    let extra = eventually("extra gets the freed ports", T, || async {
        Ok(host_ports(&ns.name).get("extra").filter(|p| p.is_object()).cloned())
    })
    .await;
    let set = |p: &Value| BTreeSet::from([p["workerMetrics"].as_i64(), p["fuseMetrics"].as_i64()]);
    assert_eq!(set(&extra), set(freed));
}

//! Deletion leaves nothing on the nodes: the tiered-store cache directories (`<level path>/<ns>-<name>`,
//! here the seed's `/dev/shm/<ns>-jfsdemo`: node memory) are removed by a cleanup Job on each node where a
//! worker or FUSE client cached — on scale-in from the node that lost its worker (once no client has run
//! there for the controller's grace), and from every node on deletion. Agent-backed nodes, real JuiceFS.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::agent_cluster::{AgentCluster, dataset_yaml, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in as get, leftovers, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::redis::RedisServer;
use ferrofluid_e2e::{TempDir, TestNamespace, kubectl_ok, manifest};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn cache_dir(key: &DatasetKey) -> String {
    format!("/dev/shm/{}", key.cache_dir_name())
}

fn has_cache(cluster: &AgentCluster, key: &DatasetKey, node: &str) -> bool {
    let dir = cache_dir(key);
    cluster.exec(node, &format!("test -d {dir} && echo yes || echo no")).map(|o| o.trim() == "yes").unwrap_or(false)
}

fn worker_node(ns: &str, pod: &str) -> String {
    get(ns, &["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]).expect("node")
}

#[tokio::test]
async fn cache_directories_go_on_scale_in_and_deletion() {
    let ns = TestNamespace::new("cache").expect("ns");
    let redis = RedisServer::start().expect("redis");
    let bucket = TempDir::new("ferrofluid-cache-bucket").expect("bucket");
    let cluster = AgentCluster::start("cache", 51).expect("agent nodes");
    let _ctl = Controllers::start_with(&ns.name, &["--cache-idle-grace", "2s"]).expect("controllers");
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let yaml = dataset_yaml(&redis.meta_url(1), &bucket.0.display().to_string(), &cluster.scenario, "");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&yaml)).expect("dataset");
    let runtime = manifest("seed-runtime.yaml").replace("replicas: 1", "replicas: 2");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&runtime)).expect("runtime");
    wait_field(&ns.name, "juicefsruntime", "jfsdemo", ".status.workerNumberReady", "2", T).await;
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;

    // A pod reads through the volume on a third node: its FUSE client caches there too.
    let (w0, w1) = (worker_node(&ns.name, "jfsdemo-worker-0"), worker_node(&ns.name, "jfsdemo-worker-1"));
    let app = cluster.nodes.iter().map(|n| n.name.clone()).find(|n| *n != w0 && *n != w1).expect("a third node");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&pod_yaml("demo-app", &app))).expect("pod");
    let dir = pod_volume_dir(&ns.name, "demo-app", &key.pv_name()).expect("dir");
    eventually("the app's volume is published", T, || async {
        Ok(cluster.fuse_mounts(&app)?.contains(&format!(" {dir} ")).then_some(()))
    })
    .await;
    cluster.exec(&app, &format!("echo cached > {dir}/f && cat {dir}/f >/dev/null")).expect("read/write");
    for node in [&w0, &w1, &app] {
        eventually(&format!("cache directory on {node}"), T, || async {
            Ok(has_cache(&cluster, &key, node).then_some(()))
        })
        .await;
    }
    let recorded = get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.status.cacheNodes[*].node}"])
        .expect("cacheNodes");
    for node in [&w0, &w1, &app] {
        assert!(recorded.split_whitespace().any(|n| n == node), "{node} not in status.cacheNodes: {recorded}");
    }

    // Scale in: the node of the removed worker (the highest ordinal) loses its cache; the others keep it.
    kubectl_ok(&["-n", &ns.name, "scale", "juicefsruntime", "jfsdemo", "--replicas=1"], None).expect("scale");
    eventually(&format!("cache directory removed from {w1}"), T, || async {
        Ok((!has_cache(&cluster, &key, &w1)).then_some(()))
    })
    .await;
    assert!(has_cache(&cluster, &key, &w0), "the remaining worker's cache was removed");
    assert!(has_cache(&cluster, &key, &app), "the FUSE client's cache was removed");
    eventually("the cleanup Job is gone", T, || async {
        Ok(get(&ns.name, &["get", "jobs", "-o", "name"])?.trim().is_empty().then_some(()))
    })
    .await;

    // Deletion: nothing left anywhere, cache directories included.
    get(&ns.name, &["delete", "pod", "demo-app", "--wait=true"]).expect("delete pod");
    get(&ns.name, &["delete", "dataset", "jfsdemo", "--wait=false"]).expect("delete dataset");
    eventually("nothing left, cache directories included", T, || async {
        let mut left = leftovers(&key)?;
        for node in &cluster.nodes {
            if has_cache(&cluster, &key, &node.name) {
                left.push(format!("{} on {}", cache_dir(&key), node.name));
            }
        }
        if !get(&ns.name, &["get", "jobs,pods", "-o", "name"])?.trim().is_empty() {
            left.push("jobs or pods".into());
        }
        Ok(left.is_empty().then_some(()))
    })
    .await;
    drop(redis);
}

//! A Node object deleted while it holds a worker and a FUSE pod (agent-backed nodes, real JuiceFS).
//! Kubernetes' pod garbage collector deletes the pods bound to the missing node (after its 40 s
//! quarantine); the node's agent then stops their processes and unmounts, and the StatefulSet recreates
//! the worker on another node. The node's cache record stays, marked idle (a node of that name coming
//! back gets its directories cleaned), and deletion of the runtime does not wait for it.

use crate::support::{Rig, T, converged, nothing_left};
use ferrofluid_e2e::kubectl_ok;
use ferrofluid_e2e::process::eventually;
use std::time::{Duration, Instant};

#[tokio::test]
async fn node_deleted_while_it_holds_a_worker_and_a_fuse_pod() {
    let rig = Rig::start("nodedel", 91, "", false);
    let (t, cluster) = (&rig.tenant, &rig.cluster);
    t.bound(T).await;
    let gone = t.node_of("jfsdemo-worker-0").expect("worker node");
    let dir = t.published(cluster, "demo-app", &gone).await.expect("published");
    assert!(t.fuse_pod_on(&gone).expect("pods").is_some(), "no FUSE pod next to the worker");
    assert!(!cluster.juicefs_processes(&gone).expect("processes").is_empty());
    eventually("the node in status.cacheNodes", T, || async {
        let nodes = t.field("juicefsruntime", "jfsdemo", ".status.cacheNodes[*].node")?;
        Ok(nodes.split_whitespace().any(|n| n == gone).then_some(()))
    })
    .await;

    kubectl_ok(&["delete", "node", &gone, "--wait=false"], None).expect("delete node");
    let since = Instant::now();
    // The pod garbage collector needs 40 s or more; the rest follows.
    let limit = T + Duration::from_secs(60);
    eventually("the worker Ready on another node, the dataset Bound", limit, || async {
        let node = t.node_of("jfsdemo-worker-0")?;
        let ready = t.field("juicefsruntime", "jfsdemo", ".status.workerNumberReady")?;
        let phase = t.field("dataset", "jfsdemo", ".status.phase")?;
        Ok((!node.is_empty() && node != gone && ready == "1" && phase == "Bound").then_some(()))
    })
    .await;
    nothing_left("pods, processes and mounts of the deleted node", limit, || {
        let mut left: Vec<String> = t
            .get(&["get", "pods", "--field-selector", &format!("spec.nodeName={gone}"), "-o", "name"])?
            .lines()
            .map(String::from)
            .collect();
        left.extend(cluster.juicefs_processes(&gone)?.into_iter().map(|p| format!("juicefs process {p}")));
        left.extend(cluster.fuse_mounts(&gone)?.lines().map(String::from));
        Ok(left)
    })
    .await;
    converged("node deleted holding a worker and a FUSE pod → worker elsewhere, node's clients gone", since);
    assert!(!cluster.fuse_mounts(&gone).expect("mounts").contains(&dir));
    eventually("the deleted node still recorded, idle", T, || async {
        let query = format!(".status.cacheNodes[?(@.node==\"{gone}\")].idleSince");
        Ok((!t.field("juicefsruntime", "jfsdemo", &query)?.is_empty()).then_some(()))
    })
    .await;

    // Deletion: nothing left on the remaining nodes; on the deleted one no process or mount (its cache
    // directory is out of reach: no node to run a cleanup Job on).
    let t = &rig.tenant;
    t.delete("dataset", "jfsdemo").expect("delete dataset");
    let remaining: Vec<&str> = rig.nodes().into_iter().filter(|n| *n != gone).collect();
    nothing_left("everything after deletion", T, || {
        let mut left = t.leaks_on(cluster, &remaining)?;
        left.extend(cluster.juicefs_processes(&gone)?.into_iter().map(|p| format!("{gone}: juicefs process {p}")));
        left.extend(cluster.fuse_mounts(&gone)?.lines().map(|l| format!("{gone}: {l}")));
        Ok(left)
    })
    .await;
}

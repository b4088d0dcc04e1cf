//! The fault matrix's control-plane rows (docs/reliability.md): kube-apiserver, and etcd, killed with
//! SIGKILL, kept down a few seconds and started again with the same flags (`hack/local-cluster.sh
//! restart`) while one dataset is being set up — its pod waiting for the volume — and another is being
//! deleted. Agent-backed nodes, real JuiceFS: the controllers, node agents and csi-plugins all lose the
//! API server at once. Both datasets must converge (the pod's volume published and usable; the other
//! dataset gone) and, once the first is deleted too, nothing may be left: no object, node label, Job,
//! pod, mount, juicefs process or cache directory.
//!
//! Restarting the API server disturbs every test running at the same time, so these are in a test
//! binary of their own, and run one at a time.

#[path = "faults/support.rs"]
mod support;

use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent_cluster::{AgentCluster, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::cluster::leftovers;
use ferrofluid_e2e::control_plane;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::redis::RedisServer;
use std::time::{Duration, Instant};
use support::{NodeLogsOnFailure, T, Tenant, converged, namespace_workloads, nothing_left, read, write};

/// The restarts of one test must not overlap another's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the component stays down before it is started again.
const DOWN: Duration = Duration::from_secs(5);

async fn restarted_during_setup_and_deletion(component: &str, block: u8) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let tag = if component == "etcd" { "cp-etcd" } else { "cp-api" };
    let redis = RedisServer::start().expect("redis");
    let bucket = TempDir::new(&format!("ferrofluid-{tag}-bucket")).expect("bucket");
    let cluster = AgentCluster::start(tag, block).expect("agent nodes");
    let _logs = NodeLogsOnFailure(&cluster);
    let (setup_node, deletion_node) = (cluster.node(0).to_string(), cluster.node(1).to_string());

    // The dataset to be deleted: Bound, a pod reading on one node.
    let deleted = Tenant::new(&format!("{tag}-del"), &[]).expect("tenant");
    deleted.create_on(&cluster, "fsdel", &redis.meta_url(2), &bucket.0.join("del"), "").expect("dataset");
    deleted.bound(T).await;
    deleted.published(&cluster, "demo-app", &deletion_node).await.expect("published");

    // The dataset being set up, its pod already waiting for the volume.
    let set_up = Tenant::new(&format!("{tag}-set"), &[]).expect("tenant");
    set_up.create_on(&cluster, "fsset", &redis.meta_url(1), &bucket.0.join("set"), "").expect("dataset");
    set_up.apply(&pod_yaml("demo-app", &setup_node)).expect("pod");
    deleted.delete_pod("demo-app").expect("delete pod");
    deleted.delete("dataset", "jfsdemo").expect("delete dataset");

    let since = Instant::now();
    let outage = control_plane::restart(component, DOWN).expect("restart");
    eprintln!(
        "[fault-matrix] {component} unavailable for {:.1} s (SIGKILL, {DOWN:?} down, restart)",
        outage.as_secs_f64()
    );

    let pod_dir = pod_volume_dir(set_up.ns(), "demo-app", &set_up.key.pv_name()).expect("pod dir");
    let ready = |t: &Tenant, pod: &str| -> anyhow::Result<bool> {
        Ok(t.field("pod", pod, ".status.conditions[?(@.type==\"Ready\")].status")? == "True")
    };
    let gone = |t: &Tenant, kind: &str, name: &str| -> anyhow::Result<bool> { Ok(!t.exists(kind, name)?) };
    timeline(
        since,
        vec![
            ("setup: worker Ready", Box::new(|| ready(&set_up, "jfsdemo-worker-0"))),
            ("setup: dataset Bound", Box::new(|| Ok(set_up.field("dataset", "jfsdemo", ".status.phase")? == "Bound"))),
            (
                "setup: volume published",
                Box::new(|| Ok(cluster.fuse_mounts(&setup_node)?.contains(&format!(" {pod_dir} ")))),
            ),
            ("deletion: workers gone", Box::new(|| gone(&deleted, "statefulset", "jfsdemo-worker"))),
            ("deletion: runtime gone", Box::new(|| gone(&deleted, "juicefsruntime", "jfsdemo"))),
            ("deletion: dataset gone", Box::new(|| gone(&deleted, "dataset", "jfsdemo"))),
        ],
    )
    .await;
    let dir = eventually("the new dataset's volume published", T, || async {
        let dir = pod_volume_dir(set_up.ns(), "demo-app", &set_up.key.pv_name())?;
        Ok(cluster.fuse_mounts(&setup_node)?.contains(&format!(" {dir} ")).then_some(dir))
    })
    .await;
    let file = format!("{dir}/f");
    eventually("a write and a read through it", T, || async {
        Ok((write(&cluster, &setup_node, &file, "after the restart")?
            && read(&cluster, &setup_node, &file)?.as_deref() == Some("after the restart"))
        .then_some(()))
    })
    .await;
    let took = converged(&format!("{component} restarted during setup → Bound, pod's volume published"), since);
    after_outage(component, took, outage);

    let gone_mount = deleted.key.fuse_mount_path("/runtime-mnt");
    nothing_left("the deleted dataset", T, || {
        let mut left = leftovers(&deleted.key)?;
        left.extend(namespace_workloads(deleted.ns())?);
        for node in cluster.nodes.iter().map(|n| n.name.as_str()) {
            if cluster.fuse_mounts(node)?.contains(&format!(" {gone_mount} ")) {
                left.push(format!("{node}: FUSE mount {gone_mount}"));
            }
            let cache = format!("/dev/shm/{}", deleted.key.cache_dir_name());
            if cluster.exec(node, &format!("test -e {cache} && echo yes || true"))?.trim() == "yes" {
                left.push(format!("{node}: {cache}"));
            }
        }
        Ok(left)
    })
    .await;
    let took = converged(&format!("{component} restarted during deletion → all gone"), since);
    after_outage(component, took, outage);

    set_up.delete_pod("demo-app").expect("delete pod");
    set_up.delete("dataset", "jfsdemo").expect("delete dataset");
    let nodes: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    nothing_left("everything, on every node", T, || {
        let mut left = set_up.leaks_on(&cluster, &nodes)?;
        left.extend(deleted.leaks()?);
        Ok(left)
    })
    .await;
}

/// A check of one milestone of a convergence.
type Milestone<'a> = (&'a str, Box<dyn Fn() -> anyhow::Result<bool> + 'a>);

/// Polls the milestones together and prints when each is first reached (since `since`), until all are.
async fn timeline(since: Instant, mut pending: Vec<Milestone<'_>>) {
    while !pending.is_empty() {
        pending.retain(|(what, reached)| {
            let now = reached().unwrap_or(false);
            if now {
                eprintln!("[fault-matrix]   {what} at {:.1} s", since.elapsed().as_secs_f64());
            }
            !now
        });
        let left: Vec<&str> = pending.iter().map(|m| m.0).collect();
        assert!(since.elapsed() < T, "not reached after {T:?}: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How much of a convergence came after the component was healthy again.
fn after_outage(component: &str, took: Duration, outage: Duration) {
    let after = took.saturating_sub(outage).as_secs_f64();
    eprintln!("[fault-matrix]   of which {after:.1} s after {component} was healthy again");
}

#[tokio::test]
async fn kube_apiserver_restarted_during_setup_and_deletion() {
    restarted_during_setup_and_deletion("kube-apiserver", 111).await;
}

#[tokio::test]
async fn etcd_restarted_during_setup_and_deletion() {
    restarted_during_setup_and_deletion("etcd", 121).await;
}

/// The controller-manager's PV binder races itself on a pre-bound pair: its volume worker marks the PV
/// `Bound` while its claim worker's write conflicts, and the claim stays `Pending` until the binder's
/// 15 s resync. Here the binder is stopped (SIGKILL, kept down) and the stall is set up as the binder
/// leaves it — the PV `Bound` to the claim, the claim `Pending` — so only the runtime-controller can
/// move it: it touches the claim once (annotation `ferrofluid.io/bind-nudge`), and the binder, back, binds
/// it at once on that update.
#[tokio::test]
async fn a_claim_left_pending_behind_its_bound_volume_is_touched() {
    use ferrofluid_api::keys::ANNOTATION_BIND_NUDGE;
    use ferrofluid_e2e::cluster::{kubectl_in, wait_field};
    use ferrofluid_e2e::controllers::Controllers;
    use ferrofluid_e2e::{TestNamespace, kubectl_ok, manifest};
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::new("nudge").expect("ns");
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    for file in ["seed-dataset-with-secret.yaml", "seed-runtime.yaml"] {
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest(file))).expect("apply");
    }
    wait_field(&ns.name, "pvc", "jfsdemo", ".status.phase", "Bound", T).await;
    let key = ferrofluid_api::DatasetKey::new(&ns.name, "jfsdemo");
    let pv_claim_uid =
        kubectl_ok(&["get", "pv", &key.pv_name(), "-o", "jsonpath={.spec.claimRef.uid}"], None).expect("pv");
    let claim_uid = kubectl_in(&ns.name, &["get", "pvc", "jfsdemo", "-o", "jsonpath={.metadata.uid}"]).expect("pvc");
    assert_eq!(pv_claim_uid, claim_uid, "the binder bound the PV to the claim");

    let run_dir = ferrofluid_e2e::kubeconfig().parent().expect("local dir").join("cluster/run");
    let pid = std::fs::read_to_string(run_dir.join("kube-controller-manager.pid")).expect("pid file");
    let down = Duration::from_secs(20);
    let restart = tokio::task::spawn_blocking(move || control_plane::restart("kube-controller-manager", down));
    eventually("kube-controller-manager killed", T, || async {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        Ok((stat.is_empty() || stat.contains(") Z ")).then_some(()))
    })
    .await;
    let annotation = format!("jsonpath={{.metadata.annotations.{}}}", ANNOTATION_BIND_NUDGE.replace('.', "\\."));
    // The stall, as the binder leaves it: the claim Pending (and not touched yet), the PV Bound to it.
    kubectl_in(&ns.name, &["annotate", "pvc", "jfsdemo", &format!("{ANNOTATION_BIND_NUDGE}-")]).expect("annotate");
    kubectl_in(
        &ns.name,
        &["patch", "pvc", "jfsdemo", "--subresource=status", "--type=merge", "-p", r#"{"status":{"phase":"Pending"}}"#],
    )
    .expect("claim Pending");
    let touched = eventually("the claim touched by the runtime-controller", T, || async {
        let value = kubectl_in(&ns.name, &["get", "pvc", "jfsdemo", "-o", &annotation])?;
        Ok((!value.trim().is_empty()).then_some(value))
    })
    .await;
    let phase = kubectl_in(&ns.name, &["get", "pvc", "jfsdemo", "-o", "jsonpath={.status.phase}"]).expect("pvc");
    assert_eq!(phase, "Pending", "nothing but the binder binds a claim (touched at {touched})");
    let outage = restart.await.expect("join").expect("restart");
    eprintln!("[nudge] kube-controller-manager unavailable for {:.1} s", outage.as_secs_f64());
    wait_field(&ns.name, "pvc", "jfsdemo", ".status.phase", "Bound", T).await;
    let again = kubectl_in(&ns.name, &["get", "pvc", "jfsdemo", "-o", &annotation]).expect("pvc");
    assert_eq!(again, touched, "touched once");
}

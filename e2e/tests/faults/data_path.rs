//! Faults under pods that use a dataset, on agent-backed nodes with real JuiceFS, Redis and mounts:
//! the FUSE client killed under a reading pod, the node's csi-plugin killed mid-NodePublish and
//! mid-NodeUnstage, the metadata engine (Redis) restarted, the runtime deleted while a pod reads, and
//! the metrics-collector killed while it leads and while the runtime is deleted. Each ends with
//! nothing left: no object, node label, Job, pod, mount, juicefs process or cache directory.

use crate::support::{Rig, T, converged, kill, kill_group, nothing_left, read, write};
use ferrofluid_api::keys::FUSE_CONTAINER;
use ferrofluid_e2e::agent_cluster::{AgentCluster, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::controllers::start_collector;
use ferrofluid_e2e::http::http_get;
use ferrofluid_e2e::kubectl_ok;
use ferrofluid_e2e::process::eventually;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Kills `pid` the moment `node`'s agent logs a line containing `line` (from now on; polled every
/// millisecond for at most `T`); the thread returns when it killed.
fn kill_on_agent_line(
    cluster: &AgentCluster,
    node: &str,
    line: &'static str,
    pid: u32,
) -> std::thread::JoinHandle<Option<Instant>> {
    let mut agent_log = LogTail::at_end(&cluster.agent_log(node));
    std::thread::spawn(move || {
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            if agent_log.fresh().contains(line) {
                kill(pid);
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

#[tokio::test]
async fn fuse_client_killed_under_a_reading_pod() {
    let rig = Rig::start("fusekill", 61, "", false);
    let (t, cluster) = (&rig.tenant, &rig.cluster);
    t.bound(T).await;
    let node = rig.node(0);
    let dir = t.published(cluster, "demo-app", &node).await.expect("published");
    let file = format!("{dir}/before");
    assert!(write(cluster, &node, &file, "written before the kill").expect("write"));

    let fuse_pod = t.fuse_pod_on(&node).expect("pods").expect("a FUSE pod on the app's node");
    let pid = cluster.container_pid(&node, t.ns(), &fuse_pod, FUSE_CONTAINER).expect("status").expect("running");
    kill_group(pid);
    let since = Instant::now();
    eventually("reads failing: the FUSE client is dead", Duration::from_secs(10), || async {
        Ok(read(cluster, &node, &file)?.is_none().then_some(()))
    })
    .await;
    let back = eventually("reads through the pod's volume again", T, || async { read(cluster, &node, &file) }).await;
    converged("FUSE client (container) killed under a reading pod → reads resume", since);
    assert_eq!(back, "written before the kill");
    assert!(write(cluster, &node, &format!("{dir}/after"), "written after").expect("write"), "writes fail");
    eventually("FuseRecoverSucceed event", T, || async { Ok(t.has_event("FuseRecoverSucceed")?.then_some(())) }).await;
    // Recovery bound the live mount over the stale bind (a running container sees only mounts made on its
    // copy of the target, csi.md): two layers, the top one live (the reads above went through it).
    let binds = cluster.fuse_mounts(&node).expect("mounts").lines().filter(|l| l.contains(&format!(" {dir} "))).count();
    assert_eq!(binds, 2, "bind mounts at the pod's volume: the stale one and the live one over it");

    rig.delete_all().await;
}

/// The csi-plugin's record of what it staged and published on a node (`state.json`).
fn plugin_state(cluster: &AgentCluster, node: &str) -> serde_json::Value {
    let path = cluster.agents.node_dir(node).join("kubelet/plugins/fuse.csi.fluid.io/state/state.json");
    std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// New text appended to a log file since the last look.
struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    fn at_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self { path: path.to_path_buf(), offset }
    }

    fn fresh(&mut self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.path)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
            && let Ok(n) = f.read_to_string(&mut text)
        {
            self.offset += n as u64;
        }
        text
    }
}

#[tokio::test]
async fn csi_plugin_killed_mid_publish_and_mid_unstage() {
    // OnDemand: the last pod leaving the node takes the FUSE label (and so the FUSE pod) with it, so
    // NodeUnstage has real work: the runtime's clean policy read, the node's label removed.
    let rig = Rig::start("csikill", 71, "  fuse:\n    cleanPolicy: OnDemand\n", false);
    let (t, cluster) = (&rig.tenant, &rig.cluster);
    t.bound(T).await;
    let node = rig.node(0);
    let (pv, label) = (t.key.pv_name(), t.key.fuse_node_label());
    let fluid_path = t.key.fuse_mount_path("/runtime-mnt");
    let has_label = || -> anyhow::Result<bool> {
        let labels = kubectl_ok(&["get", "node", &node, "-o", "jsonpath={.metadata.labels}"], None)?;
        Ok(labels.contains(&format!("\"{label}\"")))
    };

    // Mid-NodePublish: NodeStage has labelled the node; NodePublish waits for the FUSE pod's mount. The
    // plugin is killed the moment the agent (kubelet) logs the staging done — its NodePublish follows at
    // once. The kill counts only if the plugin's own record shows the volume staged and not published
    // (the FUSE pod may already have mounted by then: it does not wait for the plugin); otherwise the pod
    // is deleted, the volume unstaged, and the kill retried.
    let mut landed = None;
    for attempt in 1..=3 {
        let pid = cluster.csi_plugin_pid(&node).expect("csi-plugin");
        let watcher = kill_on_agent_line(cluster, &node, "volume staged", pid);
        t.apply(&pod_yaml("demo-app", &node)).expect("pod");
        let killed_at = tokio::task::spawn_blocking(move || watcher.join().expect("watcher"))
            .await
            .expect("join")
            .expect("the agent never staged the volume");
        assert!(has_label().expect("labels"), "NodeStage done but no FUSE label on the node");
        let state = plugin_state(cluster, &node);
        let published = state["published"].as_object().is_some_and(|p| !p.is_empty());
        if state["staged"].get(&pv).is_some() && !published {
            let mounted = cluster.fuse_mounts(&node).expect("mounts").contains(&format!(" {fluid_path} "));
            eprintln!("[fault-matrix] csi-plugin killed mid-NodePublish (attempt {attempt}); FUSE mount up: {mounted}");
            landed = Some((killed_at, pid));
            break;
        }
        eprintln!("[fault-matrix] attempt {attempt}: NodePublish had finished before the kill; again");
        t.delete_pod("demo-app").expect("delete pod");
        eventually("unstaged and the FUSE pod gone", T, || async {
            let unstaged = plugin_state(cluster, &node)["staged"].get(&pv).is_none();
            Ok((unstaged && t.fuse_pod_on(&node)?.is_none()).then_some(()))
        })
        .await;
    }
    let (since, pid) = landed.expect("no kill landed mid-NodePublish in 3 attempts");
    let dir = pod_volume_dir(t.ns(), "demo-app", &pv).expect("dir");
    eventually("published by the restarted plugin", T, || async {
        Ok(cluster.fuse_mounts(&node)?.contains(&format!(" {dir} ")).then_some(()))
    })
    .await;
    converged("csi-plugin killed mid-NodePublish → volume published", since);
    assert!(write(cluster, &node, &format!("{dir}/f"), "published").expect("write"));
    assert_eq!(read(cluster, &node, &format!("{dir}/f")).expect("read").as_deref(), Some("published"));
    assert_ne!(cluster.csi_plugin_pid(&node).expect("csi-plugin"), pid, "the plugin was not restarted");

    // Mid-NodeUnstage: the pod is deleted; the moment the agent (kubelet) has unpublished — its
    // NodeUnstage follows at once — the plugin is killed. The kill counts only if the plugin's own
    // record shows the staging not finished; otherwise the pod is created again and the kill retried.
    let mut landed = None;
    for attempt in 1..=3 {
        if attempt > 1 {
            t.published(cluster, "demo-app", &node).await.expect("published again");
        }
        let pid = cluster.csi_plugin_pid(&node).expect("csi-plugin");
        let watcher = kill_on_agent_line(cluster, &node, "volume unpublished", pid);
        t.delete_pod("demo-app").expect("delete pod");
        let killed_at = tokio::task::spawn_blocking(move || watcher.join().expect("watcher"))
            .await
            .expect("join")
            .expect("the agent never unpublished");
        let state = plugin_state(cluster, &node);
        if state["staged"].get(&pv).is_some() {
            eprintln!(
                "[fault-matrix] csi-plugin killed mid-NodeUnstage (attempt {attempt}); label still there: {}",
                has_label().unwrap_or(false)
            );
            landed = Some(killed_at);
            break;
        }
        eprintln!("[fault-matrix] attempt {attempt}: NodeUnstage had finished before the kill; again");
        eventually("the FUSE pod gone", T, || async { Ok(t.fuse_pod_on(&node)?.is_none().then_some(())) }).await;
    }
    let since = landed.expect("no kill landed mid-NodeUnstage in 3 attempts");
    eventually("label, FUSE pod and FUSE mount gone from the node", T, || async {
        let mounted = cluster.fuse_mounts(&node)?.contains(&format!(" {fluid_path} "));
        let clean = !has_label()? && t.fuse_pod_on(&node)?.is_none() && !mounted;
        Ok(clean.then_some(()))
    })
    .await;
    converged("csi-plugin killed mid-NodeUnstage → unstaged, FUSE label and client gone", since);
    // The record follows: the label can go before the retried NodeUnstage has rewritten state.json.
    eventually("the staging no longer recorded", T, || async {
        Ok(plugin_state(cluster, &node)["staged"].get(&pv).is_none().then_some(()))
    })
    .await;

    rig.delete_all().await;
}

#[tokio::test]
async fn redis_restarted_under_a_reading_pod() {
    let mut rig = Rig::start("redisrst", 81, "", true);
    rig.tenant.bound(T).await;
    let node = rig.node(0);
    let dir = rig.tenant.published(&rig.cluster, "demo-app", &node).await.expect("published");
    let before = format!("{dir}/before");
    assert!(write(&rig.cluster, &node, &before, "written before the restart").expect("write"));

    // A write issued while the metadata engine is down must not succeed before it is back.
    rig.redis.kill();
    let after = format!("{dir}/after");
    let writer = {
        let (agents_dir, node, after) = (rig.cluster.agents.nodes_dir.clone(), node.clone(), after.clone());
        std::thread::spawn(move || {
            let script = format!("printf '%s' 'written during the outage' > {after} && sync {after}");
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../hack/node-exec"))
                .args([node.as_str(), "--", "sh", "-c", &script])
                .env("FF_NODES_DIR", agents_dir)
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!writer.is_finished(), "a write finished while the metadata engine was down");
    rig.redis.start_again().expect("start redis again");
    let since = Instant::now();
    let (t, cluster) = (&rig.tenant, &rig.cluster);
    let written = tokio::task::spawn_blocking(move || writer.join().expect("writer")).await.expect("join");
    if written {
        eprintln!(
            "[fault-matrix] the write issued during the outage completed {:.1} s after Redis was back",
            since.elapsed().as_secs_f64()
        );
    }
    eventually("writes and reads through the pod's volume again", T, || async {
        let ok = write(cluster, &node, &after, "written after the restart")?
            && read(cluster, &node, &after)?.as_deref() == Some("written after the restart");
        Ok(ok.then_some(()))
    })
    .await;
    converged("Redis killed, down 3 s with a write waiting, restarted → reads and writes resume", since);
    assert_eq!(read(cluster, &node, &before).expect("read").as_deref(), Some("written before the restart"));
    assert_eq!(t.field("dataset", "jfsdemo", ".status.phase").expect("phase"), "Bound");
    // The worker's readiness probe may have failed during the outage (its status then said so); it
    // recovers on the probe's own schedule, after the volume already works again.
    eventually("the worker ready again", T, || async {
        Ok((t.field("juicefsruntime", "jfsdemo", ".status.workerNumberReady")? == "1").then_some(()))
    })
    .await;

    rig.delete_all().await;
}

/// The collector's series of this namespace's dataset, from its /metrics.
fn dataset_series(collector: &ferrofluid_e2e::process::Component, ns: &str) -> anyhow::Result<Vec<String>> {
    let text = http_get(collector.http.expect("collector address"), "/metrics")?;
    let label = format!("namespace=\"{ns}\"");
    Ok(text.lines().filter(|l| !l.starts_with('#') && l.contains(&label)).map(String::from).collect())
}

#[tokio::test]
async fn runtime_deleted_while_a_pod_reads_and_collector_killed() {
    let rig = Rig::start("rtdelete", 101, "", false);
    let (t, cluster) = (&rig.tenant, &rig.cluster);
    let mut collector = start_collector(t.ns(), "coll1").expect("collector");
    t.bound(T).await;
    let node = rig.node(0);
    let dir = t.published(cluster, "demo-app", &node).await.expect("published");
    let file = format!("{dir}/data");
    assert!(write(cluster, &node, &file, "read while the runtime is deleted").expect("write"));
    read(cluster, &node, &file).expect("read");
    let cached = |want_other_than: String| async move {
        let v = t.field("dataset", "jfsdemo", ".status.cacheStates.cached")?;
        Ok((!v.is_empty() && v != want_other_than).then_some(v))
    };
    let before = eventually("cacheStates from the collector", T, || cached(String::new())).await;

    // The leading collector dies without releasing its Lease: the successor waits it out, then writes.
    collector.kill();
    let since = Instant::now();
    let collector = start_collector(t.ns(), "coll2").expect("collector");
    let big = format!("{dir}/more");
    let fill = format!("head -c 4194304 /dev/urandom > {big} && cat {big} > /dev/null");
    cluster.exec(&node, &fill).expect("more data");
    eventually("cacheStates updated by the successor", T, || cached(before.clone())).await;
    eventually("the successor's series", T, || async {
        Ok((!dataset_series(&collector, t.ns())?.is_empty()).then_some(()))
    })
    .await;
    converged("metrics-collector (leader) killed → successor writes cacheStates", since);

    // Runtime deleted under the reading pod: the PVC waits for the pod; nothing is pulled from under it.
    t.delete("juicefsruntime", "jfsdemo").expect("delete runtime");
    eventually("the PVC held in deletion by the pod", T, || async {
        Ok((!t.field("pvc", "jfsdemo", ".metadata.deletionTimestamp")?.is_empty()).then_some(()))
    })
    .await;
    let mut collector = collector;
    collector.kill();
    let collector = start_collector(t.ns(), "coll3").expect("collector");
    for _ in 0..10 {
        assert_eq!(
            read(cluster, &node, &file).expect("read").as_deref(),
            Some("read while the runtime is deleted"),
            "a read failed while the runtime's deletion waited for the pod"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        t.exists("statefulset", "jfsdemo-worker").expect("sts") && t.exists("daemonset", "jfsdemo-fuse").expect("ds")
    );

    t.delete_pod("demo-app").expect("delete pod");
    let since = Instant::now();
    let nodes = rig.nodes();
    nothing_left("the runtime and all it made, the dataset aside", T, || {
        Ok(t.leaks_on(cluster, &nodes)?.into_iter().filter(|l| !l.starts_with("dataset.")).collect())
    })
    .await;
    converged("runtime deleted while a pod reads → everything gone once the pod is", since);
    assert_eq!(t.field("dataset", "jfsdemo", ".status.phase").expect("phase"), "NotBound");
    eventually("the successor collector dropped the dataset's series", T, || async {
        Ok(dataset_series(&collector, t.ns())?.is_empty().then_some(()))
    })
    .await;

    rig.delete_all().await;
}

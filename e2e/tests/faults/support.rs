//! What the fault tests share: one test's dataset in a namespace of its own with its own controllers
//! (a [`Tenant`]), the check that nothing is left behind, killing processes, and the one format in
//! which convergence times are printed (copied into docs/reliability.md).

#![allow(dead_code)]

use anyhow::{Context, Result};
use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::agent_cluster::{AgentCluster, dataset_yaml, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in, leftovers, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound on any one convergence: a fault that needs longer fails its test. (No timing goal is
/// asserted; the times are printed.)
pub const T: Duration = Duration::from_secs(150);

/// Prints how long a row took to converge, as `[fault-matrix] <row>: converged in N s`.
pub fn converged(row: &str, since: Instant) -> Duration {
    let took = since.elapsed();
    eprintln!("[fault-matrix] {row}: converged in {:.1} s", took.as_secs_f64());
    took
}

/// SIGKILL to one process: a crash, no chance to clean up.
pub fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// SIGKILL to a process group: a container (the agent runs each in a group of its own) dies whole.
pub fn kill_group(pgid: u32) {
    ferrofluid_e2e::agent::process::signal_group(pgid, rustix::process::Signal::KILL);
}

/// Waits until `check` reports nothing left; fails with what is still there.
pub async fn nothing_left(what: &str, timeout: Duration, check: impl Fn() -> Result<Vec<String>>) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(left) if left.is_empty() => return,
            Ok(left) => format!("{left:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(Instant::now() < deadline, "{what}: still there after {timeout:?}: {last}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Jobs and pods still in a namespace (cleanup Jobs, workers, FUSE pods, applications).
pub fn namespace_workloads(ns: &str) -> Result<Vec<String>> {
    Ok(kubectl_in(ns, &["get", "jobs,pods", "-o", "name"])?.lines().map(|l| format!("{ns}: {l}")).collect())
}

/// One test's dataset `jfsdemo`: a namespace and controllers of its own. The controllers are dropped
/// first, and on drop delete what is left and wait for the cleanup, while the nodes still run.
pub struct Tenant {
    pub ctl: Controllers,
    pub ns: TestNamespace,
    pub key: DatasetKey,
}

impl Tenant {
    /// `runtime_args` are extra runtime-controller flags.
    pub fn new(prefix: &str, runtime_args: &[&str]) -> Result<Self> {
        let ns = TestNamespace::new(prefix)?;
        let ctl = Controllers::start_with(&ns.name, runtime_args)?;
        let key = DatasetKey::new(&ns.name, "jfsdemo");
        Ok(Self { ctl, ns, key })
    }

    pub fn ns(&self) -> &str {
        &self.ns.name
    }

    pub fn apply(&self, yaml: &str) -> Result<()> {
        kubectl_ok(&["apply", "-n", self.ns(), "-f", "-"], Some(yaml)).map(drop)
    }

    /// `kubectl -n <ns> ARGS…`, its stdout.
    pub fn get(&self, args: &[&str]) -> Result<String> {
        kubectl_in(self.ns(), args)
    }

    /// The JSONPath `path` of `kind/name`; empty when the object or the field does not exist.
    pub fn field(&self, kind: &str, name: &str, path: &str) -> Result<String> {
        self.get(&["get", kind, name, "-o", &format!("jsonpath={{{path}}}"), "--ignore-not-found"])
    }

    pub fn exists(&self, kind: &str, name: &str) -> Result<bool> {
        Ok(!self.get(&["get", kind, name, "-o", "name", "--ignore-not-found"])?.trim().is_empty())
    }

    /// `kubectl delete KIND NAME --wait=false` (the deletion runs while the test goes on).
    pub fn delete(&self, kind: &str, name: &str) -> Result<()> {
        self.get(&["delete", kind, name, "--wait=false"]).map(drop)
    }

    /// Deletes a pod at once (grace 0), as the tests' app pods have no process to stop.
    pub fn delete_pod(&self, pod: &str) -> Result<()> {
        self.get(&["delete", "pod", pod, "--grace-period=0", "--force", "--wait=false"]).map(drop)
    }

    /// The seed's dataset on `cluster`'s nodes — file system `fs_name`, metadata at `meta_url`, objects
    /// under `bucket` — and the seed's runtime with `runtime_spec` (fields of its spec, indented by two
    /// spaces) added.
    pub fn create_on(
        &self,
        cluster: &AgentCluster,
        fs_name: &str,
        meta_url: &str,
        bucket: &Path,
        runtime_spec: &str,
    ) -> Result<()> {
        std::fs::create_dir_all(bucket)?;
        let dataset = dataset_yaml(meta_url, &bucket.display().to_string(), &cluster.scenario, "")
            .replace("    - name: test\n", &format!("    - name: {fs_name}\n"));
        self.apply(&dataset)?;
        self.apply(&manifest("seed-runtime.yaml").replace("spec:\n", &format!("spec:\n{runtime_spec}")))
    }

    /// Waits until the dataset is Bound and its PVC bound.
    pub async fn bound(&self, timeout: Duration) {
        wait_field(self.ns(), "dataset", "jfsdemo", ".status.phase", "Bound", timeout).await;
        wait_field(self.ns(), "pvc", "jfsdemo", ".status.phase", "Bound", timeout).await;
    }

    /// Creates the seed's app pod `pod` on `node` and waits until its volume is published there (the
    /// FUSE mount bound into the pod's volume directory); returns that directory.
    pub async fn published(&self, cluster: &AgentCluster, pod: &str, node: &str) -> Result<String> {
        self.apply(&pod_yaml(pod, node))?;
        let dir = pod_volume_dir(self.ns(), pod, &self.key.pv_name())?;
        eventually(&format!("{pod}'s volume published on {node}"), T, || async {
            Ok(cluster.fuse_mounts(node)?.contains(&format!(" {dir} ")).then_some(()))
        })
        .await;
        Ok(dir)
    }

    /// Everything of this dataset still anywhere: its objects and node labels, Jobs and pods in its
    /// namespace.
    pub fn leaks(&self) -> Result<Vec<String>> {
        let mut left = leftovers(&self.key)?;
        left.extend(namespace_workloads(self.ns())?);
        Ok(left)
    }

    /// [`Tenant::leaks`], and on `nodes` of `cluster` any FUSE mount, juicefs process or cache directory.
    pub fn leaks_on(&self, cluster: &AgentCluster, nodes: &[&str]) -> Result<Vec<String>> {
        let mut left = self.leaks()?;
        left.extend(cluster.node_leftovers(nodes)?);
        Ok(left)
    }

    /// Whether a Warning or Normal event with `reason` was recorded in the namespace.
    pub fn has_event(&self, reason: &str) -> Result<bool> {
        let out = self.get(&["get", "events", "--field-selector", &format!("reason={reason}"), "-o", "name"])?;
        Ok(!out.trim().is_empty())
    }

    /// The node a pod runs on (empty while unscheduled).
    pub fn node_of(&self, pod: &str) -> Result<String> {
        self.field("pod", pod, ".spec.nodeName")
    }

    /// The FUSE pod on `node`, if one exists.
    pub fn fuse_pod_on(&self, node: &str) -> Result<Option<String>> {
        let out = self.get(&[
            "get",
            "pods",
            "-l",
            "role=juicefs-fuse",
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])?;
        Ok(out.split_whitespace().next().map(String::from))
    }
}

/// Reads `file` through a node's view of a pod's volume; `None` while it cannot be read.
pub fn read(cluster: &AgentCluster, node: &str, file: &str) -> Result<Option<String>> {
    let out = cluster.agents.exec(node, &["cat", file]).context("node-exec")?;
    Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// Writes `text` to `file` through a node's view of a pod's volume (and syncs it); whether that worked.
pub fn write(cluster: &AgentCluster, node: &str, file: &str, text: &str) -> Result<bool> {
    let out = cluster.agents.exec(node, &["sh", "-c", &format!("printf '%s' '{text}' > {file} && sync {file}")])?;
    Ok(out.status.success())
}

/// A node label of the test's own, removed again on drop (also when the test fails).
pub struct NodeLabel {
    pub node: String,
    pub key: String,
}

impl NodeLabel {
    pub fn set(node: &str, key: &str, value: &str) -> Result<Self> {
        kubectl_ok(&["label", "node", node, "--overwrite", &format!("{key}={value}")], None)?;
        Ok(Self { node: node.into(), key: key.into() })
    }
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        let _ = kubectl(&["label", "node", &self.node, &format!("{}-", self.key)], None);
    }
}

/// One test's agent-backed nodes with real JuiceFS: its own metadata engine (Redis) and object store
/// (a directory), and its [`Tenant`] with the seed's dataset on those nodes. Dropped in field order:
/// the controllers clean up while the nodes, Redis and the bucket still exist.
pub struct Rig {
    pub tenant: Tenant,
    pub cluster: AgentCluster,
    pub redis: ferrofluid_e2e::redis::RedisServer,
    pub bucket: ferrofluid_e2e::TempDir,
}

impl Rig {
    /// Agent nodes at address block `block`; `runtime_spec` is added to the runtime's spec; `durable`
    /// Redis keeps its data across a restart. Cache directories of idle nodes go after 2 s.
    pub fn start(tag: &str, block: u8, runtime_spec: &str, durable: bool) -> Self {
        use ferrofluid_e2e::redis::RedisServer;
        let redis = if durable { RedisServer::start_durable() } else { RedisServer::start() }.expect("redis");
        let bucket = ferrofluid_e2e::TempDir::new(&format!("ferrofluid-{tag}-bucket")).expect("bucket");
        let cluster = AgentCluster::start(tag, block).expect("agent nodes");
        let tenant = Tenant::new(tag, &["--cache-idle-grace", "2s"]).expect("tenant");
        tenant.create_on(&cluster, "test", &redis.meta_url(1), &bucket.0, runtime_spec).expect("dataset and runtime");
        Self { tenant, cluster, redis, bucket }
    }

    pub fn node(&self, i: usize) -> String {
        self.cluster.node(i).to_string()
    }

    pub fn nodes(&self) -> Vec<&str> {
        self.cluster.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Deletes the app pods and the dataset, and waits until nothing of it is left anywhere, nodes
    /// included.
    pub async fn delete_all(&self) {
        let t = &self.tenant;
        t.get(&["delete", "pods", "-l", "!role", "--grace-period=0", "--force", "--wait=false"]).expect("delete pods");
        t.delete("dataset", "jfsdemo").expect("delete dataset");
        let nodes = self.nodes();
        nothing_left("everything after deletion", T, || t.leaks_on(&self.cluster, &nodes)).await;
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_node_logs(&self.cluster);
        }
    }
}

/// Prints on failure what the nodes' agents and csi-plugins did (their directory goes with the cluster).
pub struct NodeLogsOnFailure<'a>(pub &'a AgentCluster);

impl Drop for NodeLogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_node_logs(self.0);
        }
    }
}

fn print_node_logs(cluster: &AgentCluster) {
    for node in &cluster.nodes {
        let logs = cluster.agents.node_dir(&node.name).join("logs");
        for file in ["node-agent.log", "csi-plugin.log"] {
            let text = std::fs::read_to_string(logs.join(file)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("---- {} {file} (last 60 lines) ----", node.name);
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}

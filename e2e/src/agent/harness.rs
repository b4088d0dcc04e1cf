//! Test harness for agent-backed nodes: a kwok Node of the test's own, node agents started and stopped
//! through `hack/node-agents.sh`, commands run in a node's namespace through `hack/node-exec`, and the
//! checks that nothing is left behind. Drop guards stop and delete what was started, also on failure.

use crate::agent::layout::NodeLayout;
use crate::{bin_path, kubeconfig, kubectl, kubectl_ok};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn hack(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack").join(script)
}

/// How the agents handle CSI volumes.
#[derive(Clone, Debug)]
pub enum Csi {
    /// No CSI: pods with claims get no volumes.
    None,
    /// The real csi-plugin binary, one per node.
    Plugin,
    /// An already running CSI node server listening on this socket (a test's own).
    Socket(PathBuf),
}

/// A kwok-managed Node created for one test (kwok marks it Ready and gives its pods IPs), deleted on drop.
pub struct KwokNode {
    pub name: String,
}

/// Taint keeping the scheduler (and DaemonSets) off a test's private node.
pub const PRIVATE_NODE_TAINT: &str = "ferrofluid.io/agent-test";

impl KwokNode {
    /// A node only the test's own pods (bound with `spec.nodeName`) land on: it is tainted `NoSchedule`,
    /// so other suites' scheduled pods never run on its agent. `ip` must be loopback (127.0.1.x).
    pub fn private(name: &str, ip: &str) -> Result<Self> {
        Self::create(name, ip, &format!("{{taints: [{{key: {PRIVATE_NODE_TAINT}, effect: NoSchedule}}]}}"))
    }

    /// A node the scheduler may use like node-1..3. `ip` must be loopback (127.0.1.x).
    pub fn schedulable(name: &str, ip: &str) -> Result<Self> {
        Self::create(name, ip, "{}")
    }

    fn create(name: &str, ip: &str, spec: &str) -> Result<Self> {
        let manifest = format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations: {{kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}}
  labels: {{kubernetes.io/hostname: {name}, kubernetes.io/os: linux, type: kwok-agent-test}}
spec: {spec}
status:
  addresses: [{{type: InternalIP, address: "{ip}"}}, {{type: Hostname, address: {name}}}]
  allocatable: {{cpu: "32", memory: 128Gi, pods: "110"}}
  capacity: {{cpu: "32", memory: 128Gi, pods: "110"}}
"#
        );
        kubectl_ok(&["apply", "-f", "-"], Some(&manifest))?;
        let node = Self { name: name.to_string() };
        wait_for(&format!("node {name} Ready"), Duration::from_secs(60), || {
            let out = kubectl(
                &["get", "node", name, "-o", r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#],
                None,
            )?;
            Ok((out.stdout.trim() == "True").then_some(()))
        })?;
        Ok(node)
    }
}

impl Drop for KwokNode {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "node", &self.name, "--wait=false"], None);
    }
}

/// Node agents for some nodes, with their node directories under `nodes_dir`; stopped on drop.
pub struct NodeAgents {
    pub nodes_dir: PathBuf,
    pub nodes: Vec<String>,
    csi: Csi,
    extra_args: String,
    stopped: bool,
}

impl NodeAgents {
    /// Starts an agent per node (`hack/node-agents.sh start`), waiting until each has listed its pods.
    pub fn start(nodes_dir: &Path, nodes: &[&str], csi: Csi, extra_args: &[&str]) -> Result<Self> {
        let mut extra = extra_args.join(" ");
        if let Csi::Socket(socket) = &csi {
            extra = format!("{extra} --csi-socket {}", socket.display());
        }
        let agents = Self {
            nodes_dir: nodes_dir.to_path_buf(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            csi,
            extra_args: extra,
            stopped: false,
        };
        let out = agents.script("start", nodes)?;
        if !out.status.success() {
            bail!("hack/node-agents.sh start {} failed: {}", nodes.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(agents)
    }

    fn script(&self, action: &str, nodes: &[&str]) -> Result<Output> {
        let agent = bin_path("node-agent");
        let bin_dir = agent.parent().context("node-agent path has no directory")?;
        let mut cmd = Command::new(hack("node-agents.sh"));
        cmd.arg(action)
            .args(nodes)
            .env("FF_NODES_DIR", &self.nodes_dir)
            .env("KUBECONFIG", kubeconfig())
            .env("FERROFLUID_BIN_DIR", bin_dir)
            .env("FF_AGENT_ARGS", &self.extra_args)
            .env("FF_NODE_CSI", if matches!(self.csi, Csi::Plugin) { "1" } else { "0" });
        cmd.output().context("running hack/node-agents.sh")
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.nodes_dir.join(node)
    }

    /// The node's layout as its agent uses it (kubelet root at `/var/lib/kubelet` in the namespace).
    pub fn layout(&self, node: &str) -> NodeLayout {
        NodeLayout::new(self.node_dir(node), "/var/lib/kubelet")
    }

    /// Mount namespace of a running node (`mnt:[…]`).
    pub fn namespace_id(&self, node: &str) -> Result<String> {
        let path = self.node_dir(node).join("ns.id");
        Ok(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?.trim().to_string())
    }

    /// Runs `argv` in the node's mount namespace (`hack/node-exec`).
    pub fn exec(&self, node: &str, argv: &[&str]) -> Result<Output> {
        Command::new(hack("node-exec"))
            .arg(node)
            .arg("--")
            .args(argv)
            .env("FF_NODES_DIR", &self.nodes_dir)
            .output()
            .context("running hack/node-exec")
    }

    /// Stops every agent and checks that no process is left in their namespaces.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let namespaces: Vec<(String, String)> =
            self.nodes.iter().filter_map(|n| Some((self.namespace_id(n).ok()?, n.clone()))).collect();
        let nodes: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let out = self.script("stop", &nodes)?;
        self.stopped = true;
        if !out.status.success() {
            bail!("hack/node-agents.sh stop failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // A process the agent stopped may still be on its way out (not yet reaped) for a moment. Only
        // processes that see this node's directories count: once the namespace is gone the kernel hands
        // its number to the next new one, maybe another test's node.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for (ns, node) in namespaces {
            let ours = |ns: &str| node_namespace_pids(ns, &node);
            let mut left = ours(&ns);
            while !left.is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
                left = ours(&ns);
            }
            if !left.is_empty() {
                bail!("processes left in namespace {ns} after stop: {left:?}");
            }
        }
        Ok(())
    }
}

impl Drop for NodeAgents {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping node agents: {e:#}");
        }
    }
}

/// Pids of the processes whose mount namespace is `ns` (`mnt:[…]`).
pub fn namespace_pids(ns: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|l| l.to_string_lossy() == ns))
        .collect()
}

/// Pids of the processes in mount namespace `ns` that see `node`'s directories mounted (a namespace's
/// number is reused once it is gone: the mounts tell this node's from a newer one).
pub fn node_namespace_pids(ns: &str, node: &str) -> Vec<u32> {
    let marker = format!("/{node}/runtime-mnt");
    namespace_pids(ns)
        .into_iter()
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).is_ok_and(|m| m.contains(&marker)))
        .collect()
}

/// Pids of the processes in process group `pgid`.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                // Fields after the command (which may contain spaces) : state ppid pgrp …
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(2).map(|g| g == pgid.to_string()))
                    .unwrap_or(false)
            })
        })
        .collect()
}

/// Polls `check` every 200 ms until it yields a value; fails with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => bail!("timed out waiting for {what}: last error: {e:#}"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A one-replica StatefulSet of ferrofluid-labelled pods pinned to a private node (tolerating its taint),
/// with one container `main`; `container_fields` are extra YAML fields of that container, each line
/// indented by 8 spaces (e.g. its `command`).
pub fn private_statefulset(name: &str, node: &str, container_fields: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, labels: {{app.kubernetes.io/managed-by: ferrofluid}}}}
spec:
  replicas: 1
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, app.kubernetes.io/managed-by: ferrofluid}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: {node}}}
      tolerations: [{{key: {PRIVATE_NODE_TAINT}, operator: Exists, effect: NoSchedule}}]
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: busybox
{container_fields}
"#
    )
}

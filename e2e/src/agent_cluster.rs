//! Three agent-backed kwok nodes of one test, and the seed's objects placed on them: what the
//! real-mount scenarios (seed flow, untrusted input, secrets) share.

use crate::agent::harness::{Csi, KwokNode, NodeAgents, namespace_pids};
use crate::agent::status::{self, ContainerRecord};
use crate::cluster::kubectl_in;
use crate::{TempDir, kubectl_ok, manifest};
use anyhow::{Context, Result, ensure};

/// Agent-backed nodes `<tag>-<pid>-{0,1,2}` at `127.0.3.<first_ip + i>`, each labelled
/// `ferrofluid.io/scenario=<tag>-<pid>` (what [`dataset_yaml`]'s node affinity selects), each running a
/// real csi-plugin. Stopped and removed on drop.
pub struct AgentCluster {
    pub nodes: Vec<KwokNode>,
    pub agents: NodeAgents,
    /// `<tag>-<pid>`: the value of the nodes' scenario label.
    pub scenario: String,
    _dir: TempDir,
}

impl AgentCluster {
    pub fn start(tag: &str, first_ip: u8) -> Result<Self> {
        let pid = std::process::id();
        let scenario = format!("{tag}-{pid}");
        let dir = TempDir::new(&format!("ferrofluid-{tag}-nodes"))?;
        let mut nodes = Vec::new();
        for i in 0..3u8 {
            let node = KwokNode::private(&format!("{tag}-{pid}-{i}"), &format!("127.0.3.{}", first_ip + i))?;
            kubectl_ok(&["label", "node", &node.name, &format!("ferrofluid.io/scenario={scenario}")], None)?;
            nodes.push(node);
        }
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let agents = NodeAgents::start(&dir.0, &names, Csi::Plugin, &[])?;
        Ok(Self { nodes, agents, scenario, _dir: dir })
    }

    pub fn node(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Runs `script` with `sh -c` in a node's mount namespace (test code, not a container); its stdout.
    pub fn exec(&self, node: &str, script: &str) -> Result<String> {
        let out = self.agents.exec(node, &["sh", "-c", script])?;
        ensure!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The node's `fuse.juicefs` mounts, as mountinfo lines.
    pub fn fuse_mounts(&self, node: &str) -> Result<String> {
        self.exec(node, "grep fuse.juicefs /proc/self/mountinfo || true")
    }

    /// PIDs of the juicefs processes running in the node's mount namespace. Found by `comm`, not
    /// `cmdline`: reading a process's `cmdline` waits for its memory map, which a thread blocked on an
    /// unanswered FUSE request may hold forever — the check must report such a process, not hang on it.
    pub fn juicefs_processes(&self, node: &str) -> Result<Vec<u32>> {
        let ns = self.agents.namespace_id(node)?;
        Ok(namespace_pids(&ns).into_iter().filter(|p| is_juicefs(*p)).collect())
    }

    /// PID of the node's csi-plugin (the one its agent runs and restarts).
    pub fn csi_plugin_pid(&self, node: &str) -> Result<u32> {
        let ns = self.agents.namespace_id(node)?;
        namespace_pids(&ns)
            .into_iter()
            .find(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| c.split(|b| *b == 0).next().is_some_and(|argv0| argv0.ends_with(b"/csi-plugin")))
                    .unwrap_or(false)
            })
            .with_context(|| format!("no csi-plugin runs on {node}"))
    }

    /// PID (and process group) of a container the node's agent runs, while it runs.
    pub fn container_pid(&self, node: &str, ns: &str, pod: &str, container: &str) -> Result<Option<u32>> {
        let path = self.agents.layout(node).container_status(ns, pod, container);
        let record: ContainerRecord = status::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(record.pid.filter(|_| record.state == "running"))
    }

    /// The node agent's own log (what it did as kubelet: volumes staged, published, unpublished…).
    pub fn agent_log(&self, node: &str) -> std::path::PathBuf {
        self.agents.layout(node).logs_dir().join("node-agent.log")
    }

    /// What runs or remains on these nodes although no pod of ferrofluid should: `fuse.juicefs` mounts
    /// (FUSE mounts and the binds of them in pods), juicefs processes, and anything in the node's own
    /// `/dev/shm` (where the seed's MEM cache level puts its cache directory). Empty when clean.
    pub fn node_leftovers(&self, nodes: &[&str]) -> Result<Vec<String>> {
        let mut left = Vec::new();
        for node in nodes {
            for line in self.fuse_mounts(node)?.lines() {
                let point = line.split(' ').nth(4).unwrap_or(line);
                left.push(format!("{node}: FUSE mount {point}"));
            }
            for pid in self.juicefs_processes(node)? {
                left.push(format!("{node}: juicefs process {pid}"));
            }
            for entry in self.exec(node, "ls -A /dev/shm")?.split_whitespace() {
                left.push(format!("{node}: /dev/shm/{entry}"));
            }
        }
        Ok(left)
    }
}

/// The seed's Dataset (name `jfsdemo`) with the bucket filled in and the metaurl from Secret
/// `jfs-secret`, plus — so that its workers land on an [`AgentCluster`] — a toleration for the agent
/// nodes and node affinity for `scenario`. `extra_spec` is appended to the Dataset's spec; unless it
/// sets `accessModes`, the dataset asks for `ReadWriteMany` (the tests write through it; the default,
/// as in Fluid, is `ReadOnlyMany`).
pub fn dataset_yaml(meta_url: &str, bucket: &str, scenario: &str, extra_spec: &str) -> String {
    let modes = if extra_spec.contains("accessModes:") { "" } else { "  accessModes: [ReadWriteMany]\n" };
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: jfs-secret
stringData:
  metaurl: {meta_url}
---
apiVersion: data.fluid.io/v1alpha1
kind: Dataset
metadata:
  name: jfsdemo
spec:
  mounts:
    - name: test
      mountPoint: "juicefs:///demo"
      options:
        bucket: "{bucket}"
      encryptOptions:
        - name: metaurl
          valueFrom:
            secretKeyRef:
              name: jfs-secret
              key: metaurl
  tolerations:
    - {{key: ferrofluid.io/agent-test, operator: Exists, effect: NoSchedule}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {{key: ferrofluid.io/scenario, operator: In, values: ["{scenario}"]}}
{modes}{extra_spec}"#
    )
}

/// The seed's demo-app pod, unchanged but for its name and the node it is placed on.
pub fn pod_yaml(name: &str, node: &str) -> String {
    manifest("seed-pod.yaml")
        .replace("name: demo-app", &format!("name: {name}"))
        .replace("spec:\n", &format!("spec:\n  nodeName: {node}\n  tolerations: [{{operator: Exists}}]\n"))
}

/// Where the agent publishes PV `pv` for pod `pod` (as kubelet would).
pub fn pod_volume_dir(ns: &str, pod: &str, pv: &str) -> Result<String> {
    let uid = kubectl_in(ns, &["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"])?;
    Ok(format!("/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/{pv}/mount"))
}

/// Whether process `pid` is a `juicefs` (by its `comm`, which never blocks).
pub fn is_juicefs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "juicefs")
}

/// Runs `script` with `sh -c` in `node`'s mount namespace; its stdout, or an error with its stderr.
pub fn sh(agents: &NodeAgents, node: &str, script: &str) -> Result<String> {
    let out = agents.exec(node, &["sh", "-c", script])?;
    ensure!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The JuiceFS FUSE mounts `node` sees (its mountinfo lines).
pub fn fuse_mounts(agents: &NodeAgents, node: &str) -> String {
    sh(agents, node, "grep fuse.juicefs /proc/self/mountinfo || true").expect("mountinfo")
}

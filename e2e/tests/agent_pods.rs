//! The node agent runs ferrofluid's pods on an agent-backed node: exactly their command and args, with
//! env resolved like kubelet (value, fieldRef, secretKeyRef, configMapKeyRef, `$(VAR)`), inside the
//! node's own mount namespace; it stops them (preStop hook, then signals) when the pod is deleted,
//! records a command that cannot run without retrying it in a hot loop, ignores pods ferrofluid did not
//! create, and leaves no process behind when stopped.

use anyhow::{Context, Result, bail};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, group_pids, namespace_pids, wait_for};
use ferrofluid_e2e::agent::status::{self, ContainerRecord, PodRecord};
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn record<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    status::read(path).map(Some)
}

#[test]
fn agent_runs_ferrofluid_pods_in_the_node_namespace() -> Result<()> {
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("ferrofluid-agent-pods-{pid}")));
    let node_name = format!("agent-pods-{pid}");
    let node = KwokNode::private(&node_name, &format!("127.0.1.{}", 200 + pid % 50))?;
    let ns = TestNamespace::new("agent-pods")?;
    let mut agents = NodeAgents::start(
        &dir.0,
        &[&node.name],
        Csi::None,
        &["--backoff-initial-secs", "1", "--backoff-max-secs", "8"],
    )?;
    let layout = agents.layout(&node.name);
    let node_ns = agents.namespace_id(&node.name)?;
    let work = format!("/runtime-mnt/test-{}", ns.name);

    kubectl_ok(&["-n", &ns.name, "create", "secret", "generic", "creds", "--from-literal=secret=s3cr3t"], None)?;
    kubectl_ok(&["-n", &ns.name, "create", "configmap", "settings", "--from-literal=value=cm-value"], None)?;
    let pods = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: other, labels: {{app: not-ours}}}}
spec:
  nodeName: {node}
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'mkdir -p {work} && echo ran > {work}/other; sleep 3600']
---
apiVersion: v1
kind: Pod
metadata: {{name: writer, labels: {{app.kubernetes.io/managed-by: ferrofluid}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: [sh, -c]
    args: ['echo "$GREETING $(POD_IP) $SECRET $(CM_VALUE) $(POD_NAME)" > {work}/out; sleep 3600 & wait']
    env:
    - {{name: GREETING, value: hello}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: SECRET, valueFrom: {{secretKeyRef: {{name: creds, key: secret}}}}}}
    - {{name: CM_VALUE, valueFrom: {{configMapKeyRef: {{name: settings, key: value}}}}}}
    lifecycle:
      preStop: {{exec: {{command: [sh, -c, 'echo bye > {work}/prestop']}}}}
  volumes:
  - {{name: work, hostPath: {{path: {work}, type: DirectoryOrCreate}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: broken, labels: {{app.kubernetes.io/managed-by: ferrofluid}}}}
spec:
  nodeName: {node}
  containers:
  - {{name: main, image: busybox, command: [/nonexistent/juicefs, mount]}}
"#,
        node = node.name,
    );
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&pods))?;

    // The writer ran in the node's namespace with every variable resolved.
    let pod_ip = wait_for("writer's pod IP", WAIT, || {
        let ip = kubectl_ok(&["-n", &ns.name, "get", "pod", "writer", "-o", "jsonpath={.status.podIP}"], None)?;
        Ok((!ip.trim().is_empty()).then(|| ip.trim().to_string()))
    })?;
    let out_path = format!("{work}/out");
    let out = wait_for("the writer's output inside the node", WAIT, || {
        let out = agents.exec(&node.name, &["cat", &out_path])?;
        Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
    })?;
    assert_eq!(out.trim(), format!("hello {pod_ip} s3cr3t cm-value writer"));
    assert!(!Path::new(&out_path).exists(), "{out_path} leaked to the host's /runtime-mnt");
    assert!(
        agents.node_dir(&node.name).join(format!("runtime-mnt/test-{}/out", ns.name)).exists(),
        "the node's /runtime-mnt is not backed by its node directory"
    );
    let writer: ContainerRecord =
        record(&layout.container_status(&ns.name, "writer", "main"))?.context("no status record for the writer")?;
    assert_eq!(writer.state, "running");
    let writer_pid = writer.pid.context("running writer has no pid")?;
    assert!(namespace_pids(&node_ns).contains(&writer_pid), "writer does not run in the node's namespace");
    // `sleep 3600 &` runs in the container's process group, so it must end with the container.
    wait_for("the writer's sleep child in its process group", WAIT, || {
        Ok((group_pids(writer_pid).len() >= 2).then_some(()))
    })?;

    // A command that does not exist fails, is recorded, and is retried with a growing backoff.
    let broken_status = layout.container_status(&ns.name, "broken", "main");
    let broken: ContainerRecord = wait_for("three failed starts of the broken pod", WAIT, || {
        let r: Option<ContainerRecord> = record(&broken_status)?;
        Ok(r.filter(|r| r.failures >= 3 && r.backoff_secs.is_some()))
    })?;
    assert_eq!(broken.state, "start-failed");
    assert_eq!(broken.starts, 0);
    assert_eq!(broken.message.as_deref(), Some("executable not found: /nonexistent/juicefs"));
    let expected_backoff = (2f64.powi(broken.failures as i32 - 1)).min(8.0);
    assert_eq!(broken.backoff_secs, Some(expected_backoff), "restart delay must double per failure");
    let log = std::fs::read_to_string(layout.container_log(&ns.name, "broken", "main"))?;
    assert!(log.matches("executable not found: /nonexistent/juicefs").count() >= 3, "log: {log}");
    let events = kubectl_ok(
        &[
            "-n",
            &ns.name,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=broken",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    )?;
    assert!(events.contains("Failed"), "no Failed event on the broken pod: {events}");

    // A pod ferrofluid did not create is known to the agent but its containers never run.
    let other: PodRecord =
        wait_for("the agent's record of the other pod", WAIT, || record(&layout.pod_status(&ns.name, "other")))?;
    assert!(!other.runs_containers);
    assert!(!layout.container_status(&ns.name, "other", "main").exists());
    let probe = agents.exec(&node.name, &["test", "-e", &format!("{work}/other")])?;
    assert!(!probe.status.success(), "the non-ferrofluid pod's command ran");

    // Deleting the pod runs its preStop hook and stops the process and its children.
    kubectl_ok(&["-n", &ns.name, "delete", "pod", "writer", "--wait=false"], None)?;
    wait_for("the writer's processes to end", WAIT, || Ok(group_pids(writer_pid).is_empty().then_some(())))?;
    let stopped: ContainerRecord = wait_for("the writer's stopped record", WAIT, || {
        let r: Option<ContainerRecord> = record(&layout.container_status(&ns.name, "writer", "main"))?;
        Ok(r.filter(|r| r.state == "stopped"))
    })?;
    assert_eq!(stopped.pid, None);
    let prestop = agents.exec(&node.name, &["cat", &format!("{work}/prestop")])?;
    assert_eq!(String::from_utf8_lossy(&prestop.stdout).trim(), "bye", "preStop hook did not run");

    // Stopping the agent leaves no process, mount or namespace behind.
    agents.stop()?;
    if !namespace_pids(&node_ns).is_empty() {
        bail!("processes left in the node namespace");
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let nodes_dir = dir.0.display().to_string();
    assert!(!mountinfo.contains(&nodes_dir), "a mount of {nodes_dir} is visible on the host");
    assert!(!agents.node_dir(&node.name).join("ns.pid").exists());
    Ok(())
}

//! The node agent runs `exec` readiness probes like kubelet: a running container with such a probe is
//! not ready (its StatefulSet counts no ready replica) until the probe succeeds, and becomes not ready
//! again after `failureThreshold` failures in a row, without being restarted. The probe runs in the
//! node's mount namespace, where `/tmp` is the host's, so the test flips it by creating and removing a
//! file. A container whose probe type the agent does not run (`httpGet`) is ready while running.

use anyhow::{Context, Result};
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, private_statefulset, wait_for};
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// Removes a file or directory tree when dropped (node dirs after the agents stop, the probe's file).
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn statefulset(name: &str, node: &str, probe: &str) -> String {
    private_statefulset(
        name,
        node,
        &format!("        command: [sh, -c, 'sleep 3600']\n        readinessProbe: {probe}"),
    )
}

fn get_json(ns: &str, what: &[&str]) -> Result<Value> {
    let mut args = vec!["-n", ns, "get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    let out = kubectl_ok(&args, None)?;
    serde_json::from_str(&out).context("parsing kubectl output")
}

fn ready_condition(pod: &Value) -> Option<String> {
    let conds = pod["status"]["conditions"].as_array()?;
    conds.iter().find(|c| c["type"] == "Ready").and_then(|c| c["status"].as_str()).map(String::from)
}

/// `(status.replicas, status.readyReplicas)` of a StatefulSet.
fn replicas(ns: &str, name: &str) -> Result<(i64, i64)> {
    let sts = get_json(ns, &["statefulset", name])?;
    let st = &sts["status"];
    Ok((st["replicas"].as_i64().unwrap_or(0), st["readyReplicas"].as_i64().unwrap_or(0)))
}

/// The pod's Ready condition and its container's `ready`, once the agent has reported it running.
fn reported(ns: &str, pod: &str) -> Result<Option<(String, bool, i64)>> {
    let pod = get_json(ns, &["pod", pod])?;
    let cs = &pod["status"]["containerStatuses"][0];
    // `started` is only in the agent's status (kwok's has no such field).
    if cs["started"] != true || !cs["state"]["running"].is_object() {
        return Ok(None);
    }
    let ready = cs["ready"].as_bool().unwrap_or(false);
    Ok(ready_condition(&pod).map(|c| (c, ready, cs["restartCount"].as_i64().unwrap_or(-1))))
}

#[test]
fn agent_runs_exec_readiness_probes() -> Result<()> {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    let flag = Remove(PathBuf::from(format!("/tmp/ferrofluid-ready-{pid}-{nanos}")));
    let dir = Remove(std::env::temp_dir().join(format!("ferrofluid-agent-readiness-{pid}")));
    let node = KwokNode::private(&format!("agent-ready-{pid}"), &format!("127.0.1.{}", 150 + pid % 50))?;
    let ns = TestNamespace::new("agent-ready")?;
    let mut agents = NodeAgents::start(&dir.0, &[&node.name], Csi::None, &[])?;

    let exec = format!(
        "{{exec: {{command: [sh, -c, 'test -f {}']}}, periodSeconds: 1, failureThreshold: 2}}",
        flag.0.display()
    );
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&statefulset("probed", &node.name, &exec)))?;
    let http = "{httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}";
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&statefulset("http", &node.name, http)))?;

    // Running but not ready while the probe fails (kwok had marked the pod Ready).
    wait_for("probed-0 reported running and not ready", WAIT, || {
        Ok((reported(&ns.name, "probed-0")? == Some(("False".into(), false, 0))).then_some(()))
    })?;
    wait_for("statefulset probed with 0 ready replicas", WAIT, || {
        Ok((replicas(&ns.name, "probed")? == (1, 0)).then_some(()))
    })?;
    // Several probe periods later it still is not ready.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reported(&ns.name, "probed-0")?, Some(("False".into(), false, 0)));
    assert_eq!(replicas(&ns.name, "probed")?, (1, 0));

    // The unsupported probe type is ignored: ready while running.
    wait_for("statefulset http with 1 ready replica", WAIT, || {
        Ok((replicas(&ns.name, "http")? == (1, 1)).then_some(()))
    })?;
    assert_eq!(reported(&ns.name, "http-0")?, Some(("True".into(), true, 0)));

    // The probe succeeds: ready.
    std::fs::write(&flag.0, b"").with_context(|| format!("creating {}", flag.0.display()))?;
    wait_for("statefulset probed with 1 ready replica", WAIT, || {
        Ok((replicas(&ns.name, "probed")? == (1, 1)).then_some(()))
    })?;
    assert_eq!(reported(&ns.name, "probed-0")?, Some(("True".into(), true, 0)));

    // It fails again: not ready after failureThreshold periods, and not restarted.
    std::fs::remove_file(&flag.0).with_context(|| format!("removing {}", flag.0.display()))?;
    wait_for("statefulset probed back to 0 ready replicas", WAIT, || {
        Ok((replicas(&ns.name, "probed")? == (1, 0)).then_some(()))
    })?;
    assert_eq!(reported(&ns.name, "probed-0")?, Some(("False".into(), false, 0)));
    let events = get_json(&ns.name, &["events", "--field-selector", "involvedObject.name=probed-0"])?;
    let unhealthy: Vec<&str> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == "Unhealthy")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(unhealthy.contains(&"readiness probe failed: exit 1"), "Unhealthy events: {unhealthy:?}");

    kubectl_ok(&["-n", &ns.name, "delete", "statefulset", "probed", "http", "--wait=true", "--timeout=60s"], None)?;
    wait_for("pods gone", WAIT, || {
        let pods = get_json(&ns.name, &["pods"])?;
        Ok(pods["items"].as_array().is_some_and(|a| a.is_empty()).then_some(()))
    })?;
    agents.stop()?;
    Ok(())
}

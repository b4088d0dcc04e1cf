//! The node agent reports the containers it runs in the Pod's status like kubelet: a container that
//! keeps exiting makes the pod un-Ready (with its exit code in `lastState.terminated`, and the tail of
//! its log as the message only when its `terminationMessagePolicy` is `FallbackToLogsOnError`), so its
//! StatefulSet counts no ready replica; a container that keeps running leaves its pod Ready. kwok
//! (which marked both pods Ready) does not overwrite what the agent reports.

use anyhow::{Context, Result};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, private_statefulset, wait_for};
use ferrofluid_e2e::{TestNamespace, kubectl_ok};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn statefulset(name: &str, node: &str, script: &str) -> String {
    private_statefulset(
        name,
        node,
        &format!("        command: [sh, -c, '{script}']\n        terminationMessagePolicy: FallbackToLogsOnError"),
    )
}

/// The same with the default `terminationMessagePolicy: File`.
fn statefulset_file_policy(name: &str, node: &str, script: &str) -> String {
    private_statefulset(name, node, &format!("        command: [sh, -c, '{script}']"))
}

fn get_json(ns: &str, what: &[&str]) -> Result<Value> {
    let mut args = vec!["-n", ns, "get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    let out = kubectl_ok(&args, None)?;
    serde_json::from_str(&out).context("parsing kubectl output")
}

fn condition<'a>(pod: &'a Value, type_: &str) -> Option<&'a Value> {
    pod["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

/// `(status.replicas, status.readyReplicas)` of a StatefulSet.
fn replicas(ns: &str, name: &str) -> Result<(i64, i64)> {
    let sts = get_json(ns, &["statefulset", name])?;
    let st = &sts["status"];
    Ok((st["replicas"].as_i64().unwrap_or(0), st["readyReplicas"].as_i64().unwrap_or(0)))
}

#[test]
fn agent_reports_crashing_containers_in_pod_status() -> Result<()> {
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("ferrofluid-agent-pod-status-{pid}")));
    let node = KwokNode::private(&format!("agent-status-{pid}"), &format!("127.0.1.{}", 50 + pid % 50))?;
    let ns = TestNamespace::new("agent-status")?;
    let mut agents = NodeAgents::start(
        &dir.0,
        &[&node.name],
        Csi::None,
        &["--backoff-initial-secs", "1", "--backoff-max-secs", "4", "--ready-after-secs", "2"],
    )?;

    kubectl_ok(
        &["-n", &ns.name, "apply", "-f", "-"],
        Some(&statefulset("crash", &node.name, "echo boom; echo detail >&2; exit 3")),
    )?;
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&statefulset("steady", &node.name, "sleep 3600")))?;
    kubectl_ok(
        &["-n", &ns.name, "apply", "-f", "-"],
        Some(&statefulset_file_policy("quiet", &node.name, "echo secret-ish-line; exit 4")),
    )?;

    // The crashing pod: Ready False naming the container, exit code 3 and its stderr in lastState.
    let crashed = wait_for("crash-0 reported un-Ready with its exit code and log", WAIT, || {
        let pod = get_json(&ns.name, &["pod", "crash-0"])?;
        let ready = condition(&pod, "Ready").map(|c| c["status"] == "False").unwrap_or(false);
        let cs = &pod["status"]["containerStatuses"][0];
        let term = &cs["lastState"]["terminated"];
        Ok((ready && term["exitCode"] == 3).then_some(pod))
    })?;
    let cs = &crashed["status"]["containerStatuses"][0];
    let term = &cs["lastState"]["terminated"];
    let message = term["message"].as_str().unwrap_or_default();
    assert!(message.contains("detail") && message.contains("boom"), "terminated message: {message:?}");
    assert_eq!(term["reason"], "Error");
    assert_eq!(cs["name"], "main");
    // With the default policy (File) nothing of the log reaches the status, exactly as with kubelet.
    let quiet = wait_for("quiet-0 reported with its exit code", WAIT, || {
        let pod = get_json(&ns.name, &["pod", "quiet-0"])?;
        let term = pod["status"]["containerStatuses"][0]["lastState"]["terminated"].clone();
        Ok((term["exitCode"] == 4).then_some(term))
    })?;
    assert!(quiet.get("message").is_none_or(Value::is_null), "File policy copied the log: {quiet}");
    assert_eq!(cs["ready"], false);
    assert!(cs["restartCount"].as_i64().unwrap_or(0) >= 1, "restartCount: {}", cs["restartCount"]);
    for type_ in ["Ready", "ContainersReady"] {
        let c = condition(&crashed, type_).with_context(|| format!("no {type_} condition"))?;
        assert_eq!(c["status"], "False", "{type_}: {c}");
        assert_eq!(c["reason"], "ContainersNotReady", "{type_}: {c}");
        assert!(c["message"].as_str().unwrap_or_default().contains("main"), "{type_}: {c}");
    }
    // kwok's fields stay as kwok set them.
    assert_eq!(crashed["status"]["phase"], "Running");
    assert!(crashed["status"]["podIP"].as_str().is_some_and(|ip| ip.starts_with("127.")));
    assert!(crashed["status"]["hostIP"].as_str().is_some() && crashed["status"]["startTime"].as_str().is_some());

    // While it backs off, the pod says so.
    wait_for("crash-0 waiting in CrashLoopBackOff", WAIT, || {
        let pod = get_json(&ns.name, &["pod", "crash-0"])?;
        let reason = &pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
        Ok((reason == "CrashLoopBackOff").then_some(()))
    })?;
    // The StatefulSet controller sees it: no ready replica.
    wait_for("statefulset crash with 0 ready replicas", WAIT, || {
        Ok((replicas(&ns.name, "crash")? == (1, 0)).then_some(()))
    })?;

    // The steady pod: still Ready after the crashing one has been reported, never restarted.
    wait_for("statefulset steady with 1 ready replica", WAIT, || {
        Ok((replicas(&ns.name, "steady")? == (1, 1)).then_some(()))
    })?;
    let steady = get_json(&ns.name, &["pod", "steady-0"])?;
    assert_eq!(condition(&steady, "Ready").map(|c| c["status"].clone()), Some(Value::from("True")), "{steady}");
    let cs = &steady["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert_eq!(cs["restartCount"], 0);
    // `started` is the agent's (kwok's status has no such field): the agent reported it running.
    assert_eq!(cs["started"], true, "steady status: {cs}");
    assert!(cs["state"]["running"].is_object(), "steady state: {}", cs["state"]);

    kubectl_ok(
        &["-n", &ns.name, "delete", "statefulset", "crash", "steady", "quiet", "--wait=true", "--timeout=60s"],
        None,
    )?;
    wait_for("pods gone", WAIT, || {
        let pods = get_json(&ns.name, &["pods"])?;
        Ok(pods["items"].as_array().is_some_and(|a| a.is_empty()).then_some(()))
    })?;
    agents.stop()?;
    Ok(())
}

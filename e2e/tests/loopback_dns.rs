//! The control plane resolves no name: `kubectl logs` and `kubectl exec` make the apiserver connect to
//! the pod's node, and it must do so by the node's InternalIP (127.0.1.i), never by looking up its
//! Hostname (`node-i`) through a resolver that is not loopback.
//!
//! hack/local-cluster.sh runs the control plane with a resolv.conf that names only its DNS recorder
//! (`ferrofluid_e2e::dns_recorder`). The test checks that the apiserver really resolves through it,
//! that the recorder answers and records a probe of the test's own, then that after `logs` and `exec`
//! the recorder's log holds nothing but probes (this run's and earlier runs', all under [`PROBES`]):
//! any query the control plane made since the cluster started fails it. Last, that `logs` and `exec`
//! did reach the apiserver's dial to the node, at its InternalIP.

use anyhow::{Context, Result, ensure};
use ferrofluid_e2e::cluster::wait_field;
use ferrofluid_e2e::dns_recorder::{REFUSED, Recorder, component_pid};
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{Kubectl, TestNamespace, kubectl, kubectl_ok};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NODE: &str = "node-1";
/// The domain of the test's probe names (`.invalid` is never delegated, RFC 6761).
const PROBES: &str = "loopback-dns.invalid";

/// Queries `name` and waits until the recorder's log has it; the answer must be REFUSED.
async fn probe(recorder: &Recorder, name: &str) -> Result<()> {
    let rcode = recorder.query(name)?;
    ensure!(rcode == REFUSED, "the recorder answered {name} with rcode {rcode}, not REFUSED");
    let logged = format!(" {name}. from ");
    eventually(&format!("{name} in {}", recorder.log_path().display()), Duration::from_secs(10), || async {
        Ok(recorder.log_lines()?.iter().any(|l| l.contains(&logged)).then_some(()))
    })
    .await;
    Ok(())
}

fn shown(what: &str, out: &Kubectl) -> String {
    format!("{what}: ok={} stdout={:?} stderr={:?}", out.ok, out.stdout.trim(), out.stderr.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_exec_resolve_no_name() -> Result<()> {
    let recorder = Recorder::of_local_cluster()?;

    // The apiserver (by the pid the script stops it by) sees the recorder's resolv.conf as its own.
    let pid = component_pid(&recorder.state, "kube-apiserver")?;
    let ours = std::fs::read_to_string(recorder.resolv_conf())?;
    let its = std::fs::read_to_string(format!("/proc/{pid}/root/etc/resolv.conf"))
        .context("reading the apiserver's /etc/resolv.conf")?;
    ensure!(its == ours, "the apiserver resolves through {its:?}, not the recorder's {ours:?}");

    // The recorder is there: it answers and records a name only this run asks for.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let first = format!("before-{}-{nanos}.{PROBES}", std::process::id());
    let last = format!("after-{}-{nanos}.{PROBES}", std::process::id());
    probe(&recorder, &first).await?;

    let ns = TestNamespace::new("loopback-dns")?;
    eventually("the default service account", Duration::from_secs(60), || async {
        Ok(kubectl(&["-n", &ns.name, "get", "serviceaccount", "default"], None)?.ok.then_some(()))
    })
    .await;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: idle}}\nspec:\n  nodeName: {NODE}\n  containers:\n  - {{name: main, image: busybox, command: [sleep, infinity]}}\n"
    );
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&pod))?;
    wait_field(&ns.name, "pod", "idle", ".status.phase", "Running", Duration::from_secs(60)).await;

    // Both make the apiserver connect to the node; whether kwok serves them does not matter here.
    let logs = kubectl(&["--request-timeout=30s", "-n", &ns.name, "logs", "idle"], None)?;
    let exec = kubectl(&["--request-timeout=30s", "-n", &ns.name, "exec", "idle", "--", "true"], None)?;
    let tried = format!("{}\n{}", shown("kubectl logs", &logs), shown("kubectl exec", &exec));

    // A second probe after them: the recorder still runs, and everything before it is in the log.
    probe(&recorder, &last).await?;
    let lines = recorder.log_lines()?;
    let probe_line = format!(".{PROBES}. from ");
    let unexpected: Vec<&str> = lines.iter().map(String::as_str).filter(|l| !l.contains(&probe_line)).collect();
    ensure!(
        unexpected.is_empty(),
        "the control plane sent DNS queries ({}):\n{}\n{tried}",
        recorder.log_path().display(),
        unexpected.join("\n")
    );

    // Without that dial (say kubectl failed before it), the empty log would prove nothing.
    let ip = kubectl_ok(
        &["get", "node", NODE, "-o", r#"jsonpath={.status.addresses[?(@.type=="InternalIP")].address}"#],
        None,
    )?;
    let dialed = format!("dial tcp {}:", ip.trim());
    for out in [&logs, &exec] {
        ensure!(out.ok || out.stderr.contains(&dialed), "the apiserver did not connect to {NODE} at {ip}:\n{tried}");
    }
    Ok(())
}

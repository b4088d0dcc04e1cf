//! Reading the cluster from tests: kubectl in a namespace, waiting for a field, and listing what a
//! dataset left behind.

use crate::process::eventually;
use crate::{kubectl, kubectl_ok};
use anyhow::Result;
use ferrofluid_api::DatasetKey;
use std::time::Duration;

/// `kubectl -n NS ARGS…`, failing unless it succeeds; its stdout.
pub fn kubectl_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    kubectl_ok(&all, None)
}

/// Waits until the JSONPath `path` of `kind/name` reads `want`.
pub async fn wait_field(ns: &str, kind: &str, name: &str, path: &str, want: &str, timeout: Duration) {
    eventually(&format!("{kind}/{name} {path} = {want}"), timeout, || async {
        let v = kubectl_in(ns, &["get", kind, name, "-o", &format!("jsonpath={{{path}}}"), "--ignore-not-found"])?;
        Ok((v == want).then_some(()))
    })
    .await
}

/// Objects of a dataset that still exist: the dataset, its runtime, PVC, PV, workloads, and node
/// labels naming it. Empty once everything is cleaned up.
pub fn leftovers(key: &DatasetKey) -> Result<Vec<String>> {
    let mut left = Vec::new();
    let pv = key.pv_name();
    let worker = key.worker_statefulset_name();
    let fuse = key.fuse_daemonset_name();
    for (kind, name) in [
        ("dataset", key.name.as_str()),
        ("juicefsruntime", key.name.as_str()),
        ("pvc", key.pvc_name().as_str()),
        ("pv", pv.as_str()),
        ("statefulset", worker.as_str()),
        ("daemonset", fuse.as_str()),
    ] {
        let out = kubectl(&["-n", &key.namespace, "get", kind, name, "-o", "name", "--ignore-not-found"], None)?;
        anyhow::ensure!(out.ok, "{}", out.stderr);
        if !out.stdout.trim().is_empty() {
            left.push(out.stdout.trim().to_string());
        }
    }
    let labels = kubectl_ok(
        &["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels}{\"\\n\"}{end}"],
        None,
    )?;
    use ferrofluid_api::keys::CapacityKind::{Disk, Memory, Total};
    let ours = [
        key.worker_node_label(),
        key.juicefs_worker_node_label(),
        key.fuse_node_label(),
        key.capacity_node_label(Memory),
        key.capacity_node_label(Disk),
        key.capacity_node_label(Total),
    ];
    for line in labels.lines() {
        if ours.iter().any(|k| line.contains(&format!("\"{k}\""))) {
            left.push(format!("labels on {}", line.split_whitespace().next().unwrap_or_default()));
        }
    }
    Ok(left)
}

/// Waits until the pod runs with an IP (kwok assigns one) and returns it; fails if the IP is not loopback.
pub async fn wait_for_loopback_pod_ip(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    name: &str,
    timeout: Duration,
) -> Result<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let status = pods.get(name).await?.status.unwrap_or_default();
        if let (Some("Running"), Some(ip)) = (status.phase.as_deref(), status.pod_ip) {
            anyhow::ensure!(ip.starts_with("127."), "pod {name} got non-loopback IP {ip}");
            return Ok(ip);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "pod {name} never ran with an IP (is kwok up?)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! Faults of the local control plane itself: one component killed (SIGKILL), kept down a while, and
//! started again with exactly the command `hack/local-cluster.sh up` started it with
//! (`hack/local-cluster.sh restart`), which returns once the component is healthy again.

use anyhow::{Context, Result, ensure};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Kills `component` (`etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler` or
/// `kwok`) with SIGKILL, keeps it down for `down`, starts it again and waits until it is healthy.
/// Returns how long it was unavailable (kill to healthy), as the script measured it.
///
/// The cluster is the one whose kubeconfig the tests use: its state directory is the kubeconfig's
/// directory (`$FERROFLUID_LOCAL`), and the script reads ports from the recorded commands.
pub fn restart(component: &str, down: Duration) -> Result<Duration> {
    let kubeconfig = crate::kubeconfig();
    let local = kubeconfig.parent().context("kubeconfig has no directory")?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/local-cluster.sh");
    let out = Command::new(script)
        .args(["restart", component, "--down", &down.as_secs_f64().to_string()])
        .env("FERROFLUID_LOCAL", local)
        .output()
        .context("running hack/local-cluster.sh restart")?;
    ensure!(
        out.status.success(),
        "hack/local-cluster.sh restart {component} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let millis: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("restart printed {:?}", String::from_utf8_lossy(&out.stdout)))?;
    Ok(Duration::from_millis(millis))
}

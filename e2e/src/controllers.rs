//! The two controllers started for one test, scoped to its namespace so parallel tests do not meet.

use crate::process::Component;
use crate::redis::free_port;
use anyhow::Result;

pub struct Controllers {
    pub dataset: Component,
    pub runtime: Component,
    ns: String,
}

impl Controllers {
    pub fn start(ns: &str) -> Result<Self> {
        Ok(Self { dataset: start_dataset(ns, "dsctl")?, runtime: start_runtime(ns, "rtctl")?, ns: ns.into() })
    }

    /// Replaces the runtime-controller with a fresh process (after a kill).
    pub fn restart_runtime(&mut self) -> Result<()> {
        self.runtime.kill();
        self.runtime = start_runtime(&self.ns, "rtctl2")?;
        Ok(())
    }
}

impl Drop for Controllers {
    /// Deletes the namespace's datasets and runtimes and waits (bounded) until the still-running
    /// controllers have cleaned up after them, so no finalizer, PV or node label outlives the test.
    fn drop(&mut self) {
        let ns = self.ns.as_str();
        // Pods first: a pod still using the PVC would (rightly) hold the dataset's deletion.
        let _ = crate::kubectl(&["-n", ns, "delete", "pods", "--all", "--grace-period=0", "--force"], None);
        let _ = crate::kubectl(&["-n", ns, "delete", "datasets,juicefsruntimes", "--all", "--wait=false"], None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let left = crate::kubectl(&["-n", ns, "get", "datasets,juicefsruntimes", "-o", "name"], None);
            if left.map(|o| o.ok && o.stdout.trim().is_empty()).unwrap_or(false) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        eprintln!("controllers of {ns}: datasets or runtimes still present after 60 s");
    }
}

fn addr() -> Result<String> {
    Ok(format!("127.0.0.1:{}", free_port()?))
}

pub fn start_dataset(ns: &str, label: &str) -> Result<Component> {
    let addr = addr()?;
    Component::start(
        "dataset-controller",
        &format!("{label}-{ns}"),
        &["--namespace", ns, "--http-addr", &addr, "--leader-elect=false", "--recheck-seconds", "1"],
    )
}

pub fn start_runtime(ns: &str, label: &str) -> Result<Component> {
    let addr = addr()?;
    Component::start(
        "runtime-controller",
        &format!("{label}-{ns}"),
        &["--namespace", ns, "--http-addr", &addr, "--leader-elect=false", "--resync-seconds", "5"],
    )
}

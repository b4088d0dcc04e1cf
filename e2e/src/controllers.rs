//! The two controllers started for one test, scoped to its namespace so parallel tests do not meet.

use crate::process::Component;
use crate::redis::free_port;
use anyhow::Result;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Controllers {
    pub dataset: Component,
    pub runtime: Component,
    ns: String,
    runtime_args: Vec<String>,
    /// Processes started so far, so each gets a log file of its own.
    starts: u32,
}

impl Controllers {
    pub fn start(ns: &str) -> Result<Self> {
        Self::start_with(ns, &[])
    }

    /// Like [`Controllers::start`], with extra flags for the runtime-controller (they win over the
    /// defaults, e.g. `--host-port-range`).
    pub fn start_with(ns: &str, runtime_args: &[&str]) -> Result<Self> {
        let runtime_args: Vec<String> = runtime_args.iter().map(|a| a.to_string()).collect();
        Ok(Self {
            dataset: start_dataset(ns, "dsctl")?,
            runtime: start_runtime_with(ns, "rtctl", &runtime_args)?,
            ns: ns.into(),
            runtime_args,
            starts: 0,
        })
    }

    /// Replaces the runtime-controller with a fresh process (after a kill).
    pub fn restart_runtime(&mut self) -> Result<()> {
        self.runtime.kill();
        self.starts += 1;
        self.runtime = start_runtime_with(&self.ns, &format!("rtctl{}", self.starts + 1), &self.runtime_args)?;
        Ok(())
    }

    /// Starts a fresh runtime-controller (after the last one was stopped).
    pub fn start_runtime(&mut self) -> Result<()> {
        self.starts += 1;
        self.runtime = start_runtime_with(&self.ns, &format!("rtctl{}", self.starts + 1), &self.runtime_args)?;
        Ok(())
    }

    /// Replaces the dataset-controller with a fresh process (after a kill).
    pub fn restart_dataset(&mut self) -> Result<()> {
        self.dataset.kill();
        self.starts += 1;
        self.dataset = start_dataset(&self.ns, &format!("dsctl{}", self.starts + 1))?;
        Ok(())
    }

    /// A crash of both: SIGKILL to each, at once, then fresh processes.
    pub fn crash_and_restart(&mut self) -> Result<()> {
        self.dataset.kill();
        self.runtime.kill();
        self.restart_dataset()?;
        self.restart_runtime()
    }
}

impl Drop for Controllers {
    /// Deletes the namespace's datasets and runtimes and waits (bounded) until the still-running
    /// controllers have cleaned up after them, so no finalizer, PV or node label outlives the test.
    fn drop(&mut self) {
        let ns = self.ns.as_str();
        // Pods first: a pod still using the PVC would (rightly) hold the dataset's deletion.
        // No wait: a StatefulSet recreates its pods under the same names at once, and kubectl can then wait
        // for them forever.
        let _ =
            crate::kubectl(&["-n", ns, "delete", "pods", "--all", "--grace-period=0", "--force", "--wait=false"], None);
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
        &[
            "--namespace",
            ns,
            "--http-addr",
            &addr,
            "--leader-elect=false",
            "--recheck-seconds",
            "1",
            "--check-secrets=true",
        ],
    )
}

/// A metrics-collector for the namespace, leader-elected on a Lease there (3 s, so a successor of a
/// killed one takes over within seconds), scraping every second.
pub fn start_collector(ns: &str, label: &str) -> Result<Component> {
    let addr = addr()?;
    Component::start(
        "metrics-collector",
        &format!("{label}-{ns}"),
        &[
            "--namespace",
            ns,
            "--http-addr",
            &addr,
            "--lease-namespace",
            ns,
            "--lease-seconds",
            "3",
            "--scrape-interval",
            "1s",
            "--scrape-timeout",
            "1s",
        ],
    )
}

pub fn start_runtime(ns: &str, label: &str) -> Result<Component> {
    start_runtime_with(ns, label, &[])
}

static RANGES: AtomicU32 = AtomicU32::new(0);

/// A host-port range of its own for each test's runtime-controller (they are namespace-scoped, so
/// they cannot see each other's allocations, while their pods share the kwok nodes): 40 ports in
/// 32000–51999, spread by process and counter.
pub fn private_port_range(ns: &str) -> String {
    let block = (std::process::id() * 7 + RANGES.fetch_add(1, Ordering::Relaxed) * 13 + ns.len() as u32) % 500;
    let first = 32000 + block * 40;
    format!("{first}-{}", first + 39)
}

pub fn start_runtime_with(ns: &str, label: &str, extra: &[String]) -> Result<Component> {
    let addr = addr()?;
    let range = private_port_range(ns);
    let mut args = vec!["--namespace", ns, "--http-addr", &addr, "--leader-elect=false", "--resync-seconds", "5"];
    if !extra.iter().any(|a| a.starts_with("--host-port-range")) {
        args.extend(["--host-port-range", &range]);
    }
    args.extend(extra.iter().map(String::as_str));
    Component::start("runtime-controller", &format!("{label}-{ns}"), &args)
}

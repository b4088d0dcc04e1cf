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

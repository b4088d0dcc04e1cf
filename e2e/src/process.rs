//! ferrofluid components run as child processes by tests: stopped (SIGTERM, then SIGKILL) on drop,
//! output kept in a log file that is printed when a test fails.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Component {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
    /// Where it serves /healthz, /readyz and /metrics (its `--http-addr`).
    pub http: Option<std::net::SocketAddr>,
}

impl Component {
    /// Starts `bin` (a ferrofluid binary, see [`crate::bin_path`]) with `args` and the local kubeconfig.
    pub fn start(bin: &str, label: &str, args: &[&str]) -> Result<Self> {
        let log = std::env::temp_dir().join(format!("ferrofluid-{label}-{}.log", std::process::id()));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(crate::bin_path(bin))
            .arg("--kubeconfig")
            .arg(crate::kubeconfig())
            .args(args)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let http =
            args.iter().position(|a| *a == "--http-addr").and_then(|i| args.get(i + 1)).and_then(|a| a.parse().ok());
        Ok(Self { name: label.into(), child: Some(child), log, http })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the process gets no chance to clean up (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to `within` for the process to exit by itself: its exit status, or `None`
    /// when it had to be killed.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// SIGTERM and wait up to 10 s (a graceful stop), then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} log ({}) ----\n{}", self.name, self.log.display(), self.log_text());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Polls `check` every 250 ms until it yields `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    eventually_every(what, timeout, Duration::from_millis(250), check).await
}

/// [`eventually`], polling every `every` (short, to act the moment a state appears).
pub async fn eventually_every<T, F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what} {last}");
        tokio::time::sleep(every).await;
    }
}

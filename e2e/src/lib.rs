//! Helpers shared by the cluster tests. They need a running local control plane
//! (`hack/local-cluster.sh up`) and `FERROFLUID_KUBECONFIG` pointing at its kubeconfig; `make test`
//! provides both. Without them a test fails loudly rather than passing vacuously.

pub mod agent;
pub mod agent_cluster;
pub mod chart;
pub mod cluster;
pub mod control_plane;
pub mod controllers;
pub mod dns_recorder;
pub mod fake_metrics;
pub mod http;
pub mod minio;
pub mod process;
pub mod prometheus;
pub mod real_node;
pub mod redis;

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Path of the local cluster's kubeconfig.
pub fn kubeconfig() -> PathBuf {
    match std::env::var_os("FERROFLUID_KUBECONFIG") {
        Some(p) => PathBuf::from(p),
        None => panic!("FERROFLUID_KUBECONFIG is not set: run the cluster tests with `make test`"),
    }
}

/// A kube client for the local cluster.
pub async fn client() -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// A kube client from `KUBECONFIG` that sends `user_agent`, so the apiserver's audit log tells a bench
/// tool's requests from the controllers'.
pub async fn client_as(user_agent: &str) -> Result<kube::Client> {
    let mut cfg = kube::Config::infer().await.context("kube config from KUBECONFIG")?;
    cfg.headers.push(("user-agent".parse()?, user_agent.parse()?));
    kube::Client::try_from(cfg).context("kube client")
}

/// Result of a kubectl run.
#[derive(Debug)]
pub struct Kubectl {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Kubectl {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs kubectl against the local cluster, with `stdin` fed to it when given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<Kubectl> {
    let mut cmd = Command::new(std::env::var("FERROFLUID_KUBECTL").unwrap_or_else(|_| "kubectl".into()));
    cmd.arg("--kubeconfig").arg(kubeconfig()).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context("running kubectl")?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("kubectl stdin")?;
        pipe.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?.into())
}

/// Runs kubectl and fails unless it succeeds; returns its stdout.
pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = kubectl(args, stdin)?;
    if !out.ok {
        bail!("kubectl {} failed: {}", args.join(" "), out.stderr);
    }
    Ok(out.stdout)
}

/// A namespace of its own for one test, deleted (without waiting) when dropped.
pub struct TestNamespace {
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    pub fn new(prefix: &str) -> Result<Self> {
        let name = format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        kubectl_ok(&["create", "namespace", &name], None)?;
        Ok(Self { name })
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

/// Reads a manifest shipped in `e2e/manifests/`.
pub fn manifest(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Path of one of ferrofluid's binaries, built by `cargo build --workspace --bins` before the cluster
/// tests run. `FERROFLUID_BIN_DIR` overrides the default `<workspace>/target/debug`.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("FERROFLUID_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// Path of a tool installed by hack/ (juicefs, kubectl, csi-sanity, …) under `~/.cache/ferrofluid/bin`.
pub fn tool_path(name: &str) -> PathBuf {
    let cache = std::env::var_os("FERROFLUID_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/ferrofluid")
    });
    let path = cache.join("bin").join(name);
    assert!(path.exists(), "{} missing: run hack/setup.sh", path.display());
    path
}

/// A directory of a test's own under the system temp dir (the node agent's, which its own tests use too).
pub use node_agent::temp_dir::TempDir;

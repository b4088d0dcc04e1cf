//! bench-csi: CSI call latency and data-path throughput of a real csi-plugin next to real JuiceFS FUSE
//! mounts (Redis metadata, local-directory bucket). A benchmark, not a test: it prints markdown.
//! `hack/bench-csi.sh` runs it inside a private mount namespace and cleans up after it.
//!
//!   bench-csi run --work DIR --csi-plugin BIN --kubeconfig FILE --node NODE [--counts 0,50,200] …
//!   bench-csi clean-labels --kubeconfig FILE --node NODE

mod datapath;
mod latency;
mod procs;
mod stats;
mod volumes;

use anyhow::{Result, ensure};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Both benchmarks (or one, with --only); must run in a private mount namespace.
    Run(RunArgs),
    /// Removes every `fluid.io/f-ffbench-…` label from the node (after a run that failed).
    CleanLabels {
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        node: String,
    },
}

#[derive(Parser)]
struct RunArgs {
    /// An empty directory for everything the run creates (the caller removes it).
    #[arg(long)]
    work: PathBuf,
    #[arg(long)]
    csi_plugin: PathBuf,
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The Node the plugin acts as (it must exist; it gets `fluid.io/f-ffbench-…` labels meanwhile).
    #[arg(long)]
    node: String,
    /// Volumes already published while the calls are timed.
    #[arg(long, value_delimiter = ',', default_value = "0,50,200", value_parser = clap::value_parser!(u16).range(0..=1000))]
    counts: Vec<u16>,
    /// Stage/publish/unpublish/unstage cycles timed per count.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    samples: u16,
    /// Size of the file read in the data-path benchmark, MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=8192))]
    file_mib: u64,
    /// Rounds per cache state; a round reads the file once through each path.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u16).range(1..=20))]
    repeats: u16,
    /// Run only one benchmark.
    #[arg(long, value_parser = ["latency", "data"])]
    only: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Run(args) => run(args).await,
        Cmd::CleanLabels { kubeconfig, node } => clean_labels(&kubeconfig, &node).await,
    }
}

async fn run(a: RunArgs) -> Result<()> {
    // Every mount this makes must stay out of the caller's mount table.
    let own = std::fs::read_link("/proc/self/ns/mnt")?;
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get()).unwrap_or(1);
    let callers = std::fs::read_link(format!("/proc/{parent}/ns/mnt"))?;
    ensure!(own != callers, "run me in a private mount namespace of my own (unshare -m --propagation private)");
    ensure!(a.work.is_dir() && a.work.read_dir()?.next().is_none(), "--work must be an empty directory");
    let work = a.work.canonicalize()?;
    let redis = ferrofluid_e2e::redis::RedisServer::start()?;
    let meta = redis.meta_url(1);
    procs::format(&meta, &work.join("bucket"), "ffbench")?;

    let mut out = String::new();
    if a.only.as_deref() != Some("data") {
        let source =
            procs::JuiceFs::mount(&meta, &work.join("source"), &work.join("cache-lat"), &work.join("juicefs-lat.log"))?;
        let plugin = procs::Plugin::start(&a.csi_plugin, &work, &a.node, &a.kubeconfig)?;
        let guard = Detach(work.clone());
        let counts: Vec<usize> = a.counts.iter().map(|&n| n.into()).collect();
        let report = latency::run(&plugin, &source.mount_point, &counts, a.samples.into()).await?;
        out += &latency::markdown(&report);
        out += "\n";
        drop((plugin, guard, source));
    }
    if a.only.as_deref() != Some("latency") {
        let plugin = procs::Plugin::start(&a.csi_plugin, &work, &a.node, &a.kubeconfig)?;
        let guard = Detach(work.clone());
        let report = datapath::run(&plugin, &meta, &work, &work.join("bucket"), a.file_mib, a.repeats.into()).await?;
        out += &datapath::markdown(&report, a.repeats.into());
        drop((plugin, guard));
    }
    print!("{out}");
    Ok(())
}

/// Detaches every mount left under the work directory when dropped.
struct Detach(PathBuf);

impl Drop for Detach {
    fn drop(&mut self) {
        procs::detach_under(&self.0);
    }
}

async fn clean_labels(kubeconfig: &std::path::Path, node: &str) -> Result<()> {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, Patch, PatchParams};
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let client = kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)?;
    let api: Api<Node> = Api::all(client);
    let prefix = format!("fluid.io/f-{}-", volumes::NAMESPACE);
    let labels = api.get(node).await?.metadata.labels.unwrap_or_default();
    let ours: serde_json::Map<String, serde_json::Value> =
        labels.keys().filter(|k| k.starts_with(&prefix)).map(|k| (k.clone(), serde_json::Value::Null)).collect();
    if !ours.is_empty() {
        let patch = serde_json::json!({ "metadata": { "labels": ours } });
        api.patch(node, &PatchParams::default(), &Patch::Merge(patch)).await?;
        eprintln!("bench-csi: removed {} label(s) from node {node}", ours.len());
    }
    Ok(())
}

//! ferrofluid runtime-controller: turns a JuiceFSRuntime and its Dataset into cache workers, a FUSE
//! DaemonSet, a PV/PVC pair and node labels, and keeps their status current.

mod apply;
#[cfg(test)]
mod builders_tests;
mod context;
mod error;
mod fuse;
mod juicefs_config;
mod juicefs_flags;
mod labels;
mod node_labels;
mod owned;
mod pod_parts;
mod ports;
mod reconcile;
mod status;
mod volume;
mod worker;

use clap::Parser;
use context::Context;
use ferrofluid_api::keys;
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::runner::{drain, scoped_api};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::Duration;

/// JuiceFSRuntime lifecycle: workers, FUSE DaemonSet, PV/PVC, node labels, status.
#[derive(Parser, Debug)]
#[command(name = "runtime-controller", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    leader: LeaderArgs,
    /// Root under which FUSE clients mount on every node.
    #[arg(long, env = "FERROFLUID_MOUNT_ROOT", default_value = keys::DEFAULT_MOUNT_ROOT)]
    mount_root: String,
    /// Seconds between periodic resyncs of each runtime (±10% jitter).
    #[arg(long, env = "FERROFLUID_RESYNC_SECONDS", default_value_t = 60)]
    resync_seconds: u64,
    /// Node ports handed out to host-network worker and FUSE pods (their JuiceFS metrics ports), one per
    /// pod kind per runtime, kept in `status.hostPorts`. Must not overlap the range of another
    /// runtime-controller in the same cluster, nor ports other software uses on the nodes.
    #[arg(long, env = "FERROFLUID_HOST_PORT_RANGE", default_value = "20000-25999")]
    host_port_range: ports::PortRange,
    #[command(flatten)]
    controller: ControllerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = prometheus::Registry::new();
    let metrics = ReconcileMetrics::register(&registry)?;
    ferrofluid_service::runner::run(
        "ferrofluid-runtime-controller",
        &args.common,
        Some(&args.leader),
        registry,
        |rt| async move {
            let client = rt.client;
            let ns = args.controller.namespace.as_deref();
            let ours = watcher::Config::default().labels(&format!("{}={}", keys::LABEL_MANAGED_BY, keys::MANAGED_BY));
            let workers = ours.clone().labels(&format!(
                "{}={},{}={}",
                keys::LABEL_MANAGED_BY,
                keys::MANAGED_BY,
                keys::LABEL_ROLE,
                keys::ROLE_WORKER
            ));
            let stop = rt.stop.clone();
            let controller = Controller::new(scoped_api::<JuiceFSRuntime>(&client, ns), watcher::Config::default());
            let ctx = Arc::new(Context {
                client: client.clone(),
                recorder: Recorder::new(client.clone(), Reporter::from("ferrofluid-runtime-controller")),
                metrics,
                mount_root: args.mount_root.clone(),
                resync: Duration::from_secs(args.resync_seconds.max(5)),
                runtimes: controller.store(),
                ports: ports::Allocator::new(args.host_port_range),
            });
            let controller = controller
                .with_config(controller::Config::default().concurrency(args.controller.concurrency))
                .owns(scoped_api::<StatefulSet>(&client, ns), ours.clone())
                .owns(scoped_api::<DaemonSet>(&client, ns), ours)
                // A dataset appearing or changing wakes the runtime of the same name.
                .watches(scoped_api::<Dataset>(&client, ns), watcher::Config::default(), |ds| {
                    Some(ObjectRef::<JuiceFSRuntime>::new(&ds.name_any()).within(&ds.namespace()?))
                })
                // Workers moving between nodes change the node labels.
                .watches(scoped_api::<Pod>(&client, ns), workers, |pod| {
                    let release = pod.labels().get(keys::LABEL_RELEASE)?.clone();
                    Some(ObjectRef::<JuiceFSRuntime>::new(&release).within(&pod.namespace()?))
                })
                .graceful_shutdown_on(async move { stop.cancelled().await })
                .run(reconcile::reconcile, reconcile::error_policy, ctx);
            drain(controller).await;
            Ok(())
        },
    )
    .await
}

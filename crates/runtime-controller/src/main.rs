//! ferrofluid runtime-controller: turns a JuiceFSRuntime and its Dataset into cache workers, a FUSE
//! DaemonSet, a PV/PVC pair and node labels, and keeps their status current.

mod apply;
#[cfg(test)]
mod builders_tests;
mod cache_cleanup;
mod cache_sync;
mod context;
mod error;
mod fuse;
mod in_sync;
mod juicefs_config;
mod juicefs_flags;
mod labels;
mod node_labels;
mod node_sync;
mod owned;
mod pod_parts;
mod ports;
mod reconcile;
#[cfg(test)]
mod reconcile_tests;
mod setup;
mod share;
mod share_sync;
mod status;
mod status_bodies;
mod stores;
mod teardown;
mod triggers;
mod volume;
mod worker;

use clap::Parser;
use context::Context;
use ferrofluid_api::juicefs_runtime::DefaultImage;
use ferrofluid_api::keys;
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::{Scaffold, serve};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use futures::StreamExt;
use kube::runtime::controller::Controller;
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
    /// Image (`<repository>:<tag>`) of the worker, FUSE, format and cache-cleanup containers of runtimes
    /// that name none in `spec.juicefsVersion`, `spec.worker` or `spec.fuse`; a runtime that sets only an
    /// image keeps this tag, one that sets only a tag keeps this repository.
    #[arg(long, env = "FERROFLUID_JUICEFS_IMAGE", default_value_t = DefaultImage::default())]
    juicefs_image: DefaultImage,
    /// Seconds between periodic resyncs of each runtime (±10% jitter).
    #[arg(long, env = "FERROFLUID_RESYNC_SECONDS", default_value_t = 60)]
    resync_seconds: u64,
    /// Node ports handed out to host-network worker and FUSE pods (their JuiceFS metrics ports), one per
    /// pod kind per runtime, kept in `status.hostPorts`. Must not overlap the range of another
    /// runtime-controller in the same cluster, nor ports other software uses on the nodes.
    #[arg(long, env = "FERROFLUID_HOST_PORT_RANGE", default_value = "20000-25999")]
    host_port_range: ports::PortRange,
    /// How long no JuiceFS client of a runtime may have run on a node before the runtime's cache
    /// directories there are removed (a Job on that node). Bridges a pod being replaced in place.
    #[arg(long, env = "FERROFLUID_CACHE_IDLE_GRACE", default_value = "60s", value_parser = ferrofluid_service::args::parse_duration)]
    cache_idle_grace: Duration,
    #[command(flatten)]
    controller: ControllerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = prometheus::Registry::new();
    let metrics = ReconcileMetrics::register(&registry)?;
    let share_metrics = metrics.clone();
    ferrofluid_service::runner::run(
        "ferrofluid-runtime-controller",
        &args.common,
        Some(&args.leader),
        registry,
        |rt| async move {
            let client = rt.client;
            let (stores, triggers) = stores::start(&client, args.controller.namespace.as_deref());
            let ctx = Arc::new(Context {
                client: client.clone(),
                events: Events::new(client.clone(), context::MANAGER),
                scaffold: Scaffold::new(context::CONTROLLER, metrics),
                mount_root: args.mount_root.clone(),
                juicefs_image: args.juicefs_image.clone(),
                resync: Duration::from_secs(args.resync_seconds.max(5)),
                stores: stores.clone(),
                ports: ports::Allocator::new(args.host_port_range),
                cache_grace: args.cache_idle_grace,
            });
            // Nothing about a node wakes a runtime; its cache is kept current in the background.
            let nodes = tokio::spawn(triggers.nodes.for_each(|()| async {}));
            // Datasets that refer to another one have a controller of their own (its own dataset watch, see
            // `stores::share_datasets`), also woken through a channel: a source's change wakes the datasets
            // that refer to it, a change of their PV or PVC wakes them.
            let (share_tx, share_rx) = futures::channel::mpsc::unbounded();
            let wake = move |refs: Vec<kube::runtime::reflector::ObjectRef<ferrofluid_api::Dataset>>| {
                // A closed channel means the controllers are stopping.
                refs.into_iter().for_each(|r| drop(share_tx.unbounded_send(r)));
            };
            let (w1, w2, w3) = (wake.clone(), wake.clone(), wake);
            let (share_store, share_changes) = stores::share_datasets(&client, args.controller.namespace.as_deref());
            let referring_store = share_store.clone();
            let share_changes = share_changes.inspect(move |d| {
                if let Ok(d) = d {
                    w1(triggers::referring(&ferrofluid_api::sharing::key_of(d), &referring_store));
                }
            });
            let claims = triggers.claims.inspect(move |c| {
                if let Ok(c) = c {
                    w2(triggers::share_claim(c).into_iter().collect());
                }
            });
            let volumes = triggers.volumes.inspect(move |v| {
                if let Ok(v) = v {
                    w3(triggers::share_volume(v).into_iter().collect());
                }
            });
            let controller = Controller::for_stream(triggers.runtimes, stores.runtimes.clone())
                .owns_stream(triggers.workers)
                .owns_stream(triggers.fuses)
                .owns_stream(claims)
                .owns_stream(triggers.jobs)
                .watches_stream(volumes, |pv| triggers::pv_runtime(&pv))
                .watches_stream(triggers.datasets, |ds| triggers::dataset_runtimes(&ds))
                .watches_stream(triggers.pods, |pod| triggers::pod_runtime(&pod));
            let sharing = Controller::for_stream(share_changes, share_store).reconcile_on(share_rx);
            let share_ctx = Arc::new(share_sync::ShareContext {
                ctx: ctx.clone(),
                scaffold: Scaffold::new(share_sync::CONTROLLER, share_metrics),
            });
            tokio::join!(
                serve(
                    controller,
                    &args.controller,
                    rt.stop.clone(),
                    reconcile::reconcile,
                    reconcile::error_policy,
                    ctx
                ),
                serve(sharing, &args.controller, rt.stop, share_sync::reconcile, share_sync::error_policy, share_ctx),
            );
            nodes.abort();
            Ok(())
        },
    )
    .await
}

//! ferrofluid dataops-controller: data operations on datasets. A DataLoad warms a dataset's cache on
//! every node that caches it, one Job per node, through that node's own FUSE client, with progress in
//! its status; one DataLoad runs per dataset at a time.

mod lock;
mod metrics;
mod plan;
mod reconcile;
mod status;
mod triggers;
mod warmup_job;

use clap::Parser;
use ferrofluid_api::keys;
use ferrofluid_api::{DataLoad, Dataset, JuiceFSRuntime};
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::{Scaffold, serve};
use ferrofluid_service::runner::scoped_api;
use ferrofluid_service::watch::{no_managed_fields, reflect};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use std::sync::Arc;

/// Data operations: DataLoad (cache warm-up with progress).
#[derive(Parser, Debug)]
#[command(name = "dataops-controller", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    leader: LeaderArgs,
    /// Parts a node's file list is split into: a DataLoad's progress moves by one part at a time.
    #[arg(long, env = "FERROFLUID_DATALOAD_PARTS", default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=100))]
    dataload_parts: i32,
    /// Cache nodes one DataLoad warms at the same time (one Job each); the others wait their turn.
    #[arg(long, env = "FERROFLUID_DATALOAD_NODES_IN_FLIGHT", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    dataload_nodes_in_flight: u16,
    #[command(flatten)]
    controller: ControllerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = prometheus::Registry::new();
    let reconcile_metrics = ReconcileMetrics::register(&registry)?;
    let op_metrics = metrics::OperationMetrics::register(&registry)?;
    ferrofluid_service::runner::run(
        "ferrofluid-dataops-controller",
        &args.common,
        Some(&args.leader),
        registry,
        |rt| async move {
            let client = rt.client;
            let ns = args.controller.namespace.as_deref();
            let (loads, load_changes) = reflect(
                scoped_api::<DataLoad>(&client, ns),
                watcher::Config::default(),
                triggers::dataload,
                no_managed_fields,
            );
            let ours =
                format!("{}={},{}={}", keys::LABEL_MANAGED_BY, keys::MANAGED_BY, keys::LABEL_ROLE, keys::ROLE_DATALOAD);
            let (jobs, job_changes) = reflect(
                scoped_api::<Job>(&client, ns),
                watcher::Config::default().labels(&ours),
                triggers::job,
                triggers::slim_job,
            );
            let (datasets, dataset_changes) = reflect(
                scoped_api::<Dataset>(&client, ns),
                watcher::Config::default(),
                triggers::dataset,
                triggers::slim_dataset,
            );
            let (runtimes, runtime_changes) = reflect(
                scoped_api::<JuiceFSRuntime>(&client, ns),
                watcher::Config::default(),
                |_| 0,
                no_managed_fields,
            );
            let (nodes, node_changes) =
                reflect(Api::<Node>::all(client.clone()), watcher::Config::default(), |_| 0, triggers::slim_node);
            let ctx = Arc::new(reconcile::Context {
                client: client.clone(),
                events: Events::new(client.clone(), reconcile::MANAGER),
                scaffold: Scaffold::new(reconcile::CONTROLLER, reconcile_metrics),
                metrics: op_metrics,
                loads: loads.clone(),
                datasets,
                runtimes,
                jobs,
                nodes,
                ready: Default::default(),
                parts: args.dataload_parts,
                max_nodes_in_flight: usize::from(args.dataload_nodes_in_flight),
            });
            let loads_for_datasets = loads.clone();
            let controller = Controller::for_stream(load_changes, loads)
                .watches_stream(job_changes, |job| triggers::owner_of(&job))
                .watches_stream(dataset_changes, move |ds| triggers::loads_of(&ds, &loads_for_datasets))
                // Runtimes and nodes are read, not reacted to (a load snapshots its nodes when it starts):
                // their streams only keep the caches current.
                .watches_stream(runtime_changes, |_| None::<kube::runtime::reflector::ObjectRef<DataLoad>>)
                .watches_stream(node_changes, |_| None::<kube::runtime::reflector::ObjectRef<DataLoad>>);
            serve(controller, &args.controller, rt.stop, reconcile::reconcile, reconcile::error_policy, ctx).await;
            Ok(())
        },
    )
    .await
}

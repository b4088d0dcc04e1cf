//! ferrofluid dataops-controller: data operations on datasets, Fluid-compatible. A DataLoad warms a
//! dataset's cache on every node that caches it, through that node's own FUSE client; a DataMigrate
//! copies data into or out of a dataset with `juicefs sync`; a DataProcess runs the user's pod with the
//! dataset mounted. Each runs as Jobs, with progress in its status; one operation of a kind runs per
//! dataset at a time; `runAfter` chains them.

mod job_parts;
mod lock;
mod metrics;
mod migrate_job;
mod on_event;
mod op;
mod part_report;
mod plan;
mod process_job;
mod reconcile;
mod schedule;
mod status;
mod sync_report;
mod triggers;
mod warmup_job;
mod work;

use clap::Parser;
use ferrofluid_api::juicefs_runtime::DefaultImage;
use ferrofluid_api::keys;
use ferrofluid_api::{DataLoad, DataMigrate, DataProcess, Dataset, JuiceFSRuntime};
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::{Scaffold, serve};
use ferrofluid_service::runner::scoped_api;
use ferrofluid_service::watch::{no_managed_fields, reflect};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::ResourceExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use op::Op;
use std::sync::Arc;

/// Data operations: DataLoad (cache warm-up), DataMigrate (juicefs sync), DataProcess (the user's pod).
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
    /// Image (`<repository>:<tag>`) of the warm-up and copy Jobs of datasets whose runtime names no FUSE
    /// image in `spec.juicefsVersion` or `spec.fuse`: the runtime-controller's `--juicefs-image`, so they
    /// run the same `juicefs` as the FUSE clients. A runtime that sets only an image keeps this tag, one
    /// that sets only a tag keeps this repository.
    #[arg(long, env = "FERROFLUID_JUICEFS_IMAGE", default_value_t = DefaultImage::default())]
    juicefs_image: DefaultImage,
    #[command(flatten)]
    controller: ControllerArgs,
}

/// Wakes operations of every kind, through their controllers' `reconcile_on` channels.
#[derive(Clone)]
struct Wake {
    loads: Store<DataLoad>,
    migrates: Store<DataMigrate>,
    processes: Store<DataProcess>,
    load_tx: mpsc::UnboundedSender<ObjectRef<DataLoad>>,
    migrate_tx: mpsc::UnboundedSender<ObjectRef<DataMigrate>>,
    process_tx: mpsc::UnboundedSender<ObjectRef<DataProcess>>,
}

fn send_all<K: Op>(tx: &mpsc::UnboundedSender<ObjectRef<K>>, refs: Vec<ObjectRef<K>>) {
    for r in refs {
        // A closed channel means the controller is stopping.
        let _ = tx.unbounded_send(r);
    }
}

impl Wake {
    fn send_loads(&self, refs: Vec<ObjectRef<DataLoad>>) {
        send_all(&self.load_tx, refs);
    }

    fn dataset(&self, ds: &Dataset) {
        send_all(&self.load_tx, triggers::of_dataset(ds, &self.loads));
        send_all(&self.migrate_tx, triggers::of_dataset(ds, &self.migrates));
        send_all(&self.process_tx, triggers::of_dataset(ds, &self.processes));
    }

    fn operation<K: Op>(&self, op: &K) {
        let (ns, name) = (op.namespace().unwrap_or_default(), op.name_any());
        send_all(&self.load_tx, triggers::dependents(K::KIND, &ns, &name, &self.loads));
        send_all(&self.migrate_tx, triggers::dependents(K::KIND, &ns, &name, &self.migrates));
        send_all(&self.process_tx, triggers::dependents(K::KIND, &ns, &name, &self.processes));
    }

    /// Passes an operation stream on, waking the operations that run after each changed one.
    fn dependents_on<K: Op, E>(
        &self,
        changes: impl Stream<Item = Result<K, E>> + Send + 'static,
    ) -> impl Stream<Item = Result<K, E>> + Send + 'static {
        let wake = self.clone();
        changes.inspect(move |o| {
            if let Ok(o) = o {
                wake.operation(o);
            }
        })
    }
}

/// The label selector of one kind's Jobs.
fn jobs_of_role(role: &str) -> String {
    format!("{}={},{}={role}", keys::LABEL_MANAGED_BY, keys::MANAGED_BY, keys::LABEL_ROLE)
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
            let cfg = watcher::Config::default;
            let (loads, load_changes) =
                reflect(scoped_api::<DataLoad>(&client, ns), cfg(), triggers::operation, no_managed_fields);
            let (migrates, migrate_changes) =
                reflect(scoped_api::<DataMigrate>(&client, ns), cfg(), triggers::operation, no_managed_fields);
            let (processes, process_changes) =
                reflect(scoped_api::<DataProcess>(&client, ns), cfg(), triggers::operation, no_managed_fields);
            let jobs = |role: &str| {
                reflect(
                    scoped_api::<Job>(&client, ns),
                    cfg().labels(&jobs_of_role(role)),
                    triggers::job,
                    triggers::slim_job,
                )
            };
            let (load_jobs, load_job_changes) = jobs(keys::ROLE_DATALOAD);
            let (migrate_jobs, migrate_job_changes) = jobs(keys::ROLE_DATAMIGRATE);
            let (process_jobs, process_job_changes) = jobs(keys::ROLE_DATAPROCESS);
            // The warm-up and copy pods: each one's report is its termination message.
            let pods = |role: &str| {
                reflect(
                    scoped_api::<Pod>(&client, ns),
                    cfg().labels(&jobs_of_role(role)),
                    triggers::pod,
                    triggers::slim_pod,
                )
            };
            let (load_pods, load_pod_changes) = pods(keys::ROLE_DATALOAD);
            let (migrate_pods, migrate_pod_changes) = pods(keys::ROLE_DATAMIGRATE);
            let (datasets, dataset_changes) =
                reflect(scoped_api::<Dataset>(&client, ns), cfg(), triggers::dataset, triggers::slim_dataset);
            let (runtimes, runtime_changes) =
                reflect(scoped_api::<JuiceFSRuntime>(&client, ns), cfg(), |_| 0, no_managed_fields);
            let (nodes, node_changes) =
                reflect(Api::<Node>::all(client.clone()), cfg(), triggers::node, triggers::slim_node);
            // Runtimes are read, not reacted to: their stream only keeps the cache current.
            tokio::spawn(runtime_changes.for_each(|_| async {}));
            let (load_tx, load_rx) = mpsc::unbounded::<ObjectRef<DataLoad>>();
            let (migrate_tx, migrate_rx) = mpsc::unbounded::<ObjectRef<DataMigrate>>();
            let (process_tx, process_rx) = mpsc::unbounded::<ObjectRef<DataProcess>>();
            let wake = Wake {
                loads: loads.clone(),
                migrates: migrates.clone(),
                processes: processes.clone(),
                load_tx,
                migrate_tx,
                process_tx,
            };
            // A dataset's phase or lock changing wakes its unfinished operations of every kind.
            {
                let wake = wake.clone();
                tokio::spawn(dataset_changes.for_each(move |ds| {
                    if let Ok(ds) = ds {
                        wake.dataset(&ds);
                    }
                    async {}
                }));
            }
            // A node's cache labels changing wakes the DataLoads waiting for a cache node, or OnEvent.
            {
                let wake = wake.clone();
                tokio::spawn(node_changes.for_each(move |n| {
                    if let Ok(n) = n {
                        wake.send_loads(triggers::loads_on_node(&n, &wake.loads));
                    }
                    async {}
                }));
            }
            // An operation's phase changing wakes those that run after it, of every kind.
            let load_changes = wake.dependents_on(load_changes);
            let migrate_changes = wake.dependents_on(migrate_changes);
            let process_changes = wake.dependents_on(process_changes);
            let shared = Arc::new(reconcile::Shared {
                client: client.clone(),
                events: Events::new(client.clone(), reconcile::MANAGER),
                metrics: op_metrics,
                loads: loads.clone(),
                migrates: migrates.clone(),
                processes: processes.clone(),
                datasets,
                runtimes,
                jobs: reconcile::JobStores {
                    load: load_jobs.clone(),
                    migrate: migrate_jobs.clone(),
                    process: process_jobs,
                },
                pods: reconcile::PodStores { load: load_pods, migrate: migrate_pods },
                nodes,
                ready: Default::default(),
                parts: args.dataload_parts,
                max_nodes_in_flight: usize::from(args.dataload_nodes_in_flight),
                juicefs_image: args.juicefs_image.clone(),
            });
            let ctx = |controller: &'static str| {
                Arc::new(reconcile::Context {
                    shared: shared.clone(),
                    scaffold: Scaffold::new(controller, reconcile_metrics.clone()),
                })
            };
            let load_ctl = Controller::for_stream(load_changes, loads)
                .watches_stream(load_job_changes, |j| triggers::owner_of::<DataLoad>(&j))
                .watches_stream(load_pod_changes, move |p| triggers::owner_through_job::<DataLoad>(&load_jobs, &p))
                .reconcile_on(load_rx);
            let migrate_ctl = Controller::for_stream(migrate_changes, migrates)
                .watches_stream(migrate_job_changes, |j| triggers::owner_of::<DataMigrate>(&j))
                .watches_stream(migrate_pod_changes, move |p| {
                    triggers::owner_through_job::<DataMigrate>(&migrate_jobs, &p)
                })
                .reconcile_on(migrate_rx);
            let process_ctl = Controller::for_stream(process_changes, processes)
                .watches_stream(process_job_changes, |j| triggers::owner_of::<DataProcess>(&j))
                .reconcile_on(process_rx);
            let c = &args.controller;
            tokio::join!(
                serve(
                    load_ctl,
                    c,
                    rt.stop.clone(),
                    reconcile::reconcile::<DataLoad>,
                    reconcile::error_policy::<DataLoad>,
                    ctx(<DataLoad as op::Op>::CONTROLLER)
                ),
                serve(
                    migrate_ctl,
                    c,
                    rt.stop.clone(),
                    reconcile::reconcile::<DataMigrate>,
                    reconcile::error_policy::<DataMigrate>,
                    ctx(<DataMigrate as op::Op>::CONTROLLER)
                ),
                serve(
                    process_ctl,
                    c,
                    rt.stop.clone(),
                    reconcile::reconcile::<DataProcess>,
                    reconcile::error_policy::<DataProcess>,
                    ctx(<DataProcess as op::Op>::CONTROLLER)
                ),
            );
            Ok(())
        },
    )
    .await
}

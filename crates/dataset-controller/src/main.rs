//! ferrofluid dataset-controller: a Dataset is NotBound until a runtime binds it, its input is checked
//! beyond what the schema can say, and it is not deleted while pods still use it.

mod reconcile;
#[cfg(test)]
mod reconcile_tests;
mod triggers;
mod validate;

use clap::Parser;
use ferrofluid_api::Dataset;
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::Scaffold;
use ferrofluid_service::reconcile::serve;
use ferrofluid_service::runner::scoped_api;
use ferrofluid_service::watch::{no_managed_fields, reflect};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::Duration;

/// Dataset lifecycle: NotBound on creation, validation, deletion protection.
#[derive(Parser, Debug)]
#[command(name = "dataset-controller", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    leader: LeaderArgs,
    /// Seconds between checks of a dataset whose input is invalid (e.g. a missing Secret).
    #[arg(long, env = "FERROFLUID_RECHECK_SECONDS", default_value_t = 15)]
    recheck_seconds: u64,
    /// Check that the Secrets named in a Dataset's encryptOptions exist and hold the named keys. Needs
    /// `get` on Secrets in the datasets' namespaces (the chart grants it per namespace with
    /// `datasetController.checkSecrets`). Off by default: the controller then never reads a Secret.
    #[arg(long, env = "FERROFLUID_CHECK_SECRETS", default_value_t = false, action = clap::ArgAction::Set)]
    check_secrets: bool,
    #[command(flatten)]
    controller: ControllerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = prometheus::Registry::new();
    let metrics = ReconcileMetrics::register(&registry)?;
    ferrofluid_service::runner::run(
        "ferrofluid-dataset-controller",
        &args.common,
        Some(&args.leader),
        registry,
        |rt| async move {
            let client = rt.client;
            let ns = args.controller.namespace.as_deref();
            let (datasets, dataset_changes) = reflect(
                scoped_api::<Dataset>(&client, ns),
                watcher::Config::default(),
                triggers::dataset,
                no_managed_fields,
            );
            let (pods, pod_changes) =
                reflect(scoped_api::<Pod>(&client, ns), watcher::Config::default(), triggers::pod, triggers::slim_pod);
            // A referring dataset's change (its deletion above all) wakes its source, whose deletion may
            // be waiting for it.
            let (wake, sources) = futures::channel::mpsc::unbounded();
            let dataset_changes = dataset_changes.inspect(move |ds| {
                if let Ok(ds) = ds
                    && let Some(source) = triggers::source_of(ds)
                {
                    // A closed channel means the controller is stopping.
                    let _ = wake.unbounded_send(source);
                }
            });
            let ctx = Arc::new(reconcile::Context {
                client: client.clone(),
                datasets: datasets.clone(),
                events: Events::new(client.clone(), reconcile::MANAGER),
                scaffold: Scaffold::new(reconcile::CONTROLLER, metrics),
                pods,
                pods_ready: Default::default(),
                recheck: Duration::from_secs(args.recheck_seconds.max(1)),
                check_secrets: args.check_secrets,
            });
            let controller = Controller::for_stream(dataset_changes, datasets)
                .watches_stream(pod_changes, |pod| triggers::datasets_of(&pod))
                .reconcile_on(sources);
            serve(controller, &args.controller, rt.stop, reconcile::reconcile, reconcile::error_policy, ctx).await;
            Ok(())
        },
    )
    .await
}

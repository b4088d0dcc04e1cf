//! ferrofluid dataset-controller: a Dataset is NotBound until a runtime binds it, its input is checked
//! beyond what the schema can say, and it is not deleted while pods still use it.

mod reconcile;
#[cfg(test)]
mod reconcile_tests;
mod validate;

use clap::Parser;
use ferrofluid_api::Dataset;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::runner::{drain, scoped_api};
use ferrofluid_service::{CommonArgs, ControllerArgs, LeaderArgs};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
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
            let api = scoped_api::<Dataset>(&client, args.controller.namespace.as_deref());
            let ctx = Arc::new(reconcile::Context {
                client: client.clone(),
                recorder: Recorder::new(client.clone(), Reporter::from("ferrofluid-dataset-controller")),
                metrics,
                recheck: Duration::from_secs(args.recheck_seconds.max(1)),
                check_secrets: args.check_secrets,
            });
            let stop = rt.stop.clone();
            let controller = Controller::new(api, watcher::Config::default())
                .with_config(controller::Config::default().concurrency(args.controller.concurrency))
                .graceful_shutdown_on(async move { stop.cancelled().await })
                .run(reconcile::reconcile, reconcile::error_policy, ctx);
            drain(controller).await;
            Ok(())
        },
    )
    .await
}

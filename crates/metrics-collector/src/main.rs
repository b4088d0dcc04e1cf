//! ferrofluid metrics-collector: scrapes JuiceFS cache metrics into Dataset/Runtime status and Prometheus.

mod args;
mod cache_states;
mod collector;
mod custom_metrics;
mod discovery;
mod exposition;
mod metrics;
mod metrics_api;
mod requestheader;
mod scrape;
mod status;
mod targets;
mod units;

use anyhow::Context;
use clap::Parser;
use ferrofluid_service::runner::{self, Runtime};
use std::process::ExitCode;

/// Name of the leader-election Lease (and of the component in logs).
const COMPONENT: &str = "ferrofluid-metrics-collector";

#[tokio::main]
async fn main() -> ExitCode {
    let args = args::Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("metrics-collector: {e}");
        return ExitCode::from(2);
    }
    let registry = prometheus::Registry::new();
    let result = match metrics::CollectorMetrics::register(&registry) {
        Ok(metrics) => {
            let (api_addr, namespace) = (args.custom_metrics_addr, args.namespace.clone());
            // The custom metrics API runs on every replica, leader or not.
            let serving = move |client: kube::Client, stop| async move {
                match api_addr {
                    Some(addr) => metrics_api::serve(client, namespace, addr, stop).await,
                    None => Ok(()),
                }
            };
            runner::run_serving(COMPONENT, &args.common, Some(&args.leader), registry, serving, |rt| {
                work(rt, &args, metrics)
            })
            .await
        }
        Err(e) => Err(e).context("registering metrics"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "metrics-collector failed");
            eprintln!("metrics-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The leader's work: watch, then scrape and write every interval until told to stop.
async fn work(rt: Runtime, args: &args::Args, metrics: metrics::CollectorMetrics) -> anyhow::Result<()> {
    let stores = discovery::Stores::start(&rt.client, args.namespace.as_deref(), &rt.stop);
    tokio::select! {
        ready = stores.ready() => ready.context("waiting for the pod, runtime and dataset caches")?,
        _ = rt.stop.cancelled() => return Ok(()),
    }
    tracing::info!(
        interval = ?args.scrape_interval, timeout = ?args.scrape_timeout, concurrency = args.scrape_concurrency,
        "collecting JuiceFS cache metrics"
    );
    let scraper = scrape::Scraper::new(args.scrape_timeout, args.scrape_max_bytes)?;
    let writer = status::StatusWriter::new(rt.client.clone());
    let collector = collector::Collector::new(stores, scraper, writer, metrics, usize::from(args.scrape_concurrency));
    collector.run(args.scrape_interval, rt.stop).await;
    Ok(())
}

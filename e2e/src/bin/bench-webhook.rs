//! `bench-webhook`: the measuring side of `hack/bench-webhook.sh` (a benchmark, not a test).
//!
//! Creates `--requests` pods that mount `--claim` in `--namespace` as server-side dry runs (`dryRun=All`:
//! the API server runs admission, webhooks included — ours declares `sideEffects: None` — and stores
//! nothing), `--concurrency` at a time, and reports three latencies:
//! - each create as the client saw it (API server work included);
//! - the API server's own measure of the call to the webhook (TLS included):
//!   `apiserver_admission_webhook_admission_duration_seconds{name=--webhook-name}`, before/after;
//! - the webhook's handler time, `ferrofluid_webhook_review_duration_seconds` from its `--webhook-metrics`.
//!
//! Histogram quantiles are given as the upper bound of the bucket they fall in (the buckets are what they
//! are; the API server's start at 5 ms). JSON to `--out`, a summary on stdout.

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    namespace: String,
    /// The dataset's PVC the pods mount.
    #[arg(long)]
    claim: String,
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The webhook's name in its MutatingWebhookConfiguration.
    #[arg(long, default_value = "pods.webhook.ferrofluid.io")]
    webhook_name: String,
    /// The webhook's plain-HTTP metrics address (host:port).
    #[arg(long)]
    webhook_metrics: std::net::SocketAddr,
    #[arg(long)]
    out: PathBuf,
}

fn pod(i: usize, claim: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("bench-webhook-{i}"), "labels": {"app": "bench-webhook"}},
        "spec": {
            "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "1"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
        }
    }))?)
}

/// Cumulative bucket counts (`le` → count) of histogram `metric` over the series whose labels contain
/// `filter`, summed.
fn buckets(text: &str, metric: &str, filter: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{metric}_bucket{{");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix) && l.contains(filter)) {
        let Some(le) = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        *out.entry(le.to_string()).or_insert(0.0) += v;
    }
    out
}

/// The upper bound of the bucket quantile `q` falls in, from the difference of two snapshots, and the count.
fn quantile(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, q: f64) -> (Option<String>, f64) {
    let mut rows: Vec<(f64, String, f64)> = after
        .iter()
        .map(|(le, v)| {
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) };
            (bound, le.clone(), v - before.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = rows.last().map_or(0.0, |r| r.2);
    let at = rows.iter().find(|r| total > 0.0 && r.2 >= q * total).map(|r| r.1.clone());
    (at, total)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn apiserver_metrics() -> Result<String> {
    ferrofluid_e2e::kubectl_ok(&["get", "--raw", "/metrics"], None).context("API server /metrics")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = kube::Client::try_default().await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let filter = format!("name=\"{}\"", args.webhook_name);
    let api_metric = "apiserver_admission_webhook_admission_duration_seconds";
    let own_metric = "ferrofluid_webhook_review_duration_seconds";
    let own = || ferrofluid_e2e::http::http_get(args.webhook_metrics, "/metrics");
    let (api_before, own_before) =
        (buckets(&apiserver_metrics()?, api_metric, &filter), buckets(&own()?, own_metric, ""));

    let dry = PostParams { dry_run: true, ..Default::default() };
    let started = Instant::now();
    let results: Vec<Result<(Duration, bool)>> = stream::iter(0..args.requests)
        .map(|i| {
            let (api, dry, claim) = (api.clone(), dry.clone(), args.claim.clone());
            async move {
                let p = pod(i, &claim)?;
                let t = Instant::now();
                let created = api.create(&dry, &p).await?;
                let mutated =
                    created.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("fluid.io/datasets-in-use"));
                Ok((t.elapsed(), mutated))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let wall = started.elapsed();
    let mut lat = Vec::new();
    let mut unmutated = 0usize;
    for r in results {
        let (d, mutated) = r?;
        lat.push(d);
        unmutated += usize::from(!mutated);
    }
    if unmutated > 0 {
        bail!("{unmutated} of {} pods came back without the webhook's annotation: is it in the path?", lat.len());
    }
    lat.sort();
    let (api_after, own_after) =
        (buckets(&apiserver_metrics()?, api_metric, &filter), buckets(&own()?, own_metric, ""));
    let (api_p50, api_n) = quantile(&api_before, &api_after, 0.5);
    let (api_p99, _) = quantile(&api_before, &api_after, 0.99);
    let (own_p50, own_n) = quantile(&own_before, &own_after, 0.5);
    let (own_p99, _) = quantile(&own_before, &own_after, 0.99);
    let report = json!({
        "requests": lat.len(),
        "concurrency": args.concurrency,
        "seconds": wall.as_secs_f64(),
        "client_create_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "apiserver_webhook_call_le_seconds": {"p50": api_p50, "p99": api_p99, "count": api_n},
        "webhook_handler_le_seconds": {"p50": own_p50, "p99": own_p99, "count": own_n},
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

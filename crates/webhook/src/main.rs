//! ferrofluid webhook: a mutating admission webhook for pods. A pod that mounts a dataset's PVC is
//! steered to the nodes that cache it (preferred, or required on request), sees its FUSE mount come
//! back after a FUSE restart (`HostToContainer`), and says which datasets it uses. It keeps its own
//! serving certificate and CA in a Secret, renews them before they expire, and publishes the CA in its
//! webhook configuration's `caBundle` — no cert-manager needed.

mod cert_store;
mod certs;
mod facts;
mod metrics;
mod mutate;
mod rotation;
mod serve;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use clap::Parser;
use ferrofluid_api::Dataset;
use ferrofluid_api::keys;
use ferrofluid_service::CommonArgs;
use ferrofluid_service::runner::scoped_api;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Mutating admission webhook: pods that mount a dataset are placed near its cache.
#[derive(Parser, Debug)]
#[command(name = "webhook", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Address of the HTTPS server the API server calls (`POST /mutate`).
    #[arg(long, env = "FERROFLUID_TLS_ADDR", default_value = "0.0.0.0:9443")]
    tls_addr: SocketAddr,
    /// Names and addresses the serving certificate is for (comma-separated): the webhook Service's DNS
    /// names, or the address in the configuration's `url`.
    #[arg(long, env = "FERROFLUID_CERT_HOSTS", value_delimiter = ',', required = true)]
    cert_hosts: Vec<String>,
    /// Secret (in --cert-namespace) that keeps the CA and the serving certificate; created if missing.
    #[arg(long, env = "FERROFLUID_CERT_SECRET", default_value = "ferrofluid-webhook-cert")]
    cert_secret: String,
    /// Namespace of the certificate Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    cert_namespace: String,
    /// MutatingWebhookConfiguration whose `caBundle` is kept current.
    #[arg(long, env = "FERROFLUID_WEBHOOK_CONFIG", default_value = "ferrofluid-webhook")]
    webhook_config: String,
    /// How often the certificates are checked for expiry besides the checks on every change of the Secret
    /// or the webhook configuration (both watched).
    #[arg(long, env = "FERROFLUID_CERT_CHECK_INTERVAL", default_value = "1h", value_parser = ferrofluid_service::args::parse_duration)]
    cert_check_interval: Duration,
    /// Pods that mount no dataset prefer nodes without any dataset's cache (Fluid's PreferNodesWithoutCache).
    #[arg(long, env = "FERROFLUID_PREFER_NODES_WITHOUT_CACHE")]
    prefer_nodes_without_cache: bool,
    /// Only read datasets of this namespace (default: all namespaces).
    #[arg(long, env = "FERROFLUID_WATCH_NAMESPACE")]
    namespace: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = prometheus::Registry::new();
    let metrics = metrics::WebhookMetrics::register(&registry)?;
    ferrofluid_service::runner::run("ferrofluid-webhook", &args.common, None, registry, |rt| async move {
        let client = rt.client;
        rt.health.set_ready(false);
        let (datasets, writer) = reflector::store();
        let ds_events = watcher(scoped_api::<Dataset>(&client, args.namespace.as_deref()), watcher::Config::default())
            .default_backoff()
            .modify(|d: &mut Dataset| d.metadata.managed_fields = None)
            .reflect(writer)
            .for_each(|_| async {});
        let (nodes, node_writer) = reflector::store();
        let node_events = watcher(Api::<PartialObjectMeta<Node>>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .modify(|n| n.metadata.managed_fields = None)
            .reflect(node_writer)
            .for_each(|_| async {});
        // Only ferrofluid's PVCs: labelled ours, with a dataset id.
        let (pvcs, pvc_writer) = reflector::store();
        let ours = format!("{}={},{}", keys::LABEL_MANAGED_BY, keys::MANAGED_BY, keys::LABEL_DATASET_ID);
        let pvc_events = watcher(
            scoped_api::<PartialObjectMeta<PersistentVolumeClaim>>(&client, args.namespace.as_deref()),
            watcher::Config::default().labels(&ours),
        )
        .default_backoff()
        .modify(|p| p.metadata.managed_fields = None)
        .reflect(pvc_writer)
        .for_each(|_| async {});
        tokio::spawn(ds_events);
        tokio::spawn(node_events);
        tokio::spawn(pvc_events);

        let rotation = rotation::Rotation::new(
            client.clone(),
            args.cert_namespace.clone(),
            args.cert_secret.clone(),
            args.cert_hosts.clone(),
            args.webhook_config.clone(),
            args.cert_check_interval,
        );
        let stored = rotation.first().await?;
        let cert = stored.data[certs::TLS_CERT].clone();
        let tls = RustlsConfig::from_config(serve::tls_config(&cert, &stored.data[certs::TLS_KEY])?);
        tokio::spawn(rotation.run(tls.clone(), cert, rt.stop.clone()));
        datasets.wait_until_ready().await.context("dataset cache")?;
        nodes.wait_until_ready().await.context("node cache")?;
        pvcs.wait_until_ready().await.context("PVC cache")?;
        let app = Arc::new(serve::App {
            caches: facts::Caches { datasets, nodes, pvcs },
            settings: mutate::Settings { prefer_nodes_without_cache: args.prefer_nodes_without_cache },
            metrics,
        });
        rt.health.set_ready(true);
        tracing::info!(addr = %args.tls_addr, "serving admission reviews");
        serve::serve(args.tls_addr, tls, serve::router(app), rt.stop.clone()).await
    })
    .await
}

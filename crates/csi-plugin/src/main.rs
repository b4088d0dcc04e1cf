//! ferrofluid csi-plugin binary: flags, wiring, graceful shutdown.

use anyhow::Context;
use clap::Parser;
use csi_plugin::args::Args;
use csi_plugin::controller::StaticVolumes;
use csi_plugin::locks::KeyLocks;
use csi_plugin::metrics::CsiMetrics;
use csi_plugin::node::{Config, Driver};
use csi_plugin::state::StateStore;
use csi_plugin::{recovery, server};
use ferrofluid_service::client::RateLimit;
use kube::runtime::events::{Recorder, Reporter};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferrofluid_service::telemetry::init(args.common.log_json);
    let shutdown = ferrofluid_service::shutdown_on_signal();

    csi_plugin::fluid_path::check_mount_root(&args.mount_root)?;
    for (what, dir) in [("mount root", &args.mount_root), ("kubelet root", &args.kubelet_root)] {
        anyhow::ensure!(dir.is_dir(), "{what} {} does not exist", dir.display());
    }
    let socket = server::socket_path(&args.endpoint)?;
    let limit = RateLimit { qps: args.common.api_qps, burst: args.common.api_burst };
    let client = ferrofluid_service::client::limited_client(args.common.kubeconfig.as_deref(), Some(limit)).await?;
    let registry = prometheus::Registry::new();
    let metrics = CsiMetrics::register(&registry).context("registering metrics")?;
    let state = StateStore::open(&args.state_dir())?;
    let reporter = Reporter { controller: "ferrofluid-csi-plugin".into(), instance: Some(args.node_id.clone()) };
    let driver = Driver {
        cfg: Arc::new(Config {
            node_id: args.node_id.clone(),
            mount_root: args.mount_root.clone(),
            kubelet_root: args.kubelet_root.clone(),
            publish_timeout: args.publish_timeout,
            poll_interval: Duration::from_millis(250),
        }),
        state: Arc::new(state),
        locks: KeyLocks::default(),
        metrics,
        recorder: Recorder::new(client.clone(), reporter),
        client,
        volumes: Arc::new(StaticVolumes::default()),
    };

    let health = ferrofluid_service::Health::default();
    let http =
        ferrofluid_service::http::serve(args.common.http_addr, health.clone(), registry, shutdown.clone()).await?;
    let recovery_task = args
        .fuse_recovery
        .then(|| tokio::spawn(recovery::run(driver.clone(), args.fuse_recovery_period, shutdown.clone())));
    tracing::info!(node = %args.node_id, recovery = args.fuse_recovery, "csi-plugin starting");
    let result = server::serve(driver, socket, shutdown.clone(), || health.set_ready(true)).await;
    shutdown.cancel();
    if let Some(t) = recovery_task {
        let _ = t.await;
    }
    let _ = http.await;
    result
}

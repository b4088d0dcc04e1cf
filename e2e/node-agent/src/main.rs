//! `node-agent --node <node> --node-dir <dir> [--csi-plugin <bin>]`: the kubelet stand-in for one
//! agent-backed node. Started inside the node's mount namespace by `hack/node-agents.sh`; SIGTERM stops
//! every container, unpublishes and unstages every volume, then stops the csi-plugin.

use anyhow::Context;
use clap::Parser;
use kube::runtime::events::{Recorder, Reporter};
use node_agent::args::Args;
use node_agent::csi::CsiClient;
use node_agent::csi_plugin_process::{self, PluginConfig};
use node_agent::ctx::{AgentCtx, Backoff};
use node_agent::layout::NodeLayout;
use node_agent::supervisor::Supervisor;
use node_agent::volumes::CsiVolumes;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferrofluid_service::telemetry::init(args.log_json);
    let client = ferrofluid_service::client::client(args.kubeconfig.as_deref()).await?;
    let layout = NodeLayout::new(&args.node_dir, &args.kubelet_root);
    for dir in [layout.logs_dir(), layout.status_dir()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(layout.ready_file());
    let shutdown = ferrofluid_service::shutdown_on_signal();
    let backoff = Backoff {
        initial: Args::secs(args.backoff_initial_secs),
        max: Args::secs(args.backoff_max_secs),
        reset_after: Duration::from_secs(60),
    };

    let socket = args.csi_socket.clone().or_else(|| args.csi_plugin.as_ref().map(|_| layout.default_csi_socket()));
    let plugin_stop = CancellationToken::new();
    let plugin = match (&args.csi_plugin, &socket) {
        (Some(binary), Some(socket)) => {
            let cfg = PluginConfig {
                binary: binary.clone(),
                socket: socket.clone(),
                node: args.node.clone(),
                kubeconfig: args.kubeconfig.clone(),
                log: layout.logs_dir().join("csi-plugin.log"),
            };
            Some(tokio::spawn(csi_plugin_process::run(cfg, backoff, plugin_stop.clone())))
        }
        _ => None,
    };
    let csi = match &socket {
        Some(s) => Some(Arc::new(CsiVolumes::new(CsiClient::new(s.clone())?, client.clone(), layout.clone()))),
        None => None,
    };

    let recorder =
        Recorder::new(client.clone(), Reporter { controller: "node-agent".into(), instance: Some(args.node.clone()) });
    let container_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let ctx = Arc::new(AgentCtx {
        client,
        node: args.node.clone(),
        layout,
        recorder,
        backoff,
        max_grace: Args::secs(args.max_grace_period_secs),
        ready_after: Args::secs(args.ready_after_secs),
        container_path,
        csi,
    });
    tracing::info!(node = %args.node, csi = ?socket, "node agent starting");
    Supervisor::new(ctx).run(shutdown).await;
    plugin_stop.cancel();
    if let Some(p) = plugin {
        let _ = p.await;
    }
    tracing::info!("node agent stopped");
    Ok(())
}

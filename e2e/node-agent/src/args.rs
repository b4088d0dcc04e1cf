//! Command-line flags of `node-agent`.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "node-agent", version, about = "Stands in for the kubelet on one agent-backed kwok node")]
pub struct Args {
    /// Name of the Node whose pods this agent runs.
    #[arg(long)]
    pub node: String,
    /// Kubeconfig file.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The node's directory (`.local/nodes/<node>`): logs, status records, the CSI socket.
    #[arg(long)]
    pub node_dir: PathBuf,
    /// Kubelet root as seen inside the node's mount namespace.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub kubelet_root: PathBuf,
    /// csi-plugin binary to run for this node; without it (and without --csi-socket) no CSI volumes
    /// are handled.
    #[arg(long)]
    pub csi_plugin: Option<PathBuf>,
    /// CSI socket: where the launched csi-plugin listens, or an already running plugin's socket.
    /// Default `<node-dir>/csi/csi.sock` when --csi-plugin is given.
    #[arg(long)]
    pub csi_socket: Option<PathBuf>,
    /// First restart delay of a failing container, in seconds; doubles per failure.
    #[arg(long, default_value_t = 2.0)]
    pub backoff_initial_secs: f64,
    /// Longest restart delay, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub backoff_max_secs: f64,
    /// Seconds a restarted container must keep running before the pod's status reports it ready.
    #[arg(long, default_value_t = 5.0)]
    pub ready_after_secs: f64,
    /// Upper bound on a pod's termination grace period, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub max_grace_period_secs: f64,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

impl Args {
    pub fn secs(v: f64) -> Duration {
        Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::from_secs(1))
    }
}

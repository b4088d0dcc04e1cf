//! Command-line flags of the csi-plugin.

use clap::{ArgAction, Parser};
use ferrofluid_service::CommonArgs;
use std::path::PathBuf;
use std::time::Duration;

/// CSI node driver fuse.csi.fluid.io: stages, publishes and recovers FUSE-backed volumes.
#[derive(Parser, Debug, Clone)]
#[command(name = "csi-plugin", version, about)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// CSI endpoint: `unix:///path/to/csi.sock`.
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///var/lib/kubelet/plugins/fuse.csi.fluid.io/csi.sock")]
    pub endpoint: String,
    /// Name of the Node this plugin runs on (the only Node it ever patches).
    #[arg(long, env = "NODE_NAME")]
    pub node_id: String,
    /// Root under which FUSE clients mount; every `fluid_path` must lie below it.
    #[arg(long, env = "FERROFLUID_MOUNT_ROOT", default_value = ferrofluid_api::keys::DEFAULT_MOUNT_ROOT)]
    pub mount_root: PathBuf,
    /// kubelet's root directory; every target and staging path must lie below it.
    #[arg(long, env = "KUBELET_ROOT", default_value = "/var/lib/kubelet")]
    pub kubelet_root: PathBuf,
    /// Where the driver records what it staged and published (default `<kubelet-root>/plugins/fuse.csi.fluid.io/state`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// How long NodePublishVolume waits for the FUSE mount before answering Unavailable (e.g. `30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = ferrofluid_service::args::parse_duration)]
    pub publish_timeout: Duration,
    /// Re-bind stale bind mounts after a FUSE restart.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub fuse_recovery: bool,
    /// How often the FUSE recovery loop looks at the mount table.
    #[arg(long, default_value = "5s", value_parser = ferrofluid_service::args::parse_duration)]
    pub fuse_recovery_period: Duration,
    /// Also serve a minimal CSI Controller service (CreateVolume/DeleteVolume of static volumes). Only
    /// the csi-sanity conformance suite needs it: ferrofluid's PVs are static and kubelet never calls it.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    pub controller_service: bool,
}

impl Args {
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            self.kubelet_root.join("plugins").join(ferrofluid_api::keys::CSI_DRIVER_NAME).join("state")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let a = Args::try_parse_from(["csi-plugin", "--node-id", "node-1"]).expect("parses");
        assert_eq!(a.publish_timeout, Duration::from_secs(30));
        assert!(a.fuse_recovery);
        assert_eq!(a.mount_root, PathBuf::from("/runtime-mnt"));
        assert_eq!(a.state_dir(), PathBuf::from("/var/lib/kubelet/plugins/fuse.csi.fluid.io/state"));
        let off = Args::try_parse_from(["csi-plugin", "--node-id", "n", "--fuse-recovery", "false"]).expect("parses");
        assert!(!off.fuse_recovery);
    }
}

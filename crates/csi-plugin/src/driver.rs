//! The driver's shared state: settings fixed at start, the record of what it staged and published,
//! per-target locks, metrics, the API client and the bounded file-system calls.

use crate::controller::StaticVolumes;
use crate::fsops::FsOps;
use crate::locks::KeyLocks;
use crate::metrics::CsiMetrics;
use crate::state::StateStore;
use ferrofluid_service::events::Events;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings fixed at start.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: String,
    pub mount_root: PathBuf,
    pub kubelet_root: PathBuf,
    pub publish_timeout: Duration,
    pub poll_interval: Duration,
    /// Serve the CSI Controller service (csi-sanity only).
    pub controller_service: bool,
}

#[derive(Clone)]
pub struct Driver {
    pub cfg: Arc<Config>,
    pub state: Arc<StateStore>,
    pub locks: KeyLocks,
    pub metrics: CsiMetrics,
    pub client: kube::Client,
    pub events: Events,
    pub volumes: Arc<StaticVolumes>,
    /// Every `stat`/`statvfs` that may touch a FUSE mount goes through here.
    pub fs: FsOps,
}

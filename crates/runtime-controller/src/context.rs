//! What every reconcile shares.

use ferrofluid_service::metrics::ReconcileMetrics;
use kube::runtime::events::Recorder;
use std::time::Duration;

pub const MANAGER: &str = "ferrofluid-runtime-controller";
pub const CONTROLLER: &str = "juicefsruntime";

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: ReconcileMetrics,
    pub mount_root: String,
    pub resync: Duration,
}

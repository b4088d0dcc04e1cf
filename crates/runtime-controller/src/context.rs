//! What every reconcile shares.

use crate::ports::Allocator;
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_service::metrics::ReconcileMetrics;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use std::time::Duration;

pub const MANAGER: &str = "ferrofluid-runtime-controller";
pub const CONTROLLER: &str = "juicefsruntime";

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: ReconcileMetrics,
    pub mount_root: String,
    pub resync: Duration,
    /// Every runtime the controller watches (its own watch cache): the host ports others hold.
    pub runtimes: Store<JuiceFSRuntime>,
    pub ports: Allocator,
}

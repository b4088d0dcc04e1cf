//! What every reconcile shares.

use crate::ports::Allocator;
use crate::stores::Stores;
use ferrofluid_api::juicefs_runtime::DefaultImage;
use ferrofluid_service::events::Events;
use ferrofluid_service::reconcile::Scaffold;
use std::time::Duration;

pub const MANAGER: &str = "ferrofluid-runtime-controller";
pub const CONTROLLER: &str = "juicefsruntime";

pub struct Context {
    pub client: kube::Client,
    pub events: Events,
    /// Metrics, backoff and the finalizer-wrapped pass, shared with the other controller.
    pub scaffold: Scaffold,
    pub mount_root: String,
    /// The image of JuiceFS containers whose runtime names none (`--juicefs-image`).
    pub juicefs_image: DefaultImage,
    pub resync: Duration,
    /// The watch caches every read comes from.
    pub stores: Stores,
    pub ports: Allocator,
    /// How long a node must be free of a runtime's clients before its cache directories go.
    pub cache_grace: Duration,
}

//! Reconcile errors: the shared scaffold's, each saying which step failed.

pub use ferrofluid_service::error::Step;
pub use ferrofluid_service::reconcile::Error;
use std::time::Duration;

/// How often a runtime waiting on something (a PVC in use, a PV being deleted, a cleanup Job) checks
/// again, besides the watch events that usually wake it first.
pub const WAITING_RECHECK: Duration = Duration::from_secs(5);

/// Waiting on something outside the controller; not a failure.
pub fn waiting(message: impl Into<String>) -> Error {
    Error::waiting("waiting", message, WAITING_RECHECK)
}

//! Leader election on a `coordination.k8s.io/v1` Lease, with the `kube-lease-manager` crate. Two replicas
//! of a component run; one holds the lease and works, the other waits and takes over once the holder
//! stops renewing. Losing the lease — or failing to renew it for longer than the renew deadline — ends
//! the leader's work (the caller exits), so there is never a split brain; a clean shutdown releases the
//! lease so the standby takes over at once.

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per process, e.g. `<pod name>_<random>`.
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// Give up leadership when renewals keep failing for this long (< lease_duration).
    pub renew_deadline: Duration,
    /// Pause between attempts after an API error.
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Seconds before expiry at which the holder renews: what the lease duration leaves after the renew
    /// deadline, at least one second.
    fn grace_seconds(&self) -> u64 {
        self.lease_duration.saturating_sub(self.renew_deadline).as_secs().max(1)
    }
}

/// Field manager of the Lease writes.
pub const FIELD_MANAGER: &str = "ferrofluid-leader-election";

/// Held leadership: `lost` is cancelled when the lease is lost; call [`Leadership::release`] on a clean
/// shutdown so a standby takes over at once.
pub struct Leadership {
    pub lost: CancellationToken,
    manager: Arc<LeaseManager>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Stops renewing and clears the holder so another replica can take over without waiting.
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self.manager.release().await {
            tracing::warn!(error = %e, "could not release the lease; the standby takes over when it expires");
        }
    }
}

/// Waits until this process holds the lease, then keeps renewing it in the background.
/// Returns `None` when `shutdown` fires first.
pub async fn acquire(client: kube::Client, cfg: LeaseConfig, shutdown: CancellationToken) -> Option<Leadership> {
    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "waiting for leadership");
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(cfg.lease_duration.as_secs().max(1))
            .with_grace(cfg.grace_seconds())
            .with_field_manager(FIELD_MANAGER)
            .build()
            .await;
        match built {
            Ok(m) => break Arc::new(m),
            Err(e) => tracing::warn!(error = %e, "cannot set up leader election; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(cfg.retry_period) => {}
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            changed = manager.changed() => match changed {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election attempt failed");
                    tokio::time::sleep(cfg.retry_period).await;
                }
            },
        }
    }
    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became leader");
    let lost = CancellationToken::new();
    let renewer = tokio::spawn(keep(manager.clone(), cfg, lost.clone()));
    Some(Leadership { lost, manager, renewer })
}

/// Keeps the lease renewed (`changed()` renews while it waits) until it is lost, or until renewals have
/// failed for longer than the renew deadline.
async fn keep(manager: Arc<LeaseManager>, cfg: LeaseConfig, lost: CancellationToken) {
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        match manager.changed().await {
            Ok(true) => failing_since = None,
            Ok(false) => {
                tracing::error!(lease = %cfg.name, "lease taken by another replica");
                break;
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                tracing::warn!(error = %e, "lease renewal failed");
                if since.elapsed() > cfg.renew_deadline {
                    tracing::error!(lease = %cfg.name, "could not renew the lease in time; giving up leadership");
                    break;
                }
                tokio::time::sleep(cfg.retry_period).await;
            }
        }
    }
    lost.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_leaves_the_deadline_before_expiry() {
        let mut cfg = LeaseConfig::new("ns", "l", "me");
        assert_eq!(cfg.grace_seconds(), 5);
        cfg.lease_duration = Duration::from_secs(3);
        cfg.renew_deadline = Duration::from_secs(2);
        assert_eq!(cfg.grace_seconds(), 1);
        cfg.renew_deadline = Duration::from_secs(3);
        assert_eq!(cfg.grace_seconds(), 1, "never zero");
    }
}

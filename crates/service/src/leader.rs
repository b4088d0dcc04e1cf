//! Leader election on a `coordination.k8s.io/v1` Lease. Two replicas of a component run; one holds the
//! lease and works, the other waits and takes over once the holder stops renewing. Losing the lease ends
//! the leader's work (the caller exits), so there is never a split brain.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
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
    /// Give up leadership when no renewal succeeded for this long (< lease_duration).
    pub renew_deadline: Duration,
    /// Pause between attempts.
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
}

/// What to do with the lease as it stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No lease object yet.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it.
    TakeOver,
    /// Someone else holds a valid lease.
    Wait,
}

/// Pure decision from the current lease, our identity and the time.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> Decision {
    let Some(lease) = lease else { return Decision::Create };
    let spec = lease.spec.clone().unwrap_or_default();
    match spec.holder_identity.as_deref() {
        Some(h) if h == identity => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(_) => {
            let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
            let expired = match spec.renew_time.or(spec.acquire_time) {
                Some(MicroTime(t)) => t.checked_add(duration).map(|end| end < now).unwrap_or(true),
                None => true,
            };
            if expired { Decision::TakeOver } else { Decision::Wait }
        }
    }
}

/// Held leadership: `lost` is cancelled if renewals stop succeeding; dropping it releases nothing —
/// call [`Leadership::release`] on clean shutdown so a standby takes over at once.
pub struct Leadership {
    pub lost: CancellationToken,
    api: Api<Lease>,
    cfg: LeaseConfig,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Stops renewing and clears the holder so another replica can take over without waiting.
    pub async fn release(self) {
        self.renewer.abort();
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() == Some(self.cfg.identity.as_str()) {
                spec.holder_identity = None;
                if let Err(e) = self.api.replace(&self.cfg.name, &PostParams::default(), &lease).await {
                    tracing::warn!(error = %e, "could not release the lease; the standby takes over when it expires");
                }
            }
        }
    }
}

/// Attempts once to acquire or renew; `Ok(true)` when we hold the lease afterwards.
pub async fn try_acquire_or_renew(api: &Api<Lease>, cfg: &LeaseConfig) -> kube::Result<bool> {
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    let decision = decide(current.as_ref(), &cfg.identity, now);
    let seconds = i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let result = match (decision, current) {
        (Decision::Wait, _) => return Ok(false),
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(cfg.name.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(cfg.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        (decision, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if decision == Decision::TakeOver {
                spec.holder_identity = Some(cfg.identity.clone());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.lease_duration_seconds = Some(seconds);
            spec.renew_time = Some(MicroTime(now));
            // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
            api.replace(&cfg.name, &PostParams::default(), &lease).await.map(|_| ())
        }
        (_, None) => return Ok(false),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this process holds the lease, then keeps renewing it in the background.
/// Returns `None` when `shutdown` fires first.
pub async fn acquire(client: kube::Client, cfg: LeaseConfig, shutdown: CancellationToken) -> Option<Leadership> {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "waiting for leadership");
    loop {
        match try_acquire_or_renew(&api, &cfg).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(cfg.retry_period) => {}
        }
    }
    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became leader");
    let lost = CancellationToken::new();
    let renewer = tokio::spawn(renew_loop(api.clone(), cfg.clone(), lost.clone()));
    Some(Leadership { lost, api, cfg, renewer })
}

async fn renew_loop(api: Api<Lease>, cfg: LeaseConfig, lost: CancellationToken) {
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.retry_period).await;
        match try_acquire_or_renew(&api, &cfg).await {
            Ok(true) => last_ok = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(lease = %cfg.name, "lease taken by another replica");
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
        if last_ok.elapsed() > cfg.renew_deadline {
            tracing::error!(lease = %cfg.name, "could not renew the lease in time; giving up leadership");
            lost.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> Lease {
        let now = Timestamp::now();
        Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn decisions() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "a", now), Decision::Create);
        assert_eq!(decide(Some(&lease(Some("a"), 1, 15)), "a", now), Decision::Renew);
        assert_eq!(decide(Some(&lease(Some("b"), 1, 15)), "a", now), Decision::Wait);
        assert_eq!(decide(Some(&lease(Some("b"), 20, 15)), "a", now), Decision::TakeOver);
        assert_eq!(decide(Some(&lease(None, 1, 15)), "a", now), Decision::TakeOver);
        assert_eq!(decide(Some(&lease(Some(""), 1, 15)), "a", now), Decision::TakeOver);
    }
}

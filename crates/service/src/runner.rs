//! The life of a component process: logs, client, HTTP endpoints, leadership, work, shutdown.
//! Every component's `main` is a call to [`run`] with its own work function.

use crate::args::{CommonArgs, LeaderArgs};
use crate::http::{self, Health};
use crate::leader::{self, LeaseConfig};
use anyhow::{Context, bail};
use prometheus::Registry;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the work function gets.
pub struct Runtime {
    pub client: kube::Client,
    /// Cancelled on SIGTERM/SIGINT or when leadership is lost: stop promptly when it fires.
    pub stop: CancellationToken,
    pub health: Health,
    pub registry: Registry,
}

/// Runs `work` until it returns or the process is told to stop. With leader election on, `work` starts
/// only once this replica holds the Lease named `component`; losing it stops `work` and the process
/// exits with an error so its Deployment restarts it as a standby.
pub async fn run<F, Fut>(
    component: &str,
    common: &CommonArgs,
    leader: Option<&LeaderArgs>,
    registry: Registry,
    work: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::telemetry::init(common.log_json);
    let shutdown = crate::shutdown::shutdown_on_signal();
    let limit = crate::client::RateLimit { qps: common.api_qps, burst: common.api_burst };
    let counted = crate::request_metrics::RequestMetrics::register(&registry)?;
    let client = crate::client::limited_client(common.kubeconfig.as_deref(), Some(limit), Some(&counted)).await?;
    let health = Health::default();
    let server = http::serve(common.http_addr, health.clone(), registry.clone(), shutdown.clone())
        .await
        .with_context(|| format!("binding {}", common.http_addr))?;

    let leadership = match leader.filter(|l| l.leader_elect) {
        None => None,
        Some(l) => {
            let mut cfg = LeaseConfig::new(&l.lease_namespace, component, identity());
            cfg.lease_duration = Duration::from_secs(l.lease_seconds.max(3));
            cfg.renew_deadline = cfg.lease_duration * 2 / 3;
            cfg.retry_period = (cfg.lease_duration / 5).max(Duration::from_secs(1));
            health.set_ready(true); // a healthy standby is ready
            match leader::acquire(client.clone(), cfg, shutdown.clone()).await {
                Some(l) => Some(l),
                None => return Ok(()),
            }
        }
    };
    let stop = shutdown.child_token();
    if let Some(l) = &leadership {
        let lost = l.lost.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            lost.cancelled().await;
            stop.cancel();
        });
    }
    health.set_ready(true);
    let result = work(Runtime { client, stop: stop.clone(), health, registry }).await;
    let lost = leadership.as_ref().is_some_and(|l| l.lost.is_cancelled());
    if let Some(l) = leadership.filter(|_| !lost) {
        l.release().await;
    }
    shutdown.cancel();
    let _ = server.await;
    result?;
    if lost {
        bail!("{component}: lost leadership");
    }
    Ok(())
}

/// Unique identity of this process for the Lease: pod name (or host name) plus a random suffix.
fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "ferrofluid".to_string());
    format!("{base}_{:08x}", rand::random::<u32>())
}

/// An API for a namespaced kind: one namespace when the component is scoped, else all namespaces.
pub fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// Drives a controller's result stream to its end; failed rounds are already counted and logged by
/// the controller's error policy.
pub async fn drain<S, T, E>(stream: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    stream
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile round failed");
            }
        })
        .await;
}

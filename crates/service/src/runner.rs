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
    run_serving(component, common, leader, registry, |_, _| async { Ok(()) }, work).await
}

/// Like [`run`], with `serving` started on every replica, leader or not, before the election: it gets
/// the client and the process's shutdown token, runs beside `work` and is awaited before the process
/// ends; its failure ends the process.
pub async fn run_serving<S, SFut, F, Fut>(
    component: &str,
    common: &CommonArgs,
    leader: Option<&LeaderArgs>,
    registry: Registry,
    serving: S,
    work: F,
) -> anyhow::Result<()>
where
    S: FnOnce(kube::Client, CancellationToken) -> SFut,
    SFut: Future<Output = anyhow::Result<()>> + Send + 'static,
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
    let always = tokio::spawn(serving(client.clone(), shutdown.clone()));
    // A serving part that fails — returns an error or panics (its task's join error) — stops the process
    // (its Deployment restarts it): a second task watches the first, so a panic is caught too.
    let failed = shutdown.clone();
    let always = async move {
        let result = always.await.map_err(anyhow::Error::from).and_then(|r| r);
        if result.is_err() {
            failed.cancel();
        }
        result
    };
    let always = tokio::spawn(always);

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
                None => return always.await?,
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
    always.await??;
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

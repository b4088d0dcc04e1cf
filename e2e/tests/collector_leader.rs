//! Two metrics-collector replicas against the real API server: one holds the Lease and writes, the other
//! serves /healthz and /readyz, scrapes nothing and writes nothing, and takes over when the leader dies.
//!
//! The scrape target is a kwok pod whose metrics port is served, on its loopback pod IP, with exposition
//! text captured from a real `juicefs mount --metrics` (the collector's unit-test fixture).

use anyhow::{Context, Result, bail};
use ferrofluid_api::keys::{
    APP_JUICEFS, FUSE_CONTAINER, LABEL_APP, LABEL_MANAGED_BY, LABEL_RELEASE, LABEL_ROLE, MANAGED_BY, METRICS_PORT_NAME,
    ROLE_FUSE,
};
use ferrofluid_api::{Dataset, DatasetSpec, JuiceFSRuntime, JuiceFSRuntimeSpec, Mount};
use ferrofluid_e2e::cluster::wait_for_loopback_pod_ip;
use ferrofluid_e2e::fake_metrics::MetricsEndpoint;
use ferrofluid_e2e::http::http_get;
use ferrofluid_e2e::redis::free_port;
use ferrofluid_e2e::{TestNamespace, bin_path};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use kube::api::{Api, ObjectMeta, PostParams};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAME: &str = "leased";
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_the_standby_takes_over() -> Result<()> {
    let collector_bin = bin_path("metrics-collector");
    let fixture = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/metrics-collector/tests/fixtures/juicefs-1.4.2-metrics.txt"),
    )?;
    let ns = TestNamespace::new("collector-lease")?;
    let client = ferrofluid_e2e::client().await?;
    let datasets: Api<Dataset> = Api::namespaced(client.clone(), &ns.name);
    let runtimes: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);

    let spec = DatasetSpec {
        mounts: vec![Mount { mount_point: "juicefs:///".into(), name: NAME.into(), ..Default::default() }],
        ..Default::default()
    };
    datasets.create(&PostParams::default(), &Dataset::new(NAME, spec)).await?;
    let rt_spec = JuiceFSRuntimeSpec { replicas: Some(0), ..Default::default() };
    runtimes.create(&PostParams::default(), &JuiceFSRuntime::new(NAME, rt_spec)).await?;
    let port = free_port()?;
    pods.create(&PostParams::default(), &fuse_pod(port)).await?;
    let ip = wait_for_loopback_pod_ip(&pods, "leased-fuse", DEADLINE).await?;
    let body = Arc::new(Mutex::new(fixture.clone()));
    let _endpoint = MetricsEndpoint::serve(SocketAddr::new(ip.parse()?, port), body.clone())?;

    let start = |http: u16| -> Result<Child> {
        Command::new(&collector_bin)
            .arg("--kubeconfig")
            .arg(ferrofluid_e2e::kubeconfig())
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .args(["--scrape-interval", "1s", "--scrape-timeout", "1s"])
            .args(["--lease-namespace", &ns.name, "--lease-seconds", "3", "--namespace", &ns.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting metrics-collector")
    };
    let (a_port, b_port) = (free_port()?, free_port()?);
    let mut leader = Reaped(start(a_port)?);
    // The fixture holds 8396800 bytes of cache: `8.01MiB`.
    wait_for_cached(&datasets, "8.01MiB").await?;
    let standby = Reaped(start(b_port)?);
    let b = SocketAddr::from(([127, 0, 0, 1], b_port));

    // The standby is healthy and ready, and stays idle over several rounds.
    let deadline = Instant::now() + DEADLINE;
    while http_get(b, "/healthz").is_err() {
        assert!(Instant::now() < deadline, "standby never served /healthz");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http_get(b, "/readyz")?, "ready");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = http_get(b, "/metrics")?;
    assert!(!idle.contains("dataset="), "the standby scraped:\n{idle}");
    assert!(!idle.contains("ferrofluid_collector_status_writes_total{"), "the standby wrote:\n{idle}");

    // The leader dies without releasing the Lease; the standby takes over once it expires and writes
    // what the endpoint now says (2 GiB cached), which no one else could have written.
    let _ = leader.0.kill();
    let _ = leader.0.wait();
    let changed = fixture.replace("} 8.3968e+06", "} 2.147483648e+09");
    assert_ne!(changed, fixture, "fixture no longer holds the expected juicefs_blockcache_bytes line");
    *body.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = changed;
    wait_for_cached(&datasets, "2.00GiB").await?;
    // The status write and the series update happen in the same round, in that order: poll briefly.
    let series = format!(r#"dataset="{NAME}",namespace="{}""#, ns.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut active = http_get(b, "/metrics")?;
    while !active.contains(&series) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        active = http_get(b, "/metrics")?;
    }
    assert!(active.contains(&series), "{active}");
    drop(standby);
    Ok(())
}

async fn wait_for_cached(datasets: &Api<Dataset>, want: &str) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ds = datasets.get(NAME).await?;
        let cached = ds.status.and_then(|s| s.cache_states).and_then(|c| c.cached);
        if cached.as_deref() == Some(want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Dataset cacheStates.cached is {cached:?}, want {want}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn fuse_pod(port: u16) -> Pod {
    let labels =
        [(LABEL_APP, APP_JUICEFS), (LABEL_RELEASE, NAME), (LABEL_ROLE, ROLE_FUSE), (LABEL_MANAGED_BY, MANAGED_BY)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    Pod {
        metadata: ObjectMeta { name: Some("leased-fuse".into()), labels: Some(labels), ..Default::default() },
        spec: Some(PodSpec {
            node_name: Some("node-2".into()),
            containers: vec![Container {
                name: FUSE_CONTAINER.into(),
                image: Some("juicedata/juicefs-fuse:ce-v1.4.2".into()),
                ports: Some(vec![ContainerPort {
                    name: Some(METRICS_PORT_NAME.into()),
                    container_port: i32::from(port),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

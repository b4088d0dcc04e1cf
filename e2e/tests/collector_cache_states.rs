//! metrics-collector against the real API server, kwok pods and real `juicefs mount` processes.
//!
//! A Dataset + JuiceFSRuntime `alpha` with four kwok pods bound to node-1 (kwok marks them Running and
//! gives each a 127.x pod IP): a worker and a FUSE pod whose metrics ports are served by real JuiceFS
//! clients listening on those pod IPs, a FUSE pod whose port is a TCP listener that never answers, and a
//! worker pod whose port answers garbage. The collector binary runs with a 1 s interval.
//!
//! Checked: reading a file twice through the FUSE client's mount makes the Dataset's `cacheStates.cached`
//! grow and `cacheHitRatio` go above 0, on the runtime too; /metrics shows the same numbers; the hung and
//! the garbage endpoint count as scrape errors while the healthy ones keep updating; other status fields
//! are left alone (the collector's field manager owns only cacheStates and ufsTotal); deleting the runtime removes its series and stops its scrapes.

use anyhow::{Context, Result, bail};
use ferrofluid_api::juicefs_runtime::TieredStore;
use ferrofluid_api::keys::{
    APP_JUICEFS, FUSE_CONTAINER, LABEL_APP, LABEL_DATASET_ID, LABEL_MANAGED_BY, LABEL_RELEASE, LABEL_ROLE, MANAGED_BY,
    METRICS_PORT_NAME, ROLE_FUSE, ROLE_WORKER, WORKER_CONTAINER,
};
use ferrofluid_api::{Dataset, DatasetKey, DatasetSpec, JuiceFSRuntime, JuiceFSRuntimeSpec, Level, MediumType, Mount};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::cluster::wait_for_loopback_pod_ip;
use ferrofluid_e2e::http::metric_value;
use ferrofluid_e2e::redis::{RedisServer, free_port};
use ferrofluid_e2e::{TestNamespace, bin_path, tool_path};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NAME: &str = "alpha";
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_states_follow_real_juicefs_clients() -> Result<()> {
    let juicefs = tool_path("juicefs");
    let collector_bin = bin_path("metrics-collector");
    let ns = TestNamespace::new("collector")?;
    let client = ferrofluid_e2e::client().await?;
    let key = DatasetKey::new(&ns.name, NAME);
    let work = TempDir::new("ferrofluid-collector-e2e")?;

    // The file system: Redis metadata, a local directory as bucket.
    let redis = RedisServer::start()?;
    let meta = redis.meta_url(1);
    run_ok(
        Command::new(&juicefs)
            .args(["format", "--storage", "file", "--bucket"])
            .arg(work.0.join("bucket"))
            .args([&meta, "alpha"]),
    )?;

    // Dataset + runtime (1Gi of cache per worker), with a status field of another manager to keep.
    // `replicas: 0`, and a Dataset without a `metaurl` secret (a runtime-controller rejects it as
    // InvalidSpec): should a runtime-controller run against this cluster, it starts no workloads here
    // (a FUSE DaemonSet would adopt and evict the FUSE pods below), so the four pods below are the
    // runtime's only pods.
    let datasets: Api<Dataset> = Api::namespaced(client.clone(), &ns.name);
    let runtimes: Api<JuiceFSRuntime> = Api::namespaced(client.clone(), &ns.name);
    let dataset = Dataset::new(
        NAME,
        DatasetSpec {
            mounts: vec![Mount { mount_point: "juicefs:///".into(), name: "alpha".into(), ..Default::default() }],
            ..Default::default()
        },
    );
    datasets.create(&PostParams::default(), &dataset).await.context("creating the dataset")?;
    let runtime = JuiceFSRuntime::new(
        NAME,
        JuiceFSRuntimeSpec {
            replicas: Some(0),
            tieredstore: Some(TieredStore {
                levels: vec![Level {
                    mediumtype: MediumType::Ssd,
                    path: "/var/jfsCache".into(),
                    quota: Some(IntOrString::String("1Gi".into())),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        },
    );
    runtimes.create(&PostParams::default(), &runtime).await.context("creating the runtime")?;
    let other = PatchParams::apply("e2e-other-controller").force();
    datasets
        .patch_status(
            NAME,
            &other,
            &Patch::Apply(json!({
                "apiVersion": "data.fluid.io/v1alpha1", "kind": "Dataset",
                "status": {"hcfs": {"endpoint": "e2e-kept"}}
            })),
        )
        .await?;

    // Four pods of the contract on node-1; kwok runs them and hands out loopback pod IPs.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let ports: BTreeMap<&str, u16> = [
        ("alpha-w-real", free_port()?),
        ("alpha-w-garbage", free_port()?),
        ("alpha-f-real", free_port()?),
        ("alpha-f-hung", free_port()?),
    ]
    .into_iter()
    .collect();
    for (name, port) in &ports {
        let role = if name.starts_with("alpha-w-") { ROLE_WORKER } else { ROLE_FUSE };
        pods.create(&PostParams::default(), &contract_pod(&key, name, role, *port))
            .await
            .with_context(|| format!("creating pod {name}"))?;
    }
    let mut addr = BTreeMap::new();
    for (name, port) in &ports {
        let ip = wait_for_loopback_pod_ip(&pods, name, DEADLINE).await?;
        addr.insert(*name, SocketAddr::new(ip.parse().context("pod IP")?, *port));
    }

    // Real JuiceFS clients on the alpha-w-real and alpha-f-real pod addresses; stand-ins on the other two.
    let worker = JuiceFsMount::start(&juicefs, &meta, &work.0.join("worker"), addr["alpha-w-real"])?;
    let fuse = JuiceFsMount::start(&juicefs, &meta, &work.0.join("fuse"), addr["alpha-f-real"])?;
    let garbage = StandIn::garbage(addr["alpha-w-garbage"])?;
    let hung = StandIn::hung(addr["alpha-f-hung"])?;
    // 8 MiB of data, written through the worker's client.
    worker.sh("head -c 8388608 /dev/urandom > \"$MNT/data.bin\" && sync")?;

    let http_port = free_port()?;
    let _collector = Process::spawn(
        Command::new(&collector_bin)
            .arg("--kubeconfig")
            .arg(ferrofluid_e2e::kubeconfig())
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(["--scrape-interval", "1s", "--scrape-timeout", "1s"])
            .args(["--lease-namespace", &ns.name, "--namespace", &ns.name])
            .env("RUST_LOG", "info,metrics_collector=debug"),
        &work.0.join("collector.log"),
    )?;
    let metrics_url = SocketAddr::from(([127, 0, 0, 1], http_port));
    let series = |text: &str, name: &str, extra: &str| -> Option<f64> {
        metric_value(text, name, &format!(r#"dataset="{NAME}",{extra}namespace="{}""#, ns.name))
    };

    let deadline = Deadline::start();
    while let Err(e) = http_get(metrics_url) {
        deadline.check("the collector to serve /metrics", &format!("{e:#}"))?;
        tokio::time::sleep(POLL).await;
    }

    // 1. Both failing endpoints are scraped and counted as errors while the healthy ones report.
    let deadline = Deadline::start();
    let cached_before = loop {
        let text = http_get(metrics_url)?;
        let fuse_errors = series(&text, "ferrofluid_collector_scrape_errors_total", r#"kind="fuse","#).unwrap_or(0.0);
        let worker_errors =
            series(&text, "ferrofluid_collector_scrape_errors_total", r#"kind="worker","#).unwrap_or(0.0);
        let cached = series(&text, "ferrofluid_dataset_cache_cached_bytes", "");
        if let (true, Some(cached)) = (fuse_errors >= 2.0 && worker_errors >= 2.0, cached) {
            break cached;
        }
        deadline.check("scrape errors for the hung and the garbage endpoint and readings from the others", &text)?;
        tokio::time::sleep(POLL).await;
    };
    assert!(hung.connections() >= 1, "the hung endpoint was never contacted");
    assert!(garbage.connections() >= 1, "the garbage endpoint was never contacted");
    let text = http_get(metrics_url)?;
    assert_eq!(series(&text, "ferrofluid_collector_targets", r#"kind="fuse","#), Some(2.0), "{text}");
    assert_eq!(series(&text, "ferrofluid_collector_targets", r#"kind="worker","#), Some(2.0), "{text}");
    assert_eq!(
        series(&text, "ferrofluid_dataset_cache_capacity_bytes", ""),
        Some(2.0 * (1u64 << 30) as f64),
        "2 ready workers × 1Gi: {text}"
    );

    // 2. Read the file twice through the FUSE client (a pause in between lets JuiceFS's read-ahead
    // buffers go, and the kernel's page cache of the file is dropped first, so the second read reaches
    // JuiceFS and is served by its block cache), until hits show in status.
    let deadline = Deadline::start();
    let read = "dd if=\"$MNT/data.bin\" iflag=nocache count=0 2>/dev/null; cat \"$MNT/data.bin\" > /dev/null";
    loop {
        fuse.sh(read)?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        fuse.sh(read)?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let ds = datasets.get(NAME).await?;
        let states = ds.status.as_ref().and_then(|s| s.cache_states.clone()).unwrap_or_default();
        if percent(states.cache_hit_ratio.as_deref()) > 0.0 {
            break;
        }
        deadline.check("cacheHitRatio above 0 on the Dataset", &format!("{states:?}"))?;
    }

    // 3. Status and /metrics agree, and the cache grew.
    let deadline = Deadline::start();
    loop {
        let text = http_get(metrics_url)?;
        let cached = series(&text, "ferrofluid_dataset_cache_cached_bytes", "").unwrap_or(-1.0);
        let ratio = series(&text, "ferrofluid_dataset_cache_hit_ratio", "").unwrap_or(-1.0);
        let hits = series(&text, "ferrofluid_dataset_cache_hits_total", "").unwrap_or(-1.0);
        let ds = datasets.get(NAME).await?;
        let rt = runtimes.get(NAME).await?;
        let ds_states = ds.status.as_ref().and_then(|s| s.cache_states.clone()).unwrap_or_default();
        let rt_states = rt.status.as_ref().and_then(|s| s.cache_states.clone()).unwrap_or_default();
        if cached > cached_before
            && hits > 0.0
            && ratio > 0.0
            && ds_states.cached.as_deref() == Some(human_bytes(cached as u64).as_str())
            && ds_states.cache_hit_ratio.as_deref() == Some(format!("{:.1}%", ratio * 100.0).as_str())
            && ds_states.cache_capacity.as_deref() == Some("2.00GiB")
            && ds_states == rt_states
        {
            break;
        }
        let seen = format!(
            "metrics cached={cached} (before {cached_before}) ratio={ratio} hits={hits}; dataset {ds_states:?}; runtime {rt_states:?}"
        );
        deadline.check("Dataset, runtime and /metrics to show the same grown cache", &seen)?;
        tokio::time::sleep(POLL).await;
    }
    let hung_errors_then =
        series(&http_get(metrics_url)?, "ferrofluid_collector_scrape_errors_total", r#"kind="fuse","#);

    // ufsTotal from juicefs_used_space (8 MiB written), and the other manager's fields are intact.
    let deadline = Deadline::start();
    loop {
        let ds = datasets.get(NAME).await?;
        let ufs = ds.status.as_ref().and_then(|s| s.ufs_total.clone());
        if ufs.as_deref() == Some("8.00MiB") {
            break;
        }
        deadline.check("Dataset ufsTotal 8.00MiB from juicefs_used_space", &format!("{ufs:?}"))?;
        tokio::time::sleep(POLL).await;
    }
    // Once the figures stop moving, so do the writes: three rounds without a status apply.
    let writes = |text: &str| {
        ["dataset", "juicefsruntime"]
            .iter()
            .filter_map(|r| {
                metric_value(text, "ferrofluid_collector_status_writes_total", &format!(r#"resource="{r}""#))
            })
            .sum::<f64>()
    };
    let deadline = Deadline::start();
    loop {
        let before = writes(&http_get(metrics_url)?);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = writes(&http_get(metrics_url)?);
        if before == after && after > 0.0 {
            break;
        }
        deadline.check("status writes to stop while nothing changes", &format!("{before} then {after} writes"))?;
    }

    let ds = datasets.get(NAME).await?;
    let rt = runtimes.get(NAME).await?;
    let hcfs = ds.status.as_ref().and_then(|s| s.hcfs.as_ref()).and_then(|h| h.endpoint.as_deref());
    assert_eq!(hcfs, Some("e2e-kept"), "another manager's status field was lost");
    assert_owns_only(&ds.metadata, &["f:cacheStates", "f:ufsTotal"]);
    assert_owns_only(&rt.metadata, &["f:cacheStates"]);
    let text = http_get(metrics_url)?;
    assert!(
        series(&text, "ferrofluid_collector_scrape_errors_total", r#"kind="fuse","#) > hung_errors_then,
        "the hung endpoint stopped being counted: {text}"
    );

    // 4. Deleting the runtime removes its series and stops its scrapes (its pods stay).
    runtimes.delete(NAME, &DeleteParams::default()).await?;
    let deadline = Deadline::start();
    loop {
        let text = http_get(metrics_url)?;
        if !text.contains(&format!(r#"dataset="{NAME}""#)) {
            break;
        }
        deadline.check("the deleted runtime's series to disappear", &text)?;
        tokio::time::sleep(POLL).await;
    }
    let (hung_seen, garbage_seen) = (hung.connections(), garbage.connections());
    // Three more rounds: nobody may call the endpoints of the gone runtime.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hung.connections(), hung_seen, "the hung endpoint was scraped after its runtime was deleted");
    assert_eq!(garbage.connections(), garbage_seen, "the garbage endpoint was scraped after its runtime was deleted");
    let text = http_get(metrics_url)?;
    assert!(!text.contains(&format!(r#"namespace="{}""#, ns.name)), "series left behind:\n{text}");
    Ok(())
}

/// A time limit for one wait; `check` fails with what was last seen once it passed.
struct Deadline(Instant);

impl Deadline {
    fn start() -> Self {
        Self(Instant::now())
    }

    fn check(&self, waiting_for: &str, last_seen: &str) -> Result<()> {
        if self.0.elapsed() > DEADLINE {
            bail!("timed out waiting for {waiting_for}; last seen:\n{last_seen}");
        }
        Ok(())
    }
}

fn contract_pod(key: &DatasetKey, name: &str, role: &str, port: u16) -> Pod {
    let labels = [
        (LABEL_APP, APP_JUICEFS.to_string()),
        (LABEL_RELEASE, key.name.clone()),
        (LABEL_ROLE, role.to_string()),
        (LABEL_DATASET_ID, key.dataset_id()),
        (LABEL_MANAGED_BY, MANAGED_BY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let container = if role == ROLE_WORKER { WORKER_CONTAINER } else { FUSE_CONTAINER };
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: container.into(),
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

/// Asserts the collector's field manager owns nothing in status but `allowed` (under `f:status`).
fn assert_owns_only(meta: &ObjectMeta, allowed: &[&str]) {
    let ours: Vec<_> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("ferrofluid-metrics-collector"))
        .collect();
    assert_eq!(ours.len(), 1, "one entry of the collector's manager: {ours:?}");
    assert_eq!(ours[0].subresource.as_deref(), Some("status"));
    assert_eq!(ours[0].operation.as_deref(), Some("Apply"));
    let fields = ours[0].fields_v1.as_ref().map(|f| f.0.clone()).unwrap_or_default();
    let status = fields.get("f:status").and_then(|s| s.as_object()).cloned().unwrap_or_default();
    let mut owned: Vec<_> = status.keys().cloned().collect();
    owned.sort();
    assert_eq!(owned, allowed, "collector owns {fields}");
}

/// A `juicefs mount` in a private mount namespace, its metrics on `metrics`; killed on drop, which takes
/// the mount with it (the namespace dies with its only process).
struct JuiceFsMount {
    process: Process,
    mountpoint: PathBuf,
}

impl JuiceFsMount {
    fn start(juicefs: &Path, meta: &str, dir: &Path, metrics: SocketAddr) -> Result<Self> {
        let mountpoint = dir.join("mnt");
        std::fs::create_dir_all(&mountpoint)?;
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private"])
            .arg(juicefs)
            .args(["mount", "--no-usage-report", "--metrics", &metrics.to_string(), "--cache-dir"])
            .arg(dir.join("cache"))
            .arg(meta)
            .arg(&mountpoint);
        let process = Process::spawn(&mut cmd, &dir.join("juicefs.log"))?;
        let mut mount = Self { process, mountpoint };
        let start = Instant::now();
        while TcpStream::connect_timeout(&metrics, Duration::from_millis(200)).is_err() || !mount.is_mounted() {
            if let Some(status) = mount.process.exited()? {
                bail!("juicefs mount exited with {status}; see {}", dir.join("juicefs.log").display());
            }
            if start.elapsed() > DEADLINE {
                bail!("juicefs mount did not come up on {metrics}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(mount)
    }

    fn is_mounted(&self) -> bool {
        let pid = self.process.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .map(|m| m.lines().any(|l| l.contains(&*self.mountpoint.to_string_lossy()) && l.contains("fuse")))
            .unwrap_or(false)
    }

    /// Runs a shell command inside the mount's namespace with `$MNT` set to the mount point.
    fn sh(&self, script: &str) -> Result<()> {
        let pid = self.process.child.id().to_string();
        run_ok(Command::new("nsenter").args(["-t", &pid, "-m", "--", "sh", "-c", script]).env("MNT", &self.mountpoint))
    }
}

/// A child process in a process group of its own; on drop the whole group is killed (JuiceFS runs the
/// mount in a child of the process we start) and the child reaped.
struct Process {
    child: Child,
}

impl Process {
    fn spawn(cmd: &mut Command, log: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log)?;
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        Ok(Self { child })
    }

    fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The group id is the child's pid (`process_group(0)`).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An endpoint on a pod address that is not a JuiceFS client: one that accepts and never answers, or
/// one that answers garbage. Counts the connections it gets.
struct StandIn {
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    fn hung(addr: SocketAddr) -> Result<Self> {
        Self::start(addr, |stream, held| held.push(stream))
    }

    fn garbage(addr: SocketAddr) -> Result<Self> {
        Self::start(addr, |mut stream, _| {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let body = "<html><body>this is not a metrics endpoint</body></html>";
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        })
    }

    fn start(addr: SocketAddr, handle: fn(TcpStream, &mut Vec<TcpStream>)) -> Result<Self> {
        let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        listener.set_nonblocking(true)?;
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                        handle(stream, &mut held);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self { connections, stop })
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn http_get(addr: SocketAddr) -> Result<String> {
    ferrofluid_e2e::http::http_get(addr, "/metrics")
}

/// `83.3%` → 83.3; absent or malformed → 0.
fn percent(s: Option<&str>) -> f64 {
    s.and_then(|s| s.strip_suffix('%')).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Same rendering as the collector's status (two decimals, binary units).
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let (mut value, mut unit) = (bytes as f64, 0);
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", units[unit])
}

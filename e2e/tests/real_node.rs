//! On a real node (`make test-real`: kubelet + containerd from hack/real-node.sh, the images from
//! `make images`): the chart installed with `helm install`, every component running as its pod; the seed's
//! flow with kubelet calling the CSI plugin and the FUSE DaemonSet mounting JuiceFS (MinIO as the object
//! store) with Bidirectional propagation; then Fluid v1.0.8's own JuiceFS e2e case.
//!
//! Ignored in the kwok suites (no real node there); `make test-real` runs it with `--ignored`.

use anyhow::{Context, Result, ensure};
use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::cluster::{kubectl_in, leftovers, wait_field};
use ferrofluid_e2e::minio::MinioServer;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::prometheus::{self as prom, DashboardVars, POD_JOB, Prometheus};
use ferrofluid_e2e::real_node::{Release, Rig, exec, mounts_under};
use ferrofluid_e2e::redis::RedisServer;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RELEASE: &str = "ferrofluid";
const RELEASE_NS: &str = "ferrofluid-system";
/// What the seed's app pod runs instead of nginx (no registry here), and how it stays up: the shell
/// traps TERM so a deleted pod ends at once.
const APP_IMAGE: &str = "localhost/ferrofluid/busybox:local";
const APP_COMMAND: &str = r#"["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]"#;
const JUICEFS_IMAGE: &str = "ghcr.io/ferrofluid/juicefs:1.4.2";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real-node rig: make test-real"]
async fn the_chart_serves_the_seed_flow_and_fluids_juicefs_case_on_a_real_kubelet() -> Result<()> {
    let rig = Rig::from_env()?;
    let started = Instant::now();
    let release = install_chart(&rig)?;
    eprintln!("helm install → every component ready: {:.1}s", started.elapsed().as_secs_f64());

    seed_flow(&rig, started).await?;
    fluid_juicefs_case(&rig).await?;
    namespace_deletion_finishes().await?;

    drop(release);
    let left = kubectl_ok(&["-n", RELEASE_NS, "get", "pods", "-o", "name", "--ignore-not-found"], None)?;
    ensure!(left.trim().is_empty(), "pods left after helm uninstall: {left}");
    Ok(())
}

fn install_chart(rig: &Rig) -> Result<Release> {
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/real-node/values.yaml");
    let kubelet_root = format!("kubeletRoot={}", rig.kubelet_root().display());
    let mount_root = format!("mountRoot={}", rig.mount_root().display());
    let release = Release::install(
        RELEASE,
        RELEASE_NS,
        &["-f", &values.to_string_lossy(), "--set", &kubelet_root, "--set", &mount_root],
    )?;
    // Every component is a pod on the real node, started by kubelet from the imported images.
    let pods: Value = serde_json::from_str(&kubectl_in(RELEASE_NS, &["get", "pods", "-o", "json"])?)?;
    let mut components = Vec::new();
    for pod in pods["items"].as_array().context("pods")? {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        ensure!(pod["status"]["phase"] == "Running", "{name} is not Running: {}", pod["status"]);
        ensure!(pod["spec"]["nodeName"] == rig.node.as_str(), "{name} is not on {}", rig.node);
        components
            .push(pod["metadata"]["labels"]["app.kubernetes.io/component"].as_str().unwrap_or_default().to_string());
    }
    components.sort();
    components.dedup();
    let want = [
        "csi-plugin",
        "dataops-controller",
        "dataset-controller",
        "metrics-collector",
        "runtime-controller",
        "webhook",
    ];
    ensure!(components == want, "components running: {components:?}");
    // The API server calls the webhook through its Service: serve its cluster IP here (no kube-proxy).
    let services = kubectl_in(
        RELEASE_NS,
        &[
            "get",
            "services",
            "-l",
            "app.kubernetes.io/component=webhook",
            "-o",
            "jsonpath={range .items[?(@.spec.ports[0].port==443)]}{.metadata.name}{end}",
        ],
    )?;
    rig.proxy_service(RELEASE_NS, services.trim())?;
    Ok(release)
}

/// The seed's manifests (the Dataset on MinIO, the runtime unchanged) and its app pod, with nginx
/// replaced by a local busybox that stays up.
fn app_pod(name: &str) -> String {
    manifest("seed-pod.yaml")
        .replace("name: demo-app", &format!("name: {name}"))
        .replace("      image: nginx", &format!("      image: {APP_IMAGE}\n      command: {APP_COMMAND}"))
}

/// A test namespace whose deletion is waited for (pods gone, their volumes unpublished) before the chart
/// — and with it the CSI plugin kubelet needs for that — is uninstalled.
struct Namespace(TestNamespace);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0.name, "--ignore-not-found", "--timeout=180s"], None);
    }
}

/// Redis and MinIO of the test's own, the seed's Dataset on them (Redis database `db`, MinIO bucket
/// `bucket`) and the seed's runtime in `ns`, Bound. The servers live as long as the returned pair.
async fn seed_on_minio(ns: &str, db: u32, bucket: &str) -> Result<(RedisServer, MinioServer)> {
    let redis = RedisServer::start()?;
    let minio = MinioServer::start(&format!("ff{}", std::process::id()), "real-node-secret-key")?;
    let dataset = manifest("seed-dataset-minio.yaml")
        .replace("<metaurl>", &redis.meta_url(db))
        .replace("<access-key>", &minio.access_key)
        .replace("<secret-key>", &minio.secret_key)
        .replace("<bucket>", &format!("{}/{bucket}", minio.endpoint()));
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&dataset))?;
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&manifest("seed-runtime.yaml")))?;
    wait_field(ns, "dataset", "jfsdemo", ".status.phase", "Bound", Duration::from_secs(180)).await;
    Ok((redis, minio))
}

async fn seed_flow(rig: &Rig, helm_started: Instant) -> Result<()> {
    let ns = Namespace(TestNamespace::new("real-seed")?);
    let ns = &ns.0;
    // Fluid's opt-in label: the webhook injects HostToContainer on the dataset's mounts in this namespace.
    kubectl_ok(&["label", "namespace", &ns.name, "fluid.io/enable-injection=true"], None)?;
    let (_redis, _minio) = seed_on_minio(&ns.name, 1, "jfsdemo").await?;

    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let mount_root = rig.mount_root().to_string_lossy().into_owned();
    let fluid_path = key.fuse_mount_path(&mount_root);
    let shm_before = shm_entries()?;

    // The app pod: kubelet calls the CSI plugin (NodeStage, NodePublish); the plugin labels the node and
    // the FUSE DaemonSet's pod mounts JuiceFS at the fluid path.
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&app_pod("demo-app")))?;
    wait_field(&ns.name, "pod", "demo-app", ".status.phase", "Running", Duration::from_secs(180)).await;
    exec(&ns.name, "demo-app", &["sh", "-c", "echo written-by-demo-app > /data/hello.txt"])?;
    let read = exec(&ns.name, "demo-app", &["cat", "/data/hello.txt"])?;
    ensure!(read.trim() == "written-by-demo-app", "the app read back {read:?}");
    eprintln!("helm install → the seed's app pod reads and writes data: {:.1}s", helm_started.elapsed().as_secs_f64());

    // What kubelet and the plugin did, on the host: the FUSE mount (Bidirectional propagation brought it
    // out of the FUSE container), the pod's volume bound to it, the FUSE label on the node.
    let host_copy = std::fs::read_to_string(Path::new(&fluid_path).join("hello.txt"))
        .with_context(|| format!("reading {fluid_path}/hello.txt on the host"))?;
    ensure!(host_copy.trim() == "written-by-demo-app", "the host's view of the FUSE mount: {host_copy:?}");
    let uid = kubectl_in(&ns.name, &["get", "pod", "demo-app", "-o", "jsonpath={.metadata.uid}"])?;
    let pod_dir = rig.kubelet_root().join("pods").join(uid.trim());
    let pod_mounts = fuse_mounts(&pod_dir)?;
    ensure!(pod_mounts.len() == 1, "the pod's volume mounts (NodePublish) under {}: {pod_mounts:?}", pod_dir.display());
    ensure!(fuse_mounts(Path::new(&fluid_path))?.len() == 1, "one FUSE mount at {fluid_path}");
    let labels = kubectl_ok(&["get", "node", &rig.node, "-o", "jsonpath={.metadata.labels}"], None)?;
    ensure!(labels.contains(&format!("\"{}\":\"true\"", key.fuse_node_label())), "FUSE label on the node: {labels}");
    let fuse_pod_name = fuse_pod(&ns.name)?;
    let propagation = kubectl_in(
        &ns.name,
        &["get", "pod", &fuse_pod_name, "-o", "jsonpath={.spec.containers[0].volumeMounts[*].mountPropagation}"],
    )?;
    ensure!(propagation.contains("Bidirectional"), "FUSE pod's mount propagation: {propagation}");
    let app_propagation = kubectl_in(
        &ns.name,
        &["get", "pod", "demo-app", "-o", "jsonpath={.spec.containers[0].volumeMounts[0].mountPropagation}"],
    )?;
    ensure!(
        app_propagation == "HostToContainer",
        "the webhook's HostToContainer on the app's mount: {app_propagation:?}"
    );

    // A second app pod on the node shares the FUSE client: same data, still one FUSE mount and one FUSE pod.
    kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&app_pod("demo-app-2")))?;
    wait_field(&ns.name, "pod", "demo-app-2", ".status.phase", "Running", Duration::from_secs(120)).await;
    let read = exec(&ns.name, "demo-app-2", &["cat", "/data/hello.txt"])?;
    ensure!(read.trim() == "written-by-demo-app", "the second pod read {read:?}");
    ensure!(fuse_mounts(Path::new(&fluid_path))?.len() == 1, "still one FUSE mount at {fluid_path}");
    ensure!(fuse_pod(&ns.name)? == fuse_pod_name, "still the same FUSE pod");

    // Data has been read through the volume: a real Prometheus scraping the components by the chart's
    // pod annotations has every per-dataset series of docs/metrics.md and data for every dashboard panel.
    prometheus_sees_the_dataset(&ns.name)?;

    // The FUSE container is killed under the reading pods: kubelet restarts it, JuiceFS mounts again, the
    // plugin binds the pods' volumes to the new mount, and HostToContainer lets the containers see it.
    let restarts_before = fuse_restarts(&ns.name, &fuse_pod_name)?;
    let killed = kill_fuse_client(&ns.name, &fuse_pod_name)?;
    eprintln!("killed the FUSE client (pids {killed:?})");
    eventually("kubelet restarts the FUSE container", Duration::from_secs(120), || async {
        Ok((fuse_restarts(&ns.name, &fuse_pod_name)? > restarts_before).then_some(()))
    })
    .await;
    let recovered = Instant::now();
    eventually("the app pod reads again after the FUSE restart", Duration::from_secs(120), || async {
        let out = kubectl(&["-n", &ns.name, "exec", "demo-app", "--", "cat", "/data/hello.txt"], None)?;
        Ok((out.ok && out.stdout.trim() == "written-by-demo-app").then_some(()))
    })
    .await;
    eprintln!("reads again {:.1}s after kubelet restarted the FUSE container", recovered.elapsed().as_secs_f64());
    exec(&ns.name, "demo-app-2", &["sh", "-c", "echo after-restart > /data/after.txt"])?;
    ensure!(exec(&ns.name, "demo-app", &["cat", "/data/after.txt"])?.trim() == "after-restart", "write after restart");

    // Deleting the pods unpublishes their volumes; deleting the dataset leaves no pod, mount, label or cache.
    kubectl_ok(&["-n", &ns.name, "delete", "pod", "demo-app", "demo-app-2", "--wait=true", "--timeout=120s"], None)?;
    ensure!(fuse_mounts(&pod_dir)?.is_empty(), "the pod's volume is still mounted (NodeUnpublish)");
    kubectl_ok(&["-n", &ns.name, "delete", "dataset", "jfsdemo", "--wait=true", "--timeout=180s"], None)?;
    eventually("nothing of the dataset left", Duration::from_secs(180), || async {
        let mut left = leftovers(&key)?;
        let pods = kubectl_in(&ns.name, &["get", "pods", "-o", "name"])?;
        left.extend(pods.lines().map(str::to_string));
        left.extend(mounts_under(&PathBuf::from(key.fuse_host_dir(&mount_root)))?.into_iter().map(|m| m.target));
        left.extend(shm_entries()?.into_iter().filter(|e| !shm_before.contains(e) || e == &key.cache_dir_name()));
        Ok(left.is_empty().then_some(()).or_else(|| {
            eprintln!("left: {left:?}");
            None
        }))
    })
    .await;
    Ok(())
}

/// Prometheus (hack/prometheus.sh: pod discovery, the chart's `prometheus.io/*` annotations) is started,
/// every component's target is up, and the dataset's series and panels have data; stopped again.
fn prometheus_sees_the_dataset(ns: &str) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/prometheus.sh");
    let run = |verb: &str| -> Result<()> {
        let out =
            std::process::Command::new(&script).arg(verb).env("KUBECONFIG", ferrofluid_e2e::kubeconfig()).output()?;
        ensure!(out.status.success(), "prometheus.sh {verb}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    run("start")?;
    let checked = (|| -> Result<()> {
        let p = Prometheus::local()?;
        let components = [
            "dataset-controller",
            "runtime-controller",
            "dataops-controller",
            "metrics-collector",
            "webhook",
            "csi-plugin",
        ];
        let expected: Vec<(&str, &str)> = components.iter().map(|c| ("component", *c)).collect();
        prom::wait_for_targets_up(&p, POD_JOB, &expected, Duration::from_secs(90))?;
        let matchers = format!("namespace=\"{ns}\",dataset=\"jfsdemo\"");
        let series = prom::documented_dataset_series()?;
        prom::wait_for_series(&p, &series, &matchers, Duration::from_secs(120))?;
        let exported = prom::exported_label_series(&p)?;
        ensure!(exported.is_empty(), "series whose labels the target's overwrote: {exported:?}");
        let vars = DashboardVars::new(ns, "jfsdemo");
        let queries = prom::dashboard_queries(&vars)?;
        prom::wait_for_panels(&p, &queries, Duration::from_secs(180))?;
        let missing = prom::missing_variable_values(&p, &vars)?;
        ensure!(missing.is_empty(), "dashboard variables without the dataset: {missing:?}");
        eprintln!(
            "prometheus: {} targets up, {} documented series, {} dashboard queries with data",
            components.len(),
            series.len(),
            queries.len()
        );
        Ok(())
    })();
    run("stop")?;
    checked
}

/// A namespace deleted with its dataset and runtime in it goes away: the runtime's teardown cannot create
/// its cache cleanup Job in a terminating namespace and must not wait for one (it did, for ever).
async fn namespace_deletion_finishes() -> Result<()> {
    let ns = TestNamespace::new("real-nsdel")?;
    let (_redis, _minio) = seed_on_minio(&ns.name, 2, "nsdel").await?;
    // The worker ran on the node: its cache directory is recorded, so teardown has a cleanup to do.
    eventually("the runtime records its cache node", Duration::from_secs(120), || async {
        let nodes =
            kubectl_in(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.status.cacheNodes[*].node}"])?;
        Ok((!nodes.trim().is_empty()).then_some(()))
    })
    .await;
    let started = Instant::now();
    let out = kubectl(&["delete", "namespace", &ns.name, "--timeout=180s"], None)?;
    ensure!(out.ok, "the namespace was not deleted: {}{}", out.stdout, out.stderr);
    eprintln!("a namespace with a bound dataset deleted in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Fluid v1.0.8's `test/gha-e2e/juicefs/` case, read from the Go module cache: Redis and MinIO, the
/// Dataset and JuiceFSRuntime with `storage: minio` and keys from a Secret, a write Job then a read Job.
/// Rewritten (endpoints and images only; no cluster DNS, pod network or registry here):
/// - redis.yaml and minio.yaml are not applied: Redis and MinIO run on 127.0.0.1 (MinIO with the root
///   user and password minio.yaml gives it), as those Deployments would on host ports;
/// - the Secret's `metaurl` `redis://redis:6379/0` → `redis://127.0.0.1:<port>/0`;
/// - the bucket `http://minio:9000/minio/test` → `http://127.0.0.1:<port>/minio/test`;
/// - the images `juicedata/juicefs-fuse:ce-v1.1.1` → the local JuiceFS image, `busybox` → the local busybox.
async fn fluid_juicefs_case(rig: &Rig) -> Result<()> {
    let dir = fluid_case_dir()?;
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| format!("{}/{f}", dir.display()));
    let minio_yaml = read("minio.yaml")?;
    let env = |name: &str| -> Result<String> {
        let at = minio_yaml.find(&format!("name: {name}")).with_context(|| format!("{name} in minio.yaml"))?;
        let value = minio_yaml[at..].lines().nth(1).and_then(|l| l.trim().strip_prefix("value: ")).context("value")?;
        Ok(value.trim_matches('"').to_string())
    };
    let redis = RedisServer::start()?;
    let minio = MinioServer::start(&env("MINIO_ROOT_USER")?, &env("MINIO_ROOT_PASSWORD")?)?;
    let rewrite = |text: String| {
        text.replace("redis://redis:6379/0", &redis.meta_url(0))
            .replace("http://minio:9000/", &format!("{}/", minio.endpoint()))
            .replace(
                "image: juicedata/juicefs-fuse\n",
                &format!("image: {}\n", JUICEFS_IMAGE.split(':').next().unwrap_or_default()),
            )
            .replace(
                "imageTag: ce-v1.1.1",
                &format!("imageTag: \"{}\"", JUICEFS_IMAGE.rsplit(':').next().unwrap_or_default()),
            )
            .replace("image: busybox\n", &format!("image: {APP_IMAGE}\n"))
    };
    let started = Instant::now();
    let dataset = rewrite(read("dataset.yaml")?);
    ensure!(
        !dataset.contains("redis:6379") && !dataset.contains("minio:9000") && !dataset.contains("ce-v1.1.1"),
        "{dataset}"
    );
    let cache_dir = PathBuf::from("/var/lib/docker/juicefs");
    let cache_existed = cache_dir.exists();

    kubectl_ok(&["create", "-f", "-"], Some(&dataset))?;
    let outcome = async {
        wait_field("default", "dataset", "jfsdemo", ".status.phase", "Bound", Duration::from_secs(180)).await;
        for (file, job) in [("write_job.yaml", "write-job"), ("read_job.yaml", "read-job")] {
            kubectl_ok(&["create", "-f", "-"], Some(&rewrite(read(file)?)))?;
            let done = eventually(&format!("job {job} ends"), Duration::from_secs(180), || async {
                let s =
                    kubectl_in("default", &["get", "job", job, "-o", "jsonpath={.status.succeeded}/{.status.failed}"])?;
                Ok(match s.as_str() {
                    "1/" => Some(true),
                    s if !s.ends_with('/') => Some(false),
                    _ => None,
                })
            })
            .await;
            let logs = kubectl(&["-n", "default", "logs", &format!("job/{job}")], None)?;
            ensure!(done, "Fluid's {job} failed: {}{}", logs.stdout, logs.stderr);
        }
        anyhow::Ok(())
    }
    .await;
    for file in ["read_job.yaml", "write_job.yaml"] {
        let _ = kubectl(&["delete", "--ignore-not-found", "--wait=true", "-f", "-"], Some(&rewrite(read(file)?)));
    }
    let _ = kubectl(&["delete", "--ignore-not-found", "--wait=true", "--timeout=180s", "-f", "-"], Some(&dataset));
    outcome?;
    eprintln!(
        "Fluid v1.0.8's JuiceFS e2e case (write Job, read Job): passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let key = DatasetKey::new("default", "jfsdemo");
    eventually("nothing of Fluid's case left", Duration::from_secs(180), || async {
        let mut left = leftovers(&key)?;
        left.extend(
            mounts_under(&PathBuf::from(key.fuse_host_dir(&rig.mount_root().to_string_lossy())))?
                .into_iter()
                .map(|m| m.target),
        );
        if cache_dir.join(key.cache_dir_name()).exists() {
            left.push(format!("{}/{}", cache_dir.display(), key.cache_dir_name()));
        }
        Ok(left.is_empty().then_some(()))
    })
    .await;
    if !cache_existed {
        let _ = std::fs::remove_dir_all(&cache_dir);
    }
    Ok(())
}

/// `test/gha-e2e/juicefs` of Fluid's Go module in the module cache (`go mod download` puts it there).
fn fluid_case_dir() -> Result<PathBuf> {
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", "github.com/fluid-cloudnative/fluid@v1.0.8"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/fluid"))
        .output()
        .context("go mod download (Go is installed by the machine)")?;
    ensure!(out.status.success(), "go mod download: {}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout)?;
    let dir = PathBuf::from(info["Dir"].as_str().context("Dir")?).join("test/gha-e2e/juicefs");
    ensure!(dir.join("test.sh").exists(), "{} has no test.sh", dir.display());
    Ok(dir)
}

/// FUSE (JuiceFS) mounts at or below `dir` on the host.
fn fuse_mounts(dir: &Path) -> Result<Vec<String>> {
    Ok(mounts_under(dir)?.into_iter().filter(|m| m.fstype == "fuse.juicefs").map(|m| m.target).collect())
}

fn fuse_pod(ns: &str) -> Result<String> {
    let pods = kubectl_in(ns, &["get", "pods", "-l", "role=juicefs-fuse", "-o", "jsonpath={.items[*].metadata.name}"])?;
    let pods: Vec<_> = pods.split_whitespace().collect();
    ensure!(pods.len() == 1, "FUSE pods: {pods:?}");
    Ok(pods[0].to_string())
}

fn fuse_restarts(ns: &str, pod: &str) -> Result<u32> {
    let n = kubectl_in(ns, &["get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].restartCount}"])?;
    Ok(n.trim().parse().unwrap_or(0))
}

/// SIGKILL to every `juicefs` process of the FUSE pod (a crash of the FUSE client): found by the pod's
/// cgroup (kubelet's cgroupfs paths name the pod UID), since JuiceFS rewrites its own command line.
fn kill_fuse_client(ns: &str, pod: &str) -> Result<Vec<u32>> {
    let uid = kubectl_in(ns, &["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"])?;
    let mark = format!("pod{}", uid.trim());
    let mut killed = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else { continue };
        let (Ok(comm), Ok(cgroup)) = (
            std::fs::read_to_string(format!("/proc/{pid}/comm")),
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")),
        ) else {
            continue;
        };
        if comm.trim() == "juicefs" && cgroup.contains(&mark) {
            let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status()?;
            ensure!(status.success(), "kill -KILL {pid}");
            killed.push(pid);
        }
    }
    ensure!(!killed.is_empty(), "no juicefs process in the cgroup of pod {ns}/{pod} ({mark})");
    Ok(killed)
}

/// Entries of /dev/shm (the seed runtime's MEM tier caches there).
fn shm_entries() -> Result<Vec<String>> {
    Ok(std::fs::read_dir("/dev/shm")?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

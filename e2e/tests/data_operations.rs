//! Data operations on the real stack: agent-backed nodes with real JuiceFS mounts, the real controllers,
//! the dataops-controller and the metrics-collector, Jobs run by the real controller-manager.
//! - DataLoad: a 64 MiB tree written straight to the file system (no cache anywhere) is loaded, then
//!   read through an app pod's volume on the cache node: the reads are served from cache. Progress only
//!   moves forward, in parts, files and bytes; two loads of one dataset never run at once; a load of a
//!   missing dataset fails saying which field is wrong; chains, TTL, a controller crash and
//!   cancellation; an `OnEvent` load runs again on a new cache node when the runtime scales out.
//! - DataMigrate copies a tree into the dataset byte-identical (two key ranges at once, its files and bytes
//!   counted from juicefs sync's summary), then a DataLoad
//!   and a DataProcess run after it, in order; a Cron DataLoad runs twice and stops when deleted, and an
//!   `OnEvent` DataProcess after it runs after each of its runs.

use ferrofluid_api::DatasetKey;
use ferrofluid_api::dataload::{DataLoad, OperationPhase, OperationStatus};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent_cluster::{self, AgentCluster, dataset_yaml, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in as get, leftovers, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::redis::{RedisServer, free_port};
use ferrofluid_e2e::{TestNamespace, kubectl_ok, manifest};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
/// Files of one JuiceFS block each (4 MiB, the default block size): 16 of them, 64 MiB.
const FILES: usize = 16;
/// What a load of /train warms: those files and `small` (6 bytes).
const TRAIN_FILES: i64 = FILES as i64 + 1;
const TRAIN_BYTES: i64 = FILES as i64 * 4194304 + 6;

fn dataload_yaml(name: &str, dataset: &str, extra: &str) -> String {
    format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: DataLoad\nmetadata:\n  name: {name}\nspec:\n  dataset:\n    name: {dataset}\n  target:\n    - path: /train\n      replicas: 1\n{extra}"
    )
}

/// Every status the watch delivered for each DataLoad, in order.
type Seen = Arc<Mutex<Vec<(String, OperationPhase, i32, i32, Option<String>, OperationStatus)>>>;

fn record(client: kube::Client, ns: &str) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let api: Api<DataLoad> = Api::namespaced(client, ns);
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = events.next().await {
            if let Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) = ev {
                let s = d.status.clone().unwrap_or_default();
                let (done, total) = s.progress.as_ref().map_or((0, 0), |p| (p.parts_done, p.parts));
                let waiting = s.conditions.iter().find(|c| c.type_ == "Waiting").and_then(|c| c.reason.clone());
                let name = d.metadata.name.clone().unwrap_or_default();
                out.lock().expect("lock").push((name, s.phase, done, total, waiting, s.clone()));
            }
        }
    });
    (seen, task)
}

/// A counter of the collector's for this dataset.
fn counter(text: &str, metric: &str, ns: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| l.contains(&format!("namespace=\"{ns}\"")) && l.contains("dataset=\"jfsdemo\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn scrape(addr: &str, ns: &str) -> anyhow::Result<(f64, f64)> {
    let text = ferrofluid_e2e::http::http_get(addr.parse()?, "/metrics")?;
    let hits = counter(&text, "ferrofluid_dataset_cache_hits_total", ns).unwrap_or(0.0);
    let misses = counter(&text, "ferrofluid_dataset_cache_misses_total", ns).unwrap_or(0.0);
    Ok((hits, misses))
}

/// A dataset Bound on agent nodes with the controllers and a dataops-controller, and a 64 MiB tree
/// under /train written by a client of its own on another node, with no cache: nothing is cached
/// anywhere yet. Dropped in field order: components first, then nodes, Redis, and the namespace.
struct Rig {
    ops: Component,
    _unfinalize: Unfinalize,
    _ctl: Controllers,
    cluster: AgentCluster,
    _redis: RedisServer,
    _bucket: TempDir,
    ns: TestNamespace,
    key: DatasetKey,
    /// Where the dataset's one worker caches.
    worker_node: String,
}

/// When a test fails midway the dataops-controller is gone before its namespace is deleted: the
/// operations' finalizers, which it would have handled, are removed so the namespace can go — after
/// their status and their pods' are printed for the report.
struct Unfinalize(String);

impl Drop for Unfinalize {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the operations and their pods said, for the failure's report (a failed warm-up
            // container's log tail is its termination message).
            let kinds = "dataloads,datamigrates,dataprocesses";
            let status = "{range .items[*]}{.kind}/{.metadata.name}: {.status}{\"\\n\"}{end}";
            let pods = "{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.containerStatuses[*].state.terminated.message}{\"\\n\"}{end}";
            for (what, path) in [(kinds, status), ("pods", pods)] {
                let mut args = vec!["get", what, "-o"];
                let jp = format!("jsonpath={path}");
                args.push(&jp);
                if what == "pods" {
                    args.extend(["-l", "ferrofluid.io/operation-uid"]);
                }
                eprintln!("{}", get(&self.0, &args).unwrap_or_else(|e| e.to_string()));
            }
        }
        for kind in ["dataloads", "datamigrates", "dataprocesses"] {
            let Ok(names) = get(&self.0, &["get", kind, "-o", "name"]) else { continue };
            for name in names.lines().filter(|l| !l.is_empty()) {
                let _ = get(&self.0, &["patch", name, "--type", "merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
            }
        }
    }
}

fn start_dataops(ns: &str, label: &str) -> Component {
    let addr = format!("127.0.0.1:{}", free_port().expect("port"));
    Component::start(
        "dataops-controller",
        &format!("{label}-{ns}"),
        &["--http-addr", &addr, "--leader-elect=false", "--namespace", ns],
    )
    .expect("dataops-controller")
}

impl Rig {
    async fn start(tag: &str, block: u8) -> Rig {
        let ns = TestNamespace::new(tag).expect("ns");
        let redis = RedisServer::start().expect("redis");
        let bucket = TempDir::new(&format!("ferrofluid-{tag}-bucket")).expect("temp dir");
        let cluster = AgentCluster::start(tag, block).expect("agent nodes");
        let ctl = Controllers::start(&ns.name).expect("controllers");
        let ops = start_dataops(&ns.name, "dataops");
        let key = DatasetKey::new(&ns.name, "jfsdemo");
        let scenario = format!("{tag}-{}", std::process::id());
        let yaml = dataset_yaml(&redis.meta_url(1), &bucket.0.display().to_string(), &scenario, "");
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&yaml)).expect("dataset");
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-runtime.yaml"))).expect("runtime");
        wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
        // The cache node: where the runtime-controller put the dataset's worker label (what a DataLoad reads).
        let label = key.worker_node_label();
        let worker_node = eventually("the dataset's cache node", T, || async {
            let nodes = kubectl_ok(&["get", "nodes", "-l", &format!("{label}=true"), "-o", "name"], None)?;
            let names: Vec<&str> = nodes.lines().map(|l| l.trim_start_matches("node/")).collect();
            Ok((names.len() == 1).then(|| names[0].to_string()))
        })
        .await;
        let other = cluster.nodes.iter().map(|n| n.name.clone()).find(|n| *n != worker_node).expect("another node");
        let view = format!("/tmp/ferrofluid-{tag}-view-{}", std::process::id());
        let write = format!(
            "set -e; mkdir -p {view} {view}.cache; juicefs --no-agent mount -d --no-usage-report --metrics 127.0.0.1:0 \
             --cache-dir {view}.cache --cache-size 0 {meta} {view} >/dev/null 2>&1; \
             mkdir -p {view}/demo/train/sub; for i in $(seq 1 {FILES}); do head -c 4194304 /dev/urandom > {view}/demo/train/sub/f$i; done; \
             echo small > {view}/demo/train/small; sync; juicefs umount {view}; rm -rf {view} {view}.cache",
            meta = redis.meta_url(1)
        );
        let out = cluster.agents.exec(&other, &["sh", "-c", &write]).expect("write tree");
        assert!(out.status.success(), "write: {}", String::from_utf8_lossy(&out.stderr));
        let unfinalize = Unfinalize(ns.name.clone());
        Rig { ops, _unfinalize: unfinalize, _ctl: ctl, cluster, _redis: redis, _bucket: bucket, ns, key, worker_node }
    }

    fn apply(&self, yaml: &str) {
        kubectl_ok(&["apply", "-n", &self.ns.name, "-f", "-"], Some(yaml)).expect("apply");
    }

    fn get(&self, args: &[&str]) -> String {
        get(&self.ns.name, args).expect("kubectl")
    }

    async fn phase(&self, load: &str, want: &str) {
        wait_field(&self.ns.name, "dataload", load, ".status.phase", want, Duration::from_secs(240)).await;
    }

    /// Start and completion time of a finished load.
    fn times(&self, load: &str) -> (Timestamp, Timestamp) {
        let t = self.get(&["get", "dataload", load, "-o", "jsonpath={.status.startTime} {.status.completionTime}"]);
        let (s, e) = t.split_once(' ').expect("two times");
        (s.parse().expect("start"), e.parse().expect("end"))
    }

    /// Deleting the dataset leaves nothing: no object, label, mount, process or cache.
    async fn teardown(self) {
        self.get(&["delete", "dataset", "jfsdemo", "--wait=false"]);
        let nodes: Vec<&str> = self.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        eventually("nothing left", Duration::from_secs(120), || async {
            let mut left = leftovers(&self.key)?;
            left.extend(self.cluster.node_leftovers(&nodes)?);
            Ok(left.is_empty().then_some(()))
        })
        .await;
    }
}

#[tokio::test]
async fn a_loaded_tree_is_read_from_cache_and_loads_take_turns() {
    let rig = Rig::start("load", 131).await;
    let ns = rig.ns.name.clone();
    let collector_addr = format!("127.0.0.1:{}", free_port().expect("port"));
    let _collector = Component::start(
        "metrics-collector",
        &format!("collector-{ns}"),
        &[
            "--http-addr",
            &collector_addr,
            "--leader-elect=false",
            "--namespace",
            &ns,
            "--scrape-interval",
            "1s",
            "--scrape-timeout",
            "1s",
        ],
    )
    .expect("collector");
    let client = ferrofluid_e2e::client().await.expect("client");
    let (seen, watch) = record(client.clone(), &ns);

    // A load of a dataset that does not exist fails, naming the field.
    rig.apply(&dataload_yaml("orphan", "nope", ""));
    rig.phase("orphan", "Failed").await;
    let msg =
        rig.get(&["get", "dataload", "orphan", "-o", "jsonpath={.status.conditions[?(@.type==\"Failed\")].message}"]);
    assert!(msg.contains("spec.dataset.name") && msg.contains("nope"), "{msg}");

    // Two loads of the same dataset, created together: they take turns.
    rig.apply(&dataload_yaml("warm", "jfsdemo", ""));
    rig.apply(&dataload_yaml("warm-2", "jfsdemo", ""));
    for name in ["warm", "warm-2"] {
        rig.phase(name, "Complete").await;
    }
    let ((s1, e1), (s2, e2)) = (rig.times("warm"), rig.times("warm-2"));
    assert!(e1 <= s2 || e2 <= s1, "the loads overlapped: warm {s1}–{e1}, warm-2 {s2}–{e2}");
    let summary = rig.get(&["get", "dataload", "warm", "-o", "jsonpath={.status.progress.summary}"]);
    assert_eq!(summary, "4/4 parts, 17/17 files, 64.0 MiB/64.0 MiB (100%) on 1 node");
    let counts = rig.get(&[
        "get",
        "dataload",
        "warm",
        "-o",
        "jsonpath={.status.progress.filesDone} {.status.progress.files} {.status.progress.bytesDone} {.status.progress.bytes}",
    ]);
    assert_eq!(counts, format!("{TRAIN_FILES} {TRAIN_FILES} {TRAIN_BYTES} {TRAIN_BYTES}"));
    let lock = rig.get(&["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.operationRef}"]);
    assert!(!lock.contains("warm"), "the lock is released: {lock}");
    // What the watch saw: progress never went back, each load executed before completing, and the one
    // that went second was shown waiting for the dataset.
    let log = eventually("the watch delivered both completions", T, || async {
        let log = seen.lock().expect("lock").clone();
        let done = |n: &str| log.iter().any(|e| e.0 == n && e.1 == OperationPhase::Complete);
        Ok((done("warm") && done("warm-2")).then_some(log))
    })
    .await;
    for name in ["warm", "warm-2"] {
        let mine: Vec<_> = log.iter().filter(|e| e.0 == name).collect();
        let done: Vec<i32> = mine.iter().map(|e| e.2).collect();
        assert!(done.windows(2).all(|w| w[0] <= w[1]), "{name}: progress went back: {done:?}");
        // Files and bytes too, and they were shown part-way, not only at the end.
        let bytes: Vec<i64> =
            mine.iter().filter_map(|e| e.5.progress.as_ref().and_then(|p| p.counts.bytes_done)).collect();
        assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "{name}: bytes went back: {bytes:?}");
        assert!(
            bytes.iter().any(|b| *b > 0 && *b < TRAIN_BYTES),
            "{name}: no progress in bytes seen while it ran: {bytes:?}"
        );
        let phases: Vec<OperationPhase> = mine.iter().map(|e| e.1).collect();
        let executing = phases.iter().position(|p| *p == OperationPhase::Executing).expect("executing seen");
        let complete = phases.iter().position(|p| *p == OperationPhase::Complete).expect("complete seen");
        assert!(executing < complete && !phases.contains(&OperationPhase::Failed), "{name}: {phases:?}");
    }
    let second = if s1 < s2 { "warm-2" } else { "warm" };
    assert!(
        log.iter().any(|e| e.0 == second && e.4.as_deref() == Some("DatasetBusy")),
        "{second} was never shown waiting for the dataset: {log:?}"
    );

    // The warm-up went through the cache node's FUSE client, which stays (cleanPolicy OnRuntimeDeleted).
    // The cache node is the one the load recorded (where the worker ran when it started).
    let worker_node = rig.get(&["get", "dataload", "warm", "-o", "jsonpath={.status.progress.nodes[0].node}"]);
    let fuse_node = rig.get(&["get", "pods", "-l", "role=juicefs-fuse", "-o", "jsonpath={.items[*].spec.nodeName}"]);
    assert_eq!(fuse_node, worker_node, "one FUSE client, on the cache node");
    let jobs = rig.get(&["get", "jobs", "-l", "role=dataload", "-o", "name"]);
    assert_eq!(jobs.lines().count(), 2, "one Job per load and node, no duplicates: {jobs}");

    // Settle the collector's counters (the warm-up's own fetches), then read everything through an app
    // pod on the cache node: from cache.
    let before = eventually("collector counters settled", T, || async {
        let a = scrape(&collector_addr, &ns)?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let b = scrape(&collector_addr, &ns)?;
        Ok((a == b).then_some(b))
    })
    .await;
    rig.apply(&pod_yaml("reader", &worker_node));
    let dir = agent_cluster::pod_volume_dir(&ns, "reader", &rig.key.pv_name()).expect("dir");
    eventually("reader's volume published", T, || async {
        Ok(rig.cluster.fuse_mounts(&worker_node)?.contains(&format!(" {dir} ")).then_some(()))
    })
    .await;
    let read = rig.cluster.exec(&worker_node, &format!("cat {dir}/train/sub/* | wc -c")).expect("read");
    assert_eq!(read.trim(), (FILES * 4194304).to_string());
    let (hits, misses) = eventually("the reads counted by the collector", T, || async {
        let (h, m) = scrape(&collector_addr, &ns)?;
        let (dh, dm) = (h - before.0, m - before.1);
        Ok((dh + dm >= FILES as f64).then_some((dh, dm)))
    })
    .await;
    let ratio = hits / (hits + misses);
    assert!(ratio >= 0.95, "hit ratio of the first read after the load {ratio:.3} ({hits} hits, {misses} misses)");
    eprintln!("first read after DataLoad: {hits} hits, {misses} misses, ratio {ratio:.3}");

    // Deleting the loads deletes their Jobs; deleting the dataset leaves nothing.
    rig.get(&["delete", "pod", "reader", "--grace-period=0", "--force"]);
    rig.get(&["delete", "dataload", "--all", "--wait=true", "--timeout=60s"]);
    eventually("warm-up jobs gone", T, || async {
        Ok(get(&ns, &["get", "jobs,pods", "-l", "role=dataload", "-o", "name"])?.trim().is_empty().then_some(()))
    })
    .await;
    watch.abort();
    rig.teardown().await;
}

/// Jobs of one load (by the DataLoad's UID label).
fn jobs_of(rig: &Rig, load: &str) -> Vec<String> {
    let uid = rig.get(&["get", "dataload", load, "-o", "jsonpath={.metadata.uid}"]);
    let sel = format!("{}={uid}", ferrofluid_api::keys::LABEL_OPERATION_UID);
    rig.get(&["get", "jobs", "-l", &sel, "-o", "name"]).lines().map(str::to_string).collect()
}

#[tokio::test]
async fn loads_chain_expire_survive_a_controller_crash_and_cancel_on_deletion() {
    let mut rig = Rig::start("loadlife", 141).await;
    let ns = rig.ns.name.clone();

    // `second` runs after `first`, which does not exist yet: it waits, saying for what.
    let after = "  runAfter:\n    kind: DataLoad\n    name: first\n";
    rig.apply(&dataload_yaml("second", "jfsdemo", after));
    wait_field(
        &ns,
        "dataload",
        "second",
        ".status.conditions[?(@.type==\"Waiting\")].reason",
        "WaitingForPreceding",
        T,
    )
    .await;

    // `first` starts; the dataops-controller is killed while it executes and a new one takes over: the
    // load completes with one Job for its one node, not two.
    rig.apply(&dataload_yaml("first", "jfsdemo", ""));
    rig.phase("first", "Executing").await;
    rig.ops.kill();
    rig.ops = start_dataops(&ns, "dataops-2");
    rig.phase("first", "Complete").await;
    assert_eq!(jobs_of(&rig, "first").len(), 1, "one Job per cache node after the restart");

    // `second` ran only after `first` completed; given a TTL once finished, it expires, its Jobs with it.
    rig.phase("second", "Complete").await;
    let (first_end, second_start) = (rig.times("first").1, rig.times("second").0);
    assert!(second_start >= first_end, "second started at {second_start}, before first completed at {first_end}");
    assert_eq!(jobs_of(&rig, "second").len(), 1);
    rig.get(&["patch", "dataload", "second", "--type", "merge", "-p", r#"{"spec":{"ttlSecondsAfterFinished":1}}"#]);
    eventually("second expired", T, || async {
        Ok(get(&ns, &["get", "dataload", "second", "--ignore-not-found", "-o", "name"])?
            .trim()
            .is_empty()
            .then_some(()))
    })
    .await;
    eventually("second's Jobs collected", T, || async {
        let left = get(&ns, &["get", "jobs", "-l", "role=dataload", "-o", "name"])?;
        Ok((left.lines().count() == 1).then_some(()))
    })
    .await;

    // A load deleted while it executes is cancelled: its Jobs and pods go, the dataset's lock is free.
    rig.apply(&dataload_yaml("cancel", "jfsdemo", ""));
    rig.phase("cancel", "Executing").await;
    rig.get(&["delete", "dataload", "cancel", "--wait=true", "--timeout=60s"]);
    eventually("cancelled load's Jobs and pods gone", T, || async {
        let left = get(&ns, &["get", "jobs,pods", "-l", "role=dataload", "-o", "name"])?;
        Ok((!left.contains("cancel")).then_some(()))
    })
    .await;
    let lock = rig.get(&["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.operationRef}"]);
    assert!(!lock.contains("cancel"), "the lock is released: {lock}");

    // An OnEvent load warms the one cache node; when the runtime scales out, the new cache node starts
    // a new run, which covers both nodes, and says why.
    let on_event = "  policy: OnEvent\n";
    rig.apply(&dataload_yaml("follow", "jfsdemo", on_event).replace("/train", "/train/small"));
    rig.phase("follow", "Complete").await;
    let first_nodes = rig.get(&["get", "dataload", "follow", "-o", "jsonpath={.status.progress.nodes[*].node}"]);
    assert_eq!(first_nodes, rig.worker_node);
    rig.get(&["scale", "juicefsruntime", "jfsdemo", "--replicas=2"]);
    let label = rig.key.worker_node_label();
    let new_node = eventually("a second cache node", T, || async {
        let nodes = get(&ns, &["get", "nodes", "-l", &format!("{label}=true"), "-o", "name"])?;
        let names: Vec<String> = nodes.lines().map(|l| l.trim_start_matches("node/").to_string()).collect();
        Ok((names.len() == 2).then(|| names.into_iter().find(|n| *n != rig.worker_node)).flatten())
    })
    .await;
    let nodes = eventually("the OnEvent load ran again on both nodes", Duration::from_secs(240), || async {
        let out = get(
            &ns,
            &["get", "dataload", "follow", "-o", "jsonpath={.status.phase} {.status.progress.nodes[*].node}"],
        )?;
        Ok(out.strip_prefix("Complete ").filter(|n| n.split(' ').count() == 2).map(str::to_string))
    })
    .await;
    assert!(nodes.contains(&new_node) && nodes.contains(&rig.worker_node), "{nodes}");
    let why = rig.get(&["get", "dataload", "follow", "-o", "jsonpath={.status.infos.lastEvent}"]);
    assert_eq!(why, format!("cache node {new_node} joined the dataset"));
    assert_eq!(jobs_of(&rig, "follow").len(), 2, "one Job per node of the new run, the first run's gone");
    rig.get(&["delete", "dataload", "--all", "--wait=true", "--timeout=60s"]);
    rig.teardown().await;
}

/// `find . -type f` with each file's SHA-256, sorted: a tree's content and layout.
const TREE_SUMS: &str = "find . -type f -exec sha256sum {} + | sort -k 2";

#[tokio::test]
async fn a_migration_then_a_load_then_a_process_run_in_order_and_cron_repeats() {
    let rig = Rig::start("dataops", 151).await;
    let ns = rig.ns.name.clone();
    let node = rig.worker_node.clone();
    let client = ferrofluid_e2e::client().await.expect("client");
    let (seen, watch) = record(client.clone(), &ns);

    // The source: a tree on every node (the copy runs on whichever caches the dataset), the same
    // bytes on each, names with spaces and shell metacharacters among them, reached as a juicefs sync
    // address.
    let src = format!("/tmp/ferrofluid-migrate-src-{}", std::process::id());
    for n in &rig.cluster.nodes {
        rig.cluster
            .exec(
                &n.name,
                &format!(
                    "set -e; rm -rf {src}; mkdir -p '{src}/a/deep dir' {src}/b {src}/z; \
                     for i in 1 2 3; do yes \"line $i\" | head -c 300000 > {src}/a/f$i; done; \
                     seq 1 700000 | head -c 5000000 > '{src}/a/deep dir/big $(x);y'; echo hello > {src}/b/hello; \
                     echo last > {src}/z/last; echo top > {src}/Top"
                ),
            )
            .expect("source tree");
    }
    let want = rig.cluster.exec(&node, &format!("cd {src} && {TREE_SUMS}")).expect("source sums");

    // Migrate → Load → Process, created in reverse order: each waits for the one before it.
    let process = format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: DataProcess\nmetadata:\n  name: prep\nspec:\n  dataset:\n    name: jfsdemo\n    mountPath: /data\n  runAfter:\n    kind: DataLoad\n    name: load-imported\n  processor:\n    job:\n      podSpec:\n        nodeName: {node}\n        tolerations: [{{operator: Exists}}]\n        containers:\n          - name: prep\n            image: busybox\n            command: [sh, -c, 'date -u +%Y-%m-%dT%H:%M:%SZ > {src}.processed']\n"
    );
    rig.apply(&process);
    let load = "apiVersion: data.fluid.io/v1alpha1\nkind: DataLoad\nmetadata:\n  name: load-imported\nspec:\n  dataset:\n    name: jfsdemo\n  target:\n    - path: /imported\n  runAfter:\n    kind: DataMigrate\n    name: import\n";
    rig.apply(load);
    wait_field(
        &ns,
        "dataprocess",
        "prep",
        ".status.conditions[?(@.type==\"Waiting\")].reason",
        "WaitingForPreceding",
        T,
    )
    .await;
    let migrate = format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: DataMigrate\nmetadata:\n  name: import\nspec:\n  from:\n    externalStorage:\n      uri: file://{src}/\n  to:\n    dataset:\n      name: jfsdemo\n      path: /imported\n  parallelism: 2\n  options:\n    threads: \"4\"\n"
    );
    rig.apply(&migrate);
    wait_field(&ns, "datamigrate", "import", ".status.phase", "Complete", Duration::from_secs(240)).await;
    // Seven files: the counts exact, the bytes as juicefs sync prints them (3 significant digits).
    let src_bytes: i64 = rig
        .cluster
        .exec(&node, &format!("find {src} -type f -exec stat -c %s {{}} + | awk '{{s += $1}} END {{print s}}'"))
        .expect("source size")
        .trim()
        .parse()
        .expect("a number");
    let progress = rig.get(&["get", "datamigrate", "import", "-o", "jsonpath={.status.progress.summary}"]);
    assert!(progress.starts_with("2/2 parts, 7/7 files, "), "{progress}");
    let counts = rig.get(&[
        "get",
        "datamigrate",
        "import",
        "-o",
        "jsonpath={.status.progress.filesDone} {.status.progress.files} {.status.progress.bytesDone}",
    ]);
    let v: Vec<i64> = counts.split(' ').map(|n| n.parse().expect("number")).collect();
    assert_eq!(v[..2], [7, 7], "{counts}");
    assert!((v[2] - src_bytes).abs() * 100 < src_bytes, "bytes copied {} of {src_bytes}", v[2]);
    rig.phase("load-imported", "Complete").await;
    wait_field(&ns, "dataprocess", "prep", ".status.phase", "Complete", Duration::from_secs(240)).await;

    // In order: each started only after the one before it completed.
    let times = |kind: &str, name: &str| {
        let t = rig.get(&["get", kind, name, "-o", "jsonpath={.status.startTime} {.status.completionTime}"]);
        let (s, e) = t.split_once(' ').expect("two times");
        (s.parse::<Timestamp>().expect("start"), e.parse::<Timestamp>().expect("end"))
    };
    let (m, l, p) = (times("datamigrate", "import"), times("dataload", "load-imported"), times("dataprocess", "prep"));
    assert!(m.1 <= l.0 && l.1 <= p.0, "out of order: migrate {m:?}, load {l:?}, process {p:?}");
    let stamped = rig.cluster.exec(&node, &format!("cat {src}.processed")).expect("the processor ran");
    // `date` prints whole seconds: compare at that precision.
    let processed = stamped.trim().parse::<Timestamp>().expect("the processor's timestamp");
    assert!(processed.as_second() >= l.1.as_second(), "processed at {processed}, before the load completed at {}", l.1);
    // The processor's Job got the dataset's claim at the mount path.
    let pod = rig.get(&["get", "jobs", "-l", "role=dataprocess", "-o", "jsonpath={.items[0].spec.template.spec.volumes[*].persistentVolumeClaim.claimName} {.items[0].spec.template.spec.containers[0].volumeMounts[*].mountPath}"]);
    assert_eq!(pod, "jfsdemo /data");

    // The copy is byte-identical, read through an app pod's volume.
    rig.apply(&pod_yaml("reader", &node));
    let dir = agent_cluster::pod_volume_dir(&ns, "reader", &rig.key.pv_name()).expect("dir");
    let got = eventually("the imported tree through the reader's volume", T, || async {
        let out = rig.cluster.exec(&node, &format!("cd {dir}/imported && {TREE_SUMS}"));
        Ok(out.ok().filter(|o| !o.is_empty()))
    })
    .await;
    assert_eq!(got, want, "the migrated tree differs from its source");
    rig.get(&["delete", "pod", "reader", "--grace-period=0", "--force"]);

    // A Cron DataLoad every 10 s: two runs complete, then it is deleted and nothing of it runs again.
    let cron = "  policy: Cron\n  schedule: \"*/10 * * * * *\"\n";
    let after_nightly = format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: DataProcess\nmetadata:\n  name: after-nightly\nspec:\n  dataset:\n    name: jfsdemo\n    mountPath: /data\n  policy: OnEvent\n  runAfter:\n    kind: DataLoad\n    name: nightly\n  processor:\n    job:\n      podSpec:\n        nodeName: {node}\n        tolerations: [{{operator: Exists}}]\n        containers:\n          - name: prep\n            image: busybox\n            command: [sh, -c, 'date -u +%Y-%m-%dT%H:%M:%SZ >> {src}.after-nightly']\n"
    );
    rig.apply(&after_nightly);
    rig.apply(&dataload_yaml("nightly", "jfsdemo", cron).replace("/train", "/train/small"));
    let runs = eventually("two completed runs of the Cron load", Duration::from_secs(180), || async {
        let log = seen.lock().expect("lock").clone();
        let done: std::collections::BTreeSet<String> = log
            .iter()
            .filter(|e| e.0 == "nightly" && e.1 == OperationPhase::Complete)
            .filter_map(|e| e.5.last_schedule_time.clone())
            .collect();
        Ok((done.len() >= 2).then_some(done))
    })
    .await;
    eprintln!("cron runs scheduled at {runs:?}");
    // Meanwhile an OnEvent DataProcess after the Cron load ran after each of its runs.
    wait_field(&ns, "dataprocess", "after-nightly", ".status.phase", "Complete", T).await;
    let stamps = eventually("the OnEvent process ran twice", T, || async {
        let out = rig.cluster.exec(&node, &format!("cat {src}.after-nightly 2>/dev/null || true"))?;
        Ok((out.lines().count() >= 2).then_some(out))
    })
    .await;
    eprintln!("OnEvent process runs at {stamps:?}");
    let why = rig.get(&["get", "dataprocess", "after-nightly", "-o", "jsonpath={.status.infos.lastEvent}"]);
    assert!(why.starts_with("DataLoad \"nightly\" completed again at"), "{why}");
    rig.get(&["delete", "dataload", "nightly", "--wait=true", "--timeout=60s"]);
    eventually("the Cron load's Jobs gone", T, || async {
        let left = get(&ns, &["get", "jobs,pods", "-l", "role=dataload", "-o", "name"])?;
        Ok((!left.contains("nightly")).then_some(()))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = rig.get(&["get", "jobs", "-l", "role=dataload", "-o", "name"]);
    assert!(!after.contains("nightly"), "a deleted Cron load ran again: {after}");

    for n in &rig.cluster.nodes {
        let _ = rig.cluster.exec(&n.name, &format!("rm -rf {src} {src}.processed {src}.after-nightly"));
    }
    rig.get(&["delete", "dataload,datamigrate,dataprocess", "--all", "--wait=true", "--timeout=60s"]);
    watch.abort();
    rig.teardown().await;
}

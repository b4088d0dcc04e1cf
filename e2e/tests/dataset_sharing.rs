//! Sharing a dataset across namespaces (`dataset://<ns>/<name>`) on real JuiceFS mounts: agent-backed
//! nodes with the real csi-plugin, the real dataset- and runtime-controllers (watching all namespaces,
//! as they must to see both sides; this binary holds one test, and test binaries run one at a time),
//! Redis and a local directory as object store.
//!
//! A dataset in namespace B that refers to A's stays `NotBound` until A opts in with
//! `ferrofluid.io/share-with`; then pods in A and B on one node read the same bytes through A's one
//! FUSE mount; revoking the share unbinds B; deleting B leaves A working; deleting A waits (an event
//! names B) until B is gone; nothing is left behind.

use ferrofluid_api::DatasetKey;
use ferrofluid_api::keys::{self, ANNOTATION_SHARE_WITH};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::agent::harness::NodeAgents;
use ferrofluid_e2e::agent_cluster::{self, AgentCluster, dataset_yaml, fuse_mounts, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in as get, leftovers, wait_field};
use ferrofluid_e2e::controllers::private_port_range;
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::redis::{RedisServer, free_port};
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

async fn field(ns: &str, kind: &str, name: &str, path: &str, want: &str) {
    wait_field(ns, kind, name, path, want, T).await
}

fn exec(agents: &NodeAgents, node: &str, script: &str) -> anyhow::Result<String> {
    agent_cluster::sh(agents, node, script)
}

/// The referring dataset: B's `jfsdemo`, served by A's `jfsdemo` (so the seed pod's claim name fits both).
fn referring_yaml(source_ns: &str) -> String {
    format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: Dataset\nmetadata:\n  name: jfsdemo\nspec:\n  mounts:\n    - \
         mountPoint: dataset://{source_ns}/jfsdemo\n  accessModes: [ReadWriteMany]\n"
    )
}

fn share_with(ns: &str, value: &str) {
    let annotation = format!("{ANNOTATION_SHARE_WITH}={value}");
    get(ns, &["annotate", "dataset", "jfsdemo", &annotation, "--overwrite"]).expect("annotate");
}

fn condition(ns: &str, what: &str) -> String {
    let path = format!("jsonpath={{.status.conditions[?(@.type==\"RuntimeReady\")].{what}}}");
    get(ns, &["get", "dataset", "jfsdemo", "-o", &path]).unwrap_or_default()
}

fn claim_exists(ns: &str) -> bool {
    let out = kubectl(&["-n", ns, "get", "pvc", "jfsdemo", "-o", "name", "--ignore-not-found"], None).expect("pvc");
    !out.stdout.trim().is_empty()
}

/// Deletes both sides, referring side first, when the test ends (passed or not), and waits a bounded
/// time for the controllers — still running — to clean up.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            let _ =
                kubectl(&["-n", ns, "delete", "pods", "--all", "--grace-period=0", "--force", "--wait=false"], None);
        }
        for ns in self.0.iter().rev() {
            let _ = kubectl(&["-n", ns, "delete", "datasets,juicefsruntimes", "--all", "--wait=false"], None);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let left = self.0.iter().any(|ns| {
                kubectl(&["-n", ns, "get", "datasets,juicefsruntimes", "-o", "name"], None)
                    .map(|o| !o.ok || !o.stdout.trim().is_empty())
                    .unwrap_or(true)
            });
            if !left {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("datasets or runtimes still present after 60 s");
    }
}

#[tokio::test]
async fn a_dataset_shared_across_namespaces_reads_through_one_fuse_mount() {
    let (ns_a, ns_b) = (TestNamespace::new("share-a").expect("ns"), TestNamespace::new("share-b").expect("ns"));
    let (a, b) = (ns_a.name.as_str(), ns_b.name.as_str());
    let redis = RedisServer::start().expect("redis");
    let bucket = TempDir::new("ferrofluid-share-bucket").expect("temp dir");
    let cluster = AgentCluster::start("share", 41).expect("agent nodes");
    let node = cluster.nodes[0].name.clone();
    let addr = || format!("127.0.0.1:{}", free_port().expect("port"));
    let (dsctl_addr, range) = (addr(), private_port_range(a));
    let dsctl = Component::start(
        "dataset-controller",
        &format!("dsctl-{a}"),
        &["--http-addr", &dsctl_addr, "--leader-elect=false", "--recheck-seconds", "1"],
    )
    .expect("dataset-controller");
    let runtime_controller = |label: &str| {
        let args =
            ["--http-addr", &addr(), "--leader-elect=false", "--resync-seconds", "5", "--host-port-range", &range];
        Component::start("runtime-controller", &format!("{label}-{a}"), &args).expect("runtime-controller")
    };
    // Both run until the cleanup below has finished (dropped after it).
    let mut controllers = [dsctl, runtime_controller("rtctl")];
    let _cleanup = Cleanup(vec![a.to_string(), b.to_string()]);
    let (key_a, key_b) = (DatasetKey::new(a, "jfsdemo"), DatasetKey::new(b, "jfsdemo"));

    // The source, bound as usual.
    let scenario = format!("share-{}", std::process::id());
    let yaml = dataset_yaml(&redis.meta_url(1), &bucket.0.display().to_string(), &scenario, "");
    kubectl_ok(&["apply", "-n", a, "-f", "-"], Some(&yaml)).expect("dataset a");
    kubectl_ok(&["apply", "-n", a, "-f", "-"], Some(&manifest("seed-runtime.yaml"))).expect("runtime a");
    field(a, "dataset", "jfsdemo", ".status.phase", "Bound").await;

    // B refers to it, but A does not share with B: NotBound, a condition and an event saying so, no claim.
    kubectl_ok(&["apply", "-n", b, "-f", "-"], Some(&referring_yaml(a))).expect("dataset b");
    let message = eventually("B refused with NotShared", T, || async {
        Ok((condition(b, "reason") == "NotShared").then(|| condition(b, "message")))
    })
    .await;
    assert!(message.contains(ANNOTATION_SHARE_WITH) && message.contains(b), "{message}");
    assert_eq!(get(b, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.phase}"]).expect("phase"), "NotBound");
    eventually("NotShared warning event on B", T, || async {
        let ev = get(b, &["get", "events", "--field-selector", "reason=NotShared", "-o", "name"])?;
        Ok((!ev.trim().is_empty()).then_some(()))
    })
    .await;
    assert!(!claim_exists(b), "no claim for a refused reference");
    // A lists B among the datasets that refer to it, allowed or not.
    field(a, "dataset", "jfsdemo", ".status.datasetRef[0]", &format!("{b}/jfsdemo")).await;

    // A opts in: B binds onto A's cache — by a runtime-controller killed and restarted right then.
    share_with(a, &format!("other,{b}"));
    controllers[1].kill();
    controllers[1] = runtime_controller("rtctl2");
    field(b, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    field(b, "pvc", "jfsdemo", ".status.phase", "Bound").await;
    assert_eq!(condition(b, "reason"), "SharedFrom");
    let runtime = get(b, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.runtimes[0].namespace}"]).expect("rt");
    assert_eq!(runtime, a, "served by A's runtime");
    let fluid_path = key_a.fuse_mount_path(keys::DEFAULT_MOUNT_ROOT);
    let attr = "jsonpath={.spec.csi.volumeAttributes.fluid_path}";
    assert_eq!(kubectl_ok(&["get", "pv", &key_b.pv_name(), "-o", attr], None).expect("pv"), fluid_path);

    // Revoking the share unbinds B and takes its claim away; sharing again binds it again.
    share_with(a, "other");
    eventually("B unbound and its claim gone after the share is revoked", T, || async {
        let phase = get(b, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.phase}"])?;
        Ok((phase == "NotBound" && condition(b, "reason") == "NotShared" && !claim_exists(b)).then_some(()))
    })
    .await;
    share_with(a, b);
    field(b, "pvc", "jfsdemo", ".status.phase", "Bound").await;

    // A pod in each namespace on the same node.
    kubectl_ok(&["apply", "-n", a, "-f", "-"], Some(&pod_yaml("app-a", &node))).expect("pod a");
    kubectl_ok(&["apply", "-n", b, "-f", "-"], Some(&pod_yaml("app-b", &node))).expect("pod b");
    let dir_a = agent_cluster::pod_volume_dir(a, "app-a", &key_a.pv_name()).expect("dir a");
    let dir_b = agent_cluster::pod_volume_dir(b, "app-b", &key_b.pv_name()).expect("dir b");
    eventually("both pods' volumes published", T, || async {
        let mounts = fuse_mounts(&cluster.agents, &node);
        Ok((mounts.contains(&format!(" {dir_a} ")) && mounts.contains(&format!(" {dir_b} "))).then_some(()))
    })
    .await;
    let payload = format!("shared across namespaces {}\n", std::process::id());
    exec(&cluster.agents, &node, &format!("printf '%s' '{payload}' > {dir_a}/hello && sync")).expect("write");
    let read = exec(&cluster.agents, &node, &format!("cat {dir_b}/hello")).expect("read through B");
    assert_eq!(read, payload, "B reads A's bytes");

    // One FUSE client: one FUSE mount at A's path, one FUSE pod, and no FUSE DaemonSet or label for B.
    let mounts = fuse_mounts(&cluster.agents, &node);
    let at_path = mounts.lines().filter(|l| l.split(' ').nth(4) == Some(fluid_path.as_str())).count();
    assert_eq!(at_path, 1, "one FUSE mount at {fluid_path}:\n{mounts}");
    field(a, "daemonset", "jfsdemo-fuse", ".status.numberReady", "1").await;
    let fuse_b = kubectl(&["-n", b, "get", "daemonsets,statefulsets", "-o", "name"], None).expect("workloads b");
    assert!(fuse_b.stdout.trim().is_empty(), "B got workloads of its own: {}", fuse_b.stdout);
    let labels = kubectl_ok(&["get", "node", &node, "-o", "jsonpath={.metadata.labels}"], None).expect("labels");
    assert!(labels.contains(&key_a.fuse_node_label()) && !labels.contains(&key_b.fuse_node_label()), "{labels}");

    // Deleting B (its pod first) leaves A working.
    get(b, &["delete", "pod", "app-b", "--grace-period=0", "--force"]).expect("delete pod b");
    get(b, &["delete", "dataset", "jfsdemo", "--wait=false"]).expect("delete dataset b");
    eventually("B's dataset, claim and volume gone", T, || async {
        let left = leftovers(&key_b)?;
        Ok(left.is_empty().then_some(()))
    })
    .await;
    let again = exec(&cluster.agents, &node, &format!("cat {dir_a}/hello")).expect("read through A");
    assert_eq!(again, payload, "A still reads after B is gone");
    field(a, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    eventually("A's datasetRef emptied", T, || async {
        let v = get(a, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.datasetRef}"])?;
        Ok(v.is_empty().then_some(()))
    })
    .await;

    // B again; then A's deletion waits for it, and an event names it.
    kubectl_ok(&["apply", "-n", b, "-f", "-"], Some(&referring_yaml(a))).expect("dataset b again");
    field(b, "dataset", "jfsdemo", ".status.phase", "Bound").await;
    get(a, &["delete", "pod", "app-a", "--grace-period=0", "--force"]).expect("delete pod a");
    get(a, &["delete", "dataset", "jfsdemo", "--wait=false"]).expect("delete dataset a");
    let note = eventually("DatasetReferenced event on A", T, || async {
        let out = get(
            a,
            &["get", "events", "--field-selector", "reason=DatasetReferenced", "-o", "jsonpath={.items[0].message}"],
        )?;
        Ok((!out.is_empty()).then_some(out))
    })
    .await;
    assert!(note.contains(&format!("{b}/jfsdemo")), "{note}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = get(a, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.metadata.deletionTimestamp}"]).expect("a");
    assert!(!still.is_empty(), "A is still there, being deleted, while B refers to it");
    assert_eq!(
        get(a, &["get", "pvc", "jfsdemo", "-o", "name"]).expect("pvc a").trim(),
        "persistentvolumeclaim/jfsdemo"
    );

    // B goes, then A follows; nothing of either is left: objects, node labels, mounts.
    get(b, &["delete", "dataset", "jfsdemo", "--wait=false"]).expect("delete dataset b");
    eventually("nothing left of A or B", Duration::from_secs(120), || async {
        let mut left = leftovers(&key_a)?;
        left.extend(leftovers(&key_b)?);
        if !fuse_mounts(&cluster.agents, &node).is_empty() {
            left.push(format!("mounts on {node}"));
        }
        Ok(left.is_empty().then_some(()).or_else(|| {
            eprintln!("left: {left:?}");
            None
        }))
    })
    .await;
    drop(redis);
}

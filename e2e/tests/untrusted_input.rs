//! User input never reaches a shell and secrets never leak, on real JuiceFS mounts (agent-backed nodes,
//! real csi-plugin, real Redis).
//!
//! - Hostile option *values* in every options map (and a hostile sub-directory in the mount point) —
//!   `$(…)`, backticks, `;`, `|`, `&&`, quotes, a newline, a leading `--`, and `$(METAURL)` — reach
//!   JuiceFS as literal arguments: the dataset binds, a pod reads and writes through it, each running
//!   client's own configuration (`<mount>/.config`, which JuiceFS fills from its flags) holds the values
//!   verbatim, and none of the commands they spell ran on the node. (Hostile *keys* are refused at
//!   admission: `schema_validation.rs`.)
//! - A password-bearing metaurl: with a malformed URL (JuiceFS then prints the raw URL, password and
//!   all) and with a wrong password, the worker failures are reported — redacted — and the passwords
//!   appear in no event, condition, pod spec, ConfigMap, or log line of the controllers or the
//!   csi-plugins. A password kept in its own Secret key (`meta-password`, JuiceFS's `META_PASSWORD`)
//!   mounts and serves data.

use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::agent_cluster::{AgentCluster, dataset_yaml, pod_volume_dir, pod_yaml};
use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::redis::RedisServer;
use ferrofluid_e2e::{TempDir, TestNamespace, kubectl_ok, manifest};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// A value that would run `touch <marker><n>…` five ways if any shell parsed it, and expand a secret if
/// Kubernetes expanded it.
fn hostile(marker: &str, n: u32) -> String {
    format!(
        "--x $(touch {marker}{n}a) `touch {marker}{n}b`; touch {marker}{n}c | touch {marker}{n}d && touch {marker}{n}e 'q\" $(METAURL)\nline2"
    )
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

#[tokio::test]
async fn hostile_option_values_are_literal_arguments_and_run_nothing() {
    let ns = TestNamespace::new("hostile").expect("ns");
    let redis = RedisServer::start().expect("redis");
    let bucket = TempDir::new("ferrofluid-hostile-bucket").expect("bucket");
    let cluster = AgentCluster::start("hostile", 31).expect("agent nodes");
    let node = cluster.node(0).to_string();
    let _ctl = Controllers::start(&ns.name).expect("controllers");
    let marker = format!("/tmp/ferrofluid-pwned-{}-", std::process::id());
    let (format_sc, log, worker_ifaces, fuse_ifaces) =
        (hostile(&marker, 1), hostile(&marker, 2), hostile(&marker, 3), hostile(&marker, 4));
    let subdir = format!("/demo $(touch {marker}5) ; id");

    // sharedOptions `storage-class` → juicefs format; mounts[0].options `log` → juicefs mount of workers
    // and FUSE clients; worker and fuse options `network-interfaces` → that role's juicefs mount only.
    let dataset = dataset_yaml(&redis.meta_url(1), &bucket.0.display().to_string(), &cluster.scenario, "")
        .replace("\"juicefs:///demo\"", &yaml_string(&format!("juicefs://{subdir}")))
        .replace(
            &format!("        bucket: \"{}\"\n", bucket.0.display()),
            &format!("        bucket: \"{}\"\n        log: {}\n", bucket.0.display(), yaml_string(&log)),
        )
        .replace(
            "  tolerations:",
            &format!("  sharedOptions:\n    storage-class: {}\n  tolerations:", yaml_string(&format_sc)),
        );
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&dataset)).expect("dataset");
    let runtime = manifest("seed-runtime.yaml").replace(
        "spec:\n",
        &format!(
            "spec:\n  worker:\n    options:\n      network-interfaces: {}\n  fuse:\n    options:\n      network-interfaces: {}\n",
            yaml_string(&worker_ifaces),
            yaml_string(&fuse_ifaces)
        ),
    );
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&runtime)).expect("runtime");
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;

    // A pod reads and writes through the volume.
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&pod_yaml("demo-app", &node))).expect("pod");
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let dir = pod_volume_dir(&ns.name, "demo-app", &key.pv_name()).expect("dir");
    eventually("the pod's volume is published", T, || async {
        Ok(cluster.fuse_mounts(&node)?.contains(&format!(" {dir} ")).then_some(()))
    })
    .await;
    let read = cluster.exec(&node, &format!("echo literal > {dir}/f && cat {dir}/f")).expect("read/write");
    assert_eq!(read.trim(), "literal");

    // Each client's own configuration: the values arrived verbatim, `$(METAURL)` not expanded.
    let config = |node: &str, mount: &str| -> Value {
        let text = cluster.exec(node, &format!("cat '{mount}/.config'")).expect(".config");
        serde_json::from_str(&text).expect("JuiceFS .config is JSON")
    };
    let fuse = config(&node, &key.fuse_mount_path("/runtime-mnt"));
    assert_eq!(fuse["Meta"]["Subdir"], subdir.as_str(), "the mount point's sub-directory");
    assert_eq!(fuse["Meta"]["NetworkInterfaces"], serde_json::json!([fuse_ifaces]), "fuse options, only");
    assert_eq!(fuse["Format"]["StorageClass"], format_sc.as_str(), "the Dataset's format option, as formatted");
    let worker_node =
        get(&ns.name, &["get", "pod", "jfsdemo-worker-0", "-o", "jsonpath={.spec.nodeName}"]).expect("worker node");
    let worker_mount = format!("/runtime-mnt/juicefs/{}/jfsdemo/juicefs-worker", ns.name);
    let worker = config(&worker_node, &worker_mount);
    assert_eq!(worker["Meta"]["NetworkInterfaces"], serde_json::json!([worker_ifaces]), "worker options, only");
    assert_eq!(worker["Format"]["StorageClass"], format_sc.as_str(), "the Dataset's format option, as formatted");
    // The one value JuiceFS keeps nowhere (`--log` means nothing in the foreground) is checked where
    // ferrofluid puts it: one argument, `$` escaped for Kubernetes.
    let argv = get(
        &ns.name,
        &["get", "daemonset", "jfsdemo-fuse", "-o", "jsonpath={.spec.template.spec.containers[0].command}"],
    )
    .expect("fuse command");
    let argv: Vec<String> = serde_json::from_str(&argv).expect("argv");
    assert!(argv.contains(&format!("--log={}", log.replace('$', "$$"))), "{argv:?}");

    // Nothing any value spells ran, on the node or on the host.
    let on_node = cluster.exec(&node, &format!("ls -d {marker}* 2>/dev/null || true")).expect("ls");
    assert!(on_node.trim().is_empty(), "a hostile value ran on the node: {on_node}");
    let leaked: Vec<_> = std::fs::read_dir("/tmp")
        .expect("tmp")
        .flatten()
        .filter(|e| e.path().display().to_string().starts_with(&marker))
        .collect();
    assert!(leaked.is_empty(), "a hostile value ran: {leaked:?}");
    drop(redis);
}

/// Everything in which a secret must never appear: events, the datasets' and runtimes' status, pod
/// specs (not the pod status kubelet writes), ConfigMaps, and the logs of our components.
fn places(ns: &str, ctl: &Controllers, cluster: &AgentCluster) -> Vec<(String, String)> {
    let mut out = vec![
        ("events".to_string(), kubectl_ok(&["get", "events", "-A", "-o", "json"], None).expect("events")),
        ("configmaps".into(), kubectl_ok(&["get", "configmaps", "-A", "-o", "json"], None).expect("configmaps")),
        ("datasets/runtimes".into(), get(ns, &["get", "datasets,juicefsruntimes", "-o", "json"]).expect("objects")),
        (
            "pod specs".into(),
            get(ns, &["get", "pods", "-o", "jsonpath={range .items[*]}{.spec}{\"\\n\"}{end}"]).expect("pods"),
        ),
        ("dataset-controller log".into(), ctl.dataset.log_text()),
        ("runtime-controller log".into(), ctl.runtime.log_text()),
    ];
    for node in &cluster.nodes {
        let logs = cluster.agents.layout(&node.name).logs_dir();
        for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("csi") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                out.push((format!("csi-plugin log {name} on {}", node.name), text));
            }
        }
    }
    out
}

#[tokio::test]
async fn passwords_never_leak_and_meta_password_mounts() {
    let pid = std::process::id();
    let password = format!("pw{pid}Secr3tXq");
    let wrong = format!("wrong{pid}Pa55Zk");
    let redis = RedisServer::start_with_password(&password).expect("redis");
    let bucket = TempDir::new("ferrofluid-secret-bucket").expect("bucket");
    let cluster = AgentCluster::start("secrets", 41).expect("agent nodes");
    let ns_bad = TestNamespace::new("leak-bad").expect("ns");
    let ns_wrong = TestNamespace::new("leak-wrong").expect("ns");
    let ns_ok = TestNamespace::new("metapw").expect("ns");
    let ctl_bad = Controllers::start(&ns_bad.name).expect("controllers");
    let ctl_wrong = Controllers::start(&ns_wrong.name).expect("controllers");
    let _ctl_ok = Controllers::start(&ns_ok.name).expect("controllers");
    let port = redis.port;
    let bucket_dir = bucket.0.display().to_string();

    // Malformed (database "x"): JuiceFS's error prints the URL it could not parse, password included.
    let bad = dataset_yaml(&format!("redis://:{password}@127.0.0.1:{port}/x"), &bucket_dir, &cluster.scenario, "");
    kubectl_ok(&["apply", "-n", &ns_bad.name, "-f", "-"], Some(&bad)).expect("bad");
    let wrong_pw = dataset_yaml(&format!("redis://:{wrong}@127.0.0.1:{port}/1"), &bucket_dir, &cluster.scenario, "");
    kubectl_ok(&["apply", "-n", &ns_wrong.name, "-f", "-"], Some(&wrong_pw)).expect("wrong");
    // The password in a key of its own, the URL without it.
    let ok = dataset_yaml(&format!("redis://127.0.0.1:{port}/2"), &bucket_dir, &cluster.scenario, "")
        .replace("  metaurl: redis", &format!("  password: {password}\n  metaurl: redis"))
        .replace(
            "              key: metaurl\n",
            "              key: metaurl\n        - name: meta-password\n          valueFrom:\n            secretKeyRef:\n              name: jfs-secret\n              key: password\n",
        );
    kubectl_ok(&["apply", "-n", &ns_ok.name, "-f", "-"], Some(&ok)).expect("meta-password");
    for ns in [&ns_bad, &ns_wrong, &ns_ok] {
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-runtime.yaml"))).expect("runtime");
    }

    // Both failures are reported, naming the failing step; the malformed URL's line is redacted.
    let path = ".status.conditions[?(@.type==\"RuntimeReady\")].message";
    let mut messages = Vec::new();
    for ns in [&ns_bad, &ns_wrong] {
        let message = eventually(&format!("{}: worker failure reported", ns.name), T, || async {
            let m = get(&ns.name, &["get", "dataset", "jfsdemo", "-o", &format!("jsonpath={{{path}}}")])?;
            Ok((m.contains("juicefs-format") && m.contains("exit")).then_some(m))
        })
        .await;
        messages.push(message);
    }
    assert!(messages[0].contains("redis://:****@127.0.0.1"), "the malformed URL's password is masked: {}", messages[0]);
    assert!(messages[1].contains("WRONGPASS"), "{}", messages[1]);

    // META_PASSWORD: bound, and a pod reads and writes.
    wait_field(&ns_ok.name, "dataset", "jfsdemo", ".status.phase", "Bound", T).await;
    let node = cluster.node(1).to_string();
    kubectl_ok(&["apply", "-n", &ns_ok.name, "-f", "-"], Some(&pod_yaml("demo-app", &node))).expect("pod");
    let dir = pod_volume_dir(&ns_ok.name, "demo-app", &DatasetKey::new(&ns_ok.name, "jfsdemo").pv_name()).expect("dir");
    let read = eventually("read/write through the META_PASSWORD mount", T, || async {
        Ok(cluster.exec(&node, &format!("echo pw-ok > {dir}/f && cat {dir}/f")).ok())
    })
    .await;
    assert_eq!(read.trim(), "pw-ok");

    // Give every writer (events, status, logs) a moment more, then look everywhere.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut found = Vec::new();
    for (ns, ctl) in [(&ns_bad, &ctl_bad), (&ns_wrong, &ctl_wrong)] {
        for (place, text) in places(&ns.name, ctl, &cluster) {
            for secret in [&password, &wrong] {
                if text.contains(secret.as_str()) {
                    found.push(format!("{secret} in {place} ({})", ns.name));
                }
            }
        }
    }
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    drop(redis);
}

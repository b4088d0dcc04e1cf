//! The admission webhook on the real stack: the real kube-apiserver calls it over TLS on loopback
//! (trusting the CA the webhook made and published in the configuration's `caBundle`), the real
//! kube-scheduler places the pods. Three kwok nodes of this test's own, one of which carries the
//! dataset's cache label; the dataset's PVC is pre-bound to a PV, so the pods are schedulable.
//! - 20 pods that mount the dataset all land on the cache node (preferred); 20 more, once it is full,
//!   spill to the others instead of staying Pending; mounts get `HostToContainer`, pods
//!   `fluid.io/datasets-in-use`;
//! - `fluid.io/dataset.<name>.sched=required` pins a pod to the cache nodes; a dataset with no cache
//!   node yet gets no required term (the pod is scheduled, with a warning);
//! - a pod without dataset is stored byte-for-byte as it would be without the webhook;
//! - the webhook restarted reuses its certificate (the Secret is not written); with its Secret deleted
//!   it makes a new CA, publishes it and serves the new certificate;
//! - with `--prefer-nodes-without-cache`, a pod without dataset prefers nodes without any cache;
//! - the webhook down: a pod of a namespace outside its selector is created; one inside is refused
//!   (`failurePolicy: Fail` here, so that the webhook is provably in the path).

use anyhow::Result;
use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::agent::harness::{KwokNode, PRIVATE_NODE_TAINT};
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::redis::free_port;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

struct Config(String);

impl Drop for Config {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "mutatingwebhookconfiguration", &self.0, "--ignore-not-found"], None);
    }
}

struct Pv(String);

impl Drop for Pv {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "pv", &self.0, "--ignore-not-found", "--wait=false"], None);
    }
}

fn webhook_config(name: &str, port: u16, ns: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {name}
  labels: {{ferrofluid.io/inject-ca-bundle: "true"}}
webhooks:
  - name: pods.webhook.ferrofluid.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    reinvocationPolicy: IfNeeded
    timeoutSeconds: 5
    clientConfig:
      url: https://127.0.0.1:{port}/mutate
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {ns}}}
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods]
"#
    )
}

/// The dataset (no controller runs for it: only the webhook reads it), a second one without cache
/// nodes, a third that refers to the first (`dataset://`), and their PVCs pre-bound to PVs, labelled as
/// the runtime-controller labels a dataset's PVC.
fn datasets(ns: &str, pvs: &[&str; 3]) -> String {
    let mut out = String::new();
    for (ds, pv) in ["jfsdemo", "cold", "ref"].iter().zip(pvs) {
        let id = DatasetKey::new(ns, *ds).dataset_id();
        let mount_point = if *ds == "ref" { format!("dataset://{ns}/jfsdemo") } else { "juicefs:///demo".into() };
        out.push_str(&format!(
            r#"---
apiVersion: data.fluid.io/v1alpha1
kind: Dataset
metadata: {{name: {ds}, namespace: {ns}}}
spec:
  mounts: [{{name: m, mountPoint: "{mount_point}"}}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteMany]
  storageClassName: ""
  hostPath: {{path: /tmp/ferrofluid-webhook-none}}
  claimRef: {{namespace: {ns}, name: {ds}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {ds}
  namespace: {ns}
  labels: {{app.kubernetes.io/managed-by: ferrofluid, fluid.io/dataset-id: {id}}}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: {pv}
  resources: {{requests: {{storage: 1Gi}}}}
"#
        ));
    }
    out
}

/// A pod on this test's nodes (by their scenario label), requesting one CPU, with `claim` mounted at
/// /data when given, and `labels`.
fn pod(name: &str, scenario: &str, claim: Option<&str>, labels: &str) -> String {
    let (mounts, volumes) = match claim {
        Some(c) => (
            "\n    volumeMounts: [{name: data, mountPath: /data}]".to_string(),
            format!("\n  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {c}}}}}]"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: webhook-test{labels}}}}}
spec:
  nodeSelector: {{ferrofluid.io/scenario: {scenario}}}
  tolerations: [{{key: {PRIVATE_NODE_TAINT}, operator: Exists, effect: NoSchedule}}]
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    resources: {{requests: {{cpu: "1"}}}}{mounts}{volumes}
"#
    )
}

fn get(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    kubectl_ok(&all, None).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"))
}

/// Where each of `names` was scheduled, once all are.
async fn placed(ns: &str, names: &[String]) -> Vec<String> {
    eventually("pods scheduled", T, || async {
        let out = kubectl_ok(
            &[
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app=webhook-test",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}",
            ],
            None,
        )?;
        let map: std::collections::BTreeMap<&str, &str> =
            out.lines().filter_map(|l| l.split_once(' ')).filter(|(_, n)| !n.is_empty()).collect();
        Ok(names.iter().map(|n| map.get(n.as_str()).map(|s| s.to_string())).collect::<Option<Vec<_>>>())
    })
    .await
}

fn start_webhook(tag: &str, port: u16, ns: &str, secret: &str, config: &str, extra: &[&str]) -> Component {
    let http = format!("127.0.0.1:{}", free_port().expect("port"));
    let tls = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--http-addr",
        &http,
        "--tls-addr",
        &tls,
        "--cert-hosts",
        "127.0.0.1",
        "--cert-namespace",
        ns,
        "--cert-secret",
        secret,
        "--webhook-config",
        config,
        "--cert-check-interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    Component::start("webhook", &format!("{tag}-{ns}"), &args).expect("webhook")
}

fn ca_bundle(config: &str) -> String {
    kubectl_ok(
        &["get", "mutatingwebhookconfiguration", config, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"],
        None,
    )
    .unwrap_or_default()
}

#[tokio::test]
async fn pods_land_near_their_cache_through_the_webhook() -> Result<()> {
    let pid = std::process::id();
    let ns = TestNamespace::new("webhook")?;
    let other_ns = TestNamespace::new("webhook-outside")?;
    let scenario = format!("webhook-{pid}");
    let mut nodes = Vec::new();
    for i in 0..3u32 {
        let n = KwokNode::private(&format!("webhook-{pid}-{i}"), &format!("127.0.4.{}", 10 + i + pid % 40 * 3))?;
        kubectl_ok(&["label", "node", &n.name, &format!("ferrofluid.io/scenario={scenario}")], None)?;
        nodes.push(n);
    }
    let cache_node = nodes[0].name.clone();
    kubectl_ok(
        &["label", "node", &cache_node, &format!("fluid.io/s-{}-jfsdemo=true", ns.name), "fluid.io/dataset-num=1"],
        None,
    )?;
    let pv_names = [format!("webhook-{pid}-jfsdemo"), format!("webhook-{pid}-cold"), format!("webhook-{pid}-ref")];
    let _pvs = pv_names.clone().map(Pv);
    kubectl_ok(&["apply", "-f", "-"], Some(&datasets(&ns.name, &[&pv_names[0], &pv_names[1], &pv_names[2]])))?;

    let port = free_port()?;
    let config = format!("ferrofluid-webhook-{pid}");
    let secret = "ferrofluid-webhook-cert";
    kubectl_ok(&["apply", "-f", "-"], Some(&webhook_config(&config, port, &ns.name)))?;
    let _config = Config(config.clone());
    let mut hook = start_webhook("webhook", port, &ns.name, secret, &config, &[]);
    let first_ca = eventually("caBundle published", T, || async {
        let b = ca_bundle(&config);
        Ok((!b.is_empty()).then_some(b))
    })
    .await;

    // 20 pods that mount the dataset: all on the cache node.
    let apply = |yaml: String| kubectl_ok(&["-n", &ns.name, "apply", "-f", "-"], Some(&yaml)).map(drop);
    let first: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    for n in &first {
        apply(pod(n, &scenario, Some("jfsdemo"), ""))?;
    }
    let where_ = placed(&ns.name, &first).await;
    assert!(where_.iter().all(|n| *n == cache_node), "not all on the cache node {cache_node}: {where_:?}");
    let one = get(&ns.name, &["get", "pod", "a0", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&one)?;
    assert_eq!(v["spec"]["containers"][0]["volumeMounts"][0]["mountPropagation"], "HostToContainer");
    assert_eq!(v["metadata"]["annotations"]["fluid.io/datasets-in-use"], "jfsdemo");
    let pref = &v["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(pref["weight"], 100);
    assert_eq!(pref["preference"]["matchExpressions"][0]["key"], format!("fluid.io/s-{}-jfsdemo", ns.name));

    // 20 more: the cache node has 12 CPUs left (32, one per pod); the rest go elsewhere, none waits.
    let second: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    for n in &second {
        apply(pod(n, &scenario, Some("jfsdemo"), ""))?;
    }
    let where_ = placed(&ns.name, &second).await;
    let on_cache = where_.iter().filter(|n| **n == cache_node).count();
    assert_eq!(on_cache, 12, "the cache node filled up first: {where_:?}");

    // Required: on a cache node; without cache nodes, scheduled anyway (with a warning to the client).
    apply(
        pod("req", &scenario, Some("jfsdemo"), ", fluid.io/dataset.jfsdemo.sched: required")
            .replace("cpu: \"1\"", "cpu: \"0\""),
    )?;
    let cold = pod("cold", &scenario, Some("cold"), ", fluid.io/dataset.cold.sched: required");
    let out = kubectl(&["-n", &ns.name, "apply", "-f", "-"], Some(&cold))?;
    assert!(out.stderr.contains("has no cache node yet"), "no warning: {}", out.stderr);
    let where_ = placed(&ns.name, &["req".to_string(), "cold".to_string()]).await;
    assert_eq!(where_[0], cache_node);
    let req = get(
        &ns.name,
        &[
            "get",
            "pod",
            "req",
            "-o",
            "jsonpath={.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[*].key}",
        ],
    );
    assert!(req.contains(&format!("fluid.io/s-{}-jfsdemo", ns.name)), "{req}");
    let cold_req = get(
        &ns.name,
        &[
            "get",
            "pod",
            "cold",
            "-o",
            "jsonpath={.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution}",
        ],
    );
    assert!(cold_req.is_empty(), "a required term without cache nodes: {cold_req}");

    // A dataset that refers to another is placed by that one's cache: required on its cache node.
    apply(
        pod("shared", &scenario, Some("ref"), ", fluid.io/dataset.ref.sched: required")
            .replace("cpu: \"1\"", "cpu: \"0\""),
    )?;
    assert_eq!(placed(&ns.name, &["shared".to_string()]).await[0], cache_node);
    let shared = get(
        &ns.name,
        &[
            "get",
            "pod",
            "shared",
            "-o",
            "jsonpath={.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[*].key}",
        ],
    );
    assert_eq!(shared, format!("fluid.io/s-{}-jfsdemo", ns.name), "the source's cache label");

    // A pod without dataset: stored as it is without the webhook (compared with the other namespace's).
    let plain = pod("plain", &scenario, None, "");
    let stored = |ns: &str| -> Result<serde_json::Value> {
        kubectl_ok(&["-n", ns, "create", "-f", "-"], Some(&plain))?;
        let v: serde_json::Value =
            serde_json::from_str(&kubectl_ok(&["-n", ns, "get", "pod", "plain", "-o", "json"], None)?)?;
        Ok(
            serde_json::json!({"spec": v["spec"].clone(), "annotations": v["metadata"]["annotations"].clone(), "labels": v["metadata"]["labels"].clone()}),
        )
    };
    let (inside, outside) = (stored(&ns.name)?, stored(&other_ns.name)?);
    let strip = |mut v: serde_json::Value| {
        // Scheduling and the service account token volume name differ per pod and namespace.
        if let Some(s) = v["spec"].as_object_mut() {
            s.remove("nodeName");
            s.remove("volumes");
            for c in s.get_mut("containers").and_then(|c| c.as_array_mut()).into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    c.remove("volumeMounts");
                }
            }
        }
        v
    };
    assert_eq!(strip(inside), strip(outside), "a pod without dataset was changed");

    // Restarted: the same certificate, the Secret not written.
    let version = || get(&ns.name, &["get", "secret", secret, "-o", "jsonpath={.metadata.resourceVersion}"]);
    let before = version();
    hook.stop();
    hook = start_webhook("webhook-2", port, &ns.name, secret, &config, &["--prefer-nodes-without-cache"]);
    apply(pod("after-restart", &scenario, Some("jfsdemo"), "").replace("cpu: \"1\"", "cpu: \"0\""))?;
    placed(&ns.name, &["after-restart".to_string()]).await;
    assert_eq!(version(), before, "the Secret was written on restart");
    assert_eq!(ca_bundle(&config), first_ca);
    // Prefer nodes without cache (on now): with the nodes emptied, six pods without dataset (no CPU
    // asked, so nothing else tells the nodes apart) all avoid the cache node.
    get(&ns.name, &["delete", "pods", "-l", "app=webhook-test", "--grace-period=0", "--force", "--wait=true"]);
    let free: Vec<String> = (0..6).map(|i| format!("free{i}")).collect();
    for n in &free {
        apply(pod(n, &scenario, None, "").replace("cpu: \"1\"", "cpu: \"0\""))?;
    }
    let where_ = placed(&ns.name, &free).await;
    assert!(where_.iter().all(|n| *n != cache_node), "a pod without dataset on the cache node: {where_:?}");

    // Secret deleted: a new CA, published; the webhook serves a certificate of it.
    get(&ns.name, &["delete", "secret", secret]);
    eventually("a new CA published", T, || async {
        let b = ca_bundle(&config);
        Ok((!b.is_empty() && b != first_ca).then_some(()))
    })
    .await;
    eventually("a pod admitted with the new certificate", T, || async {
        let yaml = pod("new-ca", &scenario, Some("jfsdemo"), "").replace("cpu: \"1\"", "cpu: \"0\"");
        let out = kubectl(&["-n", &ns.name, "apply", "-f", "-"], Some(&yaml))?;
        Ok(out.ok.then_some(()))
    })
    .await;
    let ann =
        get(&ns.name, &["get", "pod", "new-ca", "-o", "jsonpath={.metadata.annotations.fluid\\.io/datasets-in-use}"]);
    assert_eq!(ann, "jfsdemo");

    // Down: outside its namespaces nothing is blocked; inside, failurePolicy Fail refuses.
    hook.stop();
    let outside = pod("while-down", &scenario, None, "").replace("cpu: \"1\"", "cpu: \"0\"");
    kubectl_ok(&["-n", &other_ns.name, "apply", "-f", "-"], Some(&outside))?;
    let inside = kubectl(&["-n", &ns.name, "apply", "-f", "-"], Some(&outside))?;
    assert!(!inside.ok, "created while the webhook was down, under failurePolicy Fail");

    for n in [&ns.name, &other_ns.name] {
        let _ = kubectl(&["-n", n, "delete", "pods", "--all", "--grace-period=0", "--force", "--wait=false"], None);
    }
    Ok(())
}

//! Worker autoscaling on the real stack: the metrics-collector serves the custom metrics API, which the
//! real kube-apiserver aggregates (APIService `v1beta2.custom.metrics.k8s.io`, its front-proxy client
//! certificate checked by the collector, each caller authorized by a SubjectAccessReview); the real
//! kube-controller-manager's HPA controller reads `capacity_used_rate` of the Dataset through it and
//! drives the JuiceFSRuntime's scale subresource — the HPA is `docs/examples/juicefsruntime-hpa.yaml`
//! with a shorter scale-in window. Worker metrics come from stand-ins on the worker pods' (kwok) IPs.
//!
//! The APIService is cluster-wide and one per group version: this binary holds one test, and test
//! binaries run one at a time.

use anyhow::Result;
use ferrofluid_api::DatasetKey;
use ferrofluid_e2e::cluster::kubectl_in as get;
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::fake_metrics::{MetricsEndpoint, exposition};
use ferrofluid_e2e::process::{Component, eventually};
use ferrofluid_e2e::redis::free_port;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const GIB: u64 = 1 << 30;
/// Where the collector serves the API: a loopback address of its own. The API server reaches it through
/// an ExternalName Service naming that address (there is no Service network here).
const API_IP: &str = "127.0.250.1";

/// Removes the cluster-wide APIService when the test ends, passed or not.
struct ApiService;

impl Drop for ApiService {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "apiservice", "v1beta2.custom.metrics.k8s.io", "--ignore-not-found"], None);
    }
}

fn registration(ns: &str, port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: custom-metrics, namespace: {ns}}}
spec:
  type: ExternalName
  externalName: "{API_IP}"
  ports: [{{name: https, port: {port}}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: v1beta2.custom.metrics.k8s.io}}
spec:
  group: custom.metrics.k8s.io
  version: v1beta2
  service: {{name: custom-metrics, namespace: {ns}, port: {port}}}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 200
"#
    )
}

/// The nodes carrying the dataset's worker label.
fn labelled_nodes(key: &DatasetKey) -> Result<Vec<String>> {
    let out = kubectl_ok(
        &["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels}{\"\\n\"}{end}"],
        None,
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, labels)| {
            serde_json::from_str::<BTreeMap<String, String>>(labels)
                .is_ok_and(|m| m.get(&key.worker_node_label()).map(String::as_str) == Some("true"))
        })
        .map(|(n, _)| n.to_string())
        .collect())
}

/// The worker pods' metrics endpoints: `(pod name, address)`.
fn worker_endpoints(ns: &str) -> Result<Vec<(String, SocketAddr)>> {
    let out = get(
        ns,
        &[
            "get",
            "pods",
            "-l",
            "role=juicefs-worker",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.containers[0].ports[?(@.name==\"metrics\")].containerPort}{\"\\n\"}{end}",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (name, ip, port) = (f.next()?, f.next()?, f.next()?);
            Some((name.to_string(), format!("{ip}:{port}").parse().ok()?))
        })
        .collect())
}

#[tokio::test]
async fn an_hpa_scales_the_runtime_on_its_cache_fill() -> Result<()> {
    let ns = TestNamespace::new("autoscale")?;
    let _ctl = Controllers::start(&ns.name)?;
    let key = DatasetKey::new(&ns.name, "jfsdemo");
    let http = format!("127.0.0.1:{}", free_port()?);
    let port = std::net::TcpListener::bind((API_IP, 0))?.local_addr()?.port();
    let api = format!("{API_IP}:{port}");
    let _collector = Component::start(
        "metrics-collector",
        &format!("collector-{}", ns.name),
        &[
            "--namespace",
            &ns.name,
            "--http-addr",
            &http,
            "--leader-elect=false",
            "--scrape-interval",
            "1s",
            "--scrape-timeout",
            "1s",
            "--custom-metrics-addr",
            &api,
        ],
    )?;
    let _registered = ApiService;
    kubectl_ok(&["apply", "-f", "-"], Some(&registration(&ns.name, port)))?;
    eventually("APIService available", T, || async {
        let v = kubectl_ok(
            &[
                "get",
                "apiservice",
                "v1beta2.custom.metrics.k8s.io",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
            ],
            None,
        )?;
        Ok((v == "True").then_some(()))
    })
    .await;

    // The seed pair, one worker of 40 GiB cache; its client reports 38 GiB cached: 95% of capacity.
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-dataset-with-secret.yaml")))?;
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-runtime.yaml")))?;
    let body = Arc::new(Mutex::new(exposition(38 * GIB, 10, 1, 100 * GIB)));
    let first =
        eventually("a worker with an IP", T, || async { Ok(worker_endpoints(&ns.name)?.into_iter().next()) }).await;
    let mut endpoints = vec![MetricsEndpoint::serve(first.1, body.clone())?];
    eventually("cacheStates from the worker", T, || async {
        let v = get(&ns.name, &["get", "dataset", "jfsdemo", "-o", "jsonpath={.status.cacheStates.cacheCapacity}"])?;
        Ok((v == "40.00GiB").then_some(()))
    })
    .await;

    // The metric through the API server, as the HPA controller asks for it.
    let path = format!(
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/datasets.data.fluid.io/jfsdemo/capacity_used_rate",
        ns.name
    );
    let answer: serde_json::Value = serde_json::from_str(&kubectl_ok(&["get", "--raw", &path], None)?)?;
    assert_eq!(answer["items"][0]["value"], "95000m", "{answer}");
    // A caller without RBAC for custom metrics is refused by the collector's SubjectAccessReview.
    let nobody = format!("system:serviceaccount:{}:default", ns.name);
    let refused = kubectl(&["get", "--raw", &path, "--as", &nobody], None)?;
    assert!(!refused.ok && refused.stderr.contains("Forbidden"), "{}", refused.stderr);
    let missing = kubectl(&["get", "--raw", &path.replace("capacity_used_rate", "nonsense")], None)?;
    assert!(!missing.ok && missing.stderr.contains("NotFound"), "{}", missing.stderr);

    // The example HPA, with a scale-in window short enough for a test.
    let hpa =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/juicefsruntime-hpa.yaml"))?
            .replace("maxReplicas: 4", "maxReplicas: 2")
            .replace("stabilizationWindowSeconds: 600", "stabilizationWindowSeconds: 0")
            .replace("periodSeconds: 300", "periodSeconds: 15");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&hpa))?;

    // Out: 95 / 80 → two workers; the second worker's node gets the labels.
    eventually("two workers, two labelled nodes", T, || async {
        let replicas = get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.spec.replicas}"])?;
        let ready = get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.status.workerNumberReady}"])?;
        Ok((replicas == "2" && ready == "2" && labelled_nodes(&key)?.len() == 2).then_some(()))
    })
    .await;
    let current =
        get(&ns.name, &["get", "hpa", "jfsdemo", "-o", "jsonpath={.status.currentMetrics[0].object.current.value}"])?;
    assert!(!current.is_empty(), "the HPA read the metric");
    // Both workers' clients now report; the cache empties: 2 GiB of 80 GiB → back to one worker.
    *body.lock().expect("body") = exposition(2 * GIB, 10, 1, 100 * GIB);
    for (name, addr) in worker_endpoints(&ns.name)? {
        if addr != first.1 && name != first.0 {
            endpoints.push(MetricsEndpoint::fixed(addr, exposition(0, 0, 0, 100 * GIB))?);
        }
    }
    eventually("one worker, one labelled node", T, || async {
        let replicas = get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.spec.replicas}"])?;
        let workers = get(&ns.name, &["get", "pods", "-l", "role=juicefs-worker", "-o", "name"])?;
        Ok((replicas == "1" && workers.lines().count() == 1 && labelled_nodes(&key)?.len() == 1).then_some(()))
    })
    .await;
    for node in labelled_nodes(&key)? {
        let num =
            kubectl_ok(&["get", "node", &node, "-o", "jsonpath={.metadata.labels.fluid\\.io/dataset-num}"], None)?;
        assert!(!num.is_empty() && num != "0", "{node} holds a worker and counts it: {num:?}");
    }
    get(&ns.name, &["delete", "hpa", "jfsdemo"])?;
    drop(endpoints);
    Ok(())
}

//! Nothing happens when nothing changed. With datasets Bound and settled, the controllers send no
//! request at all — no write, no read — over several resync periods, while another writer (standing in
//! for the metrics-collector) keeps changing `cacheStates` in every dataset's and runtime's status.
//! Counted from each controller's own `ferrofluid_api_requests_total` (watches excluded: they are
//! long-lived and re-opened on their own schedule).

use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::http::api_requests;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl_ok, manifest};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DATASETS: usize = 8;
const T: Duration = Duration::from_secs(120);
/// Several of the test controllers' 5-second resyncs.
const AT_REST: Duration = Duration::from_secs(20);

fn name(i: usize) -> String {
    format!("rest{i}")
}

/// Requests other than watches, by `(verb, resource)`.
fn requests(addr: SocketAddr) -> BTreeMap<(String, String), f64> {
    let mut all = api_requests(addr).expect("metrics");
    all.retain(|(verb, _), _| verb != "watch");
    all
}

fn delta(before: &BTreeMap<(String, String), f64>, after: &BTreeMap<(String, String), f64>) -> Vec<String> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d > 0.0).then(|| format!("{} {} ×{d}", k.0, k.1))
        })
        .collect()
}

/// What the metrics-collector does each round: server-side apply of `cacheStates`, its own field manager.
fn write_cache_states(ns: &str, round: usize) {
    for i in 0..DATASETS {
        for kind in ["dataset", "juicefsruntime"] {
            let api_kind = if kind == "dataset" { "Dataset" } else { "JuiceFSRuntime" };
            let body = format!(
                r#"{{"apiVersion":"data.fluid.io/v1alpha1","kind":"{api_kind}","metadata":{{"name":"{}"}},"status":{{"cacheStates":{{"cached":"{round}.00MiB","cacheHitRatio":"{round}.0%"}}}}}}"#,
                name(i)
            );
            kubectl_ok(
                &[
                    "apply",
                    "-n",
                    ns,
                    "--server-side",
                    "--force-conflicts",
                    "--subresource=status",
                    "--field-manager=ferrofluid-metrics-collector",
                    "-f",
                    "-",
                ],
                Some(&body),
            )
            .expect("cacheStates");
        }
    }
}

#[tokio::test]
async fn bound_datasets_cost_no_requests_at_rest() {
    let ns = TestNamespace::new("rest").expect("ns");
    let ctl = Controllers::start(&ns.name).expect("controllers");
    let all: Vec<String> = (0..DATASETS)
        .map(|i| {
            let dataset =
                manifest("seed-dataset-with-secret.yaml").replace("name: jfsdemo", &format!("name: {}", name(i)));
            let runtime = manifest("seed-runtime.yaml").replace("name: jfsdemo", &format!("name: {}", name(i)));
            format!("{dataset}\n---\n{runtime}")
        })
        .collect();
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&all.join("\n---\n"))).expect("apply");
    for i in 0..DATASETS {
        wait_field(&ns.name, "dataset", &name(i), ".status.phase", "Bound", T).await;
        wait_field(&ns.name, "pvc", &name(i), ".status.phase", "Bound", T).await;
    }
    let (ds_http, rt_http) = (ctl.dataset.http.expect("dataset http"), ctl.runtime.http.expect("runtime http"));
    // Settled: a few seconds in which neither controller sends anything.
    eventually("the controllers settle", T, || async {
        let before = (requests(ds_http), requests(rt_http));
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = (requests(ds_http), requests(rt_http));
        let (ds, rt) = (delta(&before.0, &after.0), delta(&before.1, &after.1));
        if !ds.is_empty() || !rt.is_empty() {
            eprintln!("not settled yet: dataset-controller {ds:?}; runtime-controller {rt:?}");
        }
        Ok((ds.is_empty() && rt.is_empty()).then_some(()))
    })
    .await;

    let before = (requests(ds_http), requests(rt_http));
    let started = Instant::now();
    let mut round = 1;
    while started.elapsed() < AT_REST {
        write_cache_states(&ns.name, round);
        round += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after = (requests(ds_http), requests(rt_http));
    let (ds, rt) = (delta(&before.0, &after.0), delta(&before.1, &after.1));
    assert!(round > 5, "the stand-in collector wrote {round} rounds");
    if !ds.is_empty() || !rt.is_empty() {
        let events = get(&ns.name, &["get", "events", "--sort-by=.metadata.creationTimestamp"]).unwrap_or_default();
        let first = get(&ns.name, &["get", "dataset,juicefsruntime", &name(0), "-o", "yaml"]).unwrap_or_default();
        panic!("requests at rest: dataset-controller {ds:?}; runtime-controller {rt:?}\nevents:\n{events}\n{first}");
    }
    // The status the others wrote is still there, untouched by the controllers.
    let cached =
        get(&ns.name, &["get", "dataset", &name(0), "-o", "jsonpath={.status.cacheStates.cached}"]).expect("get");
    assert_eq!(cached, format!("{}.00MiB", round - 1));
}

//! The seed's manifests apply unchanged, read back equal, and show Fluid's kubectl columns.

use ferrofluid_api::{Dataset, JuiceFSRuntime};
use ferrofluid_e2e::{TestNamespace, client, kubectl_ok, manifest};
use kube::Api;
use serde_json::Value;

fn yaml_spec(file: &str) -> Value {
    let doc: Value = serde_saphyr::from_str(&manifest(file)).expect("manifest yaml");
    doc["spec"].clone()
}

fn apply_seed(ns: &TestNamespace) {
    for file in ["seed-dataset.yaml", "seed-runtime.yaml"] {
        kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest(file))).expect("apply seed manifest");
    }
}

#[tokio::test]
async fn seed_manifests_apply_unchanged_and_read_back_equal() {
    let ns = TestNamespace::new("seed").expect("namespace");
    apply_seed(&ns);
    let client = client().await.expect("client");

    // Byte-for-byte shape: the stored spec equals the manifest's spec (nothing pruned, nothing defaulted).
    for (file, kind) in [("seed-dataset.yaml", "dataset"), ("seed-runtime.yaml", "juicefsruntime")] {
        let stored: Value = serde_json::from_str(
            &kubectl_ok(&["get", kind, "jfsdemo", "-n", &ns.name, "-o", "json"], None).expect("get"),
        )
        .expect("json");
        assert_eq!(stored["spec"], yaml_spec(file), "{kind} spec changed on the way through the apiserver");
    }

    // And the Rust types read them back as the manifests say.
    let ds = Api::<Dataset>::namespaced(client.clone(), &ns.name).get("jfsdemo").await.expect("dataset");
    assert_eq!(ds.spec.mounts.len(), 1);
    assert_eq!(ds.spec.mounts[0].name, "test");
    assert_eq!(ds.spec.mounts[0].mount_point, "juicefs:///demo");
    assert_eq!(ds.spec.mounts[0].options.get("bucket").map(String::as_str), Some("<bucket>"));
    let rt = Api::<JuiceFSRuntime>::namespaced(client, &ns.name).get("jfsdemo").await.expect("runtime");
    assert_eq!(rt.spec.replicas, Some(1));
    let level = &rt.spec.tieredstore.as_ref().expect("tieredstore").levels[0];
    assert_eq!(level.path, "/dev/shm");
    let quota = level.quota.as_ref().expect("quota");
    assert_eq!(ferrofluid_api::quota::quota_mib(quota), Ok(40960));
}

fn header(out: &str) -> Vec<String> {
    let first = out.lines().next().unwrap_or_default();
    first.split("  ").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[test]
fn kubectl_shows_fluid_columns_and_values() {
    let ns = TestNamespace::new("columns").expect("namespace");
    apply_seed(&ns);
    let status = r#"{"status":{"phase":"Bound","ufsTotal":"2.00GiB","fileNum":"7","cacheStates":{"cached":"1.00GiB","cacheCapacity":"40.00GiB","cachedPercentage":"50.0%","cacheHitRatio":"83.3%"}}}"#;
    kubectl_ok(
        &["patch", "dataset", "jfsdemo", "-n", &ns.name, "--subresource=status", "--type=merge", "-p", status],
        None,
    )
    .expect("patch dataset status");
    let rt_status = r#"{"status":{"workerPhase":"Ready","fusePhase":"NotReady","workerNumberReady":1,"desiredWorkerNumberScheduled":1,"fuseNumberReady":0,"desiredFuseNumberScheduled":0}}"#;
    kubectl_ok(
        &["patch", "juicefs", "jfsdemo", "-n", &ns.name, "--subresource=status", "--type=merge", "-p", rt_status],
        None,
    )
    .expect("patch runtime status");

    let plain = kubectl_ok(&["get", "datasets", "-n", &ns.name], None).expect("get");
    assert_eq!(
        header(&plain),
        ["NAME", "UFS TOTAL SIZE", "CACHED", "CACHE CAPACITY", "CACHED PERCENTAGE", "PHASE", "AGE"]
    );
    let row: Vec<&str> = plain.lines().nth(1).expect("row").split_whitespace().collect();
    assert_eq!(&row[..6], ["jfsdemo", "2.00GiB", "1.00GiB", "40.00GiB", "50.0%", "Bound"]);

    let wide = kubectl_ok(&["get", "datasets", "-n", &ns.name, "-o", "wide"], None).expect("get wide");
    let cols = header(&wide);
    for col in ["HCFS URL", "TOTAL FILES", "CACHE HIT RATIO"] {
        assert!(cols.iter().any(|c| c == col), "wide output lacks {col}: {cols:?}");
    }

    let rt = kubectl_ok(&["get", "juicefs", "-n", &ns.name], None).expect("get juicefs");
    assert_eq!(header(&rt), ["NAME", "WORKER PHASE", "FUSE PHASE", "AGE"]);
    assert!(rt.lines().nth(1).expect("row").starts_with("jfsdemo"));
    let rt_wide = kubectl_ok(&["get", "juicefsruntimes", "-n", &ns.name, "-o", "wide"], None).expect("wide");
    assert_eq!(
        header(&rt_wide),
        [
            "NAME",
            "WORKER PHASE",
            "FUSE PHASE",
            "READY WORKERS",
            "DESIRED WORKERS",
            "READY FUSES",
            "DESIRED FUSES",
            "AGE"
        ]
    );
    let rt_row: Vec<&str> = rt_wide.lines().nth(1).expect("row").split_whitespace().collect();
    assert_eq!(&rt_row[..7], ["jfsdemo", "Ready", "NotReady", "1", "1", "0", "0"]);

    // `kubectl get fluid` lists both kinds through the shared category.
    let all = kubectl_ok(&["get", "fluid", "-n", &ns.name, "-o", "name"], None).expect("get fluid");
    assert!(all.contains("dataset.data.fluid.io/jfsdemo"), "{all}");
    assert!(all.contains("juicefsruntime.data.fluid.io/jfsdemo"), "{all}");
}

#[test]
fn kubectl_explain_shows_field_docs() {
    let quota = kubectl_ok(&["explain", "juicefsruntime.spec.tieredstore.levels.quota"], None).expect("explain");
    assert!(quota.contains("bare number meaning MiB"), "{quota}");
    let mp = kubectl_ok(&["explain", "dataset.spec.mounts.mountPoint"], None).expect("explain");
    assert!(mp.contains("juicefs:///demo"), "{mp}");
}

#[test]
fn scale_subresource_changes_replicas() {
    let ns = TestNamespace::new("scale").expect("namespace");
    apply_seed(&ns);
    kubectl_ok(&["scale", "juicefsruntime", "jfsdemo", "-n", &ns.name, "--replicas=2"], None).expect("scale");
    let replicas = kubectl_ok(&["get", "juicefs", "jfsdemo", "-n", &ns.name, "-o", "jsonpath={.spec.replicas}"], None)
        .expect("get");
    assert_eq!(replicas, "2");
}

//! The local control plane is real and loopback-only.

use ferrofluid_e2e::kubectl_ok;
use serde_json::Value;

#[test]
fn apiserver_reports_the_pinned_release() {
    let v: Value =
        serde_json::from_str(&kubectl_ok(&["get", "--raw", "/version"], None).expect("version")).expect("json");
    assert_eq!(v["gitVersion"], "v1.34.4", "{v}");
    assert_eq!(v["major"], "1");
}

#[test]
fn three_ready_kwok_nodes_on_loopback() {
    let out = kubectl_ok(&["get", "nodes", "-l", "type=kwok", "-o", "json"], None).expect("nodes");
    let nodes: Value = serde_json::from_str(&out).expect("json");
    let items = nodes["items"].as_array().expect("items");
    assert!(items.len() >= 3, "want at least 3 kwok nodes, got {}", items.len());
    let mut addresses = Vec::new();
    for node in items {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "node {name} is not Ready");
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], name);
        for addr in node["status"]["addresses"].as_array().into_iter().flatten() {
            if addr["type"] == "InternalIP" {
                let ip = addr["address"].as_str().unwrap_or_default().to_string();
                assert!(ip.starts_with("127."), "node {name} has non-loopback address {ip}");
                addresses.push(ip);
            }
        }
    }
    assert_eq!(addresses.len(), items.len(), "every node has an InternalIP");
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), items.len(), "each node has its own address");
}

#[test]
fn core_controllers_run() {
    // The controller-manager's service-account controller creates `default` in new namespaces.
    let ns = ferrofluid_e2e::TestNamespace::new("cp").expect("namespace");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if ferrofluid_e2e::kubectl(&["get", "serviceaccount", "default", "-n", &ns.name], None).expect("kubectl").ok {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no default service account: kube-controller-manager not working"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

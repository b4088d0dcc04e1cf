//! An API refusal a retry does not fix — here an admission policy denying the worker StatefulSet — is
//! reported where a platform engineer looks: the runtime's `Ready=False`, reason `ApiError`, naming the
//! step and the API server's message, and a Warning event. The controller backs off instead of
//! hammering the API server, and proceeds by itself once the policy is gone.

use ferrofluid_e2e::cluster::{kubectl_in as get, wait_field};
use ferrofluid_e2e::controllers::Controllers;
use ferrofluid_e2e::http::api_requests;
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TestNamespace, kubectl, kubectl_ok, manifest};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// A ValidatingAdmissionPolicy (and its binding) denying StatefulSets in one namespace; removed on drop.
struct DenyWorkers(String);

impl DenyWorkers {
    fn new(ns: &str) -> Self {
        let name = format!("ferrofluid-test-deny-{ns}");
        let yaml = format!(
            r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["statefulsets"]
  validations:
    - expression: "false"
      message: "workers are not allowed in this namespace (test policy)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: {ns}}}
"#
        );
        kubectl_ok(&["apply", "-f", "-"], Some(&yaml)).expect("policy");
        Self(name)
    }
}

impl Drop for DenyWorkers {
    fn drop(&mut self) {
        let _ = kubectl(
            &["delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", &self.0, "--ignore-not-found"],
            None,
        );
    }
}

#[tokio::test]
async fn a_denied_write_is_in_ready_and_an_event_and_then_recovers() {
    let ns = TestNamespace::new("refused").expect("ns");
    let policy = DenyWorkers::new(&ns.name);
    // The policy is enforced once the API server has loaded it: a probe StatefulSet is refused.
    eventually("the policy enforced", T, || async {
        let probe = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: probe}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: x}]}\n";
        let out = kubectl(&["apply", "-n", &ns.name, "--dry-run=server", "-f", "-"], Some(probe))?;
        Ok((!out.ok && out.stderr.contains("test policy")).then_some(()))
    })
    .await;
    let ctl = Controllers::start(&ns.name).expect("controllers");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-dataset-with-secret.yaml"))).expect("ds");
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&manifest("seed-runtime.yaml"))).expect("runtime");

    let message = eventually("Ready=False, reason ApiError", T, || async {
        let rt: Value = serde_json::from_str(&get(&ns.name, &["get", "juicefsruntime", "jfsdemo", "-o", "json"])?)?;
        let ready = rt["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready").cloned();
        Ok(ready
            .filter(|c| c["status"] == "False" && c["reason"] == "ApiError")
            .and_then(|c| c["message"].as_str().map(str::to_string)))
    })
    .await;
    assert!(message.starts_with("worker statefulset:"), "the step is named: {message}");
    assert!(message.contains("test policy"), "the API server's reason is kept: {message}");
    let events = eventually("a Warning event ApiError", T, || async {
        let ev = get(&ns.name, &["get", "events", "--field-selector", "reason=ApiError", "-o", "json"])?;
        let v: Value = serde_json::from_str(&ev)?;
        let notes: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "Warning")
            .filter_map(|e| e["note"].as_str().or(e["message"].as_str()).map(str::to_string))
            .collect();
        Ok((!notes.is_empty()).then_some(notes))
    })
    .await;
    assert!(events.iter().any(|n| n.contains("worker statefulset")), "{events:?}");

    // Retries back off: over 20 s the denied apply is attempted a handful of times, not hundreds.
    let addr = ctl.runtime.http.expect("runtime http");
    let attempts = || {
        let all = api_requests(addr).expect("metrics");
        all.get(&("patch".to_string(), "statefulsets".to_string())).copied().unwrap_or(0.0)
    };
    let before = attempts();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after = attempts();
    assert!(after - before <= 8.0, "{} denied applies in 20 s: no backoff", after - before);

    // The policy goes: the runtime proceeds by itself and the condition clears.
    drop(policy);
    wait_field(&ns.name, "dataset", "jfsdemo", ".status.phase", "Bound", Duration::from_secs(360)).await;
    let reason = get(
        &ns.name,
        &["get", "juicefsruntime", "jfsdemo", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"],
    )
    .expect("reason");
    assert_ne!(reason, "ApiError");
}

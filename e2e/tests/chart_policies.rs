//! The chart's ValidatingAdmissionPolicies and per-namespace Secret grant, enforced by the real
//! apiserver against the chart's own ServiceAccount tokens.
//!
//! - csi-plugin: RBAC lets it patch any Node; the policy narrows that to the Node its own pod runs on
//!   (read from its pod-bound token) and there to `fluid.io/f-*` labels. Its own FUSE label works;
//!   another Node, a taint, another label or an annotation on its own is denied; a token bound to no
//!   pod may change nothing.
//! - runtimePolicy: hostPath volumes, images outside the allow-list and cache paths outside the
//!   allowed directories are refused at admission, naming the field; an allowed runtime is accepted.
//! - datasetController.checkSecrets: `get secrets` only in the listed namespaces.

use anyhow::{Context, Result, ensure};
use ferrofluid_e2e::chart::{self, of_kinds, render};
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::{TempDir, TestNamespace, kubectl, kubectl_ok};
use std::path::Path;
use std::time::Duration;

const RBAC_KINDS: [&str; 5] = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];
const POLICY_KINDS: [&str; 2] = ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"];

/// Cluster-scoped objects of one test release, removed on drop.
struct Release(String);

impl Drop for Release {
    fn drop(&mut self) {
        let selector = format!("app.kubernetes.io/instance={}", self.0);
        let kinds = "clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding";
        let _ = kubectl(&["delete", kinds, "-l", &selector, "--ignore-not-found"], None);
    }
}

/// Removes the test's labels, annotation and taint from a node on drop, whatever the outcome.
struct NodeCleanup(&'static str, String);

impl Drop for NodeCleanup {
    fn drop(&mut self) {
        let (node, label) = (self.0, &self.1);
        let _ = kubectl(&["label", "node", node, &format!("{label}-"), "ferrofluid-test-other-"], None);
        let _ = kubectl(&["annotate", "node", node, "ferrofluid-test-"], None);
        let _ = kubectl(&["taint", "node", node, "ferrofluid-test-"], None);
    }
}

/// kubectl as the holder of `kubeconfig`; whether it succeeded, and its stderr.
fn as_user(kubeconfig: &Path, args: &[&str]) -> Result<(bool, String)> {
    let out = std::process::Command::new(std::env::var("FERROFLUID_KUBECTL").unwrap_or_else(|_| "kubectl".into()))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .context("kubectl")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// A policy that was just created takes a moment to reach the apiserver's admission: wait until a
/// request it must deny is denied.
async fn wait_enforced(what: &str, mut denied: impl FnMut() -> Result<bool>) {
    eventually(what, Duration::from_secs(60), || {
        let d = denied();
        async move { Ok(d?.then_some(())) }
    })
    .await
}

#[tokio::test]
async fn csi_plugin_may_only_set_fuse_labels_on_its_own_node() -> Result<()> {
    let ns = TestNamespace::new("node-policy")?;
    let release = Release(format!("np{}", std::process::id()));
    let work = TempDir::new("ferrofluid-node-policy")?;
    let docs = render(&release.0, &ns.name, &[])?;
    chart::apply(&of_kinds(&docs, &RBAC_KINDS), "node-policy-test")?;
    chart::apply(&of_kinds(&docs, &POLICY_KINDS), "node-policy-test")?;
    let sa = format!("{}-ferrofluid-csi-plugin", release.0);

    // A pod of the plugin's ServiceAccount on node-1 (kwok "runs" it); its bound token names node-1.
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: csi-plugin-probe}}\nspec:\n  serviceAccountName: {sa}\n  nodeName: node-1\n  containers: [{{name: c, image: busybox}}]\n"
    );
    kubectl_ok(&["apply", "-n", &ns.name, "-f", "-"], Some(&pod))?;
    let bound = chart::token_kubeconfig(
        &work.0,
        "csi-bound",
        &chart::service_account_token(&sa, &ns.name, Some("csi-plugin-probe"))?,
    )?;
    let unbound = chart::token_kubeconfig(&work.0, "csi-unbound", &chart::service_account_token(&sa, &ns.name, None)?)?;

    let label = format!("fluid.io/f-{}-probe", ns.name);
    let _cleanup = NodeCleanup("node-1", label.clone());
    let _cleanup2 = NodeCleanup("node-2", label.clone());
    let set = format!("{label}=true");
    let unset = format!("{label}-");

    // The policy is in force once a request it forbids is refused.
    wait_enforced("the node policy denies another node", || {
        let (ok, err) = as_user(&bound, &["label", "node", "node-2", &set])?;
        Ok(!ok && err.contains("ValidatingAdmissionPolicy"))
    })
    .await;

    let denied = |args: &[&str], why: &str| -> Result<()> {
        let (ok, err) = as_user(&bound, args)?;
        ensure!(!ok, "allowed: kubectl {}", args.join(" "));
        ensure!(err.contains(why), "kubectl {}: refused for another reason: {err}", args.join(" "));
        Ok(())
    };
    denied(&["label", "node", "node-2", &set], "only the Node its pod runs on")?;
    denied(&["taint", "node", "node-1", "ferrofluid-test=x:NoSchedule"], "spec")?;
    denied(&["label", "node", "node-1", "ferrofluid-test-other=x"], "only fluid.io/f-*")?;
    denied(&["label", "node", "node-1", "--overwrite", "kubernetes.io/hostname=elsewhere"], "only fluid.io/f-*")?;
    denied(&["annotate", "node", "node-1", "ferrofluid-test=x"], "annotations")?;
    let (ok, err) = as_user(&unbound, &["label", "node", "node-1", &set])?;
    ensure!(!ok && err.contains("its token names none"), "a token bound to no pod changed a node: {err}");

    // What the plugin does: its own FUSE label, set and removed.
    let (ok, err) = as_user(&bound, &["label", "node", "node-1", &set])?;
    ensure!(ok, "its own FUSE label was refused: {err}");
    let labels = kubectl_ok(&["get", "node", "node-1", "-o", "jsonpath={.metadata.labels}"], None)?;
    ensure!(labels.contains(&label), "label not set: {labels}");
    let (ok, err) = as_user(&bound, &["label", "node", "node-1", &unset])?;
    ensure!(ok, "removing its own FUSE label was refused: {err}");
    let spec = kubectl_ok(&["get", "node", "node-1", "-o", "jsonpath={.spec.taints}"], None)?;
    ensure!(!spec.contains("ferrofluid-test"), "a taint got through: {spec}");
    Ok(())
}

/// An edit of the runtime manifest.
type Edit<'a> = &'a dyn Fn(String) -> String;

const RUNTIME: &str = r#"apiVersion: data.fluid.io/v1alpha1
kind: JuiceFSRuntime
metadata:
  name: NAME
spec:
  replicas: 1
  tieredstore:
    levels:
      - mediumtype: MEM
        path: /dev/shm
        quota: 1024
"#;

#[tokio::test]
async fn runtime_policy_refuses_host_paths_and_foreign_images() -> Result<()> {
    let ns = TestNamespace::new("rt-policy")?;
    let release = Release(format!("rp{}", std::process::id()));
    let docs = render(
        &release.0,
        &ns.name,
        &[
            "--set",
            "runtimePolicy.enabled=true",
            "--set",
            "runtimePolicy.allowedImages={registry.example.com/juicefs/}",
            "--set",
            "runtimePolicy.allowedCachePaths={/dev/shm,/var/jfsCache}",
        ],
    )?;
    let policies = of_kinds(&docs, &POLICY_KINDS);
    ensure!(policies.len() == 4, "expected the node and runtime policies with bindings, got {}", policies.len());
    // Only the runtime policy: this test needs no csi-plugin.
    let runtime_policy: Vec<_> = policies
        .into_iter()
        .filter(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("runtime-policy")))
        .collect();
    chart::apply(&runtime_policy, "runtime-policy-test")?;

    let apply = |name: &str, edit: Edit| -> Result<(bool, String)> {
        let doc = edit(RUNTIME.replace("NAME", name));
        let out = kubectl(&["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"], Some(&doc))?;
        Ok((out.ok, out.stderr))
    };
    let host_path =
        |s: String| s.replace("spec:\n", "spec:\n  volumes:\n    - name: etc\n      hostPath: {path: /etc}\n");
    wait_enforced("the runtime policy refuses hostPath volumes", || Ok(!apply("hp", &host_path)?.0)).await;

    let cases: [(&str, Edit, &[&str]); 5] = [
        ("hostPath volume", &host_path, &["spec.volumes", "hostPath"]),
        (
            "fuse image",
            &|s: String| s.replace("spec:\n", "spec:\n  fuse:\n    image: evil.example.com/root\n"),
            &["spec.fuse.image", "registry.example.com/juicefs/"],
        ),
        (
            "juicefsVersion image",
            &|s: String| {
                s.replace("spec:\n", "spec:\n  juicefsVersion:\n    image: docker.io/juicedata/juicefs-fuse\n")
            },
            &["spec.juicefsVersion.image"],
        ),
        (
            "cache path",
            &|s: String| s.replace("path: /dev/shm", "path: /etc/cron.d"),
            &["spec.tieredstore.levels[].path", "/var/jfsCache"],
        ),
        (
            "one of two cache paths",
            &|s: String| s.replace("path: /dev/shm", "path: /dev/shm:/root/.ssh"),
            &["spec.tieredstore.levels[].path"],
        ),
    ];
    for (what, edit, expect) in cases {
        let (ok, err) = apply("bad", edit)?;
        ensure!(!ok, "{what}: accepted");
        for e in expect {
            ensure!(err.contains(e), "{what}: error lacks {e:?}: {err}");
        }
    }
    for (what, edit) in [
        ("the plain runtime", &(|s: String| s) as Edit),
        ("an allowed image", &|s: String| {
            s.replace("spec:\n", "spec:\n  worker:\n    image: registry.example.com/juicefs/fuse\n")
        }),
        ("a subdirectory of an allowed cache path", &|s: String| s.replace("path: /dev/shm", "path: /var/jfsCache/a")),
        ("an emptyDir level anywhere", &|s: String| {
            s.replace("path: /dev/shm", "path: /anywhere\n        volumeType: emptyDir")
        }),
    ] {
        let (ok, err) = apply("good", edit)?;
        ensure!(ok, "{what} refused: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn secret_reads_are_granted_only_where_asked() -> Result<()> {
    let ns = TestNamespace::new("secret-grant")?;
    let allowed = TestNamespace::new("secret-allowed")?;
    let other = TestNamespace::new("secret-other")?;
    let release = Release(format!("sg{}", std::process::id()));
    let sa = format!("system:serviceaccount:{}:{}-ferrofluid-dataset-controller", ns.name, release.0);
    let can_get = |namespace: &str| -> Result<bool> {
        let out = kubectl(&["auth", "can-i", "get", "secrets", "-n", namespace, &format!("--as={sa}")], None)?;
        Ok(out.stdout.trim() == "yes")
    };

    // Default: no Secret access anywhere.
    chart::apply(&of_kinds(&render(&release.0, &ns.name, &[])?, &RBAC_KINDS), "secret-grant-test")?;
    for n in [&ns.name, &allowed.name, &other.name] {
        ensure!(!can_get(n)?, "the default chart lets the dataset-controller read Secrets in {n}");
    }
    // Enabled for one namespace: there, and nowhere else.
    let list = format!("datasetController.checkSecrets.namespaces={{{}}}", allowed.name);
    let docs = render(&release.0, &ns.name, &["--set", "datasetController.checkSecrets.enabled=true", "--set", &list])?;
    let deployment = docs
        .iter()
        .find(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("dataset-controller"))
        })
        .context("dataset-controller Deployment")?;
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    ensure!(args.contains("--check-secrets=true"), "{args}");
    chart::apply(&of_kinds(&docs, &RBAC_KINDS), "secret-grant-test")?;
    ensure!(can_get(&allowed.name)?, "not granted in the listed namespace");
    for n in [&ns.name, &other.name] {
        ensure!(!can_get(n)?, "granted in {n}, which is not listed");
    }
    Ok(())
}

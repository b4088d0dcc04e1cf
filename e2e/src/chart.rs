//! The Helm chart as the cluster tests use it: rendered with `helm template`, and ServiceAccount
//! tokens of its components as kubeconfigs of their own.

use crate::{kubeconfig, kubectl_ok, tool_path};
use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/ferrofluid")
}

/// `helm template` of the chart as a list of objects.
pub fn render(release: &str, namespace: &str, extra: &[&str]) -> Result<Vec<Value>> {
    let out = Command::new(tool_path("helm"))
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace])
        .args(extra)
        .output()
        .context("running helm template")?;
    ensure!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).context("parsing the rendered chart")?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

/// Applies `docs` server-side (as one List) with the field manager `manager`.
pub fn apply(docs: &[Value], manager: &str) -> Result<()> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
    kubectl_ok(&["apply", "--server-side", "--field-manager", manager, "-f", "-"], Some(&list.to_string()))?;
    Ok(())
}

/// The rendered objects of the given kinds.
pub fn of_kinds(docs: &[Value], kinds: &[&str]) -> Vec<Value> {
    docs.iter().filter(|d| d["kind"].as_str().is_some_and(|k| kinds.contains(&k))).cloned().collect()
}

fn cluster_of_admin_kubeconfig() -> Result<Value> {
    let path = kubeconfig();
    let kc = kube::config::Kubeconfig::read_from(&path)?;
    let cluster =
        kc.clusters.first().and_then(|c| c.cluster.clone()).context("the admin kubeconfig names no cluster")?;
    let mut out = json!({ "server": cluster.server.context("cluster without server")? });
    if let Some(ca) = cluster.certificate_authority {
        let ca = PathBuf::from(ca);
        let ca = if ca.is_absolute() { ca } else { path.parent().unwrap_or(Path::new(".")).join(ca) };
        out["certificate-authority"] = ca.display().to_string().into();
    } else if let Some(data) = cluster.certificate_authority_data {
        out["certificate-authority-data"] = data.into();
    }
    Ok(out)
}

/// A fresh token of ServiceAccount `sa` in `ns`; bound to pod `pod` when given (the token then names the
/// pod's node, as kubelet-issued tokens do).
pub fn service_account_token(sa: &str, ns: &str, pod: Option<&str>) -> Result<String> {
    let mut args = vec!["create", "token", sa, "-n", ns, "--duration", "1h"];
    if let Some(pod) = pod {
        args.extend(["--bound-object-kind", "Pod", "--bound-object-name", pod]);
    }
    Ok(kubectl_ok(&args, None)?.trim().to_string())
}

/// A kubeconfig (mode 0600) in `dir`, named after `user`, that authenticates with `token` only.
pub fn token_kubeconfig(dir: &Path, user: &str, token: &str) -> Result<PathBuf> {
    let kc = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster_of_admin_kubeconfig()?}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}],
        "current-context": user,
    });
    let path = dir.join(format!("{user}.kubeconfig"));
    let mut file = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.write(true).create(true).truncate(true).open(&path)?.write_all(serde_json::to_string(&kc)?.as_bytes())?;
    Ok(path)
}

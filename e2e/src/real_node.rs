//! The real-node rig (hack/real-node.sh: kubelet + containerd on this machine) as the real-node tests see
//! it: where kubelet and the FUSE clients keep their files, the chart installed with `helm install`, the
//! host's mount table, and commands run in pods through kubelet (`kubectl exec`).

use crate::{kubectl, kubectl_ok, tool_path};
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The rig `make test-real` brought up: `FERROFLUID_REAL_DIR` (hack/real-node.sh's state directory) and
/// `FERROFLUID_REAL_NODE` (the node's name).
pub struct Rig {
    pub dir: PathBuf,
    pub node: String,
}

impl Rig {
    pub fn from_env() -> Result<Self> {
        let dir = std::env::var_os("FERROFLUID_REAL_DIR")
            .map(PathBuf::from)
            .context("FERROFLUID_REAL_DIR is not set: run the real-node tests with `make test-real`")?;
        let node = std::env::var("FERROFLUID_REAL_NODE").unwrap_or_else(|_| "real-0".into());
        ensure!(dir.join("kubelet").is_dir(), "{} has no kubelet root: is the rig up?", dir.display());
        Ok(Self { dir, node })
    }

    /// kubelet's `--root-dir` (the chart's `kubeletRoot`).
    pub fn kubelet_root(&self) -> PathBuf {
        self.dir.join("kubelet")
    }

    /// The shared mount the FUSE clients mount under (the chart's `mountRoot`).
    pub fn mount_root(&self) -> PathBuf {
        self.dir.join("runtime-mnt")
    }

    /// Serves Service `ns/name`'s cluster IP on loopback (no kube-proxy here): `hack/real-node.sh proxy`.
    pub fn proxy_service(&self, ns: &str, name: &str) -> Result<()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/real-node.sh");
        let out = Command::new(script).args(["proxy", ns, name]).output()?;
        ensure!(out.status.success(), "real-node.sh proxy {ns} {name}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }
}

/// A Helm release of the chart, uninstalled (and its namespace deleted) on drop.
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    /// `helm install NAME charts/ferrofluid -n NAMESPACE --create-namespace ARGS… --wait`.
    pub fn install(name: &str, namespace: &str, args: &[&str]) -> Result<Self> {
        let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/ferrofluid");
        let out = Command::new(tool_path("helm"))
            .args(["install", name])
            .arg(&chart)
            .args(["-n", namespace, "--create-namespace", "--wait", "--timeout", "5m"])
            .arg("--kubeconfig")
            .arg(crate::kubeconfig())
            .args(args)
            .output()
            .context("running helm install")?;
        let release = Self { name: name.into(), namespace: namespace.into() };
        if !out.status.success() {
            let pods = kubectl(&["-n", namespace, "get", "pods", "-o", "wide"], None).map(|k| k.stdout);
            bail!("helm install failed: {}\npods:\n{}", String::from_utf8_lossy(&out.stderr), pods.unwrap_or_default());
        }
        Ok(release)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = Command::new(tool_path("helm"))
            .args(["uninstall", &self.name, "-n", &self.namespace, "--wait", "--timeout", "3m"])
            .arg("--kubeconfig")
            .arg(crate::kubeconfig())
            .output();
        let _ = kubectl(&["delete", "namespace", &self.namespace, "--ignore-not-found", "--timeout=120s"], None);
    }
}

/// One entry of the host's mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub target: String,
    pub fstype: String,
}

/// The host's mount table (`/proc/self/mountinfo`; the tests run in the host's mount namespace).
pub fn mounts() -> Result<Vec<Mount>> {
    Ok(parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// Mount point (field 5, octal escapes undone) and file-system type (first field after ` - `).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let target = head.split(' ').nth(4)?;
            let fstype = tail.split(' ').next()?;
            Some(Mount { target: unescape(target), fstype: fstype.to_string() })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Mounts whose mount point is `dir` or below it.
pub fn mounts_under(dir: &Path) -> Result<Vec<Mount>> {
    let dir = dir.to_string_lossy();
    Ok(mounts()?
        .into_iter()
        .filter(|m| m.target == dir || m.target.starts_with(&format!("{}/", dir.trim_end_matches('/'))))
        .collect())
}

/// `kubectl exec` in a pod's first container (kubelet and containerd run it): its stdout.
pub fn exec(ns: &str, pod: &str, argv: &[&str]) -> Result<String> {
    let mut args = vec!["--request-timeout=60s", "-n", ns, "exec", pod, "--"];
    args.extend_from_slice(argv);
    kubectl_ok(&args, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_mount_points_and_types() {
        let text = "36 25 0:32 / /runtime-mnt rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    97 36 0:52 / /runtime-mnt/juicefs/a\\040b/juicefs-fuse rw shared:1 - fuse.juicefs JuiceFS:x rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(
            m,
            vec![
                Mount { target: "/runtime-mnt".into(), fstype: "ext4".into() },
                Mount { target: "/runtime-mnt/juicefs/a b/juicefs-fuse".into(), fstype: "fuse.juicefs".into() },
            ]
        );
    }
}

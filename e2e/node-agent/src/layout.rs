//! Where a node agent keeps things: the node's own directory (logs, status records, CSI socket) and the
//! kubelet root inside the node's mount namespace (pod volume dirs, CSI staging paths), laid out as kubelet does.

use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct NodeLayout {
    /// `.local/nodes/<node>`: visible from the host and from the node's namespace alike.
    pub node_dir: PathBuf,
    /// Kubelet root as the node's processes see it (`/var/lib/kubelet` inside the namespace).
    pub kubelet_root: PathBuf,
}

impl NodeLayout {
    pub fn new(node_dir: impl Into<PathBuf>, kubelet_root: impl Into<PathBuf>) -> Self {
        Self { node_dir: node_dir.into(), kubelet_root: kubelet_root.into() }
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.node_dir.join("logs")
    }

    pub fn status_dir(&self) -> PathBuf {
        self.node_dir.join("status")
    }

    /// Written once the agent has listed its node's pods; removed when it exits.
    pub fn ready_file(&self) -> PathBuf {
        self.node_dir.join("agent.ready")
    }

    pub fn default_csi_socket(&self) -> PathBuf {
        self.node_dir.join("csi").join("csi.sock")
    }

    /// `logs/<ns>_<pod>_<container>.log`: the container's stdout and stderr.
    pub fn container_log(&self, namespace: &str, pod: &str, container: &str) -> PathBuf {
        self.logs_dir().join(format!("{namespace}_{pod}_{container}.log"))
    }

    /// `status/<ns>_<pod>_<container>.json`: the container's last known state (see `status.rs`).
    pub fn container_status(&self, namespace: &str, pod: &str, container: &str) -> PathBuf {
        self.status_dir().join(format!("{namespace}_{pod}_{container}.json"))
    }

    /// `status/<ns>_<pod>.json`: what the agent decided and did for a pod.
    pub fn pod_status(&self, namespace: &str, pod: &str) -> PathBuf {
        self.status_dir().join(format!("{namespace}_{pod}.json"))
    }

    /// `<kubelet-root>/pods/<uid>`.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.kubelet_root.join("pods").join(uid)
    }

    /// `<kubelet-root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>`.
    pub fn empty_dir(&self, uid: &str, volume: &str) -> PathBuf {
        self.pod_dir(uid).join("volumes").join("kubernetes.io~empty-dir").join(volume)
    }

    /// `<kubelet-root>/pods/<uid>/containers/<container>/termination-log`: the file a data-operation
    /// container's `terminationMessagePath` is bound to (kubelet's is in the same directory).
    pub fn termination_log(&self, uid: &str, container: &str) -> PathBuf {
        self.pod_dir(uid).join("containers").join(container).join("termination-log")
    }

    /// NodePublishVolume target: `<kubelet-root>/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`.
    pub fn csi_target(&self, uid: &str, pv: &str) -> PathBuf {
        self.pod_dir(uid).join("volumes").join("kubernetes.io~csi").join(pv).join("mount")
    }

    /// NodeStageVolume staging path:
    /// `<kubelet-root>/plugins/kubernetes.io/csi/<driver>/<sha256(volumeHandle)>/globalmount`.
    pub fn csi_staging(&self, driver: &str, volume_handle: &str) -> PathBuf {
        self.kubelet_root
            .join("plugins/kubernetes.io/csi")
            .join(driver)
            .join(sha256_hex(volume_handle))
            .join("globalmount")
    }
}

fn sha256_hex(input: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths() {
        let l = NodeLayout::new("/x/.local/nodes/node-1", "/var/lib/kubelet");
        assert_eq!(
            l.csi_target("u-1", "default-jfsdemo"),
            PathBuf::from("/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~csi/default-jfsdemo/mount")
        );
        // sha256("default-jfsdemo"), as `printf default-jfsdemo | sha256sum` prints it.
        assert_eq!(
            l.csi_staging("fuse.csi.fluid.io", "default-jfsdemo"),
            PathBuf::from(format!(
                "/var/lib/kubelet/plugins/kubernetes.io/csi/fuse.csi.fluid.io/{}/globalmount",
                "53ff059fde4e91de2ee50b07aa9c5f1a748d2c30dae2944426488852c7600fba"
            ))
        );
        assert_eq!(l.container_log("ns", "p", "c"), PathBuf::from("/x/.local/nodes/node-1/logs/ns_p_c.log"));
        assert_eq!(
            l.empty_dir("u-1", "cache"),
            PathBuf::from("/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~empty-dir/cache")
        );
    }
}

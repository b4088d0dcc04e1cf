//! Pod volumes on an agent-backed node. hostPath and emptyDir are plain directories (containers run on
//! the node namespace's own filesystem); PVCs bound to a `fuse.csi.fluid.io` PV are staged and
//! published through the CSI plugin as kubelet does, and unpublished/unstaged when the pod goes.

use crate::csi::{self, CsiClient};
use crate::layout::NodeLayout;
use csi_plugin::proto::{NodePublishVolumeRequest, NodeStageVolumeRequest, VolumeCapability};
use ferrofluid_api::keys::CSI_DRIVER_NAME;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret, SecretReference};
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::Api;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use tokio_util::sync::CancellationToken;

/// A CSI volume one pod uses, with what kubelet sends for it.
#[derive(Clone, Debug, PartialEq)]
pub struct CsiVolume {
    pub pv: String,
    pub handle: String,
    pub attributes: BTreeMap<String, String>,
    pub readonly: bool,
    pub access_modes: Vec<String>,
    pub fs_type: String,
    pub mount_options: Vec<String>,
    pub stage_secret: Option<SecretReference>,
    pub publish_secret: Option<SecretReference>,
}

/// The CSI volume behind a PV, when the PV belongs to ferrofluid's driver. `pod_readonly` is the pod
/// volume's `readOnly`; a PV offering only `ReadOnlyMany` is read-only too.
pub fn csi_volume(pv: &PersistentVolume, pod_readonly: bool) -> Option<CsiVolume> {
    let spec = pv.spec.as_ref()?;
    let src = spec.csi.as_ref()?;
    if src.driver != CSI_DRIVER_NAME {
        return None;
    }
    let access_modes = spec.access_modes.clone().unwrap_or_default();
    let only_rox = !access_modes.is_empty() && access_modes.iter().all(|m| m == "ReadOnlyMany");
    Some(CsiVolume {
        pv: pv.metadata.name.clone().unwrap_or_default(),
        handle: src.volume_handle.clone(),
        attributes: src.volume_attributes.clone().unwrap_or_default(),
        readonly: pod_readonly || src.read_only == Some(true) || only_rox,
        access_modes,
        fs_type: src.fs_type.clone().unwrap_or_default(),
        mount_options: spec.mount_options.clone().unwrap_or_default(),
        stage_secret: src.node_stage_secret_ref.clone(),
        publish_secret: src.node_publish_secret_ref.clone(),
    })
}

/// The pod's `fuse.csi.fluid.io` volumes. Fails (to be retried) while a claim is not bound yet.
pub async fn resolve(client: &kube::Client, pod: &Pod) -> Result<Vec<CsiVolume>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let mut out = Vec::new();
    for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(claim) = &vol.persistent_volume_claim else { continue };
        let pvc = pvcs.get(&claim.claim_name).await.map_err(|e| format!("reading claim {}: {e}", claim.claim_name))?;
        let Some(pv_name) = pvc.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|n| !n.is_empty()) else {
            return Err(format!("claim {} is not bound to a volume yet", claim.claim_name));
        };
        let pv = pvs.get(&pv_name).await.map_err(|e| format!("reading volume {pv_name}: {e}"))?;
        if let Some(v) = csi_volume(&pv, claim.read_only == Some(true)) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Stages and publishes CSI volumes for the pods of one node, keeping track of which pods use
/// which staged volume so a volume is unstaged only after its last pod.
pub struct CsiVolumes {
    client: CsiClient,
    kube: kube::Client,
    layout: NodeLayout,
    stage_supported: OnceCell<bool>,
    pod_info_on_mount: OnceCell<bool>,
    /// volume handle → uids of the pods that use the staged volume.
    staged: Mutex<HashMap<String, HashSet<String>>>,
}

impl CsiVolumes {
    pub fn new(client: CsiClient, kube: kube::Client, layout: NodeLayout) -> Self {
        Self {
            client,
            kube,
            layout,
            stage_supported: OnceCell::new(),
            pod_info_on_mount: OnceCell::new(),
            staged: Mutex::new(HashMap::new()),
        }
    }

    pub fn staging_path(&self, vol: &CsiVolume) -> PathBuf {
        self.layout.csi_staging(CSI_DRIVER_NAME, &vol.handle)
    }

    pub fn target_path(&self, uid: &str, vol: &CsiVolume) -> PathBuf {
        self.layout.csi_target(uid, &vol.pv)
    }

    /// Stages (first user) and publishes `vol` for `pod`, retrying with backoff until it succeeds or
    /// `cancel` fires. Returns false when cancelled.
    pub async fn setup(&self, pod: &Pod, vol: &CsiVolume, cancel: &CancellationToken) -> bool {
        let mut delay = Duration::from_millis(500);
        loop {
            match self.try_setup(pod, vol).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::info!(pv = %vol.pv, pod = ?pod.metadata.name, error = %e, retry_in = ?delay, "volume not ready");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => return false,
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_setup(&self, pod: &Pod, vol: &CsiVolume) -> Result<(), String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let capability = csi::capability(&vol.access_modes, &vol.fs_type, &vol.mount_options);
        let staging = self.staging_path(vol);
        let stage = *self
            .stage_supported
            .get_or_try_init(|| self.client.supports_stage())
            .await
            .map_err(|s| describe("NodeGetCapabilities", &s))?;
        if stage {
            let mut staged = self.staged.lock().await;
            if !staged.contains_key(&vol.handle) {
                mkdir(&staging)?;
                let req = NodeStageVolumeRequest {
                    volume_id: vol.handle.clone(),
                    publish_context: Default::default(),
                    staging_target_path: staging.display().to_string(),
                    volume_capability: Some(capability.clone()),
                    secrets: self.secrets(vol.stage_secret.as_ref()).await?,
                    volume_context: vol.attributes.clone().into_iter().collect(),
                };
                self.client.stage(req).await.map_err(|s| describe("NodeStageVolume", &s))?;
                tracing::info!(pv = %vol.pv, staging = %staging.display(), "volume staged");
            }
            staged.entry(vol.handle.clone()).or_default().insert(uid.clone());
        }
        let target = self.target_path(&uid, vol);
        if let Some(parent) = target.parent() {
            mkdir(parent)?;
        }
        let req = self.publish_request(pod, vol, capability, if stage { Some(staging) } else { None }).await?;
        self.client.publish(req).await.map_err(|s| describe("NodePublishVolume", &s))?;
        tracing::info!(pv = %vol.pv, target = %target.display(), "volume published");
        Ok(())
    }

    async fn publish_request(
        &self,
        pod: &Pod,
        vol: &CsiVolume,
        capability: VolumeCapability,
        staging: Option<PathBuf>,
    ) -> Result<NodePublishVolumeRequest, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut context: HashMap<String, String> = vol.attributes.clone().into_iter().collect();
        if self.pod_info_on_mount().await {
            let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
            context.insert("csi.storage.k8s.io/pod.name".into(), pod.metadata.name.clone().unwrap_or_default());
            context
                .insert("csi.storage.k8s.io/pod.namespace".into(), pod.metadata.namespace.clone().unwrap_or_default());
            context.insert("csi.storage.k8s.io/pod.uid".into(), uid.clone());
            context.insert("csi.storage.k8s.io/serviceAccount.name".into(), sa);
            context.insert("csi.storage.k8s.io/ephemeral".into(), "false".into());
        }
        Ok(NodePublishVolumeRequest {
            volume_id: vol.handle.clone(),
            publish_context: Default::default(),
            staging_target_path: staging.map(|p| p.display().to_string()).unwrap_or_default(),
            target_path: self.target_path(&uid, vol).display().to_string(),
            volume_capability: Some(capability),
            readonly: vol.readonly,
            secrets: self.secrets(vol.publish_secret.as_ref()).await?,
            volume_context: context,
        })
    }

    /// Whether the `CSIDriver` object asks for pod information in NodePublish's volume context.
    async fn pod_info_on_mount(&self) -> bool {
        *self
            .pod_info_on_mount
            .get_or_init(|| async {
                let drivers: Api<CSIDriver> = Api::all(self.kube.clone());
                match drivers.get_opt(CSI_DRIVER_NAME).await {
                    Ok(Some(d)) => d.spec.pod_info_on_mount == Some(true),
                    _ => false,
                }
            })
            .await
    }

    async fn secrets(&self, reference: Option<&SecretReference>) -> Result<HashMap<String, String>, String> {
        let Some(r) = reference else { return Ok(HashMap::new()) };
        let name = r.name.clone().unwrap_or_default();
        let ns = r.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(self.kube.clone(), &ns);
        let secret = api.get(&name).await.map_err(|e| format!("reading secret {ns}/{name}: {e}"))?;
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect())
    }

    /// Unpublishes `vol` from the pod, then unstages it when no other pod on the node uses it.
    /// Retries a few times (the plugin may be restarting); gives up after `attempts`.
    pub async fn teardown(&self, uid: &str, vol: &CsiVolume, attempts: u32) -> Result<(), String> {
        let target = self.target_path(uid, vol);
        retry(attempts, || async {
            self.client
                .unpublish(&vol.handle, &target.display().to_string())
                .await
                .map_err(|s| describe("NodeUnpublishVolume", &s))
        })
        .await?;
        tracing::info!(pv = %vol.pv, target = %target.display(), "volume unpublished");
        // kubelet removes the per-volume directory once unpublished; never recursively (a mount
        // that is still there must not be emptied).
        if let Some(parent) = target.parent() {
            let _ = std::fs::remove_dir(&target);
            let _ = std::fs::remove_dir(parent);
        }
        let mut staged = self.staged.lock().await;
        let last = match staged.get_mut(&vol.handle) {
            Some(users) => {
                users.remove(uid);
                users.is_empty()
            }
            None => false,
        };
        if last {
            let staging = self.staging_path(vol);
            retry(attempts, || async {
                self.client
                    .unstage(&vol.handle, &staging.display().to_string())
                    .await
                    .map_err(|s| describe("NodeUnstageVolume", &s))
            })
            .await?;
            staged.remove(&vol.handle);
            let _ = std::fs::remove_dir(&staging);
            if let Some(parent) = staging.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            tracing::info!(pv = %vol.pv, "volume unstaged");
        }
        Ok(())
    }
}

async fn retry<F, Fut>(attempts: u32, mut call: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut delay = Duration::from_millis(200);
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match call().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Err(last)
}

fn describe(call: &str, status: &tonic::Status) -> String {
    let kind = if csi::transient(status) { "not ready" } else { "refused" };
    format!("{call} {kind}: {:?}: {}", status.code(), status.message())
}

fn mkdir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// Prepares hostPath and emptyDir volumes: hostPath `DirectoryOrCreate` (and untyped paths that do not
/// exist yet, when the pod is one the agent runs) are created; emptyDirs get a directory under the pod dir.
pub fn prepare_local(layout: &NodeLayout, pod: &Pod) -> Result<(), String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(hp) = &vol.host_path {
            let path = Path::new(&hp.path);
            match hp.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => mkdir(path)?,
                "Directory" if !path.is_dir() => return Err(format!("hostPath {} is not a directory", hp.path)),
                "File" | "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                    return Err(format!("hostPath {} does not exist", hp.path));
                }
                _ => {}
            }
        }
        if vol.empty_dir.is_some() {
            mkdir(&layout.empty_dir(&uid, &vol.name))?;
        }
    }
    Ok(())
}

/// Removes the pod's directory under the kubelet root, unless something is still mounted beneath it.
pub fn remove_pod_dir(layout: &NodeLayout, uid: &str) {
    let dir = layout.pod_dir(uid);
    if !dir.exists() {
        return;
    }
    match mounts_under(&dir) {
        Ok(m) if m.is_empty() => {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove pod directory");
            }
        }
        Ok(m) => tracing::warn!(dir = %dir.display(), mounts = ?m, "pod directory still has mounts; left in place"),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read mountinfo; pod directory left in place")
        }
    }
}

/// Mount points at or below `dir`, from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(driver: &str, modes: &[&str], ro: Option<bool>) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "default-jfsdemo"},
            "spec": {
                "accessModes": modes,
                "mountOptions": ["allow_other"],
                "csi": {
                    "driver": driver,
                    "volumeHandle": "default-jfsdemo",
                    "readOnly": ro,
                    "volumeAttributes": {"fluid_path": "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", "mount_type": "JuiceFS"}
                }
            }
        }))
        .expect("pv")
    }

    #[test]
    fn only_fluid_volumes_and_readonly_rules() {
        assert_eq!(csi_volume(&pv("other.csi", &["ReadWriteMany"], None), false), None);
        let v = csi_volume(&pv(CSI_DRIVER_NAME, &["ReadWriteMany"], None), false).expect("fluid volume");
        assert_eq!(v.handle, "default-jfsdemo");
        assert_eq!(v.attributes.get("mount_type").map(String::as_str), Some("JuiceFS"));
        assert_eq!(v.mount_options, vec!["allow_other".to_string()]);
        assert!(!v.readonly);
        assert!(csi_volume(&pv(CSI_DRIVER_NAME, &["ReadWriteMany"], None), true).expect("v").readonly);
        assert!(csi_volume(&pv(CSI_DRIVER_NAME, &["ReadWriteMany"], Some(true)), false).expect("v").readonly);
        assert!(csi_volume(&pv(CSI_DRIVER_NAME, &["ReadOnlyMany"], None), false).expect("v").readonly);
    }
}

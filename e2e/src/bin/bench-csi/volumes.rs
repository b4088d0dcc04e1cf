//! The benchmark's volumes and the CSI requests kubelet sends for them. Every volume is a dataset of
//! its own (runtime namespace `ffbench`, runtime `<name>`), so it has its own `fluid_path`, FUSE node
//! label and state record; its `fluid_path` is a bind of one shared JuiceFS mount, which the plugin sees
//! as a `fuse.juicefs` mount like any other.

use crate::procs::Plugin;
use anyhow::{Context, Result};
use csi_plugin::proto::volume_capability::access_mode::Mode;
use csi_plugin::proto::volume_capability::{AccessMode, AccessType, MountVolume};
use csi_plugin::proto::{
    NodePublishVolumeRequest, NodeStageVolumeRequest, NodeUnpublishVolumeRequest, NodeUnstageVolumeRequest,
    VolumeCapability,
};
use ferrofluid_api::keys::{self, DatasetKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Runtime namespace of every benchmark volume (the node labels are `fluid.io/f-ffbench-…`).
pub const NAMESPACE: &str = "ffbench";

pub struct Volume {
    pub id: String,
    pub fluid_path: PathBuf,
    pub staging: PathBuf,
    context: HashMap<String, String>,
}

impl Volume {
    pub fn new(plugin: &Plugin, name: &str) -> Self {
        let key = DatasetKey::new(NAMESPACE, name);
        let fluid_path = PathBuf::from(key.fuse_mount_path(&plugin.mount_root.display().to_string()));
        let context = HashMap::from([
            (keys::ATTR_FLUID_PATH.to_string(), fluid_path.display().to_string()),
            (keys::ATTR_MOUNT_TYPE.to_string(), keys::MOUNT_TYPE_JUICEFS.to_string()),
            (keys::ATTR_RUNTIME_NAMESPACE.to_string(), NAMESPACE.to_string()),
            (keys::ATTR_RUNTIME_NAME.to_string(), name.to_string()),
        ]);
        let id = key.pv_name();
        Self { staging: plugin.staging(&id), id, fluid_path, context }
    }

    /// Makes `fluid_path` a bind of the JuiceFS mount at `source` (what a FUSE pod's mount would be).
    pub fn bind_fuse(&self, source: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.fluid_path)?;
        rustix::mount::mount_bind(source, &self.fluid_path)
            .with_context(|| format!("binding {} to {}", source.display(), self.fluid_path.display()))
    }

    pub fn stage(&self) -> NodeStageVolumeRequest {
        NodeStageVolumeRequest {
            volume_id: self.id.clone(),
            staging_target_path: self.staging.display().to_string(),
            volume_capability: Some(capability()),
            volume_context: self.context.clone(),
            ..Default::default()
        }
    }

    pub fn unstage(&self) -> NodeUnstageVolumeRequest {
        NodeUnstageVolumeRequest { volume_id: self.id.clone(), staging_target_path: self.staging.display().to_string() }
    }

    pub fn publish(&self, target: &Path) -> NodePublishVolumeRequest {
        NodePublishVolumeRequest {
            volume_id: self.id.clone(),
            staging_target_path: self.staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(capability()),
            volume_context: self.context.clone(),
            ..Default::default()
        }
    }

    pub fn unpublish(&self, target: &Path) -> NodeUnpublishVolumeRequest {
        NodeUnpublishVolumeRequest { volume_id: self.id.clone(), target_path: target.display().to_string() }
    }
}

/// ReadWriteMany, as the seed's dataset asks for.
fn capability() -> VolumeCapability {
    VolumeCapability {
        access_mode: Some(AccessMode { mode: Mode::MultiNodeMultiWriter as i32 }),
        access_type: Some(AccessType::Mount(MountVolume::default())),
    }
}

//! NodeStageVolume / NodeUnstageVolume: the node-level half. Staging labels the node so the FUSE
//! DaemonSet runs a FUSE pod here (and clears a dead FUSE mount out of its way); unstaging removes the
//! label when no publication of the volume is left and the runtime's clean policy allows it.

use crate::driver::Driver;
use crate::error::{CsiError, Result};
use crate::mounter::{self, Health};
use crate::proto::{
    NodeStageVolumeRequest, NodeStageVolumeResponse, NodeUnstageVolumeRequest, NodeUnstageVolumeResponse,
};
use crate::state::StageRecord;
use crate::{fluid_fd, fluid_path, fsops, mountinfo, node_label, paths, validate};

impl Driver {
    pub(crate) async fn stage(&self, req: NodeStageVolumeRequest) -> Result<NodeStageVolumeResponse> {
        let volume_id = validate::required(&req.volume_id, "volume id")?.to_string();
        validate::required(&req.staging_target_path, "staging target path")?;
        validate::capability(req.volume_capability.as_ref())?;
        let attrs = validate::parse_attrs(&req.volume_context)?;
        let staging = paths::resolve_under(&req.staging_target_path, &self.cfg.kubelet_root, "staging target path")?;
        let relative = fluid_path::check(&attrs.fluid_path, &self.cfg.mount_root, &attrs.runtime)?;
        let label_key = attrs.fuse_label_key()?;
        // No link on the way; the FUSE client may not have created the path yet, or may have died there.
        fluid_fd::open(&self.cfg.mount_root, &relative, &attrs.fluid_path)?;
        let fluid_path = fluid_fd::real_path(&self.cfg.mount_root, &relative)?;
        let _guard = self.locks.try_lock(format!("volume:{volume_id}"))?;

        if let Some(existing) = self.state.snapshot().staged.get(&volume_id)
            && (existing.staging_path != staging || existing.fluid_path != fluid_path)
        {
            return Err(CsiError::AlreadyExists(format!(
                "volume {volume_id} is already staged at {} for {}",
                existing.staging_path.display(),
                existing.fluid_path.display()
            )));
        }

        // A FUSE daemon that died leaves its mount point answering ENOTCONN; the next FUSE pod could not
        // mount over it cleanly, so clear it now.
        if self.fs.probe(&fluid_path, fsops::LIMIT).await == Health::NotConnected {
            let p = fluid_path.clone();
            let removed = tokio::task::spawn_blocking(move || mounter::unmount_all(&p))
                .await
                .map_err(|e| CsiError::io("joining the unmount task", std::io::Error::other(e)))?
                .map_err(|e| CsiError::io(format!("cleaning the dead FUSE mount at {}", fluid_path.display()), e))?;
            tracing::info!(fluid_path = %fluid_path.display(), removed, "cleaned a dead FUSE mount");
        }

        node_label::ensure(&self.client, &self.cfg.node_id, &label_key).await?;

        let record = StageRecord {
            volume_id: volume_id.clone(),
            staging_path: staging,
            fluid_path,
            runtime: Some(attrs.runtime),
            label_key,
        };
        self.state
            .update(|s| s.staged.insert(volume_id.clone(), record))
            .map_err(|e| CsiError::io("writing the driver state", e))?;
        tracing::info!(volume_id, "staged");
        Ok(NodeStageVolumeResponse {})
    }

    pub(crate) async fn unstage(&self, req: NodeUnstageVolumeRequest) -> Result<NodeUnstageVolumeResponse> {
        let volume_id = validate::required(&req.volume_id, "volume id")?.to_string();
        validate::required(&req.staging_target_path, "staging target path")?;
        paths::resolve_under(&req.staging_target_path, &self.cfg.kubelet_root, "staging target path")?;
        let _guard = self.locks.try_lock(format!("volume:{volume_id}"))?;

        let state = self.state.snapshot();
        let Some(record) = state.staged.get(&volume_id).cloned() else {
            tracing::info!(volume_id, "not staged: nothing to do");
            return Ok(NodeUnstageVolumeResponse {});
        };

        // Publications whose target is no longer mounted were torn down without us (kubelet orphan
        // cleanup); forget them instead of blocking forever.
        let table = mountinfo::read_self().map_err(|e| CsiError::io("reading /proc/self/mountinfo", e))?;
        let (live, gone): (Vec<_>, Vec<_>) = state
            .publications_of(&volume_id)
            .cloned()
            .partition(|p| mountinfo::top_mount_at(&table, &p.target).is_some());
        if !gone.is_empty() {
            self.state
                .update(|s| gone.iter().for_each(|p| drop(s.published.remove(&p.target))))
                .map_err(|e| CsiError::io("writing the driver state", e))?;
        }
        if let Some(p) = live.first() {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {volume_id} is still published at {} on this node; unpublish it first",
                p.target.display()
            )));
        }

        // Another staged volume served by the same FUSE client (a dataset that refers to this one, or the
        // one this refers to) still needs the label.
        let shared = state.label_needed_by_another(&volume_id, &record.label_key);
        let remove = match &record.runtime {
            _ if shared => false,
            Some(runtime) => node_label::removal_allowed(&self.client, runtime, &self.cfg.node_id).await?,
            // No runtime to ask: keep the default policy (OnRuntimeDeleted) and leave the label.
            None => false,
        };
        if remove {
            node_label::remove(&self.client, &self.cfg.node_id, &record.label_key).await?;
        }
        self.state.update(|s| s.staged.remove(&volume_id)).map_err(|e| CsiError::io("writing the driver state", e))?;
        tracing::info!(volume_id, label_removed = remove, "unstaged");
        Ok(NodeUnstageVolumeResponse {})
    }
}

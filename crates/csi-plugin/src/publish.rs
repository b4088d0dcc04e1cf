//! NodePublishVolume / NodeUnpublishVolume: the pod-level half. Publishing waits (bounded) for the FUSE
//! mount at `fluid_path`, then bind-mounts it, from an fd opened without following links, onto the pod's
//! target path; unpublishing removes every layer at the target, even over a dead FUSE, and the directory.

use crate::driver::Driver;
use crate::error::{CsiError, Result};
use crate::mounter::{self, Health};
use crate::proto::{
    NodePublishVolumeRequest, NodePublishVolumeResponse, NodeUnpublishVolumeRequest, NodeUnpublishVolumeResponse,
};
use crate::state::PublishRecord;
use crate::{fluid_fd, fluid_path, fsops, mountinfo, paths, validate};

/// Whether an existing publication at the target matches a new request.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing usable there: (re-)bind.
    Bind,
    /// Same volume, same mode, healthy: nothing to do.
    Done,
    /// Published with other arguments.
    Conflict(String),
}

/// Pure: compares a recorded publication with the request and the target's state.
pub fn compare(
    record: Option<&PublishRecord>,
    wanted: &PublishRecord,
    target_mounted: bool,
    target: &Health,
) -> Existing {
    match record {
        Some(r)
            if r.volume_id != wanted.volume_id
                || r.fluid_path != wanted.fluid_path
                || r.read_only != wanted.read_only =>
        {
            Existing::Conflict(format!(
                "{} is already published for volume {} ({}, read_only={})",
                r.target.display(),
                r.volume_id,
                r.fluid_path.display(),
                r.read_only
            ))
        }
        Some(_) if target_mounted && *target == Health::Ok => Existing::Done,
        _ => Existing::Bind,
    }
}

impl Driver {
    pub(crate) async fn publish(&self, req: NodePublishVolumeRequest) -> Result<NodePublishVolumeResponse> {
        let volume_id = validate::required(&req.volume_id, "volume id")?.to_string();
        validate::required(&req.target_path, "target path")?;
        let mode_read_only = validate::capability(req.volume_capability.as_ref())?;
        validate::required(&req.staging_target_path, "staging target path")?;
        let attrs = validate::parse_attrs(&req.volume_context)?;
        let target = paths::resolve_under(&req.target_path, &self.cfg.kubelet_root, "target path")?;
        paths::resolve_under(&req.staging_target_path, &self.cfg.kubelet_root, "staging target path")?;
        let relative = fluid_path::check(&attrs.fluid_path, &self.cfg.mount_root, &attrs.runtime)?;
        // Refuse a link on the way now rather than after waiting for the FUSE mount; the bind below
        // opens the path again and binds from that fd.
        fluid_fd::open(&self.cfg.mount_root, &relative, &attrs.fluid_path)?;
        let fluid_path = fluid_fd::real_path(&self.cfg.mount_root, &relative)?;
        let wanted = PublishRecord {
            volume_id: volume_id.clone(),
            target: target.clone(),
            fluid_path: fluid_path.clone(),
            read_only: req.readonly || mode_read_only,
            runtime: Some(attrs.runtime.clone()),
        };
        let _guard = self.locks.try_lock(format!("target:{}", target.display()))?;

        let table = mountinfo::read_self().map_err(|e| CsiError::io("reading /proc/self/mountinfo", e))?;
        let top = mountinfo::top_mount_at(&table, &target).cloned();
        let health = self.fs.probe(&target, fsops::LIMIT).await;
        let state = self.state.snapshot();
        let record = state.published.get(&target);
        match compare(record, &wanted, top.is_some(), &health) {
            Existing::Done => return Ok(NodePublishVolumeResponse {}),
            Existing::Conflict(msg) => return Err(CsiError::AlreadyExists(msg)),
            Existing::Bind => {}
        }
        if record.is_none()
            && let Some(top) = &top
            && health != Health::NotConnected
        {
            // Something we have no record of is mounted there (state lost, or not ours): adopt it only when
            // it is this FUSE filesystem in the wanted mode.
            let fuse = mounter::fuse_mount_at(&table, &fluid_path, None);
            if health == Health::Ok
                && fuse.is_some_and(|f| f.device == top.device)
                && top.is_read_only() == wanted.read_only
            {
                self.record(wanted)?;
                return Ok(NodePublishVolumeResponse {});
            }
            return Err(CsiError::AlreadyExists(format!(
                "{} already has a {} mount that is not volume {volume_id}",
                target.display(),
                top.fs_type
            )));
        }

        mounter::wait_for_fuse(&self.fs, &fluid_path, attrs.expected_fs_type(), self.cfg.publish_timeout, self.cfg.poll_interval)
            .await
            .map_err(|why| {
                CsiError::Unavailable(format!(
                    "the FUSE mount of volume {volume_id} is not ready after {:?} ({why}); the FUSE pod may still be starting, kubelet will retry",
                    self.cfg.publish_timeout
                ))
            })?;

        let (root, real, dst, ro) = (self.cfg.mount_root.clone(), fluid_path.clone(), target.clone(), wanted.read_only);
        let (fs_type, shown) = (attrs.expected_fs_type(), attrs.fluid_path.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            // The bind source is the fd opened without following links and checked to be the FUSE
            // mount, not the path: a component swapped for a link meanwhile cannot redirect it.
            let fuse = fluid_fd::open_fuse_mount(&root, &relative, &real, fs_type, &shown)?;
            mounter::bind_fresh(&fluid_fd::proc_path(&fuse), &dst, ro)
                .map_err(|e| CsiError::io(format!("bind-mounting {} onto {}", real.display(), dst.display()), e))
        })
        .await
        .map_err(|e| CsiError::io("joining the mount task", std::io::Error::other(e)))??;
        self.record(wanted)?;
        tracing::info!(volume_id, target = %target.display(), read_only = ro, "published");
        Ok(NodePublishVolumeResponse {})
    }

    fn record(&self, rec: PublishRecord) -> Result<()> {
        self.state
            .update(|s| s.published.insert(rec.target.clone(), rec))
            .map(|_| ())
            .map_err(|e| CsiError::io("writing the driver state", e))
    }

    pub(crate) async fn unpublish(&self, req: NodeUnpublishVolumeRequest) -> Result<NodeUnpublishVolumeResponse> {
        let volume_id = validate::required(&req.volume_id, "volume id")?.to_string();
        validate::required(&req.target_path, "target path")?;
        let target = paths::resolve_under(&req.target_path, &self.cfg.kubelet_root, "target path")?;
        let _guard = self.locks.try_lock(format!("target:{}", target.display()))?;

        // A target whose FUSE client hangs (or died) is detached at once: nothing may wait on it.
        let health = self.fs.probe(&target, fsops::LIMIT).await;
        let lazy = matches!(health, Health::TimedOut | Health::NotConnected);
        let t = target.clone();
        let removed = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
            let n = if lazy { mounter::detach_all(&t)? } else { mounter::unmount_all(&t)? };
            mounter::remove_target(&t)?;
            Ok(n)
        })
        .await
        .map_err(|e| CsiError::io("joining the unmount task", std::io::Error::other(e)))?
        .map_err(|e| CsiError::io(format!("unpublishing {}", target.display()), e))?;
        self.state.update(|s| s.published.remove(&target)).map_err(|e| CsiError::io("writing the driver state", e))?;
        tracing::info!(volume_id, target = %target.display(), unmounted = removed, detached = lazy, "unpublished");
        Ok(NodeUnpublishVolumeResponse {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rec(volume: &str, ro: bool) -> PublishRecord {
        PublishRecord {
            volume_id: volume.into(),
            target: PathBuf::from("/k/pods/p/mount"),
            fluid_path: PathBuf::from("/runtime-mnt/juicefs/ns/a/juicefs-fuse"),
            read_only: ro,
            runtime: None,
        }
    }

    #[test]
    fn idempotency_rules() {
        let want = rec("ns-a", false);
        assert_eq!(compare(None, &want, false, &Health::Missing), Existing::Bind);
        assert_eq!(compare(Some(&rec("ns-a", false)), &want, true, &Health::Ok), Existing::Done);
        // Recorded but stale or unmounted: bind again.
        assert_eq!(compare(Some(&rec("ns-a", false)), &want, true, &Health::NotConnected), Existing::Bind);
        assert_eq!(compare(Some(&rec("ns-a", false)), &want, false, &Health::Ok), Existing::Bind);
        assert!(matches!(compare(Some(&rec("ns-a", true)), &want, true, &Health::Ok), Existing::Conflict(_)));
        assert!(matches!(compare(Some(&rec("ns-b", false)), &want, true, &Health::Ok), Existing::Conflict(_)));
    }
}

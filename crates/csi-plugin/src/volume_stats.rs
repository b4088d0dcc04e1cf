//! NodeGetVolumeStats: capacity and inode usage of a published target (`statvfs` through the bind, so it
//! is the FUSE file system's), and the volume condition: a target whose FUSE client died is reported
//! abnormal instead of failing the call, so kubelet can surface it on the pod.

use crate::driver::Driver;
use crate::error::{CsiError, Result};
use crate::mounter::Health;
use crate::proto::volume_usage::Unit;
use crate::proto::{NodeGetVolumeStatsRequest, NodeGetVolumeStatsResponse, VolumeCondition, VolumeUsage};
use crate::{fsops, paths};
use std::path::Path;

/// Usage figures from a `statvfs` result. Pure.
pub fn usage(
    fragment_size: u64,
    blocks: u64,
    blocks_free: u64,
    blocks_available: u64,
    files: u64,
    files_free: u64,
) -> Vec<VolumeUsage> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let bytes = |n: u64| clamp(n.saturating_mul(fragment_size));
    vec![
        VolumeUsage {
            total: bytes(blocks),
            available: bytes(blocks_available),
            used: bytes(blocks.saturating_sub(blocks_free)),
            unit: Unit::Bytes as i32,
        },
        VolumeUsage {
            total: clamp(files),
            available: clamp(files_free),
            used: clamp(files.saturating_sub(files_free)),
            unit: Unit::Inodes as i32,
        },
    ]
}

pub fn statvfs(path: &Path) -> std::result::Result<Vec<VolumeUsage>, Health> {
    match rustix::fs::statvfs(path) {
        Ok(s) => Ok(usage(s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree)),
        Err(e) if e == rustix::io::Errno::NOTCONN => Err(Health::NotConnected),
        Err(e) if e == rustix::io::Errno::NOENT => Err(Health::Missing),
        Err(e) => Err(Health::Error(e.to_string())),
    }
}

impl Driver {
    pub(crate) async fn volume_stats(&self, req: NodeGetVolumeStatsRequest) -> Result<NodeGetVolumeStatsResponse> {
        let volume_id = crate::validate::required(&req.volume_id, "volume id")?.to_string();
        crate::validate::required(&req.volume_path, "volume path")?;
        let state = self.state.snapshot();
        if !state.staged.contains_key(&volume_id) && state.publications_of(&volume_id).next().is_none() {
            return Err(CsiError::NotFound(format!("volume {volume_id} is not staged or published on this node")));
        }
        // Only a path this driver published for this volume is answered for; anything else is not found.
        let path = paths::resolve_under(&req.volume_path, &self.cfg.kubelet_root, "volume path").ok();
        let Some(record) = path.and_then(|p| state.published.get(&p).filter(|r| r.volume_id == volume_id).cloned())
        else {
            return Err(CsiError::NotFound(format!("volume {volume_id} is not published at {}", req.volume_path)));
        };
        let result = self.fs.usage(&record.target, fsops::LIMIT).await;
        Ok(match result {
            Ok(usage) => NodeGetVolumeStatsResponse {
                usage,
                volume_condition: Some(VolumeCondition { abnormal: false, message: "the FUSE mount answers".into() }),
            },
            Err(health) => NodeGetVolumeStatsResponse {
                usage: Vec::new(),
                volume_condition: Some(VolumeCondition {
                    abnormal: true,
                    message: format!(
                        "{} does not answer ({health:?}); the FUSE client of {} may have died — recovery re-binds it once the client is back",
                        record.target.display(),
                        record.fluid_path.display()
                    ),
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_from_statvfs() {
        let u = usage(4096, 100, 40, 30, 1000, 900);
        assert_eq!(u[0].unit, Unit::Bytes as i32);
        assert_eq!((u[0].total, u[0].used, u[0].available), (409_600, 245_760, 122_880));
        assert_eq!(u[1].unit, Unit::Inodes as i32);
        assert_eq!((u[1].total, u[1].used, u[1].available), (1000, 100, 900));
        let huge = usage(u64::MAX, 2, 0, 1, 0, 0);
        assert_eq!(huge[0].total, i64::MAX);
    }
}

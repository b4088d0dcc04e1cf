//! FUSE recovery. When a FUSE daemon dies, every bind of its mount (the pods' volumes) turns stale
//! (ENOTCONN); when the daemon comes back it mounts a *new* filesystem at `fluid_path`, which the old
//! binds do not see. This loop finds those binds, from mountinfo and the publication records, and
//! binds the new mount *on top of* each stale one. Not in place of it: a running container holds its
//! own copy of the target mount (made when it started), a slave of the target's peer group with the
//! `HostToContainer` propagation the webhook sets — only a mount made *on* the target reaches it. A
//! target replaced on the host (unmount, then bind) would be repaired for kubelet and for new containers
//! while the running ones kept reading the dead FUSE (found on a real kubelet, e2e/tests/real_node.rs).
//! So each FUSE restart adds one layer while the pod lives; NodeUnpublish removes them all.

use crate::driver::Driver;
use crate::mounter::{self, Health};
use crate::mountinfo::{self, MountEntry};
use crate::state::PublishRecord;
use crate::validate::RuntimeRef;
use crate::{fluid_fd, fluid_path, fsops};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::EventType;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const REASON_SUCCEEDED: &str = "FuseRecoverSucceed";
pub const REASON_FAILED: &str = "FuseRecoverFailed";

/// What to do about one publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The target shows the current FUSE mount.
    Healthy,
    /// The FUSE mount is not (yet) back: nothing to bind to.
    WaitForFuse,
    /// The target is stale and a live FUSE mount exists: re-bind.
    Rebind,
    /// The target is not mounted or not stale in a way recovery should touch (kubelet owns it).
    Leave,
}

/// Decides from the mount table and the probes of `fluid_path` and the target. Pure.
pub fn decide(table: &[MountEntry], record: &PublishRecord, fuse_health: &Health, target_health: &Health) -> Decision {
    let Some(fuse) = mounter::fuse_mount_at(table, &record.fluid_path, None) else {
        return Decision::WaitForFuse;
    };
    if *fuse_health != Health::Ok {
        return Decision::WaitForFuse;
    }
    let Some(target) = mountinfo::top_mount_at(table, &record.target) else {
        return Decision::Leave;
    };
    match target_health {
        Health::Ok if target.device == fuse.device => Decision::Healthy,
        // A bind of an older FUSE filesystem that still answers: it is working, leave it.
        Health::Ok => Decision::Leave,
        Health::NotConnected => Decision::Rebind,
        Health::Missing | Health::TimedOut | Health::Error(_) => Decision::Leave,
    }
}

/// Runs passes every `period` until `shutdown`.
pub async fn run(driver: Driver, period: Duration, shutdown: CancellationToken) {
    tracing::info!(period = ?period, "FUSE recovery loop started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(e) = pass(&driver).await {
            tracing::warn!(error = %e, "FUSE recovery pass failed");
        }
    }
}

/// Whether the mount at a `fluid_path` is a dead FUSE mount that must go before a restarted FUSE client
/// can mount there again (mounting over ENOTCONN fails). Pure.
pub fn is_dead_fuse(table: &[MountEntry], fluid_path: &std::path::Path, health: &Health) -> bool {
    *health == Health::NotConnected && mountinfo::top_mount_at(table, fluid_path).is_some_and(MountEntry::is_fuse)
}

/// Detaches dead FUSE mounts at the `fluid_path`s this node uses, so the FUSE pod's restart can mount.
async fn clean_dead_fuse_mounts(driver: &Driver, probe_limit: Duration) -> anyhow::Result<()> {
    let state = driver.state.snapshot();
    let mut fluid_paths: Vec<_> = state.published.values().map(|p| p.fluid_path.clone()).collect();
    fluid_paths.extend(state.staged.values().map(|s| s.fluid_path.clone()));
    fluid_paths.sort();
    fluid_paths.dedup();
    for fluid_path in fluid_paths {
        let table = mountinfo::read_self()?;
        if !is_dead_fuse(&table, &fluid_path, &driver.fs.probe(&fluid_path, probe_limit).await) {
            continue;
        }
        let p = fluid_path.clone();
        match tokio::task::spawn_blocking(move || mounter::unmount_all(&p)).await? {
            Ok(n) => tracing::info!(fluid_path = %fluid_path.display(), layers = n, "detached a dead FUSE mount"),
            Err(e) => {
                tracing::warn!(fluid_path = %fluid_path.display(), error = %e, "could not detach a dead FUSE mount")
            }
        }
    }
    Ok(())
}

/// One pass over every publication; returns how many targets were re-bound.
pub async fn pass(driver: &Driver) -> anyhow::Result<usize> {
    let probe_limit = fsops::LIMIT;
    driver.metrics.fs_in_flight(driver.fs.in_flight());
    clean_dead_fuse_mounts(driver, probe_limit).await?;
    let mut rebound = 0;
    for record in driver.state.snapshot().published.into_values() {
        let table = mountinfo::read_self()?;
        let fuse_health = driver.fs.probe(&record.fluid_path, probe_limit).await;
        let target_health = driver.fs.probe(&record.target, probe_limit).await;
        if decide(&table, &record, &fuse_health, &target_health) != Decision::Rebind {
            continue;
        }
        // A publish or unpublish of this target is running: it decides, not us.
        let Ok(_guard) = driver.locks.try_lock(format!("target:{}", record.target.display())) else { continue };
        // Re-check under the lock: the record may be gone.
        if !driver.state.snapshot().published.contains_key(&record.target) {
            continue;
        }
        let result = rebind(&driver.cfg.mount_root, &record).await;
        driver.metrics.recovery(result.is_ok());
        let (type_, reason, note) = match &result {
            Ok(()) => {
                rebound += 1;
                tracing::info!(target = %record.target.display(), fluid_path = %record.fluid_path.display(), "re-bound a stale FUSE bind mount");
                (
                    EventType::Normal,
                    REASON_SUCCEEDED,
                    format!(
                        "re-bound {} to the restarted FUSE mount on node {}",
                        record.target.display(),
                        driver.cfg.node_id
                    ),
                )
            }
            Err(e) => {
                tracing::warn!(target = %record.target.display(), error = %e, "could not re-bind a stale FUSE bind mount");
                (
                    EventType::Warning,
                    REASON_FAILED,
                    format!("could not re-bind {} on node {}: {e}", record.target.display(), driver.cfg.node_id),
                )
            }
        };
        if let Some(runtime) = &record.runtime {
            publish_event(driver, runtime, type_, reason, note).await;
        }
    }
    Ok(rebound)
}

/// Binds the live FUSE mount over a stale target (stacked, see the module docs), from an fd of
/// `fluid_path` opened without following links (as NodePublish does). The recorded `fluid_path` must still be exactly its runtime's
/// FUSE mount path: a record that is not (written by an older version, or by hand) is never re-bound.
async fn rebind(mount_root: &Path, record: &PublishRecord) -> anyhow::Result<()> {
    let Some(runtime) = &record.runtime else {
        anyhow::bail!(
            "the publication of {} records no runtime, so its fluid_path cannot be checked",
            record.target.display()
        );
    };
    let expected = fluid_path::expected(mount_root, runtime);
    let relative = fluid_path::check(&expected, mount_root, runtime)?;
    let real = fluid_fd::real_path(mount_root, &relative)?;
    anyhow::ensure!(
        real == record.fluid_path,
        "the recorded fluid_path {} is not {expected}, the FUSE mount path of runtime {}/{}",
        record.fluid_path.display(),
        runtime.namespace,
        runtime.name
    );
    let (root, r) = (mount_root.to_path_buf(), record.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let fuse = fluid_fd::open_fuse_mount(&root, &relative, &real, None, &expected)?;
        mounter::bind(&fluid_fd::proc_path(&fuse), &r.target, r.read_only)
            .map_err(|e| anyhow::anyhow!("binding {} to {}: {e}", r.fluid_path.display(), r.target.display()))
    })
    .await?
}

async fn publish_event(driver: &Driver, runtime: &RuntimeRef, type_: EventType, reason: &str, note: String) {
    let reference = ObjectReference {
        api_version: Some(format!("{}/{}", ferrofluid_api::keys::GROUP, ferrofluid_api::keys::VERSION)),
        kind: Some("Dataset".into()),
        namespace: Some(runtime.namespace.clone()),
        name: Some(runtime.name.clone()),
        ..Default::default()
    };
    driver.events.publish(&reference, type_, reason, note).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn table(target_device: Option<&str>, fuse_device: Option<&str>) -> Vec<MountEntry> {
        let mut text = String::from("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        if let Some(d) = target_device {
            text.push_str(&format!("50 22 {d} / /kubelet/pods/p/mount rw - fuse.juicefs JuiceFS:a rw\n"));
        }
        if let Some(d) = fuse_device {
            text.push_str(&format!(
                "60 22 {d} / /runtime-mnt/juicefs/ns/a/juicefs-fuse rw - fuse.juicefs JuiceFS:a rw\n"
            ));
        }
        mountinfo::parse(&text)
    }

    fn record() -> PublishRecord {
        PublishRecord {
            volume_id: "ns-a".into(),
            target: PathBuf::from("/kubelet/pods/p/mount"),
            fluid_path: PathBuf::from("/runtime-mnt/juicefs/ns/a/juicefs-fuse"),
            read_only: false,
            runtime: None,
        }
    }

    #[test]
    fn rebinds_only_stale_targets_of_a_live_fuse() {
        let r = record();
        // Healthy: same filesystem, answers.
        assert_eq!(decide(&table(Some("0:45"), Some("0:45")), &r, &Health::Ok, &Health::Ok), Decision::Healthy);
        // FUSE restarted: new device at fluid_path, the target still holds the dead one.
        assert_eq!(
            decide(&table(Some("0:45"), Some("0:52")), &r, &Health::Ok, &Health::NotConnected),
            Decision::Rebind
        );
        // FUSE dead and not back yet.
        assert_eq!(
            decide(&table(Some("0:45"), None), &r, &Health::Missing, &Health::NotConnected),
            Decision::WaitForFuse
        );
        assert_eq!(
            decide(&table(Some("0:45"), Some("0:45")), &r, &Health::NotConnected, &Health::NotConnected),
            Decision::WaitForFuse
        );
        // Target not mounted (kubelet tore it down): not ours to recreate.
        assert_eq!(decide(&table(None, Some("0:52")), &r, &Health::Ok, &Health::Ok), Decision::Leave);
        // Target bound to an older FUSE that still works.
        assert_eq!(decide(&table(Some("0:45"), Some("0:52")), &r, &Health::Ok, &Health::Ok), Decision::Leave);
    }

    #[test]
    fn dead_fuse_detection() {
        let r = record();
        let t = table(Some("0:45"), Some("0:45"));
        assert!(is_dead_fuse(&t, &r.fluid_path, &Health::NotConnected));
        assert!(!is_dead_fuse(&t, &r.fluid_path, &Health::Ok));
        // Nothing mounted there: nothing to detach, whatever stat says.
        assert!(!is_dead_fuse(&table(Some("0:45"), None), &r.fluid_path, &Health::NotConnected));
    }
}

//! Mount-table I/O: probing a path's health, bind-mounting a FUSE mount onto a target (read-only when
//! asked), and unmounting every layer stacked on a target, lazily when a dead FUSE makes it busy.

use crate::fsops::FsOps;
use crate::mountinfo::{self, MountEntry};
use std::io;
use std::path::Path;
use std::time::Duration;
use sys_mount::{Mount, MountFlags, UnmountFlags, unmount};

/// What `stat` says about a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// ENOTCONN: a FUSE mount whose daemon is gone (or a bind of one).
    NotConnected,
    Missing,
    /// `stat` did not return in time: a hung FUSE daemon.
    TimedOut,
    Error(String),
}

pub fn probe(path: &Path) -> Health {
    match std::fs::metadata(path) {
        Ok(_) => Health::Ok,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Health::NotConnected,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Health::Missing,
        Err(e) => Health::Error(e.to_string()),
    }
}

/// Bind-mounts `source` onto `target`; for read-only, remounts the bind read-only (a plain bind ignores
/// MS_RDONLY). If the remount fails the bind is undone.
pub fn bind(source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
    Mount::builder().fstype("none").flags(MountFlags::BIND).mount(source, target)?;
    if read_only
        && let Err(e) = Mount::builder()
            .fstype("none")
            .flags(MountFlags::BIND | MountFlags::REMOUNT | MountFlags::RDONLY)
            .mount(source, target)
    {
        let _ = unmount(target, UnmountFlags::DETACH);
        return Err(e);
    }
    Ok(())
}

/// Clears whatever (stale) layers sit on the target, creates it, and binds `source` onto it: how
/// NodePublish binds a pod's target (FUSE recovery binds over the stale layer instead, see recovery.rs).
pub fn bind_fresh(source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
    unmount_all(target)?;
    std::fs::create_dir_all(target)?;
    bind(source, target, read_only)
}

/// Unmounts every mount stacked on `target` (as listed in mountinfo); a layer that will not unmount
/// normally (busy, dead FUSE) is detached. Returns how many layers were removed.
pub fn unmount_all(target: &Path) -> io::Result<usize> {
    remove_layers(target, false)
}

/// Detaches (`MNT_DETACH`) every mount stacked on `target` without trying a plain unmount first: for a
/// target whose FUSE client hangs. Returns how many layers were removed.
pub fn detach_all(target: &Path) -> io::Result<usize> {
    remove_layers(target, true)
}

fn remove_layers(target: &Path, detach_only: bool) -> io::Result<usize> {
    // Bounded: each pass removes one layer; a stack deeper than this is not ours to fight.
    for removed in 0..64 {
        let table = mountinfo::read_self()?;
        if mountinfo::mounts_at(&table, target).is_empty() {
            return Ok(removed);
        }
        let plain =
            if detach_only { Err(io::Error::other("detach only")) } else { unmount(target, UnmountFlags::empty()) };
        if let Err(e) = plain {
            tracing::debug!(target = %target.display(), error = %e, "plain unmount failed; detaching");
            match unmount(target, UnmountFlags::DETACH) {
                Ok(()) => {}
                // Gone between reading the table and unmounting.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOENT) => {
                    let table = mountinfo::read_self()?;
                    if mountinfo::mounts_at(&table, target).is_empty() {
                        return Ok(removed);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(io::Error::other(format!("{} still has mounts after 64 unmounts", target.display())))
}

/// Removes an (unmounted) target: a directory or, for a file target, the file. Missing is fine.
pub fn remove_target(target: &Path) -> io::Result<()> {
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => std::fs::remove_file(target),
        Err(e) => Err(e),
    }
}

/// The live FUSE mount at `fluid_path`, if the top mount there is FUSE of the expected type.
pub fn fuse_mount_at<'a>(table: &'a [MountEntry], fluid_path: &Path, fs_type: Option<&str>) -> Option<&'a MountEntry> {
    mountinfo::top_mount_at(table, fluid_path).filter(|m| m.is_fuse() && fs_type.is_none_or(|t| m.fs_type == t))
}

/// Polls until `fluid_path` is a FUSE mount (of `fs_type` when given) that answers `stat` (through `fs`,
/// bounded), or `timeout` passes; the error tells why it is not ready.
pub async fn wait_for_fuse(
    fs: &FsOps,
    fluid_path: &Path,
    fs_type: Option<&str>,
    timeout: Duration,
    poll: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let reason = match mountinfo::read_self() {
            Err(e) => format!("cannot read mountinfo: {e}"),
            Ok(table) => match fuse_mount_at(&table, fluid_path, fs_type) {
                None => match mountinfo::top_mount_at(&table, fluid_path) {
                    Some(m) => {
                        format!("{} is a {} mount, not {}", fluid_path.display(), m.fs_type, fs_type.unwrap_or("FUSE"))
                    }
                    None => format!("nothing is mounted at {}", fluid_path.display()),
                },
                Some(_) => match fs.probe(fluid_path, poll.max(Duration::from_secs(2))).await {
                    Health::Ok => return Ok(()),
                    h => format!("the FUSE mount at {} does not answer: {h:?}", fluid_path.display()),
                },
            },
        };
        if tokio::time::Instant::now() + poll > deadline {
            return Err(reason);
        }
        tokio::time::sleep(poll).await;
    }
}

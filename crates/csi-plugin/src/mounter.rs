//! Mount-table I/O: probing a path's health, bind-mounting a FUSE mount onto a target (read-only when
//! asked), and unmounting every layer stacked on a target, lazily when a dead FUSE makes it busy.

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

/// [`probe`] off the async runtime, bounded: a hung FUSE daemon can block `stat` indefinitely.
pub async fn probe_bounded(path: &Path, limit: Duration) -> Health {
    let p = path.to_path_buf();
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || probe(&p))).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => Health::Error(e.to_string()),
        Err(_) => Health::TimedOut,
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

/// Unmounts every mount stacked on `target` (as listed in mountinfo); a layer that will not unmount
/// normally (busy, dead FUSE) is detached. Returns how many layers were removed.
pub fn unmount_all(target: &Path) -> io::Result<usize> {
    // Bounded: each pass removes one layer; a stack deeper than this is not ours to fight.
    for removed in 0..64 {
        let table = mountinfo::read_self()?;
        if mountinfo::mounts_at(&table, target).is_empty() {
            return Ok(removed);
        }
        if let Err(e) = unmount(target, UnmountFlags::empty()) {
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

/// Result of waiting for a FUSE mount.
pub struct FuseReady {
    pub entry: MountEntry,
}

/// Polls until `fluid_path` is a FUSE mount (of `fs_type` when given) that answers `stat`, or `timeout`
/// passes; the error tells why it is not ready.
pub async fn wait_for_fuse(
    fluid_path: &Path,
    fs_type: Option<&str>,
    timeout: Duration,
    poll: Duration,
) -> Result<FuseReady, String> {
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
                Some(entry) => match probe_bounded(fluid_path, poll.max(Duration::from_secs(2))).await {
                    Health::Ok => return Ok(FuseReady { entry: entry.clone() }),
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

/// Creates the target directory (and parents); a stale mount left on it is removed first.
pub fn prepare_target(target: &Path) -> io::Result<()> {
    if probe(target) == Health::NotConnected {
        unmount_all(target)?;
    }
    std::fs::create_dir_all(target)
}

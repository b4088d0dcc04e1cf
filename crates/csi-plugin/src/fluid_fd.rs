//! Opening a checked `fluid_path` (see [`crate::fluid_path`]) without following any symbolic link, and
//! binding from what was opened.
//!
//! The path is opened with `openat2(O_PATH, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` relative to an `O_PATH | O_DIRECTORY` fd of the mount root: the kernel refuses
//! a link in any component below the root, so the fd is exactly what sits at that path (the FUSE mount's
//! root once a client has mounted there). An `O_PATH` open does not call into the FUSE daemon, so a hung
//! client cannot block it. Bind mounts are made from the fd (`/proc/self/fd/<n>`), so a component swapped
//! for a link after the check cannot redirect them.

use crate::error::{CsiError, Result};
use crate::{mounter, mountinfo};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// What is at a checked `fluid_path`.
#[derive(Debug)]
pub enum Opened {
    /// The path, opened `O_PATH`.
    Fd(OwnedFd),
    /// The path, or a tail of it, does not exist yet; the part that exists holds no link.
    Missing,
    /// The last component answers ENOTCONN (a dead FUSE mount); its parents hold no link.
    NotConnected,
}

fn open_root(mount_root: &Path) -> Result<OwnedFd> {
    rustix::fs::open(mount_root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| CsiError::io(format!("opening the mount root {}", mount_root.display()), e.into()))
}

fn open_beneath(root: &OwnedFd, relative: &Path) -> std::result::Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(root, relative, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), resolve)
}

/// Opens `relative` (what [`crate::fluid_path::check`] returned) beneath `mount_root`, refusing any
/// symbolic link on the way with `InvalidArgument`. `shown` is the `fluid_path` as the request spelled it.
pub fn open(mount_root: &Path, relative: &Path, shown: &str) -> Result<Opened> {
    let root = open_root(mount_root)?;
    match open_beneath(&root, relative) {
        Ok(fd) => Ok(Opened::Fd(fd)),
        Err(Errno::NOENT) => {
            // A component that does not exist cannot be a link; the deepest one that exists must have
            // been reached without one.
            for ancestor in relative.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                match open_beneath(&root, ancestor) {
                    Ok(_) => break,
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(refusal(mount_root, ancestor, shown, e)),
                }
            }
            Ok(Opened::Missing)
        }
        Err(Errno::NOTCONN) => match relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            None => Ok(Opened::NotConnected),
            Some(parent) => match open_beneath(&root, parent) {
                Ok(_) => Ok(Opened::NotConnected),
                Err(e) => Err(refusal(mount_root, parent, shown, e)),
            },
        },
        Err(e) => Err(refusal(mount_root, relative, shown, e)),
    }
}

fn refusal(mount_root: &Path, relative: &Path, shown: &str, e: Errno) -> CsiError {
    match e {
        Errno::LOOP => CsiError::InvalidArgument(format!(
            "fluid_path {shown:?} is refused: {} is a symbolic link; the FUSE mount path must be reached without following any link",
            link_on_the_way(mount_root, relative).display()
        )),
        Errno::XDEV => CsiError::InvalidArgument(format!("fluid_path {shown:?} leads out of the mount root")),
        Errno::NOTDIR => {
            CsiError::InvalidArgument(format!("fluid_path {shown:?}: one of its parents is not a directory"))
        }
        e => CsiError::io(format!("opening fluid_path {shown:?} beneath {} (openat2)", mount_root.display()), e.into()),
    }
}

/// For the message only: the first parent of `relative` that is a link now, else its last component
/// (which is not looked at: it may be a FUSE mount, and `lstat` there would call into the FUSE daemon).
fn link_on_the_way(mount_root: &Path, relative: &Path) -> PathBuf {
    let mut path = mount_root.to_path_buf();
    let parts: Vec<Component> = relative.components().collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let last = i + 1 == parts.len();
        if last || std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            break;
        }
    }
    path
}

/// The path mountinfo shows for `relative` beneath `mount_root`: the mount root resolved (it is the
/// operator's configuration and may itself be reached through a link), then the checked components.
pub fn real_path(mount_root: &Path, relative: &Path) -> Result<PathBuf> {
    let root = std::fs::canonicalize(mount_root)
        .map_err(|e| CsiError::io(format!("resolving the mount root {}", mount_root.display()), e))?;
    Ok(root.join(relative))
}

/// The mount id in `/proc/<pid>/fdinfo/<fd>` text (`mnt_id:`). Pure.
pub fn parse_mnt_id(fdinfo: &str) -> Option<u64> {
    fdinfo.lines().find_map(|l| l.strip_prefix("mnt_id:")).and_then(|v| v.trim().parse().ok())
}

/// The id (as in mountinfo) of the mount `fd` is on; read from fdinfo, without calling into the file system.
pub fn mount_id(fd: &OwnedFd) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    parse_mnt_id(&text).ok_or_else(|| std::io::Error::other("fdinfo has no mnt_id"))
}

/// The path that resolves to exactly what `fd` refers to, whatever the path it was opened by holds
/// now: the source of a bind mount.
pub fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens a checked `fluid_path` to bind from: it must be the top mount mountinfo shows at `real`, a
/// FUSE mount (of `fs_type` when given). Anything else (gone, dead, replaced meanwhile) is `Unavailable`,
/// so kubelet (or the next recovery pass) retries.
pub fn open_fuse_mount(
    mount_root: &Path,
    relative: &Path,
    real: &Path,
    fs_type: Option<&str>,
    shown: &str,
) -> Result<OwnedFd> {
    let fd = match open(mount_root, relative, shown)? {
        Opened::Fd(fd) => fd,
        Opened::Missing => return Err(CsiError::Unavailable(format!("fluid_path {shown:?} does not exist"))),
        Opened::NotConnected => {
            return Err(CsiError::Unavailable(format!("the FUSE mount at {shown:?} is not connected")));
        }
    };
    let id = mount_id(&fd).map_err(|e| CsiError::io(format!("reading the mount id of fluid_path {shown:?}"), e))?;
    let table = mountinfo::read_self().map_err(|e| CsiError::io("reading /proc/self/mountinfo", e))?;
    match mounter::fuse_mount_at(&table, real, fs_type) {
        Some(fuse) if fuse.id == id => Ok(fd),
        Some(_) => Err(CsiError::Unavailable(format!(
            "the FUSE mount at {} changed while it was being opened; retry",
            real.display()
        ))),
        None => Err(CsiError::Unavailable(format!("no FUSE mount at {}", real.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    use crate::test_dir::TempDir;

    const A: &str = "juicefs/ns-a/data/juicefs-fuse";
    const B: &str = "juicefs/ns-b/data/juicefs-fuse";

    fn refused(r: Result<Opened>) -> String {
        match r {
            Err(CsiError::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn real_directories_open_and_missing_tails_are_fine() {
        let t = TempDir::new("fluid-fd-plain");
        let root = t.0.join("runtime-mnt");
        std::fs::create_dir_all(root.join("juicefs/ns-a")).expect("mkdir");
        // Nothing below the namespace yet (the FUSE pod has not run): not a refusal.
        assert!(matches!(open(&root, Path::new(A), "a"), Ok(Opened::Missing)));
        std::fs::create_dir_all(root.join(A)).expect("mkdir");
        assert!(matches!(open(&root, Path::new(A), "a"), Ok(Opened::Fd(_))));
        // The mount root itself may be reached through a link: it is configuration, not a request.
        let linked_root = t.0.join("linked-root");
        symlink(&root, &linked_root).expect("symlink");
        assert!(matches!(open(&linked_root, Path::new(A), "a"), Ok(Opened::Fd(_))));
        assert_eq!(real_path(&linked_root, Path::new(A)).expect("real"), root.canonicalize().expect("root").join(A));
    }

    #[test]
    fn a_link_anywhere_below_the_root_is_refused() {
        let t = TempDir::new("fluid-fd-links");
        let root = t.0.join("runtime-mnt");
        std::fs::create_dir_all(root.join(B)).expect("mkdir");
        std::fs::create_dir_all(root.join("juicefs/ns-a/data")).expect("mkdir");

        // The FUSE path itself replaced by a link to another dataset's: refused, naming the link.
        symlink(root.join(B), root.join(A)).expect("symlink");
        let m = refused(open(&root, Path::new(A), "a"));
        assert!(m.contains("symbolic link") && m.contains(&root.join(A).display().to_string()), "{m}");
        std::fs::remove_file(root.join(A)).expect("rm");
        std::fs::remove_dir(root.join("juicefs/ns-a/data")).expect("rmdir");

        // A parent replaced by a link (relative, still inside the root): refused, naming that parent.
        symlink("../ns-b/data", root.join("juicefs/ns-a/data")).expect("symlink");
        let m = refused(open(&root, Path::new(A), "a"));
        assert!(m.contains(&root.join("juicefs/ns-a/data").display().to_string()), "{m}");
        std::fs::remove_file(root.join("juicefs/ns-a/data")).expect("rm");

        // A link higher up, and a dangling one below which the rest is missing.
        std::fs::remove_dir(root.join("juicefs/ns-a")).expect("rmdir");
        symlink(root.join("juicefs/ns-b"), root.join("juicefs/ns-a")).expect("symlink");
        refused(open(&root, Path::new(A), "a"));
        std::fs::remove_file(root.join("juicefs/ns-a")).expect("rm");
        symlink(t.0.join("nowhere"), root.join("juicefs/ns-a")).expect("symlink");
        refused(open(&root, Path::new(A), "a"));
        std::fs::remove_file(root.join("juicefs/ns-a")).expect("rm");

        // A plain file where a directory belongs.
        std::fs::write(root.join("juicefs/ns-a"), b"").expect("file");
        assert!(refused(open(&root, Path::new(A), "a")).contains("not a directory"));
    }

    #[test]
    fn the_bind_source_is_what_was_checked_not_what_the_path_holds_later() {
        let t = TempDir::new("fluid-fd-swap");
        let root = t.0.join("runtime-mnt");
        std::fs::create_dir_all(root.join(A)).expect("mkdir");
        std::fs::create_dir_all(root.join(B)).expect("mkdir");
        std::fs::write(root.join(A).join("mine"), b"a").expect("write");
        std::fs::write(root.join(B).join("theirs"), b"b").expect("write");
        let Ok(Opened::Fd(fd)) = open(&root, Path::new(A), "a") else { panic!("opens") };
        // After the check, the directory is moved away and a link to the other dataset put in its place.
        std::fs::rename(root.join(A), t.0.join("moved")).expect("rename");
        symlink(root.join(B), root.join(A)).expect("symlink");
        let names: Vec<_> = std::fs::read_dir(proc_path(&fd))
            .expect("read through the fd")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["mine"]);
    }

    #[test]
    fn mount_id_is_the_mount_the_fd_is_on() {
        assert_eq!(parse_mnt_id("pos:\t0\nflags:\t012100000\nmnt_id:\t29\nino:\t2\n"), Some(29));
        assert_eq!(parse_mnt_id("pos:\t0\n"), None);
        let t = TempDir::new("fluid-fd-mntid");
        std::fs::create_dir(t.0.join("sub")).expect("mkdir");
        let Ok(Opened::Fd(fd)) = open(&t.0, Path::new("sub"), "sub") else { panic!("opens") };
        // The mount holding the temp dir is the one with the longest mount point above it.
        let table = mountinfo::read_self().expect("mountinfo");
        let real = t.0.canonicalize().expect("real");
        let holder =
            table.iter().filter(|m| real.starts_with(&m.mount_point)).max_by_key(|m| m.mount_point.as_os_str().len());
        assert_eq!(Some(mount_id(&fd).expect("mnt_id")), holder.map(|m| m.id));
    }
}

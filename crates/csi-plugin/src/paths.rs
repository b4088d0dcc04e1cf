//! Path safety of target and staging paths: they must lie under the kubelet root. Lexical checks
//! (absolute, no `..`) are pure; [`resolve_under`] also resolves symlinks in the part of the path that
//! exists, so a link pointing out of the root is refused. (`fluid_path` has a stricter rule of its own:
//! [`crate::fluid_path`], [`crate::fluid_fd`].)

use crate::error::{CsiError, Result};
use std::path::{Component, Path, PathBuf};

/// Refuses relative paths, `..` components and NUL bytes; returns the path without `.` components.
pub fn lexically_clean(path: &str, what: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(CsiError::InvalidArgument(format!("{what} is empty")));
    }
    if path.contains('\0') {
        return Err(CsiError::InvalidArgument(format!("{what} contains a NUL byte")));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(CsiError::InvalidArgument(format!("{what} {path:?} is not absolute")));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(CsiError::InvalidArgument(format!("{what} {path:?} contains '..'")));
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => {
                return Err(CsiError::InvalidArgument(format!("{what} {path:?} is not a Unix path")));
            }
        }
    }
    Ok(out)
}

/// True when `path` is `root` itself or lies below it (both already resolved).
pub fn is_within(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

/// True when `path` lies strictly below `root` (a volume path may not be the root itself).
pub fn is_strictly_within(path: &Path, root: &Path) -> bool {
    path != root && is_within(path, root)
}

/// Resolves `path` (already lexically clean) against the file system: the longest existing ancestor is
/// canonicalized (following symlinks), the rest appended. Components that do not exist yet cannot be
/// links; a stale mount (ENOTCONN) on the last component is treated as an existing directory.
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(real) => {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTCONN) => {
                // A symlink whose target is missing also reads as NotFound: refuse to look past it.
                if std::fs::symlink_metadata(&existing).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
                    return Err(CsiError::InvalidArgument(format!(
                        "{} is a dangling symbolic link",
                        existing.display()
                    )));
                }
                let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                    return Err(CsiError::io(format!("resolving {}", path.display()), e));
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(CsiError::io(format!("resolving {}", path.display()), e));
                }
            }
            Err(e) => return Err(CsiError::io(format!("resolving {}", path.display()), e)),
        }
    }
}

/// Refuses a last path component that is a symbolic link. `readlink` answers from the directory entry:
/// on a mount point it does not call into the mounted file system, so a hung FUSE client (whose bind a
/// target may be) cannot block it the way `stat` would.
fn not_a_link(path: &Path, what: &str) -> Result<()> {
    match std::fs::read_link(path) {
        Ok(to) => Err(CsiError::InvalidArgument(format!(
            "{what} {} is a symbolic link (to {}); it must be a plain path",
            path.display(),
            to.display()
        ))),
        // Not a link (EINVAL), not there yet, or a dead mount: all fine here.
        Err(_) => Ok(()),
    }
}

/// Checks that `path` is clean and, once resolved, strictly under `root`; returns the resolved path.
/// Its ancestors are resolved (they are plain directories of kubelet's); its last component is never
/// followed or `stat`ed — it may be a pod's bind of a FUSE mount whose client hangs — only refused if it
/// is a symbolic link.
pub fn resolve_under(path: &str, root: &Path, what: &str) -> Result<PathBuf> {
    let clean = lexically_clean(path, what)?;
    let real_root = std::fs::canonicalize(root)
        .map_err(|e| CsiError::io(format!("resolving the configured root {}", root.display()), e))?;
    let (Some(parent), Some(name)) = (clean.parent(), clean.file_name()) else {
        return Err(CsiError::InvalidArgument(format!("{what} {path:?} is the file-system root")));
    };
    let real = resolve(parent)?.join(name);
    not_a_link(&real, what)?;
    if !is_strictly_within(&real, &real_root) {
        return Err(CsiError::InvalidArgument(format!(
            "{what} {path:?} resolves to {} which is not under {}",
            real.display(),
            real_root.display()
        )));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn lexical_rules() {
        assert!(lexically_clean("", "target").is_err());
        assert!(lexically_clean("relative/path", "target").is_err());
        assert!(lexically_clean("/var/lib/kubelet/../../etc", "target").is_err());
        assert!(lexically_clean("/a/\0b", "target").is_err());
        assert_eq!(lexically_clean("/a/./b/", "target").expect("clean"), PathBuf::from("/a/b"));
    }

    #[test]
    fn within_is_component_wise() {
        let root = Path::new("/var/lib/kubelet");
        assert!(is_strictly_within(Path::new("/var/lib/kubelet/pods/x"), root));
        assert!(!is_strictly_within(Path::new("/var/lib/kubelet"), root));
        assert!(!is_strictly_within(Path::new("/var/lib/kubelet-evil/x"), root));
        assert!(!is_strictly_within(Path::new("/etc"), root));
    }

    use crate::test_dir::TempDir;

    #[test]
    fn symlink_escapes_are_refused() {
        let t = TempDir::new("paths-symlink");
        let root = t.0.join("kubelet");
        let outside = t.0.join("outside");
        std::fs::create_dir_all(root.join("pods")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        symlink(&outside, root.join("pods/escape")).expect("symlink");
        symlink(root.join("pods"), root.join("inside-link")).expect("symlink");
        symlink(t.0.join("missing"), root.join("dangling")).expect("symlink");

        let s = |p: &Path| p.to_str().expect("utf8").to_string();
        // Not existing yet, plain parent: fine.
        let ok = resolve_under(&s(&root.join("pods/p1/mount")), &root, "target").expect("inside");
        assert!(ok.ends_with("pods/p1/mount"));
        // A link inside the root pointing inside the root: fine.
        assert!(resolve_under(&s(&root.join("inside-link/p2")), &root, "target").is_ok());
        // A link pointing out of the root, as the path or as an ancestor.
        for bad in [root.join("pods/escape"), root.join("pods/escape/sub/mount"), root.join("dangling/x")] {
            let err = resolve_under(&s(&bad), &root, "target").expect_err("escape");
            assert!(matches!(err, CsiError::InvalidArgument(_)), "{bad:?}: {err}");
        }
        // The root itself and paths outside it.
        assert!(matches!(resolve_under(&s(&root), &root, "target"), Err(CsiError::InvalidArgument(_))));
        assert!(matches!(resolve_under(&s(&outside), &root, "target"), Err(CsiError::InvalidArgument(_))));
    }
}

//! The `fluid_path` rule, pure: a volume may only name the FUSE mount path of its own runtime,
//! `<mount root>/juicefs/<runtime namespace>/<runtime name>/juicefs-fuse`
//! ([`DatasetKey::fuse_mount_path`]), spelled exactly like that. Whether that path is also free of
//! symbolic links on the file system is checked by [`crate::fluid_fd`].

use crate::error::{CsiError, Result};
use crate::validate::RuntimeRef;
use ferrofluid_api::keys::DatasetKey;
use std::path::{Path, PathBuf};

/// Refuses anything but an absolute path made of plain components: no `.`, no `..`, no empty
/// component (`//`, a trailing `/`), no NUL byte.
pub fn lexically_exact(path: &str, what: &str) -> Result<()> {
    let refuse = |why: &str| Err(CsiError::InvalidArgument(format!("{what} {path:?} {why}")));
    if path.contains('\0') {
        return refuse("contains a NUL byte");
    }
    let Some(rest) = path.strip_prefix('/') else { return refuse("is not absolute") };
    for component in rest.split('/') {
        match component {
            "" => return refuse("has an empty component ('//' or a trailing '/')"),
            "." => return refuse("contains '.'"),
            ".." => return refuse("contains '..'"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks the configured mount root: absolute, plain components, and valid UTF-8 (it is compared
/// with strings from the volume attributes). A single trailing `/` is tolerated.
pub fn check_mount_root(root: &Path) -> Result<()> {
    let Some(s) = root.to_str() else {
        return Err(CsiError::InvalidArgument(format!("mount root {} is not valid UTF-8", root.display())));
    };
    if s == "/" {
        return Ok(());
    }
    lexically_exact(s.strip_suffix('/').unwrap_or(s), "mount root")
}

/// The `fluid_path` a volume of `runtime` must name under `mount_root`.
pub fn expected(mount_root: &Path, runtime: &RuntimeRef) -> String {
    DatasetKey::new(&runtime.namespace, &runtime.name).fuse_mount_path(&mount_root.to_string_lossy())
}

/// Checks that `fluid_path` is exactly the runtime's FUSE mount path under `mount_root`; returns it
/// relative to the mount root (`juicefs/<ns>/<name>/juicefs-fuse`), which is how it is opened.
pub fn check(fluid_path: &str, mount_root: &Path, runtime: &RuntimeRef) -> Result<PathBuf> {
    lexically_exact(fluid_path, "fluid_path")?;
    let want = expected(mount_root, runtime);
    if fluid_path != want {
        return Err(CsiError::InvalidArgument(format!(
            "fluid_path {fluid_path:?} is not {want:?}, the FUSE mount path of runtime {}/{} under the mount root",
            runtime.namespace, runtime.name
        )));
    }
    Path::new(&want).strip_prefix(mount_root).map(Path::to_path_buf).map_err(|_| {
        CsiError::InvalidArgument(format!("fluid_path {fluid_path:?} is not under {}", mount_root.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(ns: &str, name: &str) -> RuntimeRef {
        RuntimeRef { namespace: ns.into(), name: name.into() }
    }

    fn invalid(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(CsiError::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn only_the_runtimes_own_path_is_accepted() {
        let root = Path::new("/runtime-mnt");
        let a = rt("default", "jfsdemo");
        let rel = check("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", root, &a).expect("exact");
        assert_eq!(rel, PathBuf::from("juicefs/default/jfsdemo/juicefs-fuse"));
        // The same with the root configured with a trailing slash.
        let rel = check("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", Path::new("/runtime-mnt/"), &a);
        assert_eq!(rel.expect("exact"), PathBuf::from("juicefs/default/jfsdemo/juicefs-fuse"));

        for other in [
            // Another runtime's path, under the root.
            "/runtime-mnt/juicefs/default/other/juicefs-fuse",
            "/runtime-mnt/juicefs/team-b/jfsdemo/juicefs-fuse",
            // Above, below or beside the FUSE mount path.
            "/runtime-mnt/juicefs/default/jfsdemo",
            "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse/sub",
            "/runtime-mnt/elsewhere",
            "/runtime-mnt",
            "/other-root/juicefs/default/jfsdemo/juicefs-fuse",
        ] {
            let m = invalid(check(other, root, &a));
            assert!(m.contains("is not \"/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse\""), "{other}: {m}");
        }
        // Spellings that would reach the same directory are refused too, for what they are.
        for (spelling, why) in [
            ("/runtime-mnt/juicefs/default/./jfsdemo/juicefs-fuse", "'.'"),
            ("/runtime-mnt/juicefs/default/x/../jfsdemo/juicefs-fuse", "'..'"),
            ("/runtime-mnt//juicefs/default/jfsdemo/juicefs-fuse", "empty component"),
            ("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse/", "empty component"),
            ("runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse", "not absolute"),
            ("/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse\0", "NUL"),
        ] {
            let m = invalid(check(spelling, root, &a));
            assert!(m.contains(why), "{spelling:?}: {m}");
        }
    }

    #[test]
    fn mount_root_must_be_plain() {
        for ok in ["/runtime-mnt", "/runtime-mnt/", "/tmp/x/runtime-mnt", "/"] {
            assert!(check_mount_root(Path::new(ok)).is_ok(), "{ok}");
        }
        for bad in ["runtime-mnt", "/a/../runtime-mnt", "/a/./b", "/a//b", "/a//"] {
            assert!(check_mount_root(Path::new(bad)).is_err(), "{bad}");
        }
    }
}

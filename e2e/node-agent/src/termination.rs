//! The termination-message file of a data-operation container (`pod::reports_phase`), as kubelet
//! provides it: the container writes its result to `terminationMessagePath` (default
//! `/dev/termination-log`) and the agent reports what it wrote in `state.terminated.message`.
//!
//! kubelet bind-mounts a per-container file of the pod's directory onto that path in the container's
//! rootfs. The agent's containers share the node's filesystem, so such a container runs in a mount
//! namespace of its own, a child of the node's: `/` is made a recursive slave there (nothing mounted in
//! it reaches the node) and the per-container file ([`NodeLayout::termination_log`]) is bound onto the
//! path. The namespace, and the bind with it, goes away with the container's last process: nothing is
//! mounted in the node's (or the host's) namespace, nothing is to be unmounted.
//!
//! The crate forbids `unsafe` code, so this is not done in a `pre_exec` hook: a short-lived thread of
//! its own unshares its mount namespace (`unshare` acts on the calling thread only, the agent's other
//! threads stay in the node's), mounts there and spawns the process, which inherits that namespace;
//! the thread then ends. Every failure of that setup is the agent's own, reported before any fork.
//!
//! A bind needs a target: when the path does not exist on the node, the agent creates it there as an
//! empty file (kubelet creates it in the container's rootfs); `/dev/termination-log` is then an empty
//! file in the host's `/dev`, left in place. It creates no directory: a path whose directory does not
//! exist on the node fails the container's start with a message saying so. Other containers (FUSE,
//! workers, CSI) run in the node's namespace, unchanged.

use crate::layout::NodeLayout;
use crate::process::SpawnError;
use rustix::mount::MountPropagationFlags;
use rustix::thread::UnshareFlags;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use tokio::process::{Child, Command};

/// `terminationMessagePath` when a container does not set it (the API server's default).
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// Bytes of the file kept as the message: kubelet's limit for one container (12 KiB for a whole pod,
/// more than the single container of a data-operation pod can use).
pub const MAX_MESSAGE_BYTES: u64 = 4096;

/// One container's termination-message file: `host_file`, bound onto `path` in its namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminationLog {
    /// The per-container file in the pod's directory, where the container's writes land.
    pub host_file: PathBuf,
    /// Where the container writes: its `terminationMessagePath`.
    pub path: PathBuf,
}

impl TerminationLog {
    pub fn new(layout: &NodeLayout, uid: &str, container: &str, path: Option<&str>) -> Self {
        let path = path.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PATH);
        Self { host_file: layout.termination_log(uid, container), path: PathBuf::from(path) }
    }

    fn error(&self, reason: String) -> SpawnError {
        SpawnError::TerminationMessage { path: self.path.display().to_string(), reason }
    }

    /// Recreates the per-container file empty, before each run of the container (a restarted
    /// container does not report its previous run's message; a process left of that run writes to
    /// the old file, not the new one).
    pub fn reset(&self) -> Result<(), SpawnError> {
        let err = |e: io::Error| self.error(format!("cannot create {}: {e}", self.host_file.display()));
        if let Some(dir) = self.host_file.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        match std::fs::remove_file(&self.host_file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        std::fs::OpenOptions::new().write(true).create_new(true).open(&self.host_file).map(drop).map_err(err)
    }

    /// Makes sure the bind has a target: an absolute path whose directory exists on the node; a
    /// missing file is created empty, an existing one (file or device) is left as it is.
    fn ensure_target(&self) -> Result<(), SpawnError> {
        if !self.path.is_absolute() {
            return Err(self.error("not an absolute path".into()));
        }
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            return Err(self.error(format!(
                "directory {} does not exist on the node (the node agent creates no directory for it)",
                dir.display()
            )));
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if m.is_dir() => Err(self.error("is a directory".into())),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match std::fs::OpenOptions::new().write(true).create_new(true).open(&self.path) {
                    Ok(_) => Ok(()),
                    // Another container's start created it in the meantime.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    Err(e) => Err(self.error(format!("cannot create it on the node as a mount target: {e}"))),
                }
            }
            Err(e) => Err(self.error(e.to_string())),
        }
    }

    /// Spawns `cmd` in a new mount namespace with the per-container file bound onto the path, from a
    /// thread of its own (see the module's doc). `Err`: the namespace could not be set up; `Ok` holds
    /// what the spawn itself returned.
    pub fn spawn(&self, cmd: &mut Command) -> Result<io::Result<Child>, SpawnError> {
        self.ensure_target()?;
        // tokio registers the child with the runtime it is spawned in: the thread enters the caller's.
        let runtime = tokio::runtime::Handle::try_current().ok();
        std::thread::scope(|scope| {
            let spawner = scope.spawn(|| {
                let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                self.enter_namespace()?;
                Ok(cmd.spawn())
            });
            spawner.join().unwrap_or_else(|_| Err(self.error("the thread setting up its namespace panicked".into())))
        })
    }

    /// Moves the calling thread — only it: with `NEWNS` it gets its own filesystem context too — into a
    /// new mount namespace whose mounts are slaves of the node's, and binds the file onto the path there.
    fn enter_namespace(&self) -> Result<(), SpawnError> {
        // `unshare_unsafe` is unsafe for `FILES` only (descriptors other threads may use); with `NEWNS`
        // alone the deprecated safe wrapper is sound, and the crate forbids `unsafe` blocks.
        #[allow(deprecated)]
        rustix::thread::unshare(UnshareFlags::NEWNS)
            .map_err(|e| self.error(format!("cannot create the container's mount namespace: {e}")))?;
        let slave = MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC;
        rustix::mount::mount_change("/", slave)
            .map_err(|e| self.error(format!("cannot make / a recursive slave in the container's namespace: {e}")))?;
        rustix::mount::mount_bind(&self.host_file, &self.path)
            .map_err(|e| self.error(format!("cannot bind-mount {} onto it: {e}", self.host_file.display())))
    }

    /// What the container wrote, at most [`MAX_MESSAGE_BYTES`] of it (invalid UTF-8 replaced); empty
    /// when it wrote nothing or the file cannot be read.
    pub fn read(&self) -> String {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&self.host_file)
            .and_then(|f| f.take(MAX_MESSAGE_BYTES).read_to_end(&mut bytes).map(drop));
        if let Err(e) = read {
            tracing::warn!(file = %self.host_file.display(), error = %e, "cannot read termination-message file");
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::temp_dir::TempDir;

    fn log_in(dir: &Path, path: &Path) -> TerminationLog {
        TerminationLog { host_file: dir.join("pod/containers/c/termination-log"), path: path.to_path_buf() }
    }

    #[test]
    fn the_default_path_and_the_per_container_file() {
        let layout = NodeLayout::new("/x/nodes/n", "/var/lib/kubelet");
        let t = TerminationLog::new(&layout, "u-1", "work", None);
        assert_eq!(t.path, PathBuf::from("/dev/termination-log"));
        assert_eq!(t.host_file, PathBuf::from("/var/lib/kubelet/pods/u-1/containers/work/termination-log"));
        assert_eq!(TerminationLog::new(&layout, "u-1", "work", Some("/tmp/result")).path, PathBuf::from("/tmp/result"));
    }

    #[test]
    fn reset_empties_the_file_and_read_caps_it() {
        let dir = TempDir::new("ferrofluid-termination-reset").expect("tempdir");
        let t = log_in(&dir.0, &dir.0.join("target"));
        t.reset().expect("reset");
        assert_eq!(t.read(), "");
        std::fs::write(&t.host_file, "x".repeat(5000)).expect("write");
        assert_eq!(t.read().len(), 4096);
        t.reset().expect("reset again");
        assert_eq!(t.read(), "", "a new run starts with an empty file");
        std::fs::write(&t.host_file, b"ok \xff").expect("write");
        assert_eq!(t.read(), "ok \u{fffd}");
    }

    #[test]
    fn the_target_is_created_empty_but_never_its_directory() {
        let dir = TempDir::new("ferrofluid-termination-target").expect("tempdir");
        let target = dir.0.join("termination-log");
        log_in(&dir.0, &target).ensure_target().expect("created");
        assert_eq!(std::fs::read(&target).expect("target").len(), 0);
        std::fs::write(&target, "kept").expect("write");
        log_in(&dir.0, &target).ensure_target().expect("exists");
        assert_eq!(std::fs::read_to_string(&target).expect("target"), "kept", "an existing file is left alone");

        let missing = dir.0.join("no-such-dir/termination-log");
        let err = log_in(&dir.0, &missing).ensure_target().expect_err("no directory");
        assert!(err.to_string().contains("does not exist on the node"), "{err}");
        assert!(!missing.parent().expect("parent").exists());
        let err = log_in(&dir.0, Path::new("relative/log")).ensure_target().expect_err("relative");
        assert!(err.to_string().contains("absolute"), "{err}");
        let err = log_in(&dir.0, &dir.0).ensure_target().expect_err("a directory");
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[tokio::test]
    async fn the_process_writes_its_own_file_in_a_namespace_of_its_own() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mount namespaces need root");
            return;
        }
        let dir = TempDir::new("ferrofluid-termination-spawn").expect("tempdir");
        let target = dir.0.join("termination-log");
        let t = log_in(&dir.0, &target);
        t.reset().expect("reset");
        let script = r#"printf '{"files":3}' > "$1"; readlink /proc/self/ns/mnt > "$2""#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "sh"]).arg(&target).arg(dir.0.join("ns"));
        let status = t.spawn(&mut cmd).expect("namespace").expect("spawned").wait().await.expect("waited");
        assert!(status.success());
        assert_eq!(t.read(), r#"{"files":3}"#);
        assert_eq!(std::fs::read(&target).expect("target").len(), 0, "the node's file is only the mount target");
        let ours = std::fs::read_link("/proc/thread-self/ns/mnt").expect("own namespace");
        let its = std::fs::read_to_string(dir.0.join("ns")).expect("its namespace");
        assert_ne!(its.trim(), ours.to_string_lossy(), "the process had a namespace of its own");
        let mounts = crate::volumes::mounts_under(&dir.0).expect("mountinfo");
        assert!(mounts.is_empty(), "nothing mounted here: {mounts:?}");
    }
}

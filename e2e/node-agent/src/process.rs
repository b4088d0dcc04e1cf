//! Host processes standing in for containers: each in its own process group (so its children are
//! signalled with it), stdout and stderr appended to a log file, environment exactly as given; with a
//! termination-message file, in a mount namespace of its own (`termination.rs`).

use crate::termination::TerminationLog;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// What to run.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log: PathBuf,
    /// The container's termination-message file, bound onto its `terminationMessagePath` in a mount
    /// namespace of the process's own (data-operation containers); `None`: the node's namespace.
    pub termination: Option<TerminationLog>,
}

/// Why a process could not be started; the message names the program, never its arguments.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("container has no command: the node agent runs `command` + `args`, images are not used")]
    NoCommand,
    #[error("executable not found: {0}")]
    NotFound(String),
    #[error("cannot execute {0}: permission denied")]
    PermissionDenied(String),
    #[error("working directory {0} does not exist")]
    NoWorkingDir(String),
    #[error("cannot open log file {path}: {source}")]
    Log { path: String, source: io::Error },
    #[error("terminationMessagePath {path}: {reason}")]
    TerminationMessage { path: String, reason: String },
    #[error("cannot start {program}: {source}")]
    Other { program: String, source: io::Error },
}

/// Starts `spec` in a new process group whose id is the child's pid.
pub fn spawn(spec: &ProcessSpec) -> Result<Child, SpawnError> {
    let program = spec.argv.first().ok_or(SpawnError::NoCommand)?;
    if !spec.cwd.is_dir() {
        return Err(SpawnError::NoWorkingDir(spec.cwd.display().to_string()));
    }
    let log = open_log(&spec.log)?;
    let log_err = log.try_clone().map_err(|source| SpawnError::Log { path: spec.log.display().to_string(), source })?;
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = match &spec.termination {
        Some(termination) => termination.spawn(&mut cmd)?,
        None => cmd.spawn(),
    };
    spawned.map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(program.clone()),
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(program.clone()),
        _ => SpawnError::Other { program: program.clone(), source },
    })
}

/// Opens (creating) a log file for appending.
pub fn open_log(path: &Path) -> Result<std::fs::File, SpawnError> {
    let err = |source| SpawnError::Log { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)
}

/// Appends one line to a log file (the agent's notes between a container's own output).
pub fn log_line(path: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = open_log(path) {
        let _ = writeln!(f, "[node-agent] {line}");
    }
}

/// Sends `signal` to every process in group `pgid`; a group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pgid).ok().and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, signal)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!(pgid, error = %e, "cannot signal process group");
    }
}

/// Stops a running process the kubelet way: SIGTERM to its group, SIGKILL after `grace`. Whatever
/// is left of the group after the leader exits is killed too, so no child outlives its container.
pub async fn terminate(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let pgid = child.id();
    if let Some(pgid) = pgid {
        signal_group(pgid, rustix::process::Signal::TERM);
    }
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pgid) = pgid {
                signal_group(pgid, rustix::process::Signal::KILL);
            }
            child.wait().await
        }
    };
    if let Some(pgid) = pgid {
        signal_group(pgid, rustix::process::Signal::KILL);
    }
    status
}

/// Kills what is left of a group whose leader has exited on its own.
pub fn reap_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid {
        signal_group(pgid, rustix::process::Signal::KILL);
    }
}

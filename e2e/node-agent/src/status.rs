//! Status records the agent keeps under `.local/nodes/<node>/status/`, one JSON file per pod and per
//! container, rewritten atomically on each change. They tell a person or a test what the agent did,
//! in more detail than the container state it reports in the Pod's status (`pod_status`). They never
//! hold env values or expanded arguments, which may carry secrets.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    /// `waiting`, `running`, `exited`, `start-failed`, `config-error`, `completed` or `stopped`.
    pub state: String,
    /// Process id (and process group id) while running.
    pub pid: Option<u32>,
    /// Processes started so far.
    pub starts: u32,
    /// Failed starts plus non-zero exits so far.
    pub failures: u32,
    pub last_exit_code: Option<i32>,
    pub last_signal: Option<i32>,
    /// What went wrong last, e.g. `executable not found: /bin/nope`.
    pub message: Option<String>,
    /// Seconds the agent waits before the next start, while it waits.
    pub backoff_secs: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PodRecord {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// Whether the agent runs the pod's containers (only for pods ferrofluid created).
    pub runs_containers: bool,
    /// `waiting-for-ip`, `preparing-volumes`, `running`, `stopping` or `stopped`.
    pub phase: String,
    /// CSI volumes published into the pod, by PV name.
    pub csi_volumes: Vec<String>,
    pub message: Option<String>,
}

/// Writes `value` as JSON to `path` via a temporary file and a rename, so readers never see half a file.
pub fn write<T: Serialize>(path: &Path, value: &T) {
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot write status record");
    }
}

/// Reads a record written by [`write`].
pub fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path)?;
    Ok(serde_json::from_slice(&bytes)?)
}

//! A small durable record of what this driver staged and published on the node (`state.json` under the
//! state dir, replaced atomically). Together with mountinfo it is all the recovery loop and NodeUnstage
//! need, so a restarted plugin carries on where the previous one stopped.

use crate::validate::RuntimeRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub volume_id: String,
    pub staging_path: PathBuf,
    pub fluid_path: PathBuf,
    pub runtime: Option<RuntimeRef>,
    pub label_key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRecord {
    pub volume_id: String,
    pub target: PathBuf,
    pub fluid_path: PathBuf,
    pub read_only: bool,
    pub runtime: Option<RuntimeRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// By volume id.
    #[serde(default)]
    pub staged: BTreeMap<String, StageRecord>,
    /// By (resolved) target path.
    #[serde(default)]
    pub published: BTreeMap<PathBuf, PublishRecord>,
}

impl State {
    pub fn publications_of<'a>(&'a self, volume_id: &'a str) -> impl Iterator<Item = &'a PublishRecord> + 'a {
        self.published.values().filter(move |p| p.volume_id == volume_id)
    }

    /// Whether a staged volume other than `volume_id` needs the FUSE label `label_key` — one served by the
    /// same FUSE client (a dataset that refers to another with `dataset://`, or the one it refers to).
    pub fn label_needed_by_another(&self, volume_id: &str, label_key: &str) -> bool {
        self.staged.values().any(|r| r.volume_id != volume_id && r.label_key == label_key)
    }
}

pub struct StateStore {
    file: PathBuf,
    state: Mutex<State>,
}

impl StateStore {
    /// Opens (creating the directory) and loads the state; a missing file is an empty state.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("creating state dir {}", dir.display()))?;
        let file = dir.join("state.json");
        let state = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        Ok(Self { file, state: Mutex::new(state) })
    }

    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Applies `change` and writes the result before returning; on a write error the change is undone.
    pub fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> std::io::Result<R> {
        let mut guard = self.lock();
        let before = guard.clone();
        let out = change(&mut guard);
        if *guard != before
            && let Err(e) = self.write(&guard)
        {
            *guard = before;
            return Err(e);
        }
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent State (changes are whole-record writes).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, state: &State) -> std::io::Result<()> {
        let tmp = self.file.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("csi-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::open(&dir).expect("open");
        let rec = PublishRecord {
            volume_id: "default-jfsdemo".into(),
            target: "/var/lib/kubelet/pods/p/mount".into(),
            fluid_path: "/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse".into(),
            read_only: true,
            runtime: Some(RuntimeRef { namespace: "default".into(), name: "jfsdemo".into() }),
        };
        store.update(|s| s.published.insert(rec.target.clone(), rec.clone())).expect("write");
        let reopened = StateStore::open(&dir).expect("reopen");
        assert_eq!(reopened.snapshot().published.get(&rec.target), Some(&rec));
        assert_eq!(reopened.snapshot().publications_of("default-jfsdemo").count(), 1);
        assert_eq!(reopened.snapshot().publications_of("other").count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_label_is_needed_while_another_volume_of_the_same_fuse_client_is_staged() {
        let staged = |id: &str, label: &str| StageRecord {
            volume_id: id.into(),
            staging_path: format!("/stage/{id}").into(),
            fluid_path: "/runtime-mnt/juicefs/a/src/juicefs-fuse".into(),
            runtime: Some(RuntimeRef { namespace: "a".into(), name: "src".into() }),
            label_key: label.into(),
        };
        let mut s = State::default();
        s.staged.insert("a-src".into(), staged("a-src", "fluid.io/f-a-src"));
        assert!(!s.label_needed_by_another("a-src", "fluid.io/f-a-src"), "alone: the label may go");
        s.staged.insert("b-mine".into(), staged("b-mine", "fluid.io/f-a-src"));
        s.staged.insert("c-other".into(), staged("c-other", "fluid.io/f-c-other"));
        assert!(s.label_needed_by_another("a-src", "fluid.io/f-a-src"), "the referring volume still needs it");
        assert!(s.label_needed_by_another("b-mine", "fluid.io/f-a-src"), "and the other way round");
        assert!(!s.label_needed_by_another("c-other", "fluid.io/f-c-other"));
    }
}

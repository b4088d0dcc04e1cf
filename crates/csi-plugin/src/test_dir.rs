//! A directory of a unit test's own under the system temp dir, emptied on creation and removed on drop.

use std::path::PathBuf;

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `<tmp>/csi-<tag>-<pid>`.
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("csi-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

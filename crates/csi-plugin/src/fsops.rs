//! File-system calls that may touch a FUSE mount (`stat` of a mount or a pod's bind of it, `statvfs`),
//! run where a hung FUSE client cannot hurt: on the blocking pool, bounded in time, and at most one in
//! flight per (operation, path). A call against a hung client stays blocked in its thread — nothing
//! can interrupt it — but every later caller joins that same call instead of starting another, so a
//! hung client costs one thread per path however often it is asked, and the RPCs answer in bounded time.

use crate::mounter::{self, Health};
use crate::proto::VolumeUsage;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an RPC waits for a `stat`/`statvfs` that may touch a FUSE mount.
pub const LIMIT: Duration = Duration::from_secs(5);

/// One kind of call, single-flight per key.
struct SingleFlight<K, T: Clone> {
    inflight: Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, T>>>>>,
}

impl<K, T: Clone> Clone for SingleFlight<K, T> {
    fn clone(&self) -> Self {
        Self { inflight: self.inflight.clone() }
    }
}

impl<K, T: Clone> Default for SingleFlight<K, T> {
    fn default() -> Self {
        Self { inflight: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<K, T> SingleFlight<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// `call` for `key` on the blocking pool — or the call already in flight for it — waited for at most
    /// `limit`; `timed_out` when it did not finish in time (it keeps running, and later callers join it).
    async fn run(
        &self,
        key: K,
        limit: Duration,
        call: impl FnOnce() -> T + Send + 'static,
        timed_out: T,
        failed: T,
    ) -> T {
        let shared = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let inflight = self.inflight.clone();
                    let k = key.clone();
                    // A task of its own: the entry is removed when the call ends, whether or not anyone
                    // still waits, so a later caller never gets a stale answer.
                    let task = tokio::spawn(async move {
                        let result = tokio::task::spawn_blocking(call).await;
                        inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                        result
                    });
                    let f = task.map(move |r| r.ok().and_then(Result::ok).unwrap_or(failed)).boxed().shared();
                    map.insert(key, f.clone());
                    f
                }
            }
        };
        tokio::time::timeout(limit, shared).await.unwrap_or(timed_out)
    }

    /// Calls in flight (hung ones included).
    fn in_flight(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The bounded, single-flight file-system calls of the driver.
#[derive(Clone, Default)]
pub struct FsOps {
    probes: SingleFlight<PathBuf, Health>,
    statvfs: SingleFlight<PathBuf, Result<Vec<VolumeUsage>, Health>>,
}

impl FsOps {
    /// [`mounter::probe`] (`stat`) of `path`, bounded.
    pub async fn probe(&self, path: &Path, limit: Duration) -> Health {
        let p = path.to_path_buf();
        let failed = Health::Error("the probe task failed".into());
        self.probes.run(path.to_path_buf(), limit, move || mounter::probe(&p), Health::TimedOut, failed).await
    }

    /// `statvfs` of `path` as volume usage, bounded.
    pub async fn usage(&self, path: &Path, limit: Duration) -> Result<Vec<VolumeUsage>, Health> {
        let p = path.to_path_buf();
        let failed = Err(Health::Error("the statvfs task failed".into()));
        self.statvfs
            .run(path.to_path_buf(), limit, move || crate::volume_stats::statvfs(&p), Err(Health::TimedOut), failed)
            .await
    }

    /// Calls still in flight: at most one per hung path.
    pub fn in_flight(&self) -> usize {
        self.probes.in_flight() + self.statvfs.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_call_is_joined_not_repeated_and_answers_in_time() {
        let flight: SingleFlight<&str, u32> = SingleFlight::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        for _ in 0..5 {
            let (started, rx) = (started.clone(), release_rx.clone());
            let t0 = std::time::Instant::now();
            let v = flight
                .run(
                    "hung",
                    Duration::from_millis(50),
                    move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        // Blocks like a stat against a stopped FUSE daemon, until released.
                        let _ = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        7
                    },
                    0,
                    1,
                )
                .await;
            assert_eq!(v, 0, "timed out");
            assert!(t0.elapsed() < Duration::from_secs(5), "bounded");
        }
        assert_eq!(started.load(Ordering::SeqCst), 1, "one blocked call for the path, not one per caller");
        assert_eq!(flight.in_flight(), 1);
        release_tx.send(()).expect("release");
        // Once it ends the entry goes, and the next caller starts a fresh call.
        for _ in 0..100 {
            if flight.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(flight.in_flight(), 0);
        assert_eq!(flight.run("hung", Duration::from_secs(5), || 9, 0, 1).await, 9, "a fresh answer, not a stale one");
    }
}

//! Waiting until the watch caches hold their first list, from many reconciles at once.
//!
//! kube's `Store::wait_until_ready` keeps a single waker (a oneshot receiver behind a mutex): when several
//! tasks wait at the same time, only the one that polled last is woken when the list arrives; the others
//! stay pending for good. A controller starts many passes concurrently right after a restart, before its
//! caches are listed — those passes then never finish, their objects are never reconciled again, and the
//! graceful stop waits on them forever. [`ReadyOnce`] lets exactly one task wait on the stores; every
//! other waiter waits on that one (tokio's `OnceCell` wakes them all).

use std::future::Future;
use tokio::sync::OnceCell;

/// The caches' readiness, waited for by one task at a time and remembered once reached.
#[derive(Debug, Default)]
pub struct ReadyOnce {
    reached: OnceCell<Result<(), String>>,
}

impl ReadyOnce {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `wait` (the plain waits on every store, in turn) in one caller; the others wait on its
    /// outcome. A failed wait (a dropped writer) is remembered as failed. If the waiting caller is
    /// dropped, the next caller takes over.
    pub async fn wait<F, Fut, E>(&self, wait: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        self.reached.get_or_init(|| async { wait().await.map_err(|e| e.to_string()) }).await.clone()
    }

    /// Whether the caches were seen ready.
    pub fn reached(&self) -> bool {
        matches!(self.reached.get(), Some(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use std::sync::Arc;
    use std::time::Duration;

    const WAITERS: usize = 8;

    /// Eight passes waiting at once, then the initial list: every one of them goes on.
    #[tokio::test]
    async fn every_concurrent_waiter_is_woken() {
        let mut writer = Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let ready = Arc::new(ReadyOnce::new());
        let mut waiters = Vec::new();
        for _ in 0..WAITERS {
            let (store, ready) = (store.clone(), ready.clone());
            waiters.push(tokio::spawn(async move { ready.wait(|| store.wait_until_ready()).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // all of them are waiting now
        assert!(!ready.reached());
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        for w in waiters {
            let outcome = tokio::time::timeout(Duration::from_secs(5), w).await.expect("a waiter was never woken");
            assert_eq!(outcome.expect("task"), Ok(()));
        }
        assert!(ready.reached());
    }

    /// Why [`ReadyOnce`] exists: with the plain wait, some of several concurrent waiters are never woken.
    /// (Should kube fix this, this test fails and `ReadyOnce` can go.)
    #[tokio::test]
    async fn the_plain_wait_loses_concurrent_waiters() {
        let mut writer = Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let mut waiters = Vec::new();
        for _ in 0..WAITERS {
            let store = store.clone();
            waiters.push(tokio::spawn(async move { store.wait_until_ready().await.is_ok() }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        let mut woken = 0;
        for w in waiters {
            if let Ok(done) = tokio::time::timeout(Duration::from_millis(500), w).await {
                woken += usize::from(done.expect("task"));
            }
        }
        assert!(woken < WAITERS, "all {WAITERS} plain waiters were woken: kube's wait_until_ready wakes them all now");
    }
}

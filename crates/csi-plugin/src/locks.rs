//! Per-volume and per-target guards: a second call for the same key while one is in progress is
//! answered `Aborted` (kubelet retries), so operations on one volume or target never interleave.

use crate::error::{CsiError, Result};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct KeyLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

pub struct KeyGuard {
    held: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl KeyLocks {
    pub fn try_lock(&self, key: String) -> Result<KeyGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(key.clone()) {
            return Err(CsiError::Aborted(format!("an operation on {key} is already in progress")));
        }
        Ok(KeyGuard { held: self.held.clone(), key })
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_aborted_until_release() {
        let locks = KeyLocks::default();
        let g = locks.try_lock("target:/a".into()).expect("first");
        assert!(matches!(locks.try_lock("target:/a".into()), Err(CsiError::Aborted(_))));
        assert!(locks.try_lock("target:/b".into()).is_ok());
        drop(g);
        assert!(locks.try_lock("target:/a".into()).is_ok());
    }
}

//! Per-object exponential backoff with jitter for failed reconciles: the n-th failure in a row of one
//! object waits `base × 2^(n-1)` (at most `max`), ±20%, so objects failing together spread out and a
//! persistent error costs ever fewer API requests. A success resets the object's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Pure: the delay after `failures` failures in a row (`failures >= 1`), with `jitter` in `[-1, 1]`.
pub fn delay(base: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let exp = 2f64.powi(i32::try_from(failures.saturating_sub(1).min(30)).unwrap_or(30));
    let raw = (base.as_secs_f64() * exp).min(max.as_secs_f64());
    Duration::from_secs_f64(raw * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0)))
}

pub struct ErrorBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failures: Mutex::new(HashMap::new()) }
    }

    /// Records one more failure of `key` and returns how long to wait before retrying it.
    pub fn next(&self, key: &str) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay(self.base, self.max, *n, rand::random::<f64>() * 2.0 - 1.0)
    }

    /// `key` succeeded: its next failure starts from `base` again.
    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Failures in a row of `key` so far.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(delay(b, m, 1, 0.0), Duration::from_secs(1));
        assert_eq!(delay(b, m, 2, 0.0), Duration::from_secs(2));
        assert_eq!(delay(b, m, 4, 0.0), Duration::from_secs(8));
        assert_eq!(delay(b, m, 20, 0.0), Duration::from_secs(60));
        assert_eq!(delay(b, m, 1, 1.0), Duration::from_millis(1200));
        assert_eq!(delay(b, m, 1, -1.0), Duration::from_millis(800));
        assert_eq!(delay(b, m, u32::MAX, 5.0), Duration::from_secs(72), "jitter is clamped");
    }

    #[test]
    fn counts_per_object_and_resets() {
        let b = ErrorBackoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..3 {
            b.next("a");
        }
        b.next("b");
        assert_eq!((b.failures("a"), b.failures("b")), (3, 1));
        assert!(b.next("a") >= Duration::from_millis(6400), "4th failure: 8 s ± 20%");
        b.reset("a");
        assert_eq!(b.failures("a"), 0);
        assert!(b.next("a") <= Duration::from_millis(1200));
    }
}

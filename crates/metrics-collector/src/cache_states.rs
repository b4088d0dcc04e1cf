//! From the readings of a dataset's JuiceFS clients to its cache figures and `cacheStates`, pure.

use crate::exposition::JuiceFsReading;
use crate::units::{format_ratio, human_bytes, percentage, ratio};
use ferrofluid_api::CacheStates;

/// A dataset's cache, summed over the clients (workers and FUSE) that have reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatasetCache {
    pub cached_bytes: u64,
    pub capacity_bytes: Option<u64>,
    /// Used space of the file system (the largest any client reported).
    pub used_space: Option<u64>,
    pub hits: u64,
    pub misses: u64,
    pub hit_bytes: u64,
    pub miss_bytes: u64,
}

/// Sums the readings. `None` when no client has ever answered: nothing is known, so nothing is written
/// (a failing client contributes its last good reading, which the caller passes in; one that never
/// answered contributes nothing).
pub fn aggregate<'a>(
    readings: impl IntoIterator<Item = &'a JuiceFsReading>,
    capacity_bytes: Option<u64>,
) -> Option<DatasetCache> {
    let mut total: Option<DatasetCache> = None;
    for r in readings {
        let t = total.get_or_insert(DatasetCache { capacity_bytes, ..Default::default() });
        t.cached_bytes = t.cached_bytes.saturating_add(r.cache_bytes);
        t.hits = t.hits.saturating_add(r.hits);
        t.misses = t.misses.saturating_add(r.misses);
        t.hit_bytes = t.hit_bytes.saturating_add(r.hit_bytes);
        t.miss_bytes = t.miss_bytes.saturating_add(r.miss_bytes);
        t.used_space = match (t.used_space, r.used_space) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    total
}

impl DatasetCache {
    /// Hits over all block reads; 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits, self.hits.saturating_add(self.misses)).unwrap_or(0.0)
    }

    /// Bytes served from cache over all bytes read; 0 before any read.
    pub fn throughput_ratio(&self) -> f64 {
        ratio(self.hit_bytes, self.hit_bytes.saturating_add(self.miss_bytes)).unwrap_or(0.0)
    }

    /// The `cacheStates` the collector owns. `cachedPercentage` is left out while the file system reports
    /// no used space (a percentage of nothing means nothing); `cacheCapacity` while a quota is malformed.
    pub fn cache_states(&self) -> CacheStates {
        CacheStates {
            cache_capacity: self.capacity_bytes.map(human_bytes),
            cached: Some(human_bytes(self.cached_bytes)),
            cached_percentage: self.used_space.and_then(|used| percentage(self.cached_bytes, used)),
            cache_hit_ratio: Some(format_ratio(self.hit_ratio())),
            cache_throughput_ratio: Some(format_ratio(self.throughput_ratio())),
            ..Default::default()
        }
    }

    /// `status.ufsTotal` of the Dataset: the file system's used space.
    pub fn ufs_total(&self) -> Option<String> {
        self.used_space.map(human_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(
        cache: u64,
        hits: u64,
        misses: u64,
        hit_bytes: u64,
        miss_bytes: u64,
        used: Option<u64>,
    ) -> JuiceFsReading {
        JuiceFsReading {
            cache_bytes: cache,
            hits,
            misses,
            hit_bytes,
            miss_bytes,
            used_space: used,
            ..Default::default()
        }
    }

    #[test]
    fn every_field_from_two_clients() {
        let worker = reading(1 << 30, 5, 1, 5 << 20, 1 << 20, Some(4 << 30));
        let fuse = reading(1 << 29, 0, 4, 0, 4 << 20, Some(4 << 30));
        let cache = aggregate([&worker, &fuse], Some(40 << 30)).expect("readings");
        assert_eq!(cache.cached_bytes, (1 << 30) + (1 << 29));
        assert_eq!(
            cache.cache_states(),
            CacheStates {
                cache_capacity: Some("40.00GiB".into()),
                cached: Some("1.50GiB".into()),
                cached_percentage: Some("37.5%".into()),
                cache_hit_ratio: Some("50.0%".into()),
                cache_throughput_ratio: Some("50.0%".into()),
                ..Default::default()
            }
        );
        assert_eq!(cache.ufs_total(), Some("4.00GiB".into()));
        assert_eq!(cache.hit_ratio(), 0.5);
    }

    #[test]
    fn zero_reads() {
        let cache = aggregate([&reading(0, 0, 0, 0, 0, Some(0))], Some(1 << 30)).expect("reading");
        let states = cache.cache_states();
        assert_eq!(states.cached.as_deref(), Some("0.00B"));
        assert_eq!(states.cache_hit_ratio.as_deref(), Some("0.0%"));
        assert_eq!(states.cache_throughput_ratio.as_deref(), Some("0.0%"));
        assert_eq!(states.cached_percentage, None, "empty file system: no percentage");
        assert_eq!(cache.ufs_total().as_deref(), Some("0.00B"));
    }

    #[test]
    fn zero_capacity_and_unknown_capacity() {
        let r = reading(1 << 20, 1, 0, 1, 0, None);
        let zero = aggregate([&r], Some(0)).expect("reading").cache_states();
        assert_eq!(zero.cache_capacity.as_deref(), Some("0.00B"));
        assert_eq!(zero.cached.as_deref(), Some("1.00MiB"));
        let unknown = aggregate([&r], None).expect("reading");
        assert_eq!(unknown.cache_states().cache_capacity, None);
        assert_eq!(unknown.ufs_total(), None, "no client reported used space");
    }

    #[test]
    fn partial_scrape_failures() {
        // The caller passes only the clients that have a reading: one answered, one never did.
        let answered = reading(100, 3, 1, 300, 100, Some(1000));
        let cache = aggregate([&answered], Some(0)).expect("one reading is enough");
        assert_eq!(cache.cache_states().cache_hit_ratio.as_deref(), Some("75.0%"));
        assert_eq!(cache.cache_states().cached_percentage.as_deref(), Some("10.0%"));
        // Nobody answered yet: nothing is derived, nothing written.
        assert_eq!(aggregate(std::iter::empty(), Some(1 << 30)), None);
    }

    #[test]
    fn used_space_reported_by_some_clients_only() {
        let a = reading(10, 0, 0, 0, 0, None);
        let b = reading(10, 0, 0, 0, 0, Some(40));
        let cache = aggregate([&a, &b], None).expect("readings");
        assert_eq!(cache.used_space, Some(40));
        assert_eq!(cache.cache_states().cached_percentage.as_deref(), Some("50.0%"));
    }
}

//! The collector's own Prometheus series. Per-dataset series carry `namespace` and `dataset` labels only
//! (plus `kind` = worker|fuse for scrape series), so their number is bounded by the datasets; they are
//! removed when the dataset's runtime goes away.

use crate::cache_states::DatasetCache;
use crate::targets::TargetKind;
use ferrofluid_api::DatasetKey;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct CollectorMetrics {
    cached_bytes: GaugeVec,
    capacity_bytes: GaugeVec,
    ufs_used_bytes: GaugeVec,
    hit_ratio: GaugeVec,
    throughput_ratio: GaugeVec,
    hits: IntCounterVec,
    misses: IntCounterVec,
    hit_bytes: IntCounterVec,
    miss_bytes: IntCounterVec,
    targets: IntGaugeVec,
    scrape_errors: IntCounterVec,
    scrape_duration: HistogramVec,
    status_writes: IntCounterVec,
    status_write_errors: IntCounterVec,
}

const DATASET: &[&str] = &["namespace", "dataset"];
const DATASET_KIND: &[&str] = &["namespace", "dataset", "kind"];

/// Growth of a client's counters since its previous reading, added to the dataset's `_total` series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub hits: u64,
    pub misses: u64,
    pub hit_bytes: u64,
    pub miss_bytes: u64,
}

impl CollectorMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), DATASET);
        let counter = |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
        let m = Self {
            cached_bytes: gauge(
                "ferrofluid_dataset_cache_cached_bytes",
                "Bytes in the block caches of a dataset's JuiceFS workers and FUSE clients",
            )?,
            capacity_bytes: gauge(
                "ferrofluid_dataset_cache_capacity_bytes",
                "Configured cache quota per worker times ready workers",
            )?,
            ufs_used_bytes: gauge(
                "ferrofluid_dataset_ufs_used_bytes",
                "Used space of the dataset's JuiceFS file system",
            )?,
            hit_ratio: gauge("ferrofluid_dataset_cache_hit_ratio", "Block-cache hits over all block reads (0 to 1)")?,
            throughput_ratio: gauge(
                "ferrofluid_dataset_cache_throughput_ratio",
                "Bytes served from cache over all bytes read (0 to 1)",
            )?,
            hits: counter("ferrofluid_dataset_cache_hits_total", "Block reads served from cache", DATASET)?,
            misses: counter("ferrofluid_dataset_cache_misses_total", "Block reads that missed the cache", DATASET)?,
            hit_bytes: counter("ferrofluid_dataset_cache_hit_bytes_total", "Bytes served from cache", DATASET)?,
            miss_bytes: counter("ferrofluid_dataset_cache_miss_bytes_total", "Bytes read past the cache", DATASET)?,
            targets: IntGaugeVec::new(
                Opts::new("ferrofluid_collector_targets", "Metrics endpoints scraped per dataset and kind"),
                DATASET_KIND,
            )?,
            scrape_errors: counter(
                "ferrofluid_collector_scrape_errors_total",
                "Scrapes that failed (unreachable, timed out, not JuiceFS metrics)",
                DATASET_KIND,
            )?,
            scrape_duration: HistogramVec::new(
                HistogramOpts::new(
                    "ferrofluid_collector_scrape_duration_seconds",
                    "Time to scrape one endpoint, by target kind",
                )
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["kind"],
            )?,
            status_writes: counter(
                "ferrofluid_collector_status_writes_total",
                "Status applies, by resource",
                &["resource"],
            )?,
            status_write_errors: counter(
                "ferrofluid_collector_status_write_errors_total",
                "Status applies that failed, by resource",
                &["resource"],
            )?,
        };
        registry.register(Box::new(m.cached_bytes.clone()))?;
        registry.register(Box::new(m.capacity_bytes.clone()))?;
        registry.register(Box::new(m.ufs_used_bytes.clone()))?;
        registry.register(Box::new(m.hit_ratio.clone()))?;
        registry.register(Box::new(m.throughput_ratio.clone()))?;
        registry.register(Box::new(m.hits.clone()))?;
        registry.register(Box::new(m.misses.clone()))?;
        registry.register(Box::new(m.hit_bytes.clone()))?;
        registry.register(Box::new(m.miss_bytes.clone()))?;
        registry.register(Box::new(m.targets.clone()))?;
        registry.register(Box::new(m.scrape_errors.clone()))?;
        registry.register(Box::new(m.scrape_duration.clone()))?;
        registry.register(Box::new(m.status_writes.clone()))?;
        registry.register(Box::new(m.status_write_errors.clone()))?;
        Ok(m)
    }

    pub fn scraped(&self, key: &DatasetKey, kind: TargetKind, seconds: f64, ok: bool) {
        self.scrape_duration.with_label_values(&[kind.as_str()]).observe(seconds);
        let errors = self.scrape_errors.with_label_values(&[&key.namespace, &key.name, kind.as_str()]);
        if !ok {
            errors.inc();
        }
    }

    pub fn set_targets(&self, key: &DatasetKey, kind: TargetKind, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.targets.with_label_values(&[&key.namespace, &key.name, kind.as_str()]).set(n);
    }

    pub fn set_capacity(&self, key: &DatasetKey, bytes: Option<u64>) {
        let labels = [key.namespace.as_str(), key.name.as_str()];
        match bytes {
            Some(b) => self.capacity_bytes.with_label_values(&labels).set(b as f64),
            None => {
                let _ = self.capacity_bytes.remove_label_values(&labels);
            }
        }
    }

    pub fn set_cache(&self, key: &DatasetKey, cache: &DatasetCache) {
        let labels = [key.namespace.as_str(), key.name.as_str()];
        self.cached_bytes.with_label_values(&labels).set(cache.cached_bytes as f64);
        self.hit_ratio.with_label_values(&labels).set(cache.hit_ratio());
        self.throughput_ratio.with_label_values(&labels).set(cache.throughput_ratio());
        match cache.used_space {
            Some(used) => self.ufs_used_bytes.with_label_values(&labels).set(used as f64),
            None => {
                let _ = self.ufs_used_bytes.remove_label_values(&labels);
            }
        }
    }

    pub fn add_counters(&self, key: &DatasetKey, d: CounterDelta) {
        let labels = [key.namespace.as_str(), key.name.as_str()];
        self.hits.with_label_values(&labels).inc_by(d.hits);
        self.misses.with_label_values(&labels).inc_by(d.misses);
        self.hit_bytes.with_label_values(&labels).inc_by(d.hit_bytes);
        self.miss_bytes.with_label_values(&labels).inc_by(d.miss_bytes);
    }

    pub fn status_write(&self, resource: &str, ok: bool) {
        self.status_writes.with_label_values(&[resource]).inc();
        // Created with the first write, so the error rate reads 0 (the dashboard's "Status writes" panel)
        // rather than no data until the first error.
        let errors = self.status_write_errors.with_label_values(&[resource]);
        if !ok {
            errors.inc();
        }
    }

    /// Removes every series of a dataset whose runtime is gone.
    pub fn forget(&self, key: &DatasetKey) {
        let labels = [key.namespace.as_str(), key.name.as_str()];
        for g in
            [&self.cached_bytes, &self.capacity_bytes, &self.ufs_used_bytes, &self.hit_ratio, &self.throughput_ratio]
        {
            let _ = g.remove_label_values(&labels);
        }
        for c in [&self.hits, &self.misses, &self.hit_bytes, &self.miss_bytes] {
            let _ = c.remove_label_values(&labels);
        }
        for kind in TargetKind::ALL {
            let with_kind = [key.namespace.as_str(), key.name.as_str(), kind.as_str()];
            let _ = self.targets.remove_label_values(&with_kind);
            let _ = self.scrape_errors.remove_label_values(&with_kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn render(registry: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut buf).expect("encode");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn series_appear_per_dataset_and_vanish_on_forget() {
        let registry = Registry::new();
        let m = CollectorMetrics::register(&registry).expect("register");
        let a = DatasetKey::new("ns", "a");
        let b = DatasetKey::new("ns", "b");
        let cache =
            DatasetCache { cached_bytes: 2048, hits: 3, misses: 1, used_space: Some(4096), ..Default::default() };
        for key in [&a, &b] {
            m.set_cache(key, &cache);
            m.set_capacity(key, Some(1 << 30));
            m.add_counters(key, CounterDelta { hits: 3, misses: 1, ..Default::default() });
            m.set_targets(key, TargetKind::Worker, 2);
            m.scraped(key, TargetKind::Fuse, 0.01, false);
        }
        let text = render(&registry);
        assert!(text.contains(r#"ferrofluid_dataset_cache_cached_bytes{dataset="a",namespace="ns"} 2048"#), "{text}");
        assert!(text.contains(r#"ferrofluid_dataset_cache_hit_ratio{dataset="a",namespace="ns"} 0.75"#), "{text}");
        assert!(text.contains(r#"ferrofluid_dataset_cache_hits_total{dataset="b",namespace="ns"} 3"#), "{text}");
        assert!(
            text.contains(r#"ferrofluid_collector_scrape_errors_total{dataset="a",kind="fuse",namespace="ns"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"ferrofluid_collector_scrape_duration_seconds_count{kind="fuse"} 2"#), "{text}");

        m.forget(&a);
        let text = render(&registry);
        assert!(!text.contains(r#"dataset="a""#), "series of a remain:\n{text}");
        assert!(text.contains(r#"ferrofluid_dataset_cache_cached_bytes{dataset="b",namespace="ns"} 2048"#), "{text}");
    }
}

//! Reading one JuiceFS client's `/metrics` answer (Prometheus text exposition format) into the few
//! figures the collector needs. Parsing is done by `prometheus-parse`; this module only selects.

use prometheus_parse::{Scrape, Value};
use std::collections::BTreeMap;

/// JuiceFS metric names (checked against `juicefs mount --metrics` of JuiceFS 1.4.2).
pub const BLOCKCACHE_BYTES: &str = "juicefs_blockcache_bytes";
pub const BLOCKCACHE_BLOCKS: &str = "juicefs_blockcache_blocks";
pub const BLOCKCACHE_HITS: &str = "juicefs_blockcache_hits";
pub const BLOCKCACHE_MISS: &str = "juicefs_blockcache_miss";
pub const BLOCKCACHE_HIT_BYTES: &str = "juicefs_blockcache_hit_bytes";
pub const BLOCKCACHE_MISS_BYTES: &str = "juicefs_blockcache_miss_bytes";
pub const USED_SPACE: &str = "juicefs_used_space";
pub const USED_INODES: &str = "juicefs_used_inodes";

/// What one JuiceFS client reports about its block cache and the file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JuiceFsReading {
    /// Bytes in the local block cache.
    pub cache_bytes: u64,
    /// Blocks in the local block cache.
    pub cache_blocks: u64,
    /// Block reads served from the cache (counter).
    pub hits: u64,
    /// Block reads that missed the cache (counter).
    pub misses: u64,
    /// Bytes served from the cache (counter).
    pub hit_bytes: u64,
    /// Bytes read past the cache, from the object store (counter).
    pub miss_bytes: u64,
    /// Space used in the whole file system, when reported.
    pub used_space: Option<u64>,
    /// Inodes used in the whole file system, when reported.
    pub used_inodes: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExpositionError {
    #[error("unreadable exposition text: {0}")]
    Unreadable(String),
    #[error("not JuiceFS metrics: {0} is missing")]
    Missing(&'static str),
    #[error("{metric} has an invalid value {value}")]
    InvalidValue { metric: &'static str, value: String },
}

/// Samples of one metric, keyed by their label set. The same label set seen twice (e.g. two label-less
/// lines of one name) counts once, the last value winning, so a duplicated line cannot double a figure.
type Series = BTreeMap<Vec<(String, String)>, f64>;

/// Parses exposition text and extracts the block-cache and usage figures. Block-cache figures are summed
/// over distinct label sets (one client serving several mount points); usage figures describe the whole
/// file system, so the largest is taken.
pub fn parse(text: &str) -> Result<JuiceFsReading, ExpositionError> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .map_err(|e| ExpositionError::Unreadable(e.to_string()))?;
    let mut by_name: BTreeMap<&str, Series> = BTreeMap::new();
    for sample in &scrape.samples {
        let value = match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            // Histograms and summaries (`*_hist_seconds`, Go runtime summaries) carry nothing we use.
            Value::Histogram(_) | Value::Summary(_) => continue,
        };
        let mut labels: Vec<(String, String)> = sample.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        labels.sort();
        by_name.entry(sample.metric.as_str()).or_default().insert(labels, value);
    }
    let sum = |name: &'static str| -> Result<Option<u64>, ExpositionError> {
        by_name
            .get(name)
            .map(|series| series.values().try_fold(0u64, |acc, v| Ok(acc.saturating_add(whole(name, *v)?))))
            .transpose()
    };
    let max = |name: &'static str| -> Result<Option<u64>, ExpositionError> {
        by_name
            .get(name)
            .map(|series| series.values().try_fold(0u64, |acc, v| Ok(acc.max(whole(name, *v)?))))
            .transpose()
    };
    let required = |name: &'static str| sum(name)?.ok_or(ExpositionError::Missing(name));
    Ok(JuiceFsReading {
        cache_bytes: required(BLOCKCACHE_BYTES)?,
        hits: required(BLOCKCACHE_HITS)?,
        misses: required(BLOCKCACHE_MISS)?,
        cache_blocks: sum(BLOCKCACHE_BLOCKS)?.unwrap_or(0),
        hit_bytes: sum(BLOCKCACHE_HIT_BYTES)?.unwrap_or(0),
        miss_bytes: sum(BLOCKCACHE_MISS_BYTES)?.unwrap_or(0),
        used_space: max(USED_SPACE)?,
        used_inodes: max(USED_INODES)?,
    })
}

/// A count or size as an integer: finite and not negative (JuiceFS prints them as floats, `8.3968e+06`).
fn whole(metric: &'static str, value: f64) -> Result<u64, ExpositionError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value.round() as u64)
    } else {
        Err(ExpositionError::InvalidValue { metric, value: value.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `juicefs mount --metrics` (JuiceFS 1.4.2) after an 8 MiB file was read twice.
    const FIXTURE: &str = include_str!("../tests/fixtures/juicefs-1.4.2-metrics.txt");

    #[test]
    fn real_juicefs_exposition() {
        let r = parse(FIXTURE).expect("fixture parses");
        assert_eq!(
            r,
            JuiceFsReading {
                cache_bytes: 8_396_800,
                cache_blocks: 2,
                hits: 5,
                misses: 3,
                hit_bytes: 5_259_264,
                miss_bytes: 8_257_536,
                used_space: Some(8_388_608),
                used_inodes: Some(1),
            }
        );
    }

    #[test]
    fn fixture_really_has_histograms_and_summaries() {
        // The parser must walk past these, so the fixture must contain them.
        assert!(FIXTURE.contains("# TYPE juicefs_blockcache_read_hist_seconds histogram"));
        assert!(FIXTURE.contains("juicefs_blockcache_read_hist_seconds_bucket{"));
        assert!(FIXTURE.contains("# TYPE juicefs_go_gc_duration_seconds summary"));
    }

    #[test]
    fn label_less_duplicates_count_once_and_label_sets_add_up() {
        let text = "\
# TYPE juicefs_blockcache_bytes gauge
juicefs_blockcache_bytes 100
juicefs_blockcache_bytes 100
# TYPE juicefs_blockcache_hits counter
juicefs_blockcache_hits{mp=\"/a\"} 3
juicefs_blockcache_hits{mp=\"/b\"} 4
juicefs_blockcache_miss 1
juicefs_used_space{mp=\"/a\"} 10
juicefs_used_space{mp=\"/b\"} 30
";
        let r = parse(text).expect("parses");
        assert_eq!(r.cache_bytes, 100);
        assert_eq!(r.hits, 7);
        assert_eq!(r.misses, 1);
        assert_eq!(r.used_space, Some(30), "file-system wide: the largest, not the sum");
        assert_eq!(r.hit_bytes, 0, "absent optional counters read as zero");
        assert_eq!(r.used_inodes, None);
    }

    #[test]
    fn garbage_is_not_juicefs() {
        for text in ["", "<html><body>502 Bad Gateway</body></html>", "\u{0}\u{1}binary", "go_goroutines 12\n"] {
            assert_eq!(parse(text), Err(ExpositionError::Missing(BLOCKCACHE_BYTES)), "{text:?}");
        }
        let partial = "juicefs_blockcache_bytes 1\njuicefs_blockcache_hits 1\n";
        assert_eq!(parse(partial), Err(ExpositionError::Missing(BLOCKCACHE_MISS)));
    }

    #[test]
    fn negative_or_nan_values_are_rejected() {
        let text = "juicefs_blockcache_bytes -5\njuicefs_blockcache_hits 0\njuicefs_blockcache_miss 0\n";
        assert!(matches!(parse(text), Err(ExpositionError::InvalidValue { metric: BLOCKCACHE_BYTES, .. })));
        let text = "juicefs_blockcache_bytes 1\njuicefs_blockcache_hits NaN\njuicefs_blockcache_miss 0\n";
        assert!(matches!(parse(text), Err(ExpositionError::InvalidValue { metric: BLOCKCACHE_HITS, .. })));
    }
}

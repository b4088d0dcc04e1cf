//! Pure helpers: percentiles of latency samples, API request counts per call, throughput figures.

use std::collections::BTreeMap;
use std::time::Duration;

/// The `q`-quantile (0 < q ≤ 1) by nearest rank: the smallest sample with at least `q` of all samples at
/// or below it. `None` without samples.
pub fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Milliseconds with two decimals, or `-` for nothing.
pub fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".into())
}

/// `ferrofluid_api_requests_total` by `(verb, resource)` ([`ferrofluid_e2e::http::api_requests`]).
pub type Requests = BTreeMap<(String, String), f64>;

/// Adds `after - before` to `into`, per (verb, resource).
pub fn add_delta(into: &mut Requests, before: &Requests, after: &Requests) {
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            *into.entry(k.clone()).or_default() += d;
        }
    }
}

/// `get nodes 1.00, patch nodes 1.00` per call, or `none`.
pub fn per_call(total: &Requests, calls: usize) -> String {
    if total.is_empty() || calls == 0 {
        return "none".into();
    }
    total.iter().map(|((verb, res), n)| format!("{verb} {res} {:.2}", n / calls as f64)).collect::<Vec<_>>().join(", ")
}

/// MiB/s for `bytes` read in `elapsed`.
pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64().max(1e-9)
}

/// The median (the upper one for an even count); 0 without any value.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&s, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&s, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&s[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn request_deltas() {
        let key = |v: &str| (v.to_string(), "nodes".to_string());
        let before = Requests::from([(key("get"), 1.0)]);
        let after = Requests::from([(key("get"), 3.0), (key("patch"), 1.0)]);
        let mut total = Requests::new();
        add_delta(&mut total, &before, &after);
        assert_eq!(per_call(&total, 2), "get nodes 1.00, patch nodes 0.50");
        assert_eq!(per_call(&Requests::new(), 2), "none");
    }

    #[test]
    fn throughput() {
        assert_eq!(mib_per_s(1 << 20, Duration::from_secs(1)), 1.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}

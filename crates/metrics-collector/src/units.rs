//! How cache figures are shown in status: binary byte units with two decimals (`1.20GiB`, `0.00B`), as
//! Fluid shows them, and percentages with one decimal (`83.3%`).

const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// `bytes` in the largest binary unit that keeps the number at or above 1, two decimals.
pub fn human_bytes(bytes: u64) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// `part / whole` as a percentage with one decimal, capped at 100%; `None` when `whole` is zero.
pub fn percentage(part: u64, whole: u64) -> Option<String> {
    ratio(part, whole).map(format_ratio)
}

/// `part / whole` in `[0, 1]`; `None` when `whole` is zero.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64).min(1.0))
}

/// A ratio in `[0, 1]` as a percentage string, e.g. `0.8333` → `83.3%`.
pub fn format_ratio(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_fluid() {
        assert_eq!(human_bytes(0), "0.00B");
        assert_eq!(human_bytes(1023), "1023.00B");
        assert_eq!(human_bytes(1024), "1.00KiB");
        assert_eq!(human_bytes(8_396_800), "8.01MiB");
        assert_eq!(human_bytes(1_288_490_189), "1.20GiB");
        assert_eq!(human_bytes(40 << 30), "40.00GiB");
        assert_eq!(human_bytes(3 << 40), "3.00TiB");
        assert_eq!(human_bytes(u64::MAX), "16.00EiB");
    }

    #[test]
    fn percentages() {
        assert_eq!(percentage(5, 6), Some("83.3%".to_string()));
        assert_eq!(percentage(0, 6), Some("0.0%".to_string()));
        assert_eq!(percentage(6, 6), Some("100.0%".to_string()));
        assert_eq!(percentage(7, 6), Some("100.0%".to_string()), "capped: caches may hold a block twice");
        assert_eq!(percentage(3, 0), None);
        assert_eq!(ratio(1, 4), Some(0.25));
    }
}

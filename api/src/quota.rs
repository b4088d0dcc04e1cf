//! Cache quotas: a Kubernetes quantity (`2Gi`, `500Mi`, `1.5G`) or a bare number, which means MiB
//! (the seed documents `quota: 40960` as 40 GiB of cache).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuotaError {
    #[error("quota {0:?} is not a quantity (examples: 40960 meaning MiB, 500Mi, 2Gi, 1.5G)")]
    Malformed(String),
    #[error("quota {0:?} must be greater than zero")]
    NotPositive(String),
    #[error("quota {0:?} is too large")]
    TooLarge(String),
}

/// Size in bytes of a quota.
pub fn quota_bytes(quota: &IntOrString) -> Result<u64, QuotaError> {
    match quota {
        IntOrString::Int(n) => {
            let n = u64::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| QuotaError::NotPositive(n.to_string()))?;
            n.checked_mul(MIB).ok_or_else(|| QuotaError::TooLarge(n.to_string()))
        }
        IntOrString::String(s) => parse_quantity_bytes(s),
    }
}

/// Size in whole MiB (rounded down, at least 1): what `juicefs --cache-size` takes.
pub fn quota_mib(quota: &IntOrString) -> Result<u64, QuotaError> {
    Ok((quota_bytes(quota)? / MIB).max(1))
}

/// Parses a quantity string into bytes; a string without a suffix is MiB like a bare number.
fn parse_quantity_bytes(raw: &str) -> Result<u64, QuotaError> {
    let s = raw.trim();
    let malformed = || QuotaError::Malformed(raw.to_string());
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
        return Err(malformed());
    }
    let multiplier: f64 = match suffix {
        "" => MIB as f64,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return Err(malformed()),
    };
    let value: f64 = number.parse().map_err(|_| malformed())?;
    let bytes = (value * multiplier).round();
    if bytes < 1.0 {
        return Err(QuotaError::NotPositive(raw.to_string()));
    }
    if bytes >= u64::MAX as f64 {
        return Err(QuotaError::TooLarge(raw.to_string()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_string())
    }

    #[test]
    fn bare_number_is_mib() {
        assert_eq!(quota_bytes(&IntOrString::Int(40960)), Ok(40960 * MIB));
        assert_eq!(quota_mib(&IntOrString::Int(40960)), Ok(40960));
        assert_eq!(quota_mib(&s("40960")), Ok(40960));
    }

    #[test]
    fn quantities() {
        assert_eq!(quota_bytes(&s("2Gi")), Ok(2 << 30));
        assert_eq!(quota_mib(&s("500Mi")), Ok(500));
        assert_eq!(quota_bytes(&s("1.5G")), Ok(1_500_000_000));
        assert_eq!(quota_bytes(&s("100Ki")), Ok(102_400));
        assert_eq!(quota_mib(&s("100Ki")), Ok(1), "rounded up to the 1 MiB minimum");
        assert_eq!(quota_mib(&s("1Ti")), Ok(1 << 20));
    }

    #[test]
    fn rejects_bad_quotas() {
        assert!(matches!(quota_bytes(&IntOrString::Int(0)), Err(QuotaError::NotPositive(_))));
        assert!(matches!(quota_bytes(&IntOrString::Int(-5)), Err(QuotaError::NotPositive(_))));
        assert!(matches!(quota_bytes(&s("0Gi")), Err(QuotaError::NotPositive(_))));
        for bad in ["", "lots", "2GB", "-1Gi", "1..5Gi", ".5Gi", "Gi", "1 Gi x"] {
            assert!(quota_bytes(&s(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(quota_bytes(&s("100E")), Err(QuotaError::TooLarge(_))));
    }
}

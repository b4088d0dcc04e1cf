//! The 63-character rule for label names and values, with a stable fallback.
//!
//! A label key's name part (after `fluid.io/`) and a label value may hold at most 63 characters. When a
//! derived name is longer, it is cut to its first 54 characters (trailing `-`, `_` and `.` trimmed so the
//! result stays valid) and `-` plus 8 lowercase hex digits of the FNV-1a-64 hash of the *full* name is
//! appended. The short form is stable (same input, same key, on every node and every restart) and two
//! names that share a long prefix still get different keys.

/// Longest label name or value Kubernetes accepts.
pub const MAX_LABEL_LEN: usize = 63;
const HASH_HEX_LEN: usize = 8;
const KEEP_LEN: usize = MAX_LABEL_LEN - HASH_HEX_LEN - 1;

/// Bounded label name (the part after the prefix): unchanged when it fits, short form otherwise.
pub fn bounded_label_name(name: &str) -> String {
    bounded(name)
}

/// Bounded label value: unchanged when it fits, short form otherwise.
pub fn bounded_label_value(value: &str) -> String {
    bounded(value)
}

fn bounded(s: &str) -> String {
    if s.len() <= MAX_LABEL_LEN {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(KEEP_LEN).collect();
    while cut.ends_with(['-', '_', '.']) {
        cut.pop();
    }
    // Low 32 bits of the 64-bit hash: 8 hex digits.
    format!("{cut}-{:08x}", fnv1a64(s.as_bytes()) & 0xffff_ffff)
}

/// FNV-1a, 64 bit: tiny, stable across platforms and releases (unlike `std`'s `DefaultHasher`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// Whether `name` is a valid label name / value: at most 63 characters, alphanumerics with `-`, `_`, `.`
/// inside, alphanumeric at both ends (the empty string is a valid value, not a valid name).
pub fn is_valid_label_name(name: &str) -> bool {
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty()
        && name.len() <= MAX_LABEL_LEN
        && name.chars().all(ok_inner)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `name` is a DNS-1123 label (what Kubernetes requires of a namespace name): at most 63
/// characters, lowercase letters, digits and `-`, alphanumeric at both ends. Such a name is one path
/// component that is neither `.` nor `..`.
pub fn is_dns1123_label(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= MAX_LABEL_LEN
        && name.chars().all(|c| alnum(c) || c == '-')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_unchanged() {
        assert_eq!(bounded_label_name("f-default-jfsdemo"), "f-default-jfsdemo");
        let exactly = "x".repeat(63);
        assert_eq!(bounded_label_name(&exactly), exactly);
    }

    #[test]
    fn long_names_are_cut_with_hash() {
        let long = format!("f-{}-{}", "team".repeat(10), "dataset".repeat(5));
        let short = bounded_label_name(&long);
        assert_eq!(short.len(), 63);
        assert!(is_valid_label_name(&short));
        assert!(short.starts_with(&long[..40]));
        assert_eq!(short, bounded_label_name(&long), "stable");
    }

    #[test]
    fn cut_never_ends_in_separator() {
        // Character 54 is a '-', so the cut would end with it without trimming.
        let long = format!("{}-{}", "a".repeat(53), "b".repeat(30));
        let short = bounded_label_name(&long);
        assert!(is_valid_label_name(&short), "{short}");
        assert!(!short.contains("--"));
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn label_name_validity() {
        assert!(is_valid_label_name("s-default-jfsdemo"));
        assert!(!is_valid_label_name("-x"));
        assert!(!is_valid_label_name("x-"));
        assert!(!is_valid_label_name("a/b"));
        assert!(!is_valid_label_name(&"a".repeat(64)));
    }

    #[test]
    fn dns1123_labels() {
        for ok in ["default", "jfsdemo", "ff-csi-paths", "a", "0", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a.b", "A", "-a", "a-", "a_b", "a b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }
}

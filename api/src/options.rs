//! Rules for the `options` maps of Datasets and runtimes (`mounts[].options`, `sharedOptions`,
//! `worker.options`, `fuse.options`): every key is a JuiceFS flag name without its leading `--`, and
//! no key names a secret (those go in `encryptOptions`, from a Secret). The same rules are enforced
//! twice: by the apiserver through the CEL rules below, and by the controllers through
//! [`check_option_key`] (for objects stored before the schema said so).

use kube::core::Rule;

/// Option keys that carry credentials. Plain options end up in pod specs; these must come from a
/// Secret through `encryptOptions`.
pub const SECRET_OPTION_KEYS: &[&str] =
    &["metaurl", "access-key", "secret-key", "session-token", "token", "meta-password"];

/// Longest option key accepted (JuiceFS's longest flag is far shorter).
pub const MAX_OPTION_KEY_LEN: usize = 63;

/// Most entries an options map may hold.
pub const MAX_OPTIONS: usize = 64;

const KEY_MESSAGE: &str = "option names are JuiceFS flag names without the leading '--': lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters (e.g. cache-size)";

/// CEL: every key is a flag name.
pub fn flag_name_rule() -> Rule {
    Rule::new("self.all(k, size(k) <= 63 && k.matches('^[a-z0-9][-a-z0-9]*$'))").message(KEY_MESSAGE)
}

/// CEL: no key names a secret.
pub fn no_secret_rule() -> Rule {
    let list = SECRET_OPTION_KEYS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    Rule::new(format!("!self.exists(k, k in [{list}])")).message(secret_message().as_str())
}

fn secret_message() -> String {
    format!(
        "{} are secrets: give them in encryptOptions (valueFrom.secretKeyRef), never as plain options",
        SECRET_OPTION_KEYS.join(", ")
    )
}

/// The controllers' copy of the two CEL rules: `Err` says what is wrong with `key`.
pub fn check_option_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || key.len() > MAX_OPTION_KEY_LEN {
        return Err(KEY_MESSAGE.to_string());
    }
    if SECRET_OPTION_KEYS.contains(&key) {
        return Err(secret_message());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_pass() {
        for key in ["cache-size", "writeback", "o", "max-uploads", "2fa"] {
            assert_eq!(check_option_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn hostile_and_secret_keys_fail() {
        let long = "a".repeat(64);
        for key in [
            "",
            "writeback $(touch /x)",
            "`id`",
            "a;b",
            "a|b",
            "a&&b",
            "a'b",
            "a\"b",
            "a\nb",
            "--writeback",
            "-o",
            "Cache-Size",
            "cache_size",
            "cache size",
            long.as_str(),
        ] {
            assert!(check_option_key(key).is_err(), "{key:?} accepted");
        }
        for key in SECRET_OPTION_KEYS {
            let err = check_option_key(key).expect_err("secret key accepted");
            assert!(err.contains("encryptOptions"), "{err}");
        }
    }

    #[test]
    fn cel_rules_name_the_same_keys() {
        let rule = serde_json::to_value(no_secret_rule()).expect("rule");
        let text = rule["rule"].as_str().expect("rule text");
        for key in SECRET_OPTION_KEYS {
            assert!(text.contains(&format!("'{key}'")), "{text}");
        }
    }
}

//! Removes credentials from free text (container log lines, error messages) before it is copied into
//! status conditions, events or logs: the password of `scheme://user:password@host` URLs and the values
//! of `password=…`-style pairs. Pure.

/// Keys whose `key=value` / `key: value` / `"key":"value"` values are hidden (matched case-insensitively,
/// as a whole word; `-` and `_` are interchangeable).
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "secret-key",
    "secretkey",
    "access-key",
    "accesskey",
    "token",
    "session-token",
    "meta-password",
    "metaurl",
    "meta-url",
];

/// What replaces a hidden value.
pub const MASK: &str = "****";

/// `text` with every credential replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    redact_pairs(&redact_userinfo(text))
}

/// Hides the password in every `//user:password@` authority (with or without a scheme before it).
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("//") {
        let (head, tail) = rest.split_at(pos + 2);
        out.push_str(head);
        // The authority runs to the first '/', '?', '#', whitespace or quote.
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace());
        let authority = &tail[..end.unwrap_or(tail.len())];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(MASK);
                        out.push_str(&authority[at..]);
                    }
                    None => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority.len()..];
    }
    out.push_str(rest);
    out
}

fn normalized(key: &str) -> String {
    key.to_ascii_lowercase().replace('_', "-")
}

/// Hides the value after `key=`, `key: ` or `"key":` for the keys in [`SECRET_KEYS`].
fn redact_pairs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        // A key is a maximal run of [A-Za-z0-9_-]; look at what follows it.
        if !is_key_byte(bytes[i]) || (i > 0 && is_key_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_key_byte(bytes[i]) {
            i += 1;
        }
        let key = &text[start..i];
        if !SECRET_KEYS.contains(&normalized(key).as_str()) {
            continue;
        }
        // Separator: optional closing quote, optional spaces, '=' or ':', optional spaces, optional quote.
        let mut j = i;
        if j < bytes.len() && bytes[j] == b'"' {
            j += 1;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || !matches!(bytes[j], b'=' | b':') {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let quote = (j < bytes.len() && matches!(bytes[j], b'"' | b'\'')).then(|| bytes[j]);
        if quote.is_some() {
            j += 1;
        }
        let value_start = j;
        while j < bytes.len() {
            let b = bytes[j];
            let ends = match quote {
                Some(q) => b == q,
                None => b.is_ascii_whitespace() || matches!(b, b'&' | b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}'),
            };
            if ends {
                break;
            }
            j += 1;
        }
        if j > value_start {
            out.push_str(&text[copied..value_start]);
            out.push_str(MASK);
            copied = j;
        }
        i = j;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden() {
        let line = "Meta redis://:****@127.0.0.1:6379/x is not available: redis parse redis://:s3cr3t@127.0.0.1:6379/x: invalid database";
        let r = redact(line);
        assert!(!r.contains("s3cr3t"), "{r}");
        assert!(r.contains("redis://:****@127.0.0.1:6379/x"), "{r}");
        assert_eq!(redact("postgres://user:pa:ss@db:5432/x"), "postgres://user:****@db:5432/x");
        assert_eq!(redact("invalid URL path: //:pw@127.0.0.1/1"), "invalid URL path: //:****@127.0.0.1/1");
        assert_eq!(redact("mysql://u:pw@(127.0.0.1:3306)/db"), "mysql://u:****@(127.0.0.1:3306)/db");
        assert_eq!(redact("missing ']' in \"redis://u:pw@[::1/1\""), "missing ']' in \"redis://u:****@[::1/1\"");
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for s in ["http://127.0.0.1:9567/metrics", "redis://127.0.0.1:6379/1", "juicefs:///demo", "a // b", "//"] {
            assert_eq!(redact(s), s);
        }
        assert_eq!(redact("redis://user@host/1"), "redis://user@host/1");
    }

    #[test]
    fn secret_pairs_are_hidden() {
        assert_eq!(redact("password=hunter2 next"), "password=**** next");
        assert_eq!(redact("db?user=a&password=x&sslmode=disable"), "db?user=a&password=****&sslmode=disable");
        assert_eq!(redact(r#"{"secret_key": "abc", "n": 1}"#), r#"{"secret_key": "****", "n": 1}"#);
        assert_eq!(redact("META_PASSWORD: pw1"), "META_PASSWORD: ****");
        assert_eq!(redact("access-key='AKIA x'"), "access-key='****'");
        // Whole words only, and keys without a value are left alone.
        assert_eq!(redact("mypassword=x"), "mypassword=x");
        assert_eq!(redact("wrong password for user"), "wrong password for user");
        assert_eq!(redact("token="), "token=");
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(redact("ünï password=ç çødé"), "ünï password=**** çødé");
    }
}

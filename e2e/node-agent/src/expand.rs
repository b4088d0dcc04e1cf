//! `$(VAR)` expansion in env values, command and args, with kubelet's rules: `$(NAME)` becomes the
//! variable's value when it is defined and stays as written otherwise, `$$` is an escaped `$`, and any
//! other `$` is kept.

/// Expands `$(NAME)` references in `input` using `lookup`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) if !name.is_empty() => out.push_str(&value),
                        _ => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('$');
                    out.push_str(after);
                    rest = "";
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn vars(name: &str) -> Option<String> {
        match name {
            "POD_IP" => Some("127.128.0.5".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn kubelet_rules() {
        assert_eq!(expand("ip=$(POD_IP):9567", vars), "ip=127.128.0.5:9567");
        assert_eq!(expand("$(POD_IP)$(POD_IP)", vars), "127.128.0.5127.128.0.5");
        assert_eq!(expand("$(UNKNOWN) stays", vars), "$(UNKNOWN) stays");
        assert_eq!(expand("$$(POD_IP) is escaped", vars), "$(POD_IP) is escaped");
        assert_eq!(expand("$$$(POD_IP)", vars), "$127.128.0.5");
        assert_eq!(expand("sh $HOME ${X} $", vars), "sh $HOME ${X} $");
        assert_eq!(expand("unclosed $(POD_IP", vars), "unclosed $(POD_IP");
        assert_eq!(expand("x$(EMPTY)y $()", vars), "xy $()");
        assert_eq!(expand("ünï$(POD_IP)çødé", vars), "ünï127.128.0.5çødé");
    }
}

//! Who may call the custom metrics API: the API server's front proxy, as the cluster publishes it in the
//! ConfigMap `kube-system/extension-apiserver-authentication` — the CA that signs the proxy's client
//! certificate, the names such a certificate may carry, and the headers that carry the caller's user,
//! groups and extra attributes. A request is served only over a connection whose client certificate
//! that CA signed (and, when names are listed, whose common name is one of them); the user it names is
//! then authorized with a SubjectAccessReview.

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use std::collections::BTreeMap;

pub const NAMESPACE: &str = "kube-system";
pub const CONFIG_MAP: &str = "extension-apiserver-authentication";

/// The front proxy's side of the request-header authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHeader {
    /// PEM of the CA(s) that sign the front proxy's client certificate.
    pub client_ca: String,
    /// Common names a client certificate may have; empty: any the CA signed.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_prefixes: Vec<String>,
}

fn list(data: &BTreeMap<String, String>, key: &str) -> anyhow::Result<Vec<String>> {
    match data.get(key) {
        None => Ok(Vec::new()),
        Some(s) if s.trim().is_empty() => Ok(Vec::new()),
        Some(s) => serde_json::from_str(s).with_context(|| format!("{key} is not a JSON list of strings")),
    }
}

/// Parses the ConfigMap's data. Without a client CA there is no front proxy to trust: an error.
pub fn parse(data: &BTreeMap<String, String>) -> anyhow::Result<RequestHeader> {
    let client_ca = data.get("requestheader-client-ca-file").cloned().unwrap_or_default();
    if client_ca.trim().is_empty() {
        bail!(
            "{NAMESPACE}/{CONFIG_MAP} has no requestheader-client-ca-file: the API server runs without a front-proxy \
             client certificate (--requestheader-client-ca-file, --proxy-client-cert-file), so it cannot call an \
             aggregated API"
        );
    }
    let username_headers = list(data, "requestheader-username-headers")?;
    if username_headers.is_empty() {
        bail!("{NAMESPACE}/{CONFIG_MAP} names no requestheader-username-headers");
    }
    Ok(RequestHeader {
        client_ca,
        allowed_names: list(data, "requestheader-allowed-names")?,
        username_headers,
        group_headers: list(data, "requestheader-group-headers")?,
        extra_prefixes: list(data, "requestheader-extra-headers-prefix")?,
    })
}

/// Reads the ConfigMap (the chart grants `get` on exactly it).
pub async fn load(client: &kube::Client) -> anyhow::Result<RequestHeader> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let cm = api.get(CONFIG_MAP).await.with_context(|| format!("reading ConfigMap {NAMESPACE}/{CONFIG_MAP}"))?;
    parse(&cm.data.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_published_settings_parse() {
        let rh = parse(&data(&[
            ("requestheader-client-ca-file", "-----BEGIN CERTIFICATE-----\n…"),
            ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
            ("requestheader-username-headers", r#"["X-Remote-User"]"#),
            ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
            ("requestheader-extra-headers-prefix", r#"["X-Remote-Extra-"]"#),
        ]))
        .expect("parses");
        assert_eq!(rh.allowed_names, ["front-proxy-client"]);
        assert_eq!(rh.username_headers, ["X-Remote-User"]);
        assert_eq!(rh.extra_prefixes, ["X-Remote-Extra-"]);
    }

    #[test]
    fn without_a_front_proxy_ca_nothing_is_trusted() {
        let err = parse(&data(&[("client-ca-file", "x")])).expect_err("no CA");
        assert!(err.to_string().contains("--requestheader-client-ca-file"), "{err}");
        let err = parse(&data(&[("requestheader-client-ca-file", "x")])).expect_err("no header");
        assert!(err.to_string().contains("username-headers"), "{err}");
        let err = parse(&data(&[("requestheader-client-ca-file", "x"), ("requestheader-username-headers", "X-U")]))
            .expect_err("not JSON");
        assert!(err.to_string().contains("JSON"), "{err}");
    }
}

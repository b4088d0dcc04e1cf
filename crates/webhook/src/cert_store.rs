//! Where the certificates live and who trusts them, from the watched objects: the Secret that keeps
//! them (created by the webhook and labelled ours; only ever replaced when it carries that label, with
//! the version seen), and the `caBundle` of the webhook configuration (patched only when the
//! configuration is labelled `ferrofluid.io/inject-ca-bundle: "true"` and its bundle differs). Several
//! replicas may race: a conflict is not an error — the watch brings the winner's Secret, and the next
//! pass uses it.

use crate::certs::{self, Plan, Stored};
use anyhow::{Context, bail};
use base64::Engine as _;
use ferrofluid_api::keys;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;

pub const MANAGER: &str = "ferrofluid-webhook";

fn label_is(k: &impl ResourceExt, key: &str, value: &str) -> bool {
    k.labels().get(key).map(String::as_str) == Some(value)
}

pub fn stored_of(s: &Secret) -> Stored {
    let data = s.data.iter().flatten().map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned())).collect();
    Stored { data, annotations: s.metadata.annotations.clone().unwrap_or_default() }
}

fn secret_of(name: &str, ns: &str, s: &Stored, resource_version: Option<String>) -> Secret {
    let mut sec = Secret::default();
    sec.metadata.name = Some(name.to_string());
    sec.metadata.namespace = Some(ns.to_string());
    sec.metadata.resource_version = resource_version;
    sec.metadata.labels = Some(BTreeMap::from([(keys::LABEL_MANAGED_BY.to_string(), keys::MANAGED_BY.to_string())]));
    sec.metadata.annotations = Some(s.annotations.clone());
    sec.type_ = Some("kubernetes.io/tls".into());
    sec.data = Some(s.data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes()))).collect());
    sec
}

/// The certificates given the Secret as last seen (`None`: there is none): renewed and written first
/// when due. `Ok(None)`: another replica wrote first; its Secret is on its way through the watch.
pub async fn ensure(
    client: &kube::Client,
    ns: &str,
    name: &str,
    hosts: &[String],
    seen: Option<&Secret>,
) -> anyhow::Result<Option<Stored>> {
    if let Some(s) = seen
        && !label_is(s, keys::LABEL_MANAGED_BY, keys::MANAGED_BY)
    {
        bail!(
            "Secret {ns}/{name} exists and is not ferrofluid's (no label {}={}): not touched; delete it or set --cert-secret",
            keys::LABEL_MANAGED_BY,
            keys::MANAGED_BY
        );
    }
    let stored = seen.map(stored_of);
    let now = time::OffsetDateTime::now_utc();
    let plan = certs::plan(stored.as_ref(), hosts, now);
    if plan == Plan::Keep {
        return Ok(stored);
    }
    let next = certs::renew(plan, stored.as_ref(), hosts, now).context("generate certificates")?;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let pp = PostParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    let result = match seen {
        None => api.create(&pp, &secret_of(name, ns, &next, None)).await,
        Some(s) => api.replace(name, &pp, &secret_of(name, ns, &next, s.resource_version())).await,
    };
    match result {
        Ok(_) => {
            tracing::info!(secret = %name, namespace = %ns, ?plan, "webhook certificates written");
            Ok(Some(next))
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
        Err(e) => Err(e).with_context(|| format!("write Secret {ns}/{name}")),
    }
}

/// Puts `bundle` (PEM) into every webhook's `caBundle` of `cfg` (as last seen) where it says otherwise.
pub async fn publish_ca(client: &kube::Client, cfg: &MutatingWebhookConfiguration, bundle: &str) -> anyhow::Result<()> {
    let name = cfg.name_any();
    if !label_is(cfg, keys::LABEL_INJECT_CA_BUNDLE, keys::LABEL_TRUE) {
        bail!(
            "MutatingWebhookConfiguration {name} is not labelled {}=true: its caBundle is not touched",
            keys::LABEL_INJECT_CA_BUNDLE
        );
    }
    let want = bundle.as_bytes();
    let stale: Vec<&str> = cfg
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(want))
        .map(|w| w.name.as_str())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(want);
    let hooks: Vec<_> =
        stale.iter().map(|n| serde_json::json!({"name": n, "clientConfig": {"caBundle": b64}})).collect();
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let pp = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    api.patch(&name, &pp, &Patch::Strategic(serde_json::json!({ "webhooks": hooks })))
        .await
        .with_context(|| format!("patch caBundle of {name}"))?;
    tracing::info!(config = %name, webhooks = stale.len(), "caBundle published");
    Ok(())
}

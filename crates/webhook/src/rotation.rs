//! The certificates over time: the Secret and the webhook configuration are watched (each by its
//! name); any change of either, and a timer for expiry, runs a pass — renew when due, reload the
//! serving certificate when the Secret holds another one (renewed here or by another replica), publish
//! the CA bundle when the configuration says otherwise. A pass that finds nothing to do writes nothing.

use crate::cert_store;
use crate::certs::{self, Stored};
use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use futures::{Stream, StreamExt};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Rotation {
    pub client: kube::Client,
    pub namespace: String,
    pub secret: String,
    pub hosts: Vec<String>,
    pub config: String,
    pub every: Duration,
    secrets: Store<Secret>,
    configs: Store<MutatingWebhookConfiguration>,
    /// Notified on each change of either (a spawned task drives both watches).
    changed: Arc<Notify>,
}

/// A store of the one object `name` of `api`, and a stream that yields on each of its changes.
fn watch_one<K>(api: Api<K>, name: &str) -> (Store<K>, impl Stream<Item = ()> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let events = watcher(api, cfg).default_backoff().reflect(writer).map(|_| ());
    (store, events)
}

impl Rotation {
    pub fn new(
        client: kube::Client,
        namespace: String,
        secret: String,
        hosts: Vec<String>,
        config: String,
        every: Duration,
    ) -> Self {
        let (secrets, secret_changes) = watch_one(Api::<Secret>::namespaced(client.clone(), &namespace), &secret);
        let (configs, config_changes) = watch_one(Api::<MutatingWebhookConfiguration>::all(client.clone()), &config);
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        tokio::spawn(futures::stream::select(secret_changes, config_changes).for_each(move |()| {
            notify.notify_one();
            async {}
        }));
        Self { client, namespace, secret, hosts, config, every, secrets, configs, changed }
    }

    /// The certificates to start serving with, once the watches have listed (retried until this
    /// replica or another has written them).
    pub async fn first(&self) -> anyhow::Result<Stored> {
        self.secrets.wait_until_ready().await.context("Secret watch")?;
        self.configs.wait_until_ready().await.context("webhook configuration watch")?;
        loop {
            if let Some(s) = self.pass().await? {
                return Ok(s);
            }
            // Lost a race: the winner's Secret arrives through the watch.
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One pass: the certificates as they now are (`None` after losing a race), the CA published.
    async fn pass(&self) -> anyhow::Result<Option<Stored>> {
        let seen = self.secrets.get(&ObjectRef::new(&self.secret).within(&self.namespace));
        let stored = cert_store::ensure(&self.client, &self.namespace, &self.secret, &self.hosts, seen.as_deref())
            .await
            .context("certificates")?;
        if let Some(s) = &stored {
            let bundle =
                s.data.get(certs::CA_BUNDLE).or_else(|| s.data.get(certs::CA_CERT)).cloned().unwrap_or_default();
            match self.configs.get(&ObjectRef::new(&self.config)) {
                Some(cfg) => cert_store::publish_ca(&self.client, &cfg, &bundle).await?,
                None => {
                    tracing::warn!(config = %self.config, "no MutatingWebhookConfiguration of that name yet: caBundle not published")
                }
            }
        }
        Ok(stored)
    }

    /// Passes until `stop`, reloading `tls` when the serving certificate changes from `serving`.
    pub async fn run(self, tls: RustlsConfig, mut serving: String, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
                _ = self.changed.notified() => {}
            }
            match self.pass().await {
                Ok(Some(s)) => {
                    let (cert, key) = (&s.data[certs::TLS_CERT], &s.data[certs::TLS_KEY]);
                    if *cert == serving {
                        continue;
                    }
                    match crate::serve::tls_config(cert, key) {
                        Ok(cfg) => {
                            tls.reload_from_config(cfg);
                            serving = cert.clone();
                            tracing::info!("serving certificate reloaded");
                        }
                        Err(e) => {
                            tracing::error!(error = format!("{e:#}"), "cannot load the certificate of the Secret")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "certificate pass failed"),
            }
        }
    }
}

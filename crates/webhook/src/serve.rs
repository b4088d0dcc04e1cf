//! The admission endpoint: `POST /mutate` takes an `AdmissionReview` of a pod and answers with the JSON
//! patch `mutate` leads to (or none), over TLS with a certificate that can be swapped while serving.
//! A review that is not a pod's is answered invalid (the API server treats that as the webhook's
//! failure: `failurePolicy` decides); one whose patch cannot be written is allowed unchanged and counted
//! as an error.

use crate::facts::Caches;
use crate::metrics::WebhookMetrics;
use crate::mutate::{self, Settings};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Instant;

pub struct App {
    pub caches: Caches,
    pub settings: Settings,
    pub metrics: WebhookMetrics,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new().route("/mutate", post(mutate_pod)).with_state(app)
}

/// The answer to one review, and how it went: `patched`, `unchanged` or `error`.
pub fn answer(app: &App, review: AdmissionReview<Pod>) -> (AdmissionReview<DynamicObject>, &'static str) {
    let req: AdmissionRequest<Pod> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return (AdmissionResponse::invalid(e.to_string()).into_review(), "error"),
    };
    let resp = AdmissionResponse::from(&req);
    let Some(pod) = req.object.as_ref() else { return (resp.into_review(), "unchanged") };
    let ns = req.namespace.clone().or_else(|| pod.metadata.namespace.clone()).unwrap_or_default();
    let datasets = app.caches.datasets_of(pod, &ns);
    let m = mutate::mutate(pod, &ns, &datasets, app.settings);
    let mut resp = resp;
    if !m.warnings.is_empty() {
        resp.warnings = Some(m.warnings);
    }
    let Some(new) = m.pod else { return (resp.into_review(), "unchanged") };
    let (Ok(before), Ok(after)) = (serde_json::to_value(pod), serde_json::to_value(&new)) else {
        return (resp.into_review(), "error");
    };
    match resp.clone().with_patch(json_patch::diff(&before, &after)) {
        Ok(patched) => (patched.into_review(), "patched"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize the patch; pod admitted unchanged");
            (resp.into_review(), "error")
        }
    }
}

async fn mutate_pod(
    State(app): State<Arc<App>>,
    Json(review): Json<AdmissionReview<Pod>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let start = Instant::now();
    let (out, outcome) = answer(&app, review);
    app.metrics.observe(outcome, start.elapsed().as_secs_f64());
    Json(out)
}

/// A TLS configuration serving `cert`/`key` (PEM).
pub fn tls_config(cert: &str, key: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `router` on `addr` until `stop`; `tls` may be reloaded meanwhile.
pub async fn serve(
    addr: std::net::SocketAddr,
    tls: RustlsConfig,
    router: Router,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    axum_server::bind_rustls(addr, tls).handle(handle).serve(router.into_make_service()).await?;
    Ok(())
}

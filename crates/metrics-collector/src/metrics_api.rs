//! The custom metrics API server (`--custom-metrics-addr`), on every replica: the Kubernetes API server
//! registers it as the `APIService` `v1beta2.custom.metrics.k8s.io` and passes it the HPA controller's
//! requests for the metrics of Datasets and JuiceFSRuntimes (`custom_metrics.rs`). TLS with a serving
//! certificate made at start; a connection is accepted only with the front proxy's client certificate
//! (`requestheader.rs`); each caller the proxy names is authorized with a SubjectAccessReview (answers
//! kept 10 s). Values are read from this replica's own watch caches of the objects' status.

use crate::custom_metrics::{self, Metric, Object, Request};
use crate::discovery;
use crate::requestheader::{self, RequestHeader};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_server::tls_rustls::RustlsConfig;
use ferrofluid_api::{CacheStates, Dataset, JuiceFSRuntime};
use ferrofluid_service::runner::scoped_api;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The group of every authenticated user.
const AUTHENTICATED: &str = "system:authenticated";
/// How long an authorization answer is reused.
const AUTHZ_TTL: Duration = Duration::from_secs(10);
/// Answers kept at most; the cache is emptied when it grows past this.
const AUTHZ_MAX: usize = 4096;

struct App {
    client: kube::Client,
    headers: RequestHeader,
    datasets: Store<Dataset>,
    runtimes: Store<JuiceFSRuntime>,
    authz: Mutex<HashMap<String, (bool, Instant)>>,
}

/// Serves the API on `addr` until `stop`.
pub async fn serve(
    client: kube::Client,
    namespace: Option<String>,
    addr: SocketAddr,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let headers = requestheader::load(&client).await?;
    let tls = tls_config(&headers)?;
    let ns = namespace.as_deref();
    let prune_ds = |d: &mut Dataset| d.metadata.managed_fields = None;
    let prune_rt = |r: &mut JuiceFSRuntime| r.metadata.managed_fields = None;
    let datasets = discovery::watch(scoped_api(&client, ns), watcher::Config::default(), prune_ds, &stop);
    let runtimes = discovery::watch(scoped_api(&client, ns), watcher::Config::default(), prune_rt, &stop);
    let app = Arc::new(App { client, headers, datasets, runtimes, authz: Mutex::default() });
    let router = Router::new().fallback(move |uri: Uri, h: HeaderMap| {
        let app = app.clone();
        async move { handle(&app, uri.path(), &h).await }
    });
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    tracing::info!(%addr, "serving the custom metrics API");
    axum_server::bind_rustls(addr, RustlsConfig::from_config(tls))
        .handle(handle)
        .serve(router.into_make_service())
        .await?;
    Ok(())
}

fn json(code: StatusCode, body: Value) -> Response {
    (code, [("content-type", "application/json")], body.to_string()).into_response()
}

fn failure(code: StatusCode, reason: &str, message: &str) -> Response {
    json(code, custom_metrics::status(code.as_u16(), reason, message))
}

/// The caller the front proxy names: user, groups and extra attributes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Caller {
    user: String,
    groups: Vec<String>,
    extra: BTreeMap<String, Vec<String>>,
}

fn caller(rh: &RequestHeader, h: &HeaderMap) -> Option<Caller> {
    let values =
        |name: &str| h.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect::<Vec<_>>();
    let user = rh.username_headers.iter().find_map(|n| values(n).into_iter().next()).filter(|u| !u.is_empty())?;
    let mut groups: Vec<String> = rh.group_headers.iter().flat_map(|n| values(n)).collect();
    // As every Kubernetes API server does for an authenticated user (the aggregator's own discovery
    // requests name no group at all).
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.into());
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in h {
        let lower = name.as_str();
        if let Some(key) = rh.extra_prefixes.iter().find_map(|p| lower.strip_prefix(&p.to_ascii_lowercase()))
            && let Ok(v) = value.to_str()
        {
            extra.entry(key.to_string()).or_default().push(v.to_string());
        }
    }
    Some(Caller { user, groups, extra })
}

async fn handle(app: &App, path: &str, h: &HeaderMap) -> Response {
    let Some(who) = caller(&app.headers, h) else {
        return failure(StatusCode::UNAUTHORIZED, "Unauthorized", "no user named by the front proxy");
    };
    // What the API server's aggregator asks of every aggregated API besides its group version.
    match path {
        // Aggregated discovery: not served, so the aggregator reads this group version's own discovery.
        "/apis" | "/api" => return failure(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", "no aggregated discovery"),
        "/openapi/v2" => return json(StatusCode::OK, custom_metrics::openapi_v2()),
        "/openapi/v3" => return json(StatusCode::OK, serde_json::json!({"paths": {}})),
        _ => {}
    }
    let Some(request) = custom_metrics::route(path) else {
        return failure(StatusCode::NOT_FOUND, "NotFound", &format!("{path} is not served here"));
    };
    let attributes = match &request {
        Request::Object { namespace, resource, name, metric } => Attributes::Resource(Box::new(ResourceAttributes {
            namespace: Some(namespace.to_string()),
            verb: Some("get".into()),
            group: Some(custom_metrics::GROUP.into()),
            resource: Some(resource.to_string()),
            subresource: Some(metric.to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        })),
        _ => Attributes::Path(NonResourceAttributes { path: Some(path.into()), verb: Some("get".into()) }),
    };
    match app.allowed(&who, attributes).await {
        Ok(true) => {}
        Ok(false) => return failure(StatusCode::FORBIDDEN, "Forbidden", &format!("{} may not get {path}", who.user)),
        Err(e) => {
            tracing::warn!(error = %e, "authorization check failed");
            return failure(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "authorization check failed");
        }
    }
    match request {
        Request::Discovery => json(StatusCode::OK, custom_metrics::discovery()),
        Request::Unsupported => failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            "only one named object's metric is served: /namespaces/<ns>/<resource>/<name>/<metric>",
        ),
        Request::Object { namespace, resource, name, metric } => app.object(namespace, resource, name, metric),
    }
}

enum Attributes {
    Resource(Box<ResourceAttributes>),
    Path(NonResourceAttributes),
}

impl App {
    fn object(&self, namespace: &str, resource: &str, name: &str, metric: &str) -> Response {
        let not_found = |what: String| failure(StatusCode::NOT_FOUND, "NotFound", &what);
        let Some(m) = Metric::parse(metric) else { return not_found(format!("no metric {metric:?}")) };
        let Some(object) = Object::parse(resource) else { return not_found(format!("no metrics for {resource}")) };
        let states: Option<Option<CacheStates>> = match object {
            Object::Dataset => self
                .datasets
                .get(&ObjectRef::new(name).within(namespace))
                .map(|d| d.status.as_ref().and_then(|s| s.cache_states.clone())),
            Object::JuiceFSRuntime => self
                .runtimes
                .get(&ObjectRef::new(name).within(namespace))
                .map(|r| r.status.as_ref().and_then(|s| s.cache_states.clone())),
        };
        let kind = object.kind();
        let Some(states) = states else { return not_found(format!("{kind} {namespace}/{name} not found")) };
        match states.as_ref().and_then(|s| m.value(s)) {
            Some(v) => {
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                json(StatusCode::OK, custom_metrics::value_list(object, namespace, name, m, v, &now))
            }
            None => not_found(format!("{kind} {namespace}/{name} has no {metric} yet (status.cacheStates)")),
        }
    }

    /// Whether `who` may do what `attributes` say, asked of the API server (answers reused briefly).
    async fn allowed(&self, who: &Caller, attributes: Attributes) -> Result<bool, kube::Error> {
        let mut spec = SubjectAccessReviewSpec {
            user: Some(who.user.clone()),
            groups: Some(who.groups.clone()),
            extra: Some(who.extra.clone()),
            ..Default::default()
        };
        match attributes {
            Attributes::Resource(r) => spec.resource_attributes = Some(*r),
            Attributes::Path(p) => spec.non_resource_attributes = Some(p),
        }
        let key = serde_json::to_string(&spec).unwrap_or_default();
        if let Some((ok, at)) = self.authz.lock().map(|m| m.get(&key).copied()).ok().flatten()
            && at.elapsed() < AUTHZ_TTL
        {
            return Ok(ok);
        }
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let review = SubjectAccessReview { spec, ..Default::default() };
        let answer = api.create(&PostParams::default(), &review).await?;
        let ok = answer.status.is_some_and(|s| s.allowed);
        if let Ok(mut m) = self.authz.lock() {
            if m.len() >= AUTHZ_MAX {
                m.clear();
            }
            m.insert(key, (ok, Instant::now()));
        }
        Ok(ok)
    }
}

/// TLS serving a certificate made now (the `APIService` skips verifying it, as prometheus-adapter's
/// does by default), requiring a client certificate of the front proxy.
fn tls_config(rh: &RequestHeader) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(rh.client_ca.as_bytes()) {
        roots.add(cert?)?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = Arc::new(FrontProxy { inner, allowed: rh.allowed_names.clone() });
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["ferrofluid-metrics-collector".to_string()])?.self_signed(&key)?;
    let certs = vec![CertificateDer::from_pem_slice(cert.pem().as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The front proxy's client certificate: signed by its CA, and with one of the allowed common names.
#[derive(Debug)]
struct FrontProxy {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

/// The subject's common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(String::from)
}

impl ClientCertVerifier for FrontProxy {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed.is_empty() {
            return Ok(verified);
        }
        match common_name(end_entity) {
            Some(cn) if self.allowed.contains(&cn) => Ok(verified),
            cn => Err(rustls::Error::General(format!(
                "client certificate common name {cn:?} is not among the front proxy's allowed names"
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rh() -> RequestHeader {
        RequestHeader {
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_prefixes: vec!["X-Remote-Extra-".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_caller_comes_from_the_front_proxys_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(caller(&rh(), &h), None, "no user: no caller");
        h.insert("x-remote-user", "system:serviceaccount:kube-system:horizontal-pod-autoscaler".parse().unwrap());
        h.append("x-remote-group", "system:serviceaccounts".parse().unwrap());
        h.append("x-remote-group", "system:authenticated".parse().unwrap());
        h.insert("x-remote-extra-scopes", "a".parse().unwrap());
        let c = caller(&rh(), &h).expect("caller");
        assert!(c.user.ends_with("horizontal-pod-autoscaler"));
        assert_eq!(c.groups, ["system:serviceaccounts", "system:authenticated"], "not added twice");
        let mut bare = HeaderMap::new();
        bare.insert("x-remote-user", "system:kube-aggregator".parse().unwrap());
        assert_eq!(caller(&rh(), &bare).expect("caller").groups, ["system:authenticated"], "added");
        assert_eq!(c.extra.get("scopes"), Some(&vec!["a".to_string()]));
    }

    #[test]
    fn only_allowed_names_pass() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let client = |cn: &str| {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            p.signed_by(&key, &issuer).expect("client").der().clone()
        };
        let mut rh = rh();
        rh.client_ca = ca_cert.pem();
        rh.allowed_names = vec!["front-proxy-client".into()];
        tls_config(&rh).expect("config builds");
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().expect("verifier");
        let v = FrontProxy { inner, allowed: rh.allowed_names.clone() };
        let now = UnixTime::now();
        assert_eq!(common_name(&client("front-proxy-client")).as_deref(), Some("front-proxy-client"));
        assert!(v.verify_client_cert(&client("front-proxy-client"), &[], now).is_ok());
        assert!(v.verify_client_cert(&client("someone-else"), &[], now).is_err(), "a name not allowed");
        let stranger_key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, "front-proxy-client");
        let stranger = p.self_signed(&stranger_key).expect("self-signed").der().clone();
        assert!(v.verify_client_cert(&stranger, &[], now).is_err(), "not signed by the front proxy's CA");
    }
}

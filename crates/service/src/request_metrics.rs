//! Counts every API request a component sends, by verb and resource, as
//! `ferrofluid_api_requests_total{verb, resource}` — what "quiet at rest" and the benchmarks measure. A
//! tower layer on the kube client; the classification of a request is pure.

use http::{Method, Request};
use prometheus::{IntCounterVec, Opts, Registry};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// `verb` and `resource` of one API request, as Kubernetes' audit log would name them: verbs `get`,
/// `list`, `watch`, `create`, `update`, `patch`, `apply` (server-side apply), `delete`,
/// `deletecollection`; resources are the plural name, with `/<subresource>` when there is one.
pub fn classify(method: &Method, path: &str, query: Option<&str>, apply_patch: bool) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // `/api/v1/…` or `/apis/<group>/<version>/…`.
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    // `namespaces/<ns>/<resource>/…`, except the namespaces themselves (`namespaces[/<name>]`).
    let rest = match rest {
        ["namespaces", _ns, resource, more @ ..] => {
            let mut v = vec![*resource];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let (resource, name, sub) = (rest.first().copied(), rest.get(1).copied(), rest.get(2).copied());
    let resource = match (resource, sub) {
        (Some(r), Some(s)) => format!("{r}/{s}"),
        (Some(r), None) => r.to_string(),
        (None, _) => "other".to_string(),
    };
    let watching = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) if apply_patch => "apply",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

/// The counter, registered once per component.
#[derive(Clone)]
pub struct RequestMetrics {
    requests: IntCounterVec,
}

impl RequestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("ferrofluid_api_requests_total", "API requests this component sent, by verb and resource"),
            &["verb", "resource"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        Ok(Self { requests })
    }
}

impl<S> Layer<S> for RequestMetrics {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Counted { inner, metrics: self.clone() }
    }
}

pub struct Counted<S> {
    inner: S,
    metrics: RequestMetrics,
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let apply = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
        let (verb, resource) = classify(req.method(), req.uri().path(), req.uri().query(), apply);
        self.metrics.requests.with_label_values(&[verb, &resource]).inc();
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, path: &str, query: Option<&str>) -> (&'static str, String) {
        classify(&method, path, query, false)
    }

    #[test]
    fn verbs_and_resources() {
        assert_eq!(c(Method::GET, "/api/v1/namespaces/ns/pods/p", None), ("get", "pods".into()));
        assert_eq!(c(Method::GET, "/api/v1/namespaces/ns/pods", Some("labelSelector=a")), ("list", "pods".into()));
        assert_eq!(c(Method::GET, "/api/v1/pods", Some("watch=true&resourceVersion=1")), ("watch", "pods".into()));
        assert_eq!(c(Method::GET, "/api/v1/nodes/n1", None), ("get", "nodes".into()));
        assert_eq!(c(Method::PATCH, "/api/v1/nodes/n1", None), ("patch", "nodes".into()));
        assert_eq!(
            classify(&Method::PATCH, "/apis/data.fluid.io/v1alpha1/namespaces/ns/juicefsruntimes/x/status", None, true),
            ("apply", "juicefsruntimes/status".into())
        );
        assert_eq!(c(Method::POST, "/apis/events.k8s.io/v1/namespaces/ns/events", None), ("create", "events".into()));
        assert_eq!(
            c(Method::DELETE, "/apis/apps/v1/namespaces/ns/statefulsets/w", None),
            ("delete", "statefulsets".into())
        );
        assert_eq!(
            c(Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", None),
            ("update", "leases".into())
        );
        assert_eq!(c(Method::GET, "/api/v1/namespaces/default", None), ("get", "namespaces".into()));
        assert_eq!(c(Method::GET, "/version", None), ("list", "other".into()));
    }
}

//! Reconcile logic against a mocked API server (tower-test): each scenario asserts the exact
//! conversation — which requests the reconciler makes, in order, and what it sends.

use crate::reconcile::{Context, Error, IN_USE_RECHECK, reconcile};
use ferrofluid_api::Dataset;
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::Scaffold;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::{reflector, watcher};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, Handle) {
    context_with(true)
}

fn context_with(check_secrets: bool) -> (Arc<Context>, Handle) {
    context_with_pods(check_secrets, Vec::new())
}

/// A context whose pod cache holds `pods` (and is ready).
fn context_with_pods(check_secrets: bool, pods: Vec<Pod>) -> (Arc<Context>, Handle) {
    context_with_caches(check_secrets, pods, Vec::new())
}

/// A ready watch cache holding `objects`; its writer is leaked so the cache outlives the test's use.
fn cache<K>(objects: Vec<K>) -> reflector::Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    std::mem::forget(writer);
    reader
}

fn context_with_caches(check_secrets: bool, pods: Vec<Pod>, datasets: Vec<Dataset>) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let registry = prometheus::Registry::new();
    let ctx = Context {
        client: client.clone(),
        events: Events::new(client, "test"),
        scaffold: Scaffold::new("dataset", ReconcileMetrics::register(&registry).expect("metrics")),
        datasets: cache(datasets),
        pods: cache(pods),
        pods_ready: Default::default(),
        recheck: Duration::from_secs(7),
        check_secrets,
    };
    (Arc::new(ctx), handle)
}

fn dataset(deleting: bool) -> Dataset {
    let mut meta = json!({
        "name": "jfsdemo", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
        "finalizers": ["fluid-dataset-controller-finalizer"],
    });
    if deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    serde_json::from_value(json!({
        "apiVersion": "data.fluid.io/v1alpha1", "kind": "Dataset", "metadata": meta,
        "spec": {"mounts": [{"name": "test", "mountPoint": "juicefs:///demo",
            "encryptOptions": [{"name": "metaurl", "valueFrom": {"secretKeyRef": {"name": "jfs", "key": "metaurl"}}}]}]},
    }))
    .expect("dataset")
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder().status(code).body(Body::from(serde_json::to_vec(body).expect("json"))).expect("response")
}

/// Waits for the next request, checks method and path, and returns its JSON body.
async fn expect(handle: &mut Handle, method: Method, path: &str, reply: (StatusCode, Value)) -> Value {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path);
    let bytes = request.into_body().collect_bytes().await.expect("body");
    send.send_response(respond(reply.0, &reply.1));
    if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json body") }
}

fn event_reply() -> (StatusCode, Value) {
    (
        StatusCode::CREATED,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null}),
    )
}

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";

#[tokio::test]
async fn deletion_waits_while_a_pod_uses_the_claim() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "demo-app", "namespace": "ns", "uid": "p1"},
        "spec": {"containers": [], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "jfsdemo"}}]},
        "status": {"phase": "Running"},
    }))
    .expect("pod");
    let (ctx, mut handle) = context_with_pods(true, vec![pod]);
    let server = tokio::spawn(async move {
        // The pods come from the watch cache: the first request is the Warning event.
        let ev = expect(&mut handle, Method::POST, EVENTS, event_reply()).await;
        assert_eq!(ev["reason"], "DatasetInUse");
        assert_eq!(ev["type"], "Warning");
        assert!(ev["note"].as_str().unwrap_or_default().contains("demo-app"), "{ev}");
        handle
    });
    let result = reconcile(Arc::new(dataset(true)), ctx).await;
    let err = result.expect_err("must not release the finalizer");
    assert_eq!(err.metric_label(), "in_use", "{err}");
    let mut handle = server.await.expect("server");
    // No finalizer patch followed: the next request never comes (or the client is gone).
    let next = tokio::time::timeout(Duration::from_millis(100), handle.next_request()).await;
    assert!(matches!(next, Err(_) | Ok(None)), "unexpected request after the InUse error");
}

#[tokio::test]
async fn a_source_is_not_deleted_while_datasets_refer_to_it() {
    let referring: Dataset = serde_json::from_value(json!({
        "apiVersion": "data.fluid.io/v1alpha1", "kind": "Dataset",
        "metadata": {"name": "mine", "namespace": "team-b", "uid": "u2"},
        "spec": {"mounts": [{"mountPoint": "dataset://ns/jfsdemo"}]},
    }))
    .expect("dataset");
    let (ctx, mut handle) = context_with_caches(true, Vec::new(), vec![dataset(true), referring]);
    let server = tokio::spawn(async move {
        let ev = expect(&mut handle, Method::POST, EVENTS, event_reply()).await;
        assert_eq!(ev["reason"], "DatasetReferenced");
        assert!(ev["note"].as_str().unwrap_or_default().contains("team-b/mine"), "{ev}");
        handle
    });
    let err = reconcile(Arc::new(dataset(true)), ctx).await.expect_err("must not release the finalizer");
    assert_eq!(err.metric_label(), "referenced", "{err}");
    let mut handle = server.await.expect("server");
    let next = tokio::time::timeout(Duration::from_millis(100), handle.next_request()).await;
    assert!(matches!(next, Err(_) | Ok(None)), "unexpected request after the Referenced error");
}

#[tokio::test]
async fn missing_secret_sets_condition_and_warns() {
    let (ctx, mut handle) = context();
    let server = tokio::spawn(async move {
        let ds = serde_json::to_value(dataset(false)).expect("json");
        let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
        expect(&mut handle, Method::GET, "/api/v1/namespaces/ns/secrets/jfs", (StatusCode::NOT_FOUND, not_found)).await;
        // One write: NotBound and the Validated condition together, guarded by resourceVersion.
        let patch = expect(
            &mut handle,
            Method::PATCH,
            "/apis/data.fluid.io/v1alpha1/namespaces/ns/datasets/jfsdemo/status",
            (StatusCode::OK, ds),
        )
        .await;
        assert_eq!(patch["status"]["phase"], "NotBound");
        assert_eq!(patch["metadata"]["resourceVersion"], "5", "guarded against overwriting Bound");
        let cond = &patch["status"]["conditions"][0];
        assert_eq!(cond["type"], "Validated");
        assert_eq!(cond["status"], "False");
        assert!(
            cond["message"]
                .as_str()
                .unwrap_or_default()
                .contains("spec.mounts[0].encryptOptions[0].valueFrom.secretKeyRef.name")
        );
        let ev = expect(&mut handle, Method::POST, EVENTS, event_reply()).await;
        assert_eq!(ev["reason"], "InvalidInput");
    });
    let action = reconcile(Arc::new(dataset(false)), ctx).await.expect("reconciled");
    server.await.expect("server");
    assert_eq!(action, kube::runtime::controller::Action::requeue(Duration::from_secs(7)));
}

#[tokio::test]
async fn without_secret_checks_no_secret_is_read() {
    let (ctx, mut handle) = context_with(false);
    let server = tokio::spawn(async move {
        let ds = serde_json::to_value(dataset(false)).expect("json");
        let path = "/apis/data.fluid.io/v1alpha1/namespaces/ns/datasets/jfsdemo/status";
        // Straight to the one status write: no GET of the Secret the dataset names.
        let patch = expect(&mut handle, Method::PATCH, path, (StatusCode::OK, ds)).await;
        assert_eq!(patch["status"]["conditions"][0]["status"], "True");
        assert_eq!(patch["status"]["phase"], "NotBound");
        handle
    });
    let action = reconcile(Arc::new(dataset(false)), ctx).await.expect("reconciled");
    let mut handle = server.await.expect("server");
    assert_eq!(action, kube::runtime::controller::Action::requeue(Duration::from_secs(300)));
    let next = tokio::time::timeout(Duration::from_millis(100), handle.next_request()).await;
    assert!(matches!(next, Err(_) | Ok(None)), "unexpected request");
}

#[test]
fn errors_have_metric_labels() {
    assert_eq!(Error::waiting("in_use", "b", IN_USE_RECHECK).metric_label(), "in_use");
    assert_eq!(Error::NoNamespace("a".into()).metric_label(), "input");
}

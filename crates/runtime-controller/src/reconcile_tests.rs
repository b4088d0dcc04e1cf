//! The runtime reconcile against a mocked API server (tower-test): each scenario asserts the exact
//! conversation — which requests a pass makes, and what it sends — with the watch caches seeded as
//! the scenario needs. Together with `e2e/` (the real stack) they pin down that a pass in sync sends
//! nothing.

use crate::context::Context;
use crate::juicefs_config::tests::seed;
use crate::reconcile::reconcile;
use crate::stores::Stores;
use crate::{labels, ports};
use ferrofluid_api::keys;
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use ferrofluid_service::events::Events;
use ferrofluid_service::metrics::ReconcileMetrics;
use ferrofluid_service::reconcile::Scaffold;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const RUNTIMES: &str = "/apis/data.fluid.io/v1alpha1/namespaces/ns/juicefsruntimes";
const DATASETS: &str = "/apis/data.fluid.io/v1alpha1/namespaces/ns/datasets";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const PVS: &str = "/api/v1/persistentvolumes";
const PVCS: &str = "/api/v1/namespaces/ns/persistentvolumeclaims";
const STS: &str = "/apis/apps/v1/namespaces/ns/statefulsets";
const DS: &str = "/apis/apps/v1/namespaces/ns/daemonsets";

/// A store holding exactly `objects`, ready.
fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    // The writer must outlive the test's use of the cache.
    std::mem::forget(writer);
    reader
}

/// What the watch caches hold in a scenario.
#[derive(Default)]
struct Cached {
    datasets: Vec<Dataset>,
    claims: Vec<PersistentVolumeClaim>,
    volumes: Vec<PersistentVolume>,
    workers: Vec<StatefulSet>,
    fuses: Vec<DaemonSet>,
    pods: Vec<Pod>,
}

fn context(rt: &JuiceFSRuntime, cached: Cached) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let registry = prometheus::Registry::new();
    let stores = Stores {
        runtimes: store(vec![rt.clone()]),
        datasets: store(cached.datasets),
        workers: store(cached.workers),
        fuses: store(cached.fuses),
        claims: store(cached.claims),
        volumes: store(cached.volumes),
        pods: store(cached.pods),
        nodes: store(Vec::new()),
        jobs: store(Vec::new()),
        ready: Default::default(),
    };
    let ctx = Context {
        client: client.clone(),
        events: Events::new(client, "test"),
        scaffold: Scaffold::new("juicefsruntime", ReconcileMetrics::register(&registry).expect("metrics")),
        mount_root: keys::DEFAULT_MOUNT_ROOT.into(),
        juicefs_image: Default::default(),
        resync: Duration::from_secs(60),
        stores,
        ports: ports::Allocator::new("20000-20009".parse().expect("range")),
        cache_grace: Duration::from_secs(60),
    };
    (Arc::new(ctx), handle)
}

fn runtime(deleting: bool) -> JuiceFSRuntime {
    let (_, spec) = seed();
    let mut rt = JuiceFSRuntime::new("jfsdemo", spec);
    rt.metadata.namespace = Some("ns".into());
    rt.metadata.uid = Some("rt-uid".into());
    rt.metadata.generation = Some(1);
    rt.metadata.finalizers = Some(vec![keys::FINALIZER_RUNTIME.into()]);
    if deleting {
        rt.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    }
    rt
}

fn dataset() -> Dataset {
    let (spec, _) = seed();
    let mut ds = Dataset::new("jfsdemo", spec);
    ds.metadata.namespace = Some("ns".into());
    ds.metadata.uid = Some("ds-uid".into());
    ds
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("json")
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder().status(code).body(Body::from(serde_json::to_vec(body).expect("json"))).expect("response")
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
    )
}

fn event_reply() -> (StatusCode, Value) {
    (
        StatusCode::CREATED,
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": null}),
    )
}

/// The next request: its method, path and JSON body (`Null` when empty), answered with `reply(body)`.
async fn next(
    handle: &mut Handle,
    reply: impl FnOnce(&Method, &str, &Value) -> (StatusCode, Value),
) -> (Method, String, Value) {
    let (request, send) = handle.next_request().await.expect("a request");
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json body") };
    let (code, answer) = reply(&method, &path, &body);
    send.send_response(respond(code, &answer));
    (method, path, body)
}

/// Asserts the next request is `method path` and answers it.
async fn expect(handle: &mut Handle, method: Method, path: &str, reply: (StatusCode, Value)) -> Value {
    let (m, p, body) = next(handle, |_, _, _| reply).await;
    assert_eq!((m, p.as_str()), (method, path), "unexpected request");
    body
}

/// No further request comes (or the client is gone).
async fn silence(handle: &mut Handle) {
    let more = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    if let Ok(Some((request, _))) = more {
        panic!("unexpected request: {} {}", request.method(), request.uri());
    }
}

/// A pass that must send nothing: any request fails the test (instead of waiting for an answer).
async fn quiet_pass(rt: JuiceFSRuntime, ctx: Arc<Context>, mut handle: Handle) -> Action {
    let mut pass = tokio::spawn(reconcile(Arc::new(rt), ctx));
    tokio::select! {
        request = handle.next_request() => match request {
            Some((r, _)) => panic!("a pass in sync sent {} {}", r.method(), r.uri()),
            // The pass ended and dropped its client first.
            None => pass.await.expect("pass").expect("reconciled"),
        },
        done = &mut pass => done.expect("pass").expect("reconciled"),
    }
}

/// Asserts the next request applies the runtime's status; returns the body.
async fn runtime_status(handle: &mut Handle) -> Value {
    let reply = (StatusCode::OK, to_json(runtime(false)));
    expect(handle, Method::PATCH, &format!("{RUNTIMES}/jfsdemo/status"), reply).await
}

/// A server-side apply answered as the API server would: the applied object, given a UID.
fn applied(body: &Value) -> (StatusCode, Value) {
    let mut obj = body.clone();
    obj["metadata"]["uid"] = json!(format!("uid-{}", body["metadata"]["name"].as_str().unwrap_or("x")));
    (StatusCode::CREATED, obj)
}

#[tokio::test]
async fn a_runtime_without_its_dataset_says_so_once() {
    let rt = runtime(false);
    let (ctx, mut handle) = context(&rt, Cached::default());
    let server = tokio::spawn(async move {
        let ev = expect(&mut handle, Method::POST, EVENTS, event_reply()).await;
        assert_eq!((ev["type"].as_str(), ev["reason"].as_str()), (Some("Warning"), Some("DatasetNotFound")));
        let status = runtime_status(&mut handle).await;
        let ready = &status["status"]["conditions"][0];
        assert_eq!((ready["type"].as_str(), ready["status"].as_str()), (Some("Ready"), Some("False")));
        assert_eq!(ready["reason"], "DatasetNotFound");
        handle
    });
    let action = reconcile(Arc::new(rt.clone()), ctx).await.expect("reconciled");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let mut handle = server.await.expect("server");
    silence(&mut handle).await;

    // Again, with the condition recorded: nothing is news, nothing is sent.
    let mut told = rt;
    told.status = Some(crate::status_bodies::blocked(
        &Default::default(),
        "DatasetNotFound",
        "no Dataset ns/jfsdemo; the runtime proceeds as soon as one is created",
        "2026-01-01T00:00:00Z",
    ));
    let (ctx, handle) = context(&told, Cached::default());
    quiet_pass(told, ctx, handle).await;
}

#[tokio::test]
async fn create_in_order_bind_then_send_nothing_at_rest() {
    let rt = runtime(false);
    let cached = Cached { datasets: vec![dataset()], ..Default::default() };
    let (ctx, mut handle) = context(&rt, cached);
    let server = tokio::spawn(async move {
        // The dataset becomes the runtime's owner.
        let rt_reply = (StatusCode::OK, serde_json::to_value(runtime(false)).expect("json"));
        let owner = expect(&mut handle, Method::PATCH, &format!("{RUNTIMES}/jfsdemo"), rt_reply).await;
        assert_eq!(owner["metadata"]["ownerReferences"][0]["uid"], "ds-uid");
        // Nothing is cached under the four names, and those caches hold every object of their kind:
        // the names are free, nothing is read.
        // Workers and FUSE clients use the host network (Fluid's default): their metrics ports are
        // recorded before any pod exists — in the whole status as it stands.
        let ports = runtime_status(&mut handle).await;
        assert_eq!(ports["status"]["hostPorts"], json!({"workerMetrics": 20000, "fuseMetrics": 20001}));
        // The PV first — the claim on the cluster-wide name — then the workloads; created, not forced.
        let mut created = BTreeMap::new();
        for path in [format!("{PVS}/ns-jfsdemo"), format!("{STS}/jfsdemo-worker"), format!("{DS}/jfsdemo-fuse")] {
            let (m, p, body) = next(&mut handle, |_, _, b| applied(b)).await;
            assert_eq!((m, p.as_str()), (Method::PATCH, path.as_str()));
            let labels = &body["metadata"]["labels"];
            assert_eq!(labels[keys::LABEL_MANAGED_BY], keys::MANAGED_BY, "{p}: the ownership mark");
            assert_eq!(labels[keys::LABEL_RUNTIME_UID], "rt-uid", "{p}: the ownership mark");
            assert!(body["metadata"].get("uid").is_none(), "{p}: a create is not pinned to a UID");
            assert!(body["metadata"]["annotations"][keys::ANNOTATION_DESIRED_HASH].is_string(), "{p}");
            created.insert(p, body);
        }
        // No worker is ready yet: the dataset stays NotBound (no PVC, no event: nothing happened), and
        // says why.
        let ds_status = expect(
            &mut handle,
            Method::PATCH,
            &format!("{DATASETS}/jfsdemo/status"),
            (StatusCode::OK, serde_json::to_value(dataset()).expect("json")),
        )
        .await;
        assert_eq!(ds_status["status"]["runtimes"][0]["name"], "jfsdemo");
        // The runtime's status went out once, with the ports: after the workloads it says the same.
        assert_eq!(ports["status"]["workerPhase"], "NotReady");
        (handle, created, ds_status["status"].clone(), ports["status"].clone())
    });
    reconcile(Arc::new(rt.clone()), ctx).await.expect("reconciled");
    let (mut handle, created, ds_status, rt_status) = server.await.expect("server");
    silence(&mut handle).await;

    // The caches now hold what the first pass wrote, and the worker became ready.
    let mut rt = rt;
    rt.metadata.owner_references = serde_json::from_value(json!([{
        "apiVersion": "data.fluid.io/v1alpha1", "kind": "Dataset", "name": "jfsdemo", "uid": "ds-uid",
        "controller": false,
    }]))
    .expect("owner");
    rt.status = Some(serde_json::from_value(rt_status).expect("runtime status"));
    let mut ds = dataset();
    ds.status = Some(serde_json::from_value(ds_status).expect("dataset status"));
    let stored = |p: String| applied(&created[&p]).1;
    // Readiness comes from the worker pod the StatefulSet controls; its own status still says none
    // is ready (it trails the pods), which changes nothing.
    let mut sts: StatefulSet = serde_json::from_value(stored(format!("{STS}/jfsdemo-worker"))).expect("sts");
    sts.status = Some(serde_json::from_value(json!({"replicas": 1, "readyReplicas": 0})).expect("sts status"));
    let worker: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": "jfsdemo-worker-0", "namespace": "ns", "uid": "pod-uid",
            "labels": {
                (keys::LABEL_MANAGED_BY): keys::MANAGED_BY, (keys::LABEL_APP): keys::APP_JUICEFS,
                (keys::LABEL_RELEASE): "jfsdemo", (keys::LABEL_ROLE): keys::ROLE_WORKER,
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "jfsdemo-worker",
                "uid": "uid-jfsdemo-worker", "controller": true}],
        },
        "spec": {"containers": [], "nodeName": "node-a"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("worker pod");
    let cached = |ds: Dataset, claims: Vec<PersistentVolumeClaim>| Cached {
        datasets: vec![ds],
        claims,
        volumes: vec![serde_json::from_value(stored(format!("{PVS}/ns-jfsdemo"))).expect("pv")],
        workers: vec![sts.clone()],
        fuses: vec![serde_json::from_value(stored(format!("{DS}/jfsdemo-fuse"))).expect("ds")],
        pods: vec![worker.clone()],
    };

    // Second pass: the dataset is Bound — its PVC is created, the statuses say so; nothing else moves.
    let (ctx, mut handle) = context(&rt, cached(ds.clone(), Vec::new()));
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        // Every request is answered as the API server would, until the pass is over (client gone).
        while let Some((request, send)) = handle.next_request().await {
            let (m, p) = (request.method().clone(), request.uri().path().to_string());
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let b: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json") };
            let (code, answer) = match m {
                Method::GET => not_found(),
                Method::POST => event_reply(),
                _ if p.ends_with("datasets/jfsdemo/status") => (StatusCode::OK, to_json(dataset())),
                _ if p.ends_with("/status") => (StatusCode::OK, to_json(runtime(false))),
                _ => applied(&b),
            };
            send.send_response(respond(code, &answer));
            seen.push((m, p, b));
        }
        seen
    });
    reconcile(Arc::new(rt.clone()), ctx).await.expect("reconciled");
    let seen = server.await.expect("server");
    let calls: Vec<(String, String)> = seen.iter().map(|(m, p, _)| (m.to_string(), p.clone())).collect();
    let call = |m: &str, p: String| (m.to_string(), p);
    assert_eq!(
        calls,
        [
            call("PATCH", format!("{PVCS}/jfsdemo")),
            call("POST", EVENTS.into()),
            call("PATCH", format!("{DATASETS}/jfsdemo/status")),
            call("PATCH", format!("{RUNTIMES}/jfsdemo/status")),
        ],
        "only the PVC is new (created without a read: the cache holds every claim), then the statuses"
    );
    let body = |i: usize| seen[i].2.clone();
    assert_eq!(body(1)["reason"], "DatasetBound");
    assert_eq!(body(2)["status"]["phase"], "Bound");
    assert_eq!(body(3)["status"]["workerPhase"], "Ready");

    // Third pass: nothing changed since — not a single request.
    let pvc: PersistentVolumeClaim = serde_json::from_value(applied(&body(0)).1).expect("pvc");
    ds.status = Some(serde_json::from_value(body(2)["status"].clone()).expect("dataset status"));
    rt.status = Some(serde_json::from_value(body(3)["status"].clone()).expect("runtime status"));
    let (ctx, handle) = context(&rt, cached(ds, vec![pvc]));
    let action = quiet_pass(rt, ctx, handle).await;
    assert!(action != Action::await_change(), "the resync stays as a safety net");
}

#[tokio::test]
async fn a_new_runtime_gets_its_finalizer_and_owner_in_one_apply_and_the_pass_goes_on() {
    let mut rt = runtime(false);
    rt.metadata.finalizers = None;
    let cached = Cached { datasets: vec![dataset()], ..Default::default() };
    let (ctx, mut handle) = context(&rt, cached);
    let server = tokio::spawn(async move {
        let rt_reply = (StatusCode::OK, serde_json::to_value(runtime(false)).expect("json"));
        let meta = expect(&mut handle, Method::PATCH, &format!("{RUNTIMES}/jfsdemo"), rt_reply).await;
        assert_eq!(meta["metadata"]["finalizers"], json!([keys::FINALIZER_RUNTIME]));
        assert_eq!(meta["metadata"]["ownerReferences"][0]["uid"], "ds-uid");
        // The same pass goes on: host ports, then the PV.
        runtime_status(&mut handle).await;
        let (m, p, _) = next(&mut handle, |_, _, b| applied(b)).await;
        assert_eq!((m, p.as_str()), (Method::PATCH, format!("{PVS}/ns-jfsdemo").as_str()));
        handle
    });
    // The pass stops after the PV (the mock answers nothing more); what matters is what came first.
    let pass = tokio::spawn(reconcile(Arc::new(rt), ctx));
    let _handle = server.await.expect("server");
    pass.abort();
}

#[tokio::test]
async fn a_deleted_runtime_without_the_finalizer_is_left_alone() {
    let mut rt = runtime(true);
    rt.metadata.finalizers = Some(vec!["someone-else".into()]);
    let (ctx, handle) = context(&rt, Cached { datasets: vec![dataset()], ..Default::default() });
    assert_eq!(quiet_pass(rt, ctx, handle).await, Action::await_change());
}

#[tokio::test]
async fn deletion_waits_for_the_claim_and_says_so_once() {
    let rt = runtime(true);
    let mut pvc = PersistentVolumeClaim::default();
    pvc.metadata.name = Some("jfsdemo".into());
    pvc.metadata.namespace = Some("ns".into());
    pvc.metadata.uid = Some("pvc-uid".into());
    pvc.metadata.labels = Some(labels::marked(BTreeMap::new(), &rt));
    let cached = Cached { datasets: vec![dataset()], claims: vec![pvc.clone()], ..Default::default() };
    let (ctx, mut handle) = context(&rt, cached);
    let server = tokio::spawn(async move {
        // The claim is deleted with its UID as precondition; Kubernetes keeps it while a pod uses it.
        let mut deleting = serde_json::to_value(&pvc).expect("json");
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        deleting["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection"]);
        let params = expect(&mut handle, Method::DELETE, &format!("{PVCS}/jfsdemo"), (StatusCode::OK, deleting)).await;
        assert_eq!(params["preconditions"]["uid"], "pvc-uid");
        let ev = expect(&mut handle, Method::POST, EVENTS, event_reply()).await;
        assert_eq!(ev["reason"], "WaitingForPVC");
        handle
    });
    let err = reconcile(Arc::new(rt), ctx).await.expect_err("the finalizer stays");
    assert_eq!(err.metric_label(), "waiting", "{err}");
    let mut handle = server.await.expect("server");
    // Neither the workloads nor the PV were touched, nor the finalizer released.
    silence(&mut handle).await;
}

//! Which pods to scrape, pure: a worker or FUSE pod of a live JuiceFSRuntime becomes a scrape target
//! at `<pod IP>:<its container port named "metrics">`; the runtime's tiered-store quotas times its ready
//! workers give the dataset's cache capacity.

use ferrofluid_api::keys::{
    APP_JUICEFS, FUSE_CONTAINER, LABEL_APP, LABEL_MANAGED_BY, LABEL_RELEASE, LABEL_ROLE, MANAGED_BY, METRICS_PORT_NAME,
    ROLE_FUSE, ROLE_WORKER, WORKER_CONTAINER,
};
use ferrofluid_api::quota::{QuotaError, quota_bytes};
use ferrofluid_api::{DatasetKey, JuiceFSRuntime};
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Label selector of the pods the collector watches.
pub fn pod_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_APP}={APP_JUICEFS},{LABEL_ROLE} in ({ROLE_WORKER},{ROLE_FUSE})")
}

/// The two kinds of JuiceFS clients a dataset has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    Worker,
    Fuse,
}

impl TargetKind {
    pub const ALL: [TargetKind; 2] = [TargetKind::Worker, TargetKind::Fuse];

    /// Value of the `kind` label on the collector's own metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Worker => "worker",
            TargetKind::Fuse => "fuse",
        }
    }

    fn container(self) -> &'static str {
        match self {
            TargetKind::Worker => WORKER_CONTAINER,
            TargetKind::Fuse => FUSE_CONTAINER,
        }
    }
}

/// One metrics endpoint to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub dataset: DatasetKey,
    pub kind: TargetKind,
    /// `<namespace>/<pod name>`: identifies the target across rounds.
    pub pod: String,
    pub endpoint: SocketAddr,
}

impl Target {
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.endpoint)
    }
}

/// What the collector learns from one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    pub dataset: DatasetKey,
    pub kind: TargetKind,
    pub ready: bool,
    /// Where its JuiceFS client serves metrics; `None` until it runs with an IP and declares the port.
    pub endpoint: Option<SocketAddr>,
}

/// Reads a pod of the contract; `None` for pods that are not ferrofluid's JuiceFS worker/FUSE pods or
/// that are being deleted.
pub fn pod_info(pod: &Pod) -> Option<PodInfo> {
    let labels = pod.metadata.labels.as_ref()?;
    if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY)
        || labels.get(LABEL_APP).map(String::as_str) != Some(APP_JUICEFS)
        || pod.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let kind = match labels.get(LABEL_ROLE).map(String::as_str) {
        Some(ROLE_WORKER) => TargetKind::Worker,
        Some(ROLE_FUSE) => TargetKind::Fuse,
        _ => return None,
    };
    let namespace = pod.metadata.namespace.as_deref()?;
    let release = labels.get(LABEL_RELEASE).filter(|r| !r.is_empty())?;
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = running
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let ip: Option<IpAddr> = status.and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok());
    let endpoint = match (running, ip, metrics_port(pod, kind)) {
        (true, Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    Some(PodInfo { dataset: DatasetKey::new(namespace, release.as_str()), kind, ready, endpoint })
}

/// The container port named `metrics`, preferring the JuiceFS container of the pod's role.
fn metrics_port(pod: &Pod, kind: TargetKind) -> Option<u16> {
    let containers = &pod.spec.as_ref()?.containers;
    let port_of = |c: &k8s_openapi::api::core::v1::Container| {
        c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(METRICS_PORT_NAME)).map(|p| p.container_port)
    };
    let own = containers.iter().find(|c| c.name == kind.container()).and_then(port_of);
    own.or_else(|| containers.iter().find_map(port_of)).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
}

/// Everything one scrape round does for one dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatasetPlan {
    pub targets: Vec<Target>,
    /// Cache capacity in bytes; `None` when a quota is malformed.
    pub capacity_bytes: Option<u64>,
    pub ready_workers: u32,
}

/// Groups pods by the live runtimes they belong to. Runtimes being deleted, or with Prometheus disabled,
/// get no plan: their series go away and their pods are no longer scraped.
pub fn plan<'a>(
    runtimes: impl IntoIterator<Item = &'a JuiceFSRuntime>,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> BTreeMap<DatasetKey, DatasetPlan> {
    let mut plans: BTreeMap<DatasetKey, DatasetPlan> = BTreeMap::new();
    let mut per_worker: BTreeMap<DatasetKey, Option<u64>> = BTreeMap::new();
    for rt in runtimes {
        let (Some(ns), Some(name)) = (rt.metadata.namespace.as_deref(), rt.metadata.name.as_deref()) else {
            continue;
        };
        if rt.metadata.deletion_timestamp.is_some() || rt.spec.disable_prometheus == Some(true) {
            continue;
        }
        let key = DatasetKey::new(ns, name);
        per_worker.insert(key.clone(), quota_per_worker(rt).ok());
        plans.insert(key, DatasetPlan::default());
    }
    for pod in pods {
        let Some(info) = pod_info(pod) else { continue };
        let Some(plan) = plans.get_mut(&info.dataset) else { continue };
        if info.kind == TargetKind::Worker && info.ready {
            plan.ready_workers += 1;
        }
        if let Some(endpoint) = info.endpoint {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let pod = format!("{}/{name}", info.dataset.namespace);
            plan.targets.push(Target { dataset: info.dataset, kind: info.kind, pod, endpoint });
        }
    }
    for (key, plan) in plans.iter_mut() {
        plan.targets.sort_by(|a, b| a.pod.cmp(&b.pod));
        plan.capacity_bytes =
            per_worker.get(key).copied().flatten().map(|q| q.saturating_mul(u64::from(plan.ready_workers)));
    }
    plans
}

/// Cache each worker offers: the sum of its tiered-store level quotas (a level without quota adds nothing).
pub fn quota_per_worker(rt: &JuiceFSRuntime) -> Result<u64, QuotaError> {
    let levels = rt.spec.tieredstore.iter().flat_map(|t| t.levels.iter());
    levels.filter_map(|l| l.quota.as_ref()).try_fold(0u64, |acc, q| Ok(acc.saturating_add(quota_bytes(q)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::juicefs_runtime::TieredStore;
    use ferrofluid_api::{JuiceFSRuntimeSpec, Level};
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, release: &str, role: &str, ip: Option<&str>, ready: bool) -> Pod {
        let labels =
            [(LABEL_APP, APP_JUICEFS), (LABEL_RELEASE, release), (LABEL_ROLE, role), (LABEL_MANAGED_BY, MANAGED_BY)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let container = if role == ROLE_WORKER { WORKER_CONTAINER } else { FUSE_CONTAINER };
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: container.into(),
                    ports: Some(vec![
                        ContainerPort { name: Some("other".into()), container_port: 80, ..Default::default() },
                        ContainerPort {
                            name: Some(METRICS_PORT_NAME.into()),
                            container_port: 9567,
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(if ip.is_some() { "Running" } else { "Pending" }.into()),
                pod_ip: ip.map(String::from),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn runtime(name: &str, quotas: &[IntOrString]) -> JuiceFSRuntime {
        let levels = quotas
            .iter()
            .map(|q| Level { path: "/cache".into(), quota: Some(q.clone()), ..Default::default() })
            .collect();
        let mut rt = JuiceFSRuntime::new(
            name,
            JuiceFSRuntimeSpec { tieredstore: Some(TieredStore { levels }), ..Default::default() },
        );
        rt.metadata.namespace = Some("ns".into());
        rt
    }

    #[test]
    fn pod_contract() {
        let info = pod_info(&pod("w-0", "demo", ROLE_WORKER, Some("127.128.0.7"), true)).expect("target");
        assert_eq!(info.dataset, DatasetKey::new("ns", "demo"));
        assert_eq!(info.kind, TargetKind::Worker);
        assert!(info.ready);
        assert_eq!(info.endpoint, Some("127.128.0.7:9567".parse().expect("addr")));

        let pending = pod_info(&pod("f-1", "demo", ROLE_FUSE, None, false)).expect("known pod");
        assert_eq!(pending.endpoint, None);

        let mut foreign = pod("x", "demo", ROLE_WORKER, Some("127.128.0.8"), true);
        if let Some(labels) = foreign.metadata.labels.as_mut() {
            labels.insert(LABEL_MANAGED_BY.into(), "helm".into());
        }
        assert_eq!(pod_info(&foreign), None);

        let mut deleting = pod("w-0", "demo", ROLE_WORKER, Some("127.128.0.7"), true);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(pod_info(&deleting), None);

        let mut no_port = pod("w-0", "demo", ROLE_WORKER, Some("127.128.0.7"), true);
        if let Some(spec) = no_port.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        assert_eq!(pod_info(&no_port).and_then(|i| i.endpoint), None);
    }

    #[test]
    fn plan_groups_by_live_runtime_and_counts_capacity() {
        let gi = |n: i64| IntOrString::String(format!("{n}Gi"));
        let mut gone = runtime("gone", &[gi(1)]);
        gone.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let mut silent = runtime("silent", &[gi(1)]);
        silent.spec.disable_prometheus = Some(true);
        let runtimes = [runtime("demo", &[gi(1), IntOrString::Int(512)]), gone, silent, runtime("bad", &[gi(0)])];
        let pods = [
            pod("demo-worker-0", "demo", ROLE_WORKER, Some("127.128.0.1"), true),
            pod("demo-worker-1", "demo", ROLE_WORKER, Some("127.128.0.2"), true),
            pod("demo-worker-2", "demo", ROLE_WORKER, Some("127.128.0.3"), false),
            pod("demo-fuse-a", "demo", ROLE_FUSE, Some("127.128.0.4"), true),
            pod("demo-fuse-b", "demo", ROLE_FUSE, None, false),
            pod("gone-worker-0", "gone", ROLE_WORKER, Some("127.128.0.5"), true),
            pod("silent-worker-0", "silent", ROLE_WORKER, Some("127.128.0.6"), true),
            pod("orphan-worker-0", "orphan", ROLE_WORKER, Some("127.128.0.9"), true),
        ];
        let plans = plan(runtimes.iter(), pods.iter());
        assert_eq!(plans.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["bad", "demo"]);
        let demo = &plans[&DatasetKey::new("ns", "demo")];
        assert_eq!(demo.ready_workers, 2);
        assert_eq!(demo.capacity_bytes, Some(2 * ((1 << 30) + (512 << 20))));
        let pods: Vec<_> = demo.targets.iter().map(|t| (t.pod.as_str(), t.kind)).collect();
        assert_eq!(
            pods,
            [
                ("ns/demo-fuse-a", TargetKind::Fuse),
                ("ns/demo-worker-0", TargetKind::Worker),
                ("ns/demo-worker-1", TargetKind::Worker),
                ("ns/demo-worker-2", TargetKind::Worker),
            ],
            "a running worker that is not ready yet is still scraped; a pending FUSE pod is not"
        );
        assert_eq!(demo.targets[0].url(), "http://127.128.0.4:9567/metrics");
        assert_eq!(plans[&DatasetKey::new("ns", "bad")].capacity_bytes, None, "malformed quota: unknown capacity");
    }

    #[test]
    fn capacity_is_zero_without_tieredstore_or_ready_workers() {
        let mut rt = runtime("demo", &[]);
        rt.spec.tieredstore = None;
        assert_eq!(quota_per_worker(&rt), Ok(0));
        let plans = plan([&runtime("demo", &[IntOrString::Int(1024)])], []);
        assert_eq!(plans[&DatasetKey::new("ns", "demo")].capacity_bytes, Some(0));
    }

    #[test]
    fn selector_names_the_contract_labels() {
        assert_eq!(
            pod_selector(),
            "app.kubernetes.io/managed-by=ferrofluid,app=juicefs,role in (juicefs-worker,juicefs-fuse)"
        );
    }
}

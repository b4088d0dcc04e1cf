//! The Job that removes a runtime's cache directories from one node, pure. JuiceFS clients (workers and
//! FUSE clients alike) cache in `<level path>/<ns>-<name>` of every hostPath tiered-store level;
//! nothing else removes those (emptyDir levels go with their pods), so a deleted runtime — or a node that
//! lost its worker — would keep them forever: for `/dev/shm`, node memory.
//!
//! One Job per node, pinned to it, owned by the runtime (garbage-collected with it), labelled with the
//! ownership mark. Exec-form `rm -rf --one-file-system -- <dirs>` in the runtime's own JuiceFS image;
//! the directories are exactly those the clients were told to use (`--cache-dir`).

use crate::juicefs_config::{JuiceFsConfig, literal};
use crate::labels;
use crate::pod_parts::{TERMINATION_MESSAGE_POLICY, image_of, pull_policy};
use ferrofluid_api::JuiceFSRuntime;
use ferrofluid_api::juicefs_runtime::{CacheNode, DefaultImage};
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::naming::fnv1a64;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, PodSpec, PodTemplateSpec, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// How long a cleanup may take before it counts as failed (e.g. its node is gone).
pub const DEADLINE_SECONDS: i64 = 300;

/// The cache directories of the hostPath levels: what the clients were given as `--cache-dir`.
pub fn host_cache_dirs(cfg: &JuiceFsConfig) -> Vec<String> {
    cfg.cache
        .iter()
        .filter(|l| !l.empty_dir)
        .flat_map(|l| l.paths.iter().map(|p| format!("{}/{}", p.trim_end_matches('/'), cfg.cache_name)))
        .collect()
}

/// Name of the cleanup Job of `node`: the runtime's name and a hash of the node's.
pub fn job_name(key: &DatasetKey, node: &str) -> String {
    format!("{}-cache-clean-{:08x}", key.name, fnv1a64(node.as_bytes()) & 0xffff_ffff)
}

/// The Job removing `dirs` (absolute `<level path>/<ns>-<name>` paths) on `node`; each dir's parent is
/// mounted from the host, in the runtime's FUSE image (`default_image` where it names none). `None` when
/// there is nothing to remove.
pub fn job(
    runtime: &JuiceFSRuntime,
    key: &DatasetKey,
    node: &str,
    dirs: &[String],
    default_image: &DefaultImage,
) -> Option<Job> {
    if dirs.is_empty() {
        return None;
    }
    let spec = &runtime.spec;
    let fuse = spec.fuse.clone().unwrap_or_default().component;
    let mut parents: Vec<String> =
        dirs.iter().filter_map(|d| Path::new(d).parent().map(|p| p.display().to_string())).collect();
    parents.sort();
    parents.dedup();
    let (volumes, mounts): (Vec<Volume>, Vec<VolumeMount>) = parents
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("cache-{i}");
            (
                Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource { path: p.clone(), type_: Some("Directory".into()) }),
                    ..Default::default()
                },
                VolumeMount { name, mount_path: p.clone(), ..Default::default() },
            )
        })
        .unzip();
    let mut command = vec!["rm".to_string(), "-rf".into(), "--one-file-system".into(), "--".into()];
    command.extend(dirs.iter().map(|d| literal(d)));
    let mut pod_labels = labels::for_role(key, keys::ROLE_CACHE_CLEANUP);
    pod_labels.insert(keys::LABEL_RUNTIME_UID.into(), runtime.metadata.uid.clone().unwrap_or_default());
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(key, node)),
            namespace: Some(key.namespace.clone()),
            labels: Some(labels::marked(labels::for_role(key, keys::ROLE_CACHE_CLEANUP), runtime)),
            annotations: Some([(keys::ANNOTATION_NODE.to_string(), node.to_string())].into()),
            owner_references: labels::owned_by(runtime).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            active_deadline_seconds: Some(DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..Default::default() }),
                spec: Some(PodSpec {
                    node_name: Some(node.to_string()),
                    restart_policy: Some("Never".into()),
                    // It must reach tainted nodes too, as the FUSE clients do.
                    tolerations: Some(vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
                    containers: vec![Container {
                        name: keys::CACHE_CLEANUP_CONTAINER.into(),
                        image: Some(image_of(spec, fuse.image.as_deref(), fuse.image_tag.as_deref(), default_image)),
                        image_pull_policy: pull_policy(spec, fuse.image_pull_policy),
                        command: Some(command),
                        volume_mounts: Some(mounts),
                        termination_message_policy: Some(TERMINATION_MESSAGE_POLICY.into()),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// What to do about the cache nodes, pure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The `status.cacheNodes` to record.
    pub nodes: Vec<CacheNode>,
    /// Nodes whose cache directories should be removed now (a cleanup Job each).
    pub clean: Vec<String>,
}

/// Plans the cache nodes of a runtime. `recorded` is `status.cacheNodes`; `clients` the nodes where a
/// worker or FUSE pod of the runtime is (any phase); `known` whether a node exists. A node stays
/// recorded while a client is there; once none is, it is marked idle (`now`), and after `grace` it is
/// cleaned — so a pod that is only being replaced does not lose its cache. A node that is gone (no Node
/// object) cannot run a cleanup: it stays recorded and is cleaned if a node of that name comes back.
/// With `tearing_down` every recorded node is cleaned at once (the clients are gone by then), and nodes
/// that are gone are forgotten: deletion does not wait for a machine that may never return.
pub fn plan(
    recorded: &[CacheNode],
    clients: &BTreeSet<String>,
    dirs_now: &[String],
    known: impl Fn(&str) -> bool,
    now: Timestamp,
    grace: Duration,
    tearing_down: bool,
) -> Plan {
    let mut nodes: BTreeMap<String, (BTreeSet<String>, Option<String>)> =
        recorded.iter().map(|c| (c.node.clone(), (c.dirs.iter().cloned().collect(), c.idle_since.clone()))).collect();
    for n in clients {
        let entry = nodes.entry(n.clone()).or_default();
        entry.0.extend(dirs_now.iter().cloned());
        entry.1 = None;
    }
    let mut plan = Plan::default();
    for (node, (dirs, idle_since)) in nodes {
        if dirs.is_empty() || (tearing_down && !known(&node)) {
            continue;
        }
        let dirs: Vec<String> = dirs.into_iter().collect();
        if clients.contains(&node) {
            plan.nodes.push(CacheNode { node, dirs, idle_since: None });
            continue;
        }
        let since = idle_since.clone().unwrap_or_else(|| now.to_string());
        let idle_for = since.parse::<Timestamp>().map(|t| now.duration_since(t)).ok();
        let idle_enough = idle_for.is_some_and(|d| d.as_secs_f64() >= grace.as_secs_f64());
        let due = known(&node) && (tearing_down || idle_enough);
        if due {
            plan.clean.push(node.clone());
        }
        plan.nodes.push(CacheNode { node, dirs, idle_since: Some(since) });
    }
    plan
}

/// How long until the first idle node of `nodes` is due for cleaning (zero if one already is).
pub fn next_due(nodes: &[CacheNode], now: Timestamp, grace: Duration) -> Option<Duration> {
    nodes
        .iter()
        .filter_map(|c| c.idle_since.as_deref()?.parse::<Timestamp>().ok())
        .map(|since| {
            let idle = now.duration_since(since).as_secs_f64().max(0.0);
            Duration::from_secs_f64((grace.as_secs_f64() - idle).max(0.0))
        })
        .min()
}

/// Where a cleanup Job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Succeeded,
    Failed,
}

pub fn outcome(job: &Job) -> Outcome {
    let st = job.status.clone().unwrap_or_default();
    let condition = |t: &str| st.conditions.iter().flatten().any(|c| c.type_ == t && c.status == "True");
    if condition("Complete") || st.succeeded.unwrap_or(0) > 0 {
        Outcome::Succeeded
    } else if condition("Failed") {
        Outcome::Failed
    } else {
        Outcome::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juicefs_config::{self, tests::seed};
    use ferrofluid_api::juicefs_runtime::{Level, MediumType, TieredStore, VolumeType};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn runtime(spec: ferrofluid_api::JuiceFSRuntimeSpec) -> JuiceFSRuntime {
        let mut rt = JuiceFSRuntime::new("jfsdemo", spec);
        rt.metadata.namespace = Some("default".into());
        rt.metadata.uid = Some("uid-1".into());
        rt
    }

    #[test]
    fn removes_exactly_the_host_cache_dirs_on_one_node() {
        let (ds, mut rt_spec) = seed();
        rt_spec.tieredstore = Some(TieredStore {
            levels: vec![
                Level {
                    mediumtype: MediumType::Mem,
                    path: "/dev/shm".into(),
                    quota: Some(IntOrString::Int(1)),
                    ..Default::default()
                },
                Level {
                    mediumtype: MediumType::Ssd,
                    path: "/mnt/a:/mnt/$b".into(),
                    quota: Some(IntOrString::Int(1)),
                    ..Default::default()
                },
                Level {
                    mediumtype: MediumType::Hdd,
                    path: "/scratch".into(),
                    volume_type: Some(VolumeType::EmptyDir),
                    quota: Some(IntOrString::Int(1)),
                    ..Default::default()
                },
            ],
        });
        let rt = runtime(rt_spec);
        let cfg = juicefs_config::build(&ds, &rt.spec, &juicefs_config::tests::key()).expect("valid");
        let key = DatasetKey::new("default", "jfsdemo");
        let dirs = host_cache_dirs(&cfg);
        let mirror: DefaultImage = "registry.local:5000/jfs:1.4.2".parse().expect("image");
        let job = job(&rt, &key, "node-1", &dirs, &mirror).expect("host levels");
        assert_eq!(crate::owned::ownership(&job.metadata, "uid-1"), crate::owned::Ownership::Ours);
        let pod = job.spec.expect("spec").template.spec.expect("pod");
        assert_eq!(pod.node_name.as_deref(), Some("node-1"));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.local:5000/jfs:1.4.2"), "the runtime names no image");
        assert_eq!(
            c.command.as_deref().expect("argv"),
            [
                "rm",
                "-rf",
                "--one-file-system",
                "--",
                "/dev/shm/default-jfsdemo",
                "/mnt/a/default-jfsdemo",
                "/mnt/$$b/default-jfsdemo"
            ]
        );
        let mounted: Vec<&str> = c.volume_mounts.iter().flatten().map(|m| m.mount_path.as_str()).collect();
        assert_eq!(mounted, ["/dev/shm", "/mnt/$b", "/mnt/a"], "the emptyDir level is not touched");
        assert_ne!(job_name(&key, "node-1"), job_name(&key, "node-2"));
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("time")
    }

    fn node(n: &str, idle: Option<i64>) -> CacheNode {
        CacheNode { node: n.into(), dirs: vec!["/dev/shm/fs".into()], idle_since: idle.map(|s| at(s).to_string()) }
    }

    #[test]
    fn idle_nodes_are_cleaned_after_the_grace_only() {
        let grace = Duration::from_secs(60);
        let clients = BTreeSet::from(["a".to_string()]);
        let all = |_: &str| true;
        // A new client node is recorded; a recorded node without clients turns idle.
        let dirs = ["/dev/shm/fs".to_string()];
        let p = plan(&[node("b", None)], &clients, &dirs, all, at(0), grace, false);
        assert_eq!(p.nodes, [node("a", None), node("b", Some(0))]);
        assert!(p.clean.is_empty());
        // Still idle within the grace: kept; past it: cleaned (and kept recorded until that is done).
        assert!(plan(&p.nodes, &clients, &dirs, all, at(30), grace, false).clean.is_empty());
        let p = plan(&p.nodes, &clients, &dirs, all, at(61), grace, false);
        assert_eq!(p.clean, ["b"]);
        // A client came back in time: no longer idle.
        let back = plan(&[node("b", Some(0))], &BTreeSet::from(["b".to_string()]), &dirs, all, at(10), grace, false);
        assert_eq!(back.nodes, [node("b", None)]);
        // A node that is gone stays recorded (its name may come back) but is not due.
        let p = plan(&[node("gone", Some(0))], &BTreeSet::new(), &dirs, |n| n != "gone", at(100), grace, false);
        assert!(p.clean.is_empty());
        assert_eq!(p.nodes, [node("gone", Some(0))]);
        let back = plan(&p.nodes, &BTreeSet::new(), &dirs, |_| true, at(100), grace, false);
        assert_eq!(back.clean, ["gone"], "cleaned once a node of that name is back");
        // Teardown: everything at once; a node that is gone is forgotten.
        let p =
            plan(&[node("a", None), node("gone", None)], &BTreeSet::new(), &dirs, |n| n != "gone", at(0), grace, true);
        assert_eq!(p.clean, ["a"]);
        assert_eq!(p.nodes.len(), 1);
        // Without host cache levels nothing is recorded.
        assert!(plan(&[], &clients, &[], all, at(0), grace, false).nodes.is_empty());
    }

    #[test]
    fn the_next_look_is_when_the_first_idle_node_is_due() {
        let grace = Duration::from_secs(60);
        assert_eq!(next_due(&[node("a", None)], at(0), grace), None, "no idle node: no early look");
        let nodes = [node("a", None), node("b", Some(0)), node("c", Some(-50))];
        assert_eq!(next_due(&nodes, at(0), grace), Some(Duration::from_secs(10)));
        assert_eq!(next_due(&nodes, at(100), grace), Some(Duration::ZERO));
    }

    #[test]
    fn nothing_to_clean_without_host_levels() {
        let (ds, mut rt_spec) = seed();
        rt_spec.tieredstore = None;
        let rt = runtime(rt_spec);
        let cfg = juicefs_config::build(&ds, &rt.spec, &juicefs_config::tests::key()).expect("valid");
        assert!(host_cache_dirs(&cfg).is_empty());
        assert!(job(&rt, &DatasetKey::new("default", "jfsdemo"), "n", &[], &DefaultImage::default()).is_none());
    }
}

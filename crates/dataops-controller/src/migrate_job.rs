//! The copy Jobs of a DataMigrate, pure: `juicefs sync <from> <to>` as the arguments of a fixed script
//! that reports its summary (`sync_report`; the arguments are never parsed by a shell), one Job per key
//! range when `parallelism` > 1. A dataset side is `jfs://FF_<SIDE>_META/<subdir>/<path>/`, where
//! `FF_<SIDE>_META` is an environment variable holding the metadata URL from the dataset's Secret (juicefs
//! reads `jfs://<VAR>/` that way), so no credential is ever in the command line; an external storage's
//! `access-key`/`secret-key` come from Secrets as the storage clients' environment credentials.

use crate::job_parts::{labels, owner, pod_meta};
use crate::op::job_name;
use crate::plan::{Unit, Why, why};
use crate::warmup_job::TERMINATION_LOG;
use ferrofluid_api::common::{EncryptOption, SecretKeySelector};
use ferrofluid_api::datamigrate::DataMigrate;
use ferrofluid_api::keys;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, EnvVarSource, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PodSpec, PodTemplateSpec, SecretKeySelector as KubeSecretKey, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

/// Name of the copy container.
pub const CONTAINER: &str = "sync";

/// `juicefs sync` flags a DataMigrate may set (JuiceFS CE 1.4): filters, update rules, checks and
/// tuning. Not: credentials, files read from the container (`files-from`, RSA keys), distributed
/// workers, checkpoints, metrics or key ranges (the controller sets those).
pub const SYNC_FLAGS: &[&str] = &[
    "exclude",
    "include",
    "match-full-path",
    "max-size",
    "min-size",
    "max-age",
    "min-age",
    "start-time",
    "end-time",
    "limit",
    "update",
    "force-update",
    "existing",
    "ignore-existing",
    "dirs",
    "perms",
    "links",
    "inplace",
    "delete-src",
    "delete-dst",
    "check-all",
    "check-new",
    "check-change",
    "max-failure",
    "dry",
    "threads",
    "list-threads",
    "list-depth",
    "no-https",
    "storage-class",
    "bwlimit",
];

/// Credentials an external storage takes from Secrets, and the environment variables they become (the
/// S3 SDK's and MinIO's).
const STORAGE_SECRETS: &[(&str, &[&str])] = &[
    ("access-key", &["AWS_ACCESS_KEY_ID", "MINIO_ACCESS_KEY"]),
    ("secret-key", &["AWS_SECRET_ACCESS_KEY", "MINIO_SECRET_KEY"]),
];

fn path_ok(p: &str) -> bool {
    p.starts_with('/')
        && !p.split('/').any(|s| s == "." || s == "..")
        && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
}

pub fn check(m: &DataMigrate) -> Result<(), Why> {
    let sides = [("from", &m.spec.from), ("to", &m.spec.to)];
    for (side, s) in sides {
        match (&s.dataset, &s.external_storage) {
            (Some(d), None) => {
                if let Some(p) = d.path.as_deref().filter(|p| !path_ok(p)) {
                    return Err(why(
                        "InvalidPath",
                        format!(
                            "spec.{side}.dataset.path {p:?}: an absolute path of letters, digits, '.', '_', '-' and '/', without '.' or '..' parts"
                        ),
                    ));
                }
                let ns = m.namespace().unwrap_or_default();
                if let Some(other) = d.namespace.as_deref().filter(|n| !n.is_empty() && *n != ns) {
                    return Err(why(
                        "CrossNamespace",
                        format!("spec.{side}.dataset.namespace: {other:?} is not the DataMigrate's namespace {ns:?}"),
                    ));
                }
            }
            (None, Some(e)) => {
                if e.uri.contains('@') || !e.uri.contains("://") {
                    return Err(why(
                        "InvalidStorage",
                        format!(
                            "spec.{side}.externalStorage.uri: a juicefs sync address without credentials (they come from encryptOptions)"
                        ),
                    ));
                }
                for (i, o) in e.encrypt_options.iter().enumerate() {
                    if !STORAGE_SECRETS.iter().any(|(n, _)| *n == o.name) {
                        return Err(why(
                            "InvalidStorage",
                            format!(
                                "spec.{side}.externalStorage.encryptOptions[{i}].name {:?}: access-key or secret-key",
                                o.name
                            ),
                        ));
                    }
                }
            }
            _ => {
                return Err(why(
                    "InvalidSpec",
                    format!("spec.{side}: give exactly one of dataset and externalStorage"),
                ));
            }
        }
    }
    if m.spec.from.external_storage.is_some() && m.spec.to.external_storage.is_some() {
        return Err(why("InvalidSpec", "spec.from, spec.to: one side must be a dataset"));
    }
    for k in m.spec.options.keys() {
        if !SYNC_FLAGS.contains(&k.as_str()) {
            return Err(why(
                "InvalidOption",
                format!("spec.options.{k}: not a juicefs sync flag a DataMigrate may set ({})", SYNC_FLAGS.join(", ")),
            ));
        }
    }
    if parallelism(m) > 1 && m.spec.options.contains_key("delete-dst") {
        return Err(why(
            "InvalidOption",
            "spec.options.delete-dst: not with parallelism > 1 (each Job sees only its own range of keys)",
        ));
    }
    Ok(())
}

pub fn parallelism(m: &DataMigrate) -> i32 {
    m.spec.parallelism.unwrap_or(1).clamp(1, 16)
}

/// The key ranges, one unit each: `range-<i>`.
pub fn units(m: &DataMigrate) -> Vec<Unit> {
    (0..parallelism(m)).map(|i| Unit { name: format!("range-{i}"), parts: 1 }).collect()
}

/// `--start`/`--end` of range `i` of `n`: keys split by their first character over printable ASCII
/// (`!`…`~`); the first range has no start, the last no end (everything below and above). Both bounds
/// are inclusive in juicefs sync; an end is the range's last first-character followed by the highest
/// code point, so no key falls in two ranges.
pub fn key_range(i: i32, n: i32) -> (Option<String>, Option<String>) {
    let (lo, span) = (0x21u32, 0x7eu32 - 0x21 + 1);
    let bound = |k: i32| lo + span * u32::try_from(k).unwrap_or(0) / u32::try_from(n).unwrap_or(1);
    let start = (i > 0).then(|| char::from_u32(bound(i)).map(String::from)).flatten();
    let end = (i < n - 1)
        .then(|| char::from_u32(bound(i + 1) - 1).map(|c| format!("{c}{}", "\u{10FFFF}".repeat(4))))
        .flatten();
    (start, end)
}

/// One side as juicefs sync takes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Side {
    /// A dataset: its metadata URL's Secret and the directory in the file system (no leading `/`; empty
    /// for the root).
    Dataset {
        meta: SecretKeySelector,
        dir: String,
    },
    External {
        uri: String,
        secrets: Vec<EncryptOption>,
    },
}

/// `<subdir of the dataset's mountPoint>/<path in the dataset>`, without leading or doubled `/`.
pub fn fs_dir(subdir: Option<&str>, path: Option<&str>) -> String {
    [subdir.unwrap_or(""), path.unwrap_or("")]
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn secret_env(name: &str, s: &SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(KubeSecretKey { name: s.name.clone(), key: s.key.clone(), optional: None }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The address and environment of one side (`FROM` or `TO`).
fn side(tag: &str, s: &Side) -> (String, Vec<EnvVar>) {
    match s {
        Side::Dataset { meta, dir } => {
            let var = format!("FF_{tag}_META");
            let dir = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            (format!("jfs://{var}/{dir}"), vec![secret_env(&var, meta)])
        }
        Side::External { uri, secrets } => {
            let env = secrets
                .iter()
                .flat_map(|o| {
                    let vars = STORAGE_SECRETS.iter().find(|(n, _)| *n == o.name).map(|(_, v)| *v).unwrap_or(&[]);
                    vars.iter().map(move |v| secret_env(v, &o.value_from.secret_key_ref))
                })
                .collect();
            (uri.clone(), env)
        }
    }
}

/// `juicefs sync` with the user's flags (sorted, `--k=v`, or `--k` for an empty value), the range's
/// bounds, and the two addresses.
pub fn command(m: &DataMigrate, from: &str, to: &str, range: (Option<String>, Option<String>)) -> Vec<String> {
    let mut argv = vec!["juicefs".to_string(), "sync".into()];
    for (k, v) in &m.spec.options {
        argv.push(if v.is_empty() { format!("--{k}") } else { format!("--{k}={v}") });
    }
    if let Some(s) = range.0 {
        argv.push(format!("--start={s}"));
    }
    if let Some(e) = range.1 {
        argv.push(format!("--end={e}"));
    }
    argv.push(from.into());
    argv.push(to.into());
    argv
}

/// `argv` under the report script (`sync_report`): its output and exit code unchanged, its summary
/// reported.
pub fn wrapped(argv: Vec<String>) -> Vec<String> {
    let mut out = vec!["sh".to_string(), "-c".into(), crate::sync_report::SCRIPT.into(), "ferrofluid-sync".into()];
    out.extend(argv);
    out
}

pub struct MigrateInputs<'a> {
    pub op: &'a DataMigrate,
    pub image: String,
    pub from: Side,
    pub to: Side,
    /// The label of the dataset's cache nodes (`fluid.io/s-<ns>-<name>`): the copy runs on one of them,
    /// next to a worker of the dataset.
    pub cache_node_label: String,
}

/// Required node affinity: nodes carrying `label=true`.
pub fn on_nodes_labelled(label: &str) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: label.to_string(),
                        operator: "In".into(),
                        values: Some(vec![keys::LABEL_TRUE.into()]),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Job of key range `unit` (`range-<i>`).
pub fn build(inp: &MigrateInputs<'_>, unit: &str) -> Job {
    let m = inp.op;
    let n = parallelism(m);
    let i: i32 = unit.strip_prefix("range-").and_then(|i| i.parse().ok()).unwrap_or(0);
    let (from, mut env) = side("FROM", &inp.from);
    let (to, to_env) = side("TO", &inp.to);
    env.extend(to_env);
    env.push(EnvVar { name: "FF_PART".into(), value: Some(i.to_string()), ..Default::default() });
    env.push(EnvVar { name: "FF_RESULT".into(), value: Some(TERMINATION_LOG.into()), ..Default::default() });
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&m.name_any(), unit)),
            namespace: m.namespace(),
            labels: Some(labels(m, keys::ROLE_DATAMIGRATE)),
            owner_references: owner(m).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(m, keys::ROLE_DATAMIGRATE, m.spec.pod_metadata.as_ref())),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    // The metadata engine and object storage are reached as the FUSE clients reach them.
                    host_network: Some(true),
                    affinity: Some(on_nodes_labelled(&inp.cache_node_label)),
                    tolerations: Some(vec![Toleration { operator: Some("Exists".into()), ..Default::default() }]),
                    image_pull_secrets: (!m.spec.image_pull_secrets.is_empty())
                        .then(|| m.spec.image_pull_secrets.clone()),
                    containers: vec![Container {
                        name: CONTAINER.into(),
                        image: Some(inp.image.clone()),
                        command: Some(wrapped(command(m, &from, &to, key_range(i, n)))),
                        env: Some(env),
                        resources: m.spec.resources.clone(),
                        termination_message_path: Some(TERMINATION_LOG.into()),
                        termination_message_policy: Some("FallbackToLogsOnError".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
#[path = "migrate_job_tests.rs"]
mod tests;

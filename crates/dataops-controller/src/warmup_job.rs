//! The warm-up Job of one cache node, pure. It runs in the runtime's FUSE image on that node, with the
//! dataset's PVC as a volume — so the node's FUSE client is mounted (the CSI plugin stages it) and stays
//! for the Job's whole run — and `juicefs warmup` goes through that very mount: the FUSE process that
//! serves the applications' reads fetches the blocks into its own cache (docs/architecture.md, "Cache
//! warm-up"). The file list is split into `parts` parts, one completion index each (an Indexed Job run
//! one index at a time), so the Job's completed count is the node's progress.
//!
//! The script is fixed text; the user's paths reach it only through the environment and are never
//! parsed by the shell (quoted expansions, `read -r`, every path behind `./` or the mount's own).

use crate::job_parts::{labels, owner, pod_meta};
use crate::op::job_name;
use ferrofluid_api::DataLoad;
use ferrofluid_api::juicefs_runtime::{DefaultImage, JuiceFSRuntime, fuse_image, pull_policy};
use ferrofluid_api::keys::{self, DatasetKey};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

/// Name of the warm-up container.
pub const CONTAINER: &str = "warmup";

/// Warm-up threads per node when `spec.options.threads` is not given (JuiceFS's own default).
pub const DEFAULT_THREADS: &str = "10";

/// Retries of a failed part before the node counts as failed.
pub const BACKOFF_LIMIT: i32 = 2;

/// Where a part's pod writes its report (`part_report`), read back from the pod's status as its
/// termination message.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Lists the regular files under each target (relative to the mount point) with their sizes, sorted by
/// path, keeps every `FF_PARTS`-th one starting at this pod's completion index, warms those through the
/// mount, then writes the part's report to `FF_RESULT`: its files and bytes, and the whole node list's.
pub const SCRIPT: &str = r#"set -eu
cd -- "$FF_MOUNT"
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
printf '%s\n' "$FF_TARGETS" > "$work/targets"
while IFS= read -r t; do
  [ -n "$t" ] || continue
  if [ -d "./$t" ]; then
    find "./$t" -type f -exec stat -c '%s %n' {} +
  elif [ -e "./$t" ]; then
    stat -L -c '%s %n' "./$t"
  else
    echo "target /$t does not exist in the dataset" >&2
    exit 3
  fi
done < "$work/targets" > "$work/all"
LC_ALL=C sort -u -k2 -o "$work/sorted" "$work/all"
: > "$work/list"
counts=$(awk -v k="$FF_PARTS" -v i="$JOB_COMPLETION_INDEX" -v root="$FF_MOUNT" -v out="$work/list" '
  { sp = index($0, " "); size = substr($0, 1, sp - 1) + 0; all++; all_bytes += size
    if ((NR - 1) % k == i) { print root "/" substr($0, sp + 3) > out; n++; bytes += size } }
  END { printf "%.0f %.0f %.0f %.0f\n", n, bytes, all, all_bytes }' "$work/sorted")
set -- $counts
echo "part $JOB_COMPLETION_INDEX of $FF_PARTS: $1 files, $2 bytes (node: $3 files, $4 bytes)"
if [ "$1" -gt 0 ]; then
  juicefs warmup --threads "$FF_THREADS" --file "$work/list"
fi
printf '{"part":%s,"files":%s,"bytes":%s,"totalFiles":%s,"totalBytes":%s}' \
  "$JOB_COMPLETION_INDEX" "$1" "$2" "$3" "$4" > "$FF_RESULT"
"#;

/// The targets as the script reads them: paths relative to the dataset root, one per line; the whole
/// dataset (`.`) when none is given or one is `/`.
pub fn targets(load: &DataLoad) -> String {
    let rel: Vec<String> = load.spec.target.iter().map(|t| t.path.trim_matches('/').to_string()).collect();
    if rel.is_empty() || rel.iter().any(String::is_empty) {
        return ".".into();
    }
    rel.join("\n")
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

/// What a Job needs besides the DataLoad: the runtime and the image of runtimes that name none (the
/// Job runs the FUSE client's image), where the node's FUSE client mounts (the PV's `fluid_path`) and
/// how many parts a node's list is split into.
pub struct JobInputs<'a> {
    pub load: &'a DataLoad,
    pub runtime: &'a JuiceFSRuntime,
    pub default_image: &'a DefaultImage,
    pub key: &'a DatasetKey,
    pub fluid_path: &'a str,
    pub parts: i32,
}

pub fn build(inp: &JobInputs<'_>, node: &str) -> Job {
    let load = inp.load;
    let spec = &inp.runtime.spec;
    let fuse = spec.fuse.as_ref().map(|f| &f.component);
    // The directory that holds the mount point: mounted HostToContainer, so the FUSE mount made by the
    // FUSE pod (and a remount after a FUSE restart) is seen inside.
    let host_dir = parent_dir(inp.fluid_path);
    let threads = load.spec.options.get("threads").cloned().unwrap_or_else(|| DEFAULT_THREADS.into());
    // Pinned to a cache node, whatever its taints, as the cache-cleanup Jobs are: the node was chosen
    // because the dataset's worker runs there.
    let tolerations = vec![Toleration { operator: Some("Exists".into()), ..Default::default() }];
    let container = Container {
        name: CONTAINER.into(),
        image: Some(fuse_image(spec, inp.default_image)),
        image_pull_policy: pull_policy(spec, fuse.and_then(|f| f.image_pull_policy)),
        command: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        env: Some(vec![
            env("FF_MOUNT", inp.fluid_path),
            env("FF_TARGETS", targets(load)),
            env("FF_PARTS", inp.parts.to_string()),
            env("FF_THREADS", threads),
            env("FF_RESULT", TERMINATION_LOG),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: "fuse-mount".into(),
            mount_path: host_dir.clone(),
            mount_propagation: Some("HostToContainer".into()),
            read_only: Some(true),
            ..Default::default()
        }]),
        resources: load.spec.resources.clone(),
        termination_message_path: Some(TERMINATION_LOG.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&load.name_any(), node)),
            namespace: load.namespace(),
            labels: Some(labels(load, keys::ROLE_DATALOAD)),
            annotations: Some([(keys::ANNOTATION_OPERATION_NODE.to_string(), node.to_string())].into()),
            owner_references: owner(load).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(inp.parts),
            parallelism: Some(1),
            backoff_limit: Some(BACKOFF_LIMIT),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(load, keys::ROLE_DATALOAD, load.spec.pod_metadata.as_ref())),
                spec: Some(PodSpec {
                    node_name: Some(node.to_string()),
                    restart_policy: Some("Never".into()),
                    // Fluid's FUSE clients run on the host network; the warm-up talks to nothing but the
                    // mount, but the FUSE image may expect the same.
                    host_network: Some(true),
                    scheduler_name: load.spec.scheduler_name.clone(),
                    tolerations: Some(tolerations),
                    image_pull_secrets: (!load.spec.image_pull_secrets.is_empty())
                        .then(|| load.spec.image_pull_secrets.clone()),
                    containers: vec![container],
                    volumes: Some(vec![
                        Volume {
                            name: "dataset".into(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: inp.key.pvc_name(),
                                read_only: Some(true),
                            }),
                            ..Default::default()
                        },
                        Volume {
                            name: "fuse-mount".into(),
                            host_path: Some(HostPathVolumeSource {
                                path: host_dir,
                                type_: Some("DirectoryOrCreate".into()),
                            }),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn parent_dir(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => trimmed[..i].to_string(),
    }
}

#[cfg(test)]
#[path = "warmup_job_tests.rs"]
mod tests;

//! The Job of a DataProcess, pure: the user's pod (a whole `podSpec`, or a script run by its
//! interpreter in the given image) with the dataset's PVC mounted at `dataset.mountPath` in every
//! container. The user's own program is what runs; ferrofluid adds the volume, its labels and the owner.

use crate::job_parts::{labels, owner, pod_meta};
use crate::op::job_name;
use crate::plan::{Unit, Why, why};
use ferrofluid_api::dataprocess::DataProcess;
use ferrofluid_api::keys;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

/// The volume ferrofluid adds for the dataset.
pub const VOLUME: &str = "ferrofluid-dataset";
/// The script processor's container.
pub const CONTAINER: &str = "processor";
/// The one unit of a DataProcess.
pub const UNIT: &str = "process";

pub fn check(p: &DataProcess) -> Result<(), Why> {
    let d = &p.spec.dataset;
    if !d.mount_path.starts_with('/') {
        return Err(why("InvalidSpec", format!("spec.dataset.mountPath {:?} must be an absolute path", d.mount_path)));
    }
    if let Some(sub) = d.sub_path.as_deref()
        && (sub.starts_with('/') || sub.split('/').any(|s| s == ".."))
    {
        return Err(why("InvalidSpec", format!("spec.dataset.subPath {sub:?} must be relative, without '..' parts")));
    }
    let proc = &p.spec.processor;
    let volumes: Vec<&Volume> = match (&proc.script, &proc.job) {
        (Some(s), None) => s.volumes.iter().collect(),
        (None, Some(j)) => {
            let policy = j.pod_spec.restart_policy.as_deref().unwrap_or("Never");
            if policy != "Never" && policy != "OnFailure" {
                return Err(why(
                    "InvalidSpec",
                    format!(
                        "spec.processor.job.podSpec.restartPolicy {policy:?}: Never or OnFailure (it runs as a Job)"
                    ),
                ));
            }
            j.pod_spec.volumes.iter().flatten().collect()
        }
        _ => return Err(why("InvalidSpec", "spec.processor: give exactly one of script and job")),
    };
    if volumes.iter().any(|v| v.name == VOLUME) {
        return Err(why(
            "InvalidSpec",
            format!("spec.processor: the volume name {VOLUME:?} is ferrofluid's (the dataset)"),
        ));
    }
    Ok(())
}

pub fn units() -> Vec<Unit> {
    vec![Unit { name: UNIT.into(), parts: 1 }]
}

fn with_dataset(mut c: Container, mount: &VolumeMount) -> Container {
    let mut mounts = c.volume_mounts.take().unwrap_or_default();
    mounts.push(mount.clone());
    c.volume_mounts = Some(mounts);
    c
}

pub fn build(p: &DataProcess) -> Job {
    let d = &p.spec.dataset;
    let proc = &p.spec.processor;
    let mount = VolumeMount {
        name: VOLUME.into(),
        mount_path: d.mount_path.clone(),
        sub_path: d.sub_path.clone().filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let mut pod: PodSpec = match (&proc.script, &proc.job) {
        (Some(s), _) => {
            let image = match &s.image_tag {
                Some(t) if !t.is_empty() => format!("{}:{t}", s.image),
                _ => s.image.clone(),
            };
            let mut command = if s.command.is_empty() { vec!["sh".to_string()] } else { s.command.clone() };
            command.extend(["-c".to_string(), s.source.clone()]);
            PodSpec {
                restart_policy: Some("Never".into()),
                containers: vec![Container {
                    name: CONTAINER.into(),
                    image: Some(image),
                    image_pull_policy: s.image_pull_policy.clone(),
                    command: Some(command),
                    env: (!s.env.is_empty()).then(|| s.env.clone()),
                    resources: s.resources.clone(),
                    volume_mounts: (!s.volume_mounts.is_empty()).then(|| s.volume_mounts.clone()),
                    ..Default::default()
                }],
                volumes: (!s.volumes.is_empty()).then(|| s.volumes.clone()),
                ..Default::default()
            }
        }
        (None, Some(j)) => j.pod_spec.clone(),
        (None, None) => PodSpec::default(),
    };
    pod.restart_policy.get_or_insert_with(|| "Never".into());
    if proc.service_account_name.is_some() {
        pod.service_account_name = proc.service_account_name.clone();
    }
    pod.containers = pod.containers.into_iter().map(|c| with_dataset(c, &mount)).collect();
    pod.init_containers = pod.init_containers.map(|cs| cs.into_iter().map(|c| with_dataset(c, &mount)).collect());
    let mut volumes = pod.volumes.take().unwrap_or_default();
    volumes.push(Volume {
        name: VOLUME.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: d.name.clone(),
            read_only: None,
        }),
        ..Default::default()
    });
    pod.volumes = Some(volumes);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&p.name_any(), UNIT)),
            namespace: p.namespace(),
            labels: Some(labels(p, keys::ROLE_DATAPROCESS)),
            owner_references: owner(p).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // The user's program runs once: a failure is reported, not retried behind their back.
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(pod_meta(p, keys::ROLE_DATAPROCESS, proc.pod_metadata.as_ref())),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::dataprocess::{DataProcessSpec, DatasetMount, JobProcessor, Processor, ScriptProcessor};

    fn process(processor: Processor) -> DataProcess {
        let mut p = DataProcess::new(
            "prep",
            DataProcessSpec {
                dataset: DatasetMount { name: "data".into(), mount_path: "/data".into(), ..Default::default() },
                processor,
                ..Default::default()
            },
        );
        p.metadata.namespace = Some("ns".into());
        p.metadata.uid = Some("u".into());
        p
    }

    #[test]
    fn a_script_runs_in_its_interpreter_with_the_dataset_mounted() {
        let p = process(Processor {
            script: Some(ScriptProcessor {
                image: "busybox".into(),
                image_tag: Some("1.36".into()),
                command: vec!["bash".into()],
                source: "ls /data".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(check(&p), Ok(()));
        let job = build(&p);
        let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("busybox:1.36"));
        assert_eq!(c.command.as_deref(), Some(&["bash".to_string(), "-c".into(), "ls /data".into()][..]));
        let m = &c.volume_mounts.as_ref().expect("mounts")[0];
        assert_eq!((m.name.as_str(), m.mount_path.as_str()), (VOLUME, "/data"));
        let v = pod.volumes.as_ref().expect("volumes").last().expect("volume");
        assert_eq!(v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()), Some("data"));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(job.spec.as_ref().and_then(|s| s.backoff_limit), Some(0));
    }

    #[test]
    fn a_pod_spec_keeps_its_own_and_gains_the_dataset_everywhere() {
        let spec = PodSpec {
            containers: vec![
                Container { name: "a".into(), ..Default::default() },
                Container { name: "b".into(), ..Default::default() },
            ],
            init_containers: Some(vec![Container { name: "i".into(), ..Default::default() }]),
            node_name: Some("n1".into()),
            ..Default::default()
        };
        let p = process(Processor { job: Some(JobProcessor { pod_spec: spec }), ..Default::default() });
        let job = build(&p);
        let pod = job.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
        assert_eq!(pod.node_name.as_deref(), Some("n1"));
        let all = pod.containers.iter().chain(pod.init_containers.iter().flatten());
        for c in all {
            assert!(c.volume_mounts.iter().flatten().any(|m| m.name == VOLUME), "{}", c.name);
        }
        let mut bad = p.clone();
        bad.spec.processor.job.as_mut().expect("job").pod_spec.restart_policy = Some("Always".into());
        assert!(check(&bad).is_err_and(|w| w.message.contains("restartPolicy")));
    }
}

use super::*;
use ferrofluid_api::dataload::{DataLoadSpec, TargetDataset, TargetPath};
use ferrofluid_api::juicefs_runtime::{ComponentSpec, FuseSpec, JuiceFSRuntimeSpec, VersionSpec};

fn load(targets: &[&str]) -> DataLoad {
    let mut l = DataLoad::new(
        "warm",
        DataLoadSpec {
            dataset: TargetDataset { name: "data".into(), namespace: None },
            target: targets.iter().map(|p| TargetPath { path: p.to_string(), replicas: None }).collect(),
            ..Default::default()
        },
    );
    l.metadata.namespace = Some("ns".into());
    l.metadata.uid = Some("uid-1".into());
    l
}

fn env_of(job: &Job, name: &str) -> Option<String> {
    let c = &job.spec.as_ref()?.template.spec.as_ref()?.containers[0];
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

#[test]
fn targets_are_relative_lines_and_root_means_everything() {
    assert_eq!(targets(&load(&[])), ".");
    assert_eq!(targets(&load(&["/"])), ".");
    assert_eq!(targets(&load(&["/train", "/val/part-1/"])), "train\nval/part-1");
}

#[test]
fn the_job_runs_one_part_at_a_time_on_its_node_through_the_fuse_mount() {
    let l = load(&["/train"]);
    let rt = JuiceFSRuntime::new("data", JuiceFSRuntimeSpec::default());
    let key = DatasetKey::new("ns", "data");
    let path = key.fuse_mount_path(keys::DEFAULT_MOUNT_ROOT);
    let image = DefaultImage::default();
    let inputs = JobInputs { load: &l, runtime: &rt, default_image: &image, key: &key, fluid_path: &path, parts: 4 };
    let job = build(&inputs, "node-7");
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(1)));
    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(pod.node_name.as_deref(), Some("node-7"));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let vols = pod.volumes.as_ref().expect("volumes");
    assert_eq!(vols[0].persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()), Some("data"));
    let host = vols[1].host_path.as_ref().expect("host path");
    assert_eq!(host.path, key.fuse_host_dir(keys::DEFAULT_MOUNT_ROOT));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("juicedata/juicefs-fuse:ce-v1.2.3"));
    let m = &c.volume_mounts.as_ref().expect("mounts")[0];
    assert_eq!((m.mount_path.as_str(), m.mount_propagation.as_deref()), (host.path.as_str(), Some("HostToContainer")));
    assert_eq!(env_of(&job, "FF_MOUNT").as_deref(), Some(path.as_str()));
    assert_eq!(env_of(&job, "FF_TARGETS").as_deref(), Some("train"));
    assert_eq!(env_of(&job, "FF_THREADS").as_deref(), Some(DEFAULT_THREADS));
    // Each part's report goes where the pod's status picks it up.
    assert_eq!(env_of(&job, "FF_RESULT").as_deref(), Some(TERMINATION_LOG));
    assert_eq!(c.termination_message_path.as_deref(), Some(TERMINATION_LOG));
    // The user's paths are in the environment only, never in the command.
    assert!(c.command.as_ref().expect("command").iter().all(|a| !a.contains("train")));
    let labels = job.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels.get(keys::LABEL_OPERATION_UID).map(String::as_str), Some("uid-1"));
    let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("DataLoad", Some(true)));
}

/// The Job runs the FUSE client's image: the runtime's own settings where it has them, else the
/// controller's `--juicefs-image` (repository and tag each on their own).
#[test]
fn the_job_runs_the_fuse_image_or_the_default_one() {
    let l = load(&["/train"]);
    let key = DatasetKey::new("ns", "data");
    let path = key.fuse_mount_path(keys::DEFAULT_MOUNT_ROOT);
    let mirror: DefaultImage = "registry.local:5000/jfs:1.4.2".parse().expect("image");
    let image_of = |spec: JuiceFSRuntimeSpec| {
        let rt = JuiceFSRuntime::new("data", spec);
        let inputs =
            JobInputs { load: &l, runtime: &rt, default_image: &mirror, key: &key, fluid_path: &path, parts: 1 };
        build(&inputs, "n").spec.and_then(|s| s.template.spec).expect("pod").containers[0].image.clone()
    };
    assert_eq!(image_of(JuiceFSRuntimeSpec::default()).as_deref(), Some("registry.local:5000/jfs:1.4.2"));
    let tag_only = JuiceFSRuntimeSpec {
        juicefs_version: Some(VersionSpec { image_tag: Some("1.5.0".into()), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(image_of(tag_only).as_deref(), Some("registry.local:5000/jfs:1.5.0"));
    let own_fuse = JuiceFSRuntimeSpec {
        fuse: Some(FuseSpec {
            component: ComponentSpec { image: Some("team/juicefs".into()), ..Default::default() },
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(image_of(own_fuse).as_deref(), Some("team/juicefs:1.4.2"));
}

/// The script on a real shell, with `juicefs` replaced by a stub that records the list it was given:
/// every file lands in exactly one part, paths with spaces and shell metacharacters stay literal, each
/// part reports its files and bytes and the whole list's, and a missing target fails the part.
#[test]
fn the_script_splits_the_files_into_parts_and_never_evaluates_paths() {
    let dir = std::env::temp_dir().join(format!("ff-warmup-test-{}", std::process::id()));
    let mount = dir.join("mnt");
    let bin = dir.join("bin");
    std::fs::create_dir_all(mount.join("train/sub dir")).expect("mkdir");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let names = ["a", "b", "c", "sub dir/$(touch pwned)", "sub dir/x;y", "e"];
    for (i, n) in names.iter().enumerate() {
        std::fs::write(mount.join("train").join(n), vec![b'x'; 100 * (i + 1)]).expect("write");
    }
    std::fs::write(mount.join("other"), b"x").expect("write");
    let stub = "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --file ]; then cat \"$2\" >> \"$FF_RECORD\"; fi; shift; done\n";
    std::fs::write(bin.join("juicefs"), stub).expect("stub");
    std::process::Command::new("chmod").args(["+x"]).arg(bin.join("juicefs")).status().expect("chmod");
    let record = dir.join("record");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |targets: &str, index: i32| {
        std::process::Command::new("sh")
            .args(["-c", SCRIPT])
            .env_clear()
            .env("PATH", &path)
            .env("FF_MOUNT", &mount)
            .env("FF_TARGETS", targets)
            .env("FF_PARTS", "3")
            .env("FF_THREADS", "2")
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("FF_RECORD", &record)
            .env("FF_RESULT", dir.join(format!("result-{index}")))
            .current_dir(&dir)
            .output()
            .expect("sh")
    };
    let mut reports = Vec::new();
    for i in 0..3 {
        let out = run("train", i);
        assert!(out.status.success(), "part {i}: {}", String::from_utf8_lossy(&out.stderr));
        let msg = std::fs::read_to_string(dir.join(format!("result-{i}"))).expect("report");
        reports.push(crate::part_report::parse(&msg).unwrap_or_else(|| panic!("report of part {i}: {msg:?}")));
    }
    // 100 + 200 + … + 600 bytes in six files, every part seeing the same whole list.
    assert!(reports.iter().enumerate().all(|(i, r)| r.part == i as i32 && r.total_files == 6 && r.total_bytes == 2100));
    assert_eq!(reports.iter().map(|r| r.files).sum::<i64>(), 6);
    assert_eq!(reports.iter().map(|r| r.bytes).sum::<i64>(), 2100);
    let listed = std::fs::read_to_string(&record).expect("record");
    let mut got: Vec<&str> = listed.lines().collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| format!("{}/train/{n}", mount.display())).collect();
    want.sort();
    assert_eq!(got, want, "each file in exactly one part, as an absolute path");
    assert!(!dir.join("pwned").exists() && !mount.join("pwned").exists());
    // A target that is one file.
    assert!(run("other", 0).status.success());
    let one = crate::part_report::parse(&std::fs::read_to_string(dir.join("result-0")).expect("report"));
    assert_eq!(one.map(|r| (r.files, r.bytes, r.total_files)), Some((1, 1, 1)));
    let out = run("train\nmissing", 0);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/missing does not exist"));
    let _ = std::fs::remove_dir_all(&dir);
}

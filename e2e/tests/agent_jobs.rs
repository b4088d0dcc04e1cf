//! Jobs of data operations (pods labelled `ferrofluid.io/operation-uid`) finish when their containers
//! do: kwok leaves their pods' phase alone (`hack/kwok-stages.yaml`) and the node agent sets it
//! `Succeeded` or `Failed` once the container has ended, so the real Job controller reports the truth —
//! Complete only after the work ran, Failed when it exited non-zero. Other Job pods keep kwok's default
//! (Succeeded as soon as they run). What a data operation's container writes to its
//! `terminationMessagePath` becomes its `state.terminated.message`, as kubelet reports it, without any
//! mount showing up in the node's or the host's mount namespace.

use anyhow::{Context, Result, ensure};
use ferrofluid_api::keys::{LABEL_MANAGED_BY, LABEL_OPERATION_UID, MANAGED_BY};
use ferrofluid_e2e::agent::harness::{Csi, KwokNode, NodeAgents, PRIVATE_NODE_TAINT};
use ferrofluid_e2e::{TempDir, TestNamespace, client, kubectl, kubectl_ok};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::wait::await_condition;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// Deletes its Job (its pods in the background) when dropped, also when the test fails.
struct JobGuard {
    ns: String,
    name: String,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let args = ["-n", &self.ns, "delete", "job", &self.name, "--cascade=background", "--wait=false"];
        let _ = kubectl(&args, None);
    }
}

/// Creates a Job of one pod (`backoffLimit: 0`, `restartPolicy: Never`) on `node` running `script`
/// with `sh -c` and `$OUT` set to `out`; an operation's pod when `operation_uid` is given.
/// `container_fields`: more YAML fields of the container, each line indented by 8 spaces (e.g.
/// `terminationMessagePolicy`), or none.
fn create_job(
    ns: &str,
    name: &str,
    node: &str,
    operation_uid: Option<&str>,
    script: &str,
    out: &Path,
    container_fields: &str,
) -> Result<JobGuard> {
    // In a single-quoted YAML scalar a quote is written twice.
    let script = script.replace('\'', "''");
    let operation_label = operation_uid.map(|uid| format!(", {LABEL_OPERATION_UID}: {uid}")).unwrap_or_default();
    let manifest = format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {{{LABEL_MANAGED_BY}: {MANAGED_BY}{operation_label}}}
    spec:
      nodeName: {node}
      tolerations: [{{key: {PRIVATE_NODE_TAINT}, operator: Exists, effect: NoSchedule}}]
      restartPolicy: Never
      terminationGracePeriodSeconds: 2
      containers:
      - name: work
        image: busybox
        command: [sh, -c, '{script}']
        env: [{{name: OUT, value: "{out}"}}]
{container_fields}
"#,
        out = out.display(),
    );
    kubectl_ok(&["-n", ns, "apply", "-f", "-"], Some(&manifest))?;
    Ok(JobGuard { ns: ns.to_string(), name: name.to_string() })
}

/// Whether the Job has condition `type_` with status True.
fn has_condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Watches the Job until it is Complete or Failed (whichever comes first) and returns it then.
async fn finished_job(jobs: &Api<Job>, name: &str) -> Result<Job> {
    let done = |job: Option<&Job>| job.is_some_and(|j| has_condition(j, "Complete") || has_condition(j, "Failed"));
    let job = tokio::time::timeout(WAIT, await_condition(jobs.clone(), name, done))
        .await
        .with_context(|| format!("Job {name} neither Complete nor Failed within {WAIT:?}"))??;
    job.with_context(|| format!("Job {name} was deleted"))
}

/// The one pod of Job `name`.
async fn job_pod(pods: &Api<Pod>, name: &str) -> Result<Pod> {
    let list = pods.list(&ListParams::default().labels(&format!("job-name={name}"))).await?;
    ensure!(list.items.len() == 1, "Job {name} has {} pods, not one", list.items.len());
    Ok(list.items.into_iter().next().expect("one pod"))
}

fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn terminated(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStateTerminated> {
    let cs = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    cs.state.as_ref()?.terminated.as_ref()
}

fn exit_code(pod: &Pod) -> Option<i32> {
    terminated(pod).map(|t| t.exit_code)
}

fn message(pod: &Pod) -> Option<&str> {
    terminated(pod)?.message.as_deref()
}

/// What `findmnt <path>` prints: the mounts at `path`, none when it is not a mount point.
fn findmnt(output: std::process::Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    ensure!(output.status.success() || stdout.is_empty(), "findmnt: {}", String::from_utf8_lossy(&output.stderr));
    Ok(stdout)
}

fn pid() -> u32 {
    std::process::id()
}

/// One agent-backed node (address 127.0.1.`ip`), a namespace, and a directory the containers write to
/// (the node's /tmp is the host's). Taken apart by the tests, whose bindings drop in reverse: the agent
/// stops before its namespace, node and directory go.
struct Rig {
    _dir: TempDir,
    node: KwokNode,
    ns: TestNamespace,
    agents: NodeAgents,
    out: TempDir,
    jobs: Api<Job>,
    pods: Api<Pod>,
}

impl Rig {
    async fn start(tag: &str, ip: u32) -> Result<Rig> {
        let pid = pid();
        let dir = TempDir(std::env::temp_dir().join(format!("ferrofluid-{tag}-{pid}")));
        let node = KwokNode::private(&format!("{tag}-{pid}"), &format!("127.0.1.{ip}"))?;
        let ns = TestNamespace::new(tag)?;
        let agents = NodeAgents::start(&dir.0, &[&node.name], Csi::None, &[])?;
        let out = TempDir::new(&format!("ferrofluid-{tag}-out"))?;
        let client = client().await?;
        let jobs = Api::namespaced(client.clone(), &ns.name);
        let pods = Api::namespaced(client, &ns.name);
        Ok(Rig { _dir: dir, node, ns, agents, out, jobs, pods })
    }
}

#[tokio::test]
async fn operation_jobs_finish_when_their_containers_do() -> Result<()> {
    let Rig { _dir, node, ns, agents: _agents, out, jobs, pods } = Rig::start("agent-jobs", 200 + pid() % 50).await?;
    let marker = out.0.join("done");

    let _ok = create_job(
        &ns.name,
        "load",
        &node.name,
        Some("3b0f8c52-0000-4000-8000-000000000001"),
        "sleep 3; echo done > $(OUT)",
        &marker,
        "",
    )?;
    let _bad = create_job(
        &ns.name,
        "broken",
        &node.name,
        Some("3b0f8c52-0000-4000-8000-000000000002"),
        "sleep 1; exit 3",
        &marker.with_file_name("unused"),
        "",
    )?;
    // Not a data operation (like a cache-cleanup Job): kwok still completes its pod the moment it runs,
    // while the agent runs its container, which would not end for an hour.
    let _kwoks = create_job(&ns.name, "cleanup", &node.name, None, "sleep 3600", &marker.with_file_name("unused"), "")?;

    // Complete only once the work is done: the marker exists when the Complete condition is first seen,
    // and was written no later than the Job's completion time (which has whole seconds).
    let load = finished_job(&jobs, "load").await?;
    let marker_there = marker.exists();
    ensure!(has_condition(&load, "Complete"), "Job load did not complete: {:?}", load.status);
    ensure!(marker_there, "Job load was Complete before its container wrote {}", marker.display());
    let written = Timestamp::try_from(std::fs::metadata(&marker)?.modified()?)?;
    let completed = load.status.as_ref().and_then(|s| s.completion_time.as_ref()).context("no completionTime")?.0;
    ensure!(
        written.as_second() <= completed.as_second(),
        "the marker was written at {written}, after the Job's completion at {completed}"
    );
    let pod = job_pod(&pods, "load").await?;
    assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded"));
    assert_eq!(exit_code(&pod), Some(0));
    let ready = pod_condition(&pod, "Ready").context("no Ready condition")?;
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("PodCompleted")));

    // Exit 3 with backoffLimit 0: Failed, never Complete; the pod Failed with the exit code.
    let broken = finished_job(&jobs, "broken").await?;
    ensure!(has_condition(&broken, "Failed"), "Job broken did not fail: {:?}", broken.status);
    ensure!(!has_condition(&broken, "Complete"), "Job broken is Complete: {:?}", broken.status);
    let pod = job_pod(&pods, "broken").await?;
    assert_eq!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed"));
    assert_eq!(exit_code(&pod), Some(3));
    let ready = pod_condition(&pod, "Ready").context("no Ready condition")?;
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("PodFailed")));

    // kwok's default for other Job pods is unchanged.
    let cleanup = finished_job(&jobs, "cleanup").await?;
    ensure!(has_condition(&cleanup, "Complete"), "Job cleanup did not complete: {:?}", cleanup.status);
    Ok(())
}

#[tokio::test]
async fn operation_containers_report_their_termination_message_file() -> Result<()> {
    let Rig { _dir, node, ns, agents, out, jobs, pods } = Rig::start("agent-jobs-msg", 250 + pid() % 5).await?;

    // The default path, /dev/termination-log; exit 0.
    let result = r#"{"files":3}"#;
    let _ok = create_job(
        &ns.name,
        "result",
        &node.name,
        Some("3b0f8c52-0000-4000-8000-000000000011"),
        &format!("echo a log line; printf '{result}' > /dev/termination-log"),
        &out.0.join("unused"),
        "",
    )?;
    // A failure under FallbackToLogsOnError: what the file says wins over the log.
    let _failed = create_job(
        &ns.name,
        "failed-result",
        &node.name,
        Some("3b0f8c52-0000-4000-8000-000000000012"),
        "echo the log tail; printf 'copied 1 of 3' > /dev/termination-log; exit 2",
        &out.0.join("unused"),
        "        terminationMessagePolicy: FallbackToLogsOnError",
    )?;
    // A path of its own that does not exist on the node (its directory does): the agent creates it
    // empty as the mount target, and the container's writes land in its own file, not there.
    let custom = out.0.join("result");
    let _custom = create_job(
        &ns.name,
        "custom-path",
        &node.name,
        Some("3b0f8c52-0000-4000-8000-000000000013"),
        "printf custom > $(OUT)/result; grep -q \" $(OUT)/result \" /proc/self/mountinfo && touch $(OUT)/bound",
        &out.0,
        &format!("        terminationMessagePath: {}", custom.display()),
    )?;

    let job = finished_job(&jobs, "result").await?;
    ensure!(has_condition(&job, "Complete"), "Job result did not complete: {:?}", job.status);
    let pod = job_pod(&pods, "result").await?;
    assert_eq!(exit_code(&pod), Some(0));
    assert_eq!(message(&pod), Some(result), "the file's content, exactly");

    let job = finished_job(&jobs, "failed-result").await?;
    ensure!(has_condition(&job, "Failed"), "Job failed-result did not fail: {:?}", job.status);
    let pod = job_pod(&pods, "failed-result").await?;
    assert_eq!(exit_code(&pod), Some(2));
    assert_eq!(message(&pod), Some("copied 1 of 3"), "the file wins over the log tail");

    let job = finished_job(&jobs, "custom-path").await?;
    ensure!(has_condition(&job, "Complete"), "Job custom-path did not complete: {:?}", job.status);
    let pod = job_pod(&pods, "custom-path").await?;
    assert_eq!(message(&pod), Some("custom"));
    ensure!(out.0.join("bound").exists(), "the container did not see its file mounted at {}", custom.display());
    assert_eq!(std::fs::read_to_string(&custom)?, "", "the node's file is only the mount target");

    // The binds lived in the containers' namespaces only: none in the host's, none in the node's.
    for path in [Path::new("/dev/termination-log"), custom.as_path()] {
        let host = findmnt(Command::new("findmnt").arg(path).output()?)?;
        ensure!(host.is_empty(), "a mount at {} in the host's namespace: {host}", path.display());
        let path = path.to_str().context("path")?;
        let on_node = findmnt(agents.exec(&node.name, &["findmnt", path])?)?;
        ensure!(on_node.is_empty(), "a mount at {path} in the node's namespace: {on_node}");
    }
    Ok(())
}

//! Container state reported in the Pod's status, as kubelet reports it. kwok marks every pod Running
//! and Ready once (its `pod-ready` stage only matches pods without a `podIP`) and never looks again, so
//! for the pods whose containers the agent runs it patches `status.conditions` (`Ready`,
//! `ContainersReady`) and `status.containerStatuses` itself. `podIP`, `hostIP` and `startTime` stay as
//! kwok set them, and so does `phase` — except for data-operation pods (`pod::reports_phase`), which
//! kwok does not complete: the agent sets theirs `Succeeded` or `Failed` once their containers have
//! ended, as kubelet does. Messages hold a container's own output or the agent's error text, never
//! environment values.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, watch};

/// Field manager of the agent's status patches.
pub const FIELD_MANAGER: &str = "ferrofluid-node-agent";
/// Lines of a failed container's log kept in `lastState.terminated.message` (FallbackToLogsOnError),
/// kubelet's limit.
pub const LOG_TAIL_LINES: usize = 80;
/// Bytes of a failed container's log kept in `lastState.terminated.message`, kubelet's limit.
pub const LOG_TAIL_BYTES: usize = 2048;

/// kubelet's rule for `state.terminated.message` (and `lastState`'s): what the container wrote to its
/// termination-message file (`file`, read by `termination.rs` for data-operation containers; empty for
/// the others, which run without one); when it is empty — only with `terminationMessagePolicy:
/// FallbackToLogsOnError`, and only when the container failed — the tail of its log instead. With the
/// default policy (`File`) a log line never reaches the pod's status.
pub fn termination_message(
    policy: Option<&str>,
    exit_code: i32,
    file: &str,
    log_tail: impl FnOnce() -> String,
) -> Option<String> {
    if !file.is_empty() {
        return Some(file.to_string());
    }
    (policy == Some("FallbackToLogsOnError") && exit_code != 0).then(log_tail).filter(|m| !m.is_empty())
}

pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The last `max_lines` lines of `bytes`, at most `max_bytes` of them (cut at a character boundary).
pub fn log_tail(bytes: &[u8], max_lines: usize, max_bytes: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_end_matches('\n');
    let lines: Vec<&str> = trimmed.split('\n').collect();
    let tail = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    if tail.len() <= max_bytes {
        return tail;
    }
    let mut start = tail.len() - max_bytes;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_string()
}

/// What a container wrote to `log` from byte `offset` on (its current run), as a status message.
pub fn read_log_tail(log: &Path, offset: u64) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let from = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
    log_tail(&bytes[from..], LOG_TAIL_LINES, LOG_TAIL_BYTES)
}

/// One container's status; `ready`, `restart_count`, `state` and `last_state` as the agent sees them.
pub fn container_status(
    name: &str,
    image: &str,
    ready: bool,
    restart_count: i32,
    state: ContainerState,
    last_state: Option<ContainerStateTerminated>,
) -> ContainerStatus {
    let started = state.running.is_some();
    ContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: String::new(),
        ready,
        restart_count,
        started: Some(started),
        state: Some(state),
        last_state: last_state.map(|t| ContainerState { terminated: Some(t), ..Default::default() }),
        ..Default::default()
    }
}

pub fn running(started_at: Time) -> ContainerState {
    ContainerState { running: Some(ContainerStateRunning { started_at: Some(started_at) }), ..Default::default() }
}

pub fn waiting(reason: &str, message: String) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: Some(message) }),
        ..Default::default()
    }
}

pub fn terminated(t: ContainerStateTerminated) -> ContainerState {
    ContainerState { terminated: Some(t), ..Default::default() }
}

/// The pod's container statuses: the agent's view of a container where it has one, otherwise what
/// the pod already says (kwok's initial status), in the order of `spec.containers`.
pub fn merged_statuses(pod: &Pod, views: &BTreeMap<String, ContainerStatus>) -> Vec<ContainerStatus> {
    let current = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            views
                .get(&c.name)
                .cloned()
                .or_else(|| current.and_then(|cs| cs.iter().find(|s| s.name == c.name).cloned()))
                .unwrap_or_else(|| {
                    let image = c.image.clone().unwrap_or_default();
                    let state = waiting("ContainerCreating", String::new());
                    container_status(&c.name, &image, false, 0, state, None)
                })
        })
        .collect()
}

/// The pod's init container statuses, in the order of `spec.initContainers`: the agent's view, or
/// waiting `PodInitializing` for one that has not run yet.
pub fn merged_init_statuses(pod: &Pod, views: &BTreeMap<String, ContainerStatus>) -> Vec<ContainerStatus> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| {
            views.get(&c.name).cloned().unwrap_or_else(|| {
                let image = c.image.clone().unwrap_or_default();
                container_status(&c.name, &image, false, 0, waiting("PodInitializing", String::new()), None)
            })
        })
        .collect()
}

/// An init container is done once it has terminated successfully.
fn completed(status: &ContainerStatus) -> bool {
    status.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
}

/// A pod condition of `type_`: `True` when `pending` is empty, otherwise `False` with `reason` and a
/// message listing them; it keeps its `lastTransitionTime` while its status does not change.
fn pod_condition(pod: &Pod, type_: &str, pending: &[&str], reason: &str, listing: &str, now: &Time) -> PodCondition {
    if pending.is_empty() {
        condition(pod, type_, "True", None, None, now)
    } else {
        let message = format!("{listing}: [{}]", pending.join(" "));
        condition(pod, type_, "False", Some(reason.to_string()), Some(message), now)
    }
}

/// A pod condition that keeps its `lastTransitionTime` while its status does not change.
fn condition(
    pod: &Pod,
    type_: &str,
    status: &str,
    reason: Option<String>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let previous =
        pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transition = previous
        .filter(|p| p.status == status)
        .and_then(|p| p.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason,
        message,
        last_transition_time: Some(transition),
        ..Default::default()
    }
}

/// `Initialized`: `True` once every init container completed, otherwise `False` naming the others.
pub fn initialized(pod: &Pod, init: &[ContainerStatus], now: &Time) -> PodCondition {
    let pending: Vec<&str> = init.iter().filter(|s| !completed(s)).map(|s| s.name.as_str()).collect();
    pod_condition(pod, "Initialized", &pending, "ContainersNotInitialized", "containers with incomplete status", now)
}

/// `Ready` and `ContainersReady`: `True` when every container is ready, otherwise `False` naming the
/// unready ones. A condition keeps its `lastTransitionTime` while its status does not change.
pub fn conditions(pod: &Pod, statuses: &[ContainerStatus], now: &Time) -> Vec<PodCondition> {
    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    ["Ready", "ContainersReady"]
        .into_iter()
        .map(|type_| pod_condition(pod, type_, &unready, "ContainersNotReady", "containers with unready status", now))
        .collect()
}

/// The phase kubelet gives a pod whose containers are not restarted for good once they have ended, or
/// `None` while it runs: with `restartPolicy: Never`, `Failed` as soon as an init container failed;
/// once every regular container has terminated (and is not restarted), `Succeeded` when all exited 0,
/// otherwise `Failed` under `Never` (under `OnFailure` a failed container is restarted: no phase). Only
/// the agent's own views count: kwok's container statuses say nothing about the processes.
pub fn terminal_phase(
    pod: &Pod,
    views: &BTreeMap<String, ContainerStatus>,
    init_views: &BTreeMap<String, ContainerStatus>,
) -> Option<&'static str> {
    let spec = pod.spec.as_ref()?;
    let never = match spec.restart_policy.as_deref() {
        Some("Never") => true,
        Some("OnFailure") => false,
        _ => return None,
    };
    let exit_code = |s: &ContainerStatus| s.state.as_ref().and_then(|st| st.terminated.as_ref()).map(|t| t.exit_code);
    let init_failed = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| init_views.get(&c.name).and_then(exit_code))
        .any(|code| code != 0);
    if never && init_failed {
        return Some("Failed");
    }
    let codes: Vec<i32> =
        spec.containers.iter().map(|c| views.get(&c.name).and_then(exit_code)).collect::<Option<_>>()?;
    if codes.is_empty() {
        None
    } else if codes.iter().all(|&c| c == 0) {
        Some("Succeeded")
    } else {
        never.then_some("Failed")
    }
}

/// `Ready` and `ContainersReady` of a pod in a terminal `phase`, as kubelet sets them: `False` with
/// reason `PodCompleted` (Succeeded) or `PodFailed`, and no message.
pub fn terminal_conditions(pod: &Pod, phase: &str, now: &Time) -> Vec<PodCondition> {
    let reason = if phase == "Succeeded" { "PodCompleted" } else { "PodFailed" };
    ["Ready", "ContainersReady"]
        .into_iter()
        .map(|type_| condition(pod, type_, "False", Some(reason.to_string()), None, now))
        .collect()
}

/// Conditions as they go into the patch: a `reason` or `message` a condition lacks is sent as `null`.
/// The conditions are merged by type, and a merge keeps the fields a patch leaves out, so without the
/// `null` a condition would keep the reason and message of what it was before (a `True` `Ready` the
/// `ContainersNotReady` of a crash it recovered from).
fn conditions_patch(conditions: &[PodCondition]) -> Vec<serde_json::Value> {
    conditions
        .iter()
        .map(|c| {
            let mut v = serde_json::json!(c);
            for field in ["reason", "message"] {
                if v.get(field).is_none() {
                    v[field] = serde_json::Value::Null;
                }
            }
            v
        })
        .collect()
}

/// The status patch: conditions (merged by type) and the whole `containerStatuses` list; for a pod with
/// init containers also `initContainerStatuses` and the `Initialized` condition. With `with_phase` (a
/// pod whose phase the agent reports) also the `phase` once it is terminal ([`terminal_phase`]), with
/// the conditions kubelet gives a finished pod.
pub fn patch_body(
    pod: &Pod,
    views: &BTreeMap<String, ContainerStatus>,
    init_views: &BTreeMap<String, ContainerStatus>,
    with_phase: bool,
    now: &Time,
) -> serde_json::Value {
    let statuses = merged_statuses(pod, views);
    let phase = if with_phase { terminal_phase(pod, views, init_views) } else { None };
    let mut conditions = match phase {
        Some(phase) => terminal_conditions(pod, phase, now),
        None => conditions(pod, &statuses, now),
    };
    let init = merged_init_statuses(pod, init_views);
    let mut body = serde_json::json!({ "status": { "containerStatuses": statuses } });
    if !init.is_empty() {
        conditions.push(initialized(pod, &init, now));
        body["status"]["initContainerStatuses"] = serde_json::json!(init);
    }
    body["status"]["conditions"] = serde_json::json!(conditions_patch(&conditions));
    if let Some(phase) = phase {
        body["status"]["phase"] = serde_json::json!(phase);
    }
    body
}

/// Reports the containers of one pod: keeps the latest status of each and patches the pod's status
/// subresource on each change, one patch at a time. A patch the API server may accept later (it is
/// unreachable or restarting, 5xx, 409, 429) is sent again in the background, with the latest
/// statuses, until one is through — as kubelet's status manager keeps syncing — so a change reported
/// during an API server outage is not lost.
pub struct PodStatusReporter {
    api: Api<Pod>,
    name: String,
    pod: watch::Receiver<Pod>,
    /// Regular and init containers' latest statuses, by name.
    views: Mutex<(BTreeMap<String, ContainerStatus>, BTreeMap<String, ContainerStatus>)>,
    /// The pod's phase is the agent's to report ([`terminal_phase`]).
    reports_phase: bool,
    /// A background resend is under way.
    resending: AtomicBool,
}

/// Pause before the first resend; doubled up to [`RESEND_MAX`].
const RESEND_FIRST: Duration = Duration::from_millis(500);
const RESEND_MAX: Duration = Duration::from_secs(5);

impl PodStatusReporter {
    /// With `reports_phase`, the pod's `phase` is reported too once its containers have ended.
    pub fn new(client: kube::Client, pod: watch::Receiver<Pod>, reports_phase: bool) -> Self {
        let (ns, name) = {
            let p = pod.borrow();
            (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default())
        };
        Self {
            api: Api::namespaced(client, &ns),
            name,
            pod,
            views: Mutex::new((BTreeMap::new(), BTreeMap::new())),
            reports_phase,
            resending: AtomicBool::new(false),
        }
    }

    /// Records `status` for its (init, when `init`) container and patches the pod; a patch that may pass
    /// later is resent in the background, other failures are only logged (the pod may be gone).
    pub async fn report(self: &Arc<Self>, status: ContainerStatus, init: bool) {
        {
            let mut views = self.views.lock().await;
            let (regular, inits) = &mut *views;
            if init { inits } else { regular }.insert(status.name.clone(), status);
        }
        if self.send().await == Sent::Retry && !self.resending.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            tokio::spawn(async move {
                let mut pause = RESEND_FIRST;
                loop {
                    tokio::time::sleep(pause).await;
                    // The pod's task has ended (the pod is gone): nothing to report any more.
                    if me.pod.has_changed().is_err() || me.send().await != Sent::Retry {
                        break;
                    }
                    pause = (pause * 2).min(RESEND_MAX);
                }
                me.resending.store(false, Ordering::SeqCst);
            });
        }
    }

    /// Patches the latest statuses once.
    async fn send(&self) -> Sent {
        let views = self.views.lock().await;
        let pod = self.pod.borrow().clone();
        if pod.metadata.deletion_timestamp.is_some() {
            return Sent::Done;
        }
        let body = patch_body(&pod, &views.0, &views.1, self.reports_phase, &now());
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        match self.api.patch_status(&self.name, &params, &Patch::Strategic(body)).await {
            Ok(_) => Sent::Done,
            Err(e) => {
                let retry = match &e {
                    kube::Error::Api(s) => matches!(s.code, 409 | 429) || s.code >= 500,
                    _ => true,
                };
                tracing::warn!(pod = %self.name, error = %e, retry, "cannot patch pod status");
                if retry { Sent::Retry } else { Sent::Done }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Sent {
    /// Through, or refused for good.
    Done,
    /// May pass later.
    Retry,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};

    fn pod(containers: &[&str]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: containers
                    .iter()
                    .map(|n| Container { name: n.to_string(), image: Some("img".into()), ..Default::default() })
                    .collect(),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                    ..Default::default()
                }]),
                container_statuses: Some(
                    containers.iter().map(|n| container_status(n, "img", true, 0, running(now()), None)).collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn crashed(name: &str) -> ContainerStatus {
        let last = ContainerStateTerminated { exit_code: 3, reason: Some("Error".into()), ..Default::default() };
        container_status(name, "img", false, 1, waiting("CrashLoopBackOff", "back-off".into()), Some(last))
    }

    #[test]
    fn termination_message_follows_the_policy() {
        let tail = || "last words".to_string();
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 1, "", tail), Some("last words".into()));
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 0, "", tail), None, "only on failure");
        assert_eq!(termination_message(Some("File"), 1, "", tail), None);
        assert_eq!(termination_message(None, 1, "", tail), None, "File is the default");
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 1, "", String::new), None);
    }

    #[test]
    fn the_termination_message_file_wins_over_the_log() {
        let file = r#"{"files":3}"#;
        let tail = || "last words".to_string();
        let unread = || -> String { panic!("the log is not read when the file has a message") };
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 1, file, unread), Some(file.into()));
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 0, file, tail), Some(file.into()));
        assert_eq!(termination_message(Some("File"), 0, file, tail), Some(file.into()));
        assert_eq!(termination_message(None, 2, file, tail), Some(file.into()));
        // An empty file: the log tail only on failure with FallbackToLogsOnError; nothing under File.
        assert_eq!(termination_message(Some("FallbackToLogsOnError"), 2, "", tail), Some("last words".into()));
        assert_eq!(termination_message(Some("File"), 2, "", tail), None);
    }

    #[test]
    fn log_tail_keeps_the_last_lines_within_the_byte_limit() {
        let log: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(log.as_bytes(), 10, 1024);
        assert_eq!(tail.lines().count(), 10);
        assert!(tail.starts_with("line 11") && tail.ends_with("line 20"), "{tail}");
        let long = "é".repeat(2000);
        let cut = log_tail(long.as_bytes(), 10, 1024);
        assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'é'));
        assert_eq!(log_tail(b"", 10, 1024), "");
    }

    #[test]
    fn a_crashed_container_makes_the_pod_unready_naming_it() {
        let p = pod(&["a", "b"]);
        let views = BTreeMap::from([("b".to_string(), crashed("b"))]);
        let statuses = merged_statuses(&p, &views);
        assert_eq!(
            statuses.iter().map(|s| (s.name.as_str(), s.ready)).collect::<Vec<_>>(),
            [("a", true), ("b", false)]
        );
        let t = now();
        let conds = conditions(&p, &statuses, &t);
        assert_eq!(conds.len(), 2);
        for c in &conds {
            assert_eq!(c.status, "False");
            assert_eq!(c.reason.as_deref(), Some("ContainersNotReady"));
            assert_eq!(c.message.as_deref(), Some("containers with unready status: [b]"));
            assert_eq!(c.last_transition_time.as_ref(), Some(&t));
        }
    }

    #[test]
    fn all_ready_keeps_true_conditions_and_their_transition_time() {
        let p = pod(&["a"]);
        let views = BTreeMap::from([("a".to_string(), container_status("a", "img", true, 2, running(now()), None))]);
        let body = patch_body(&p, &views, &BTreeMap::new(), false, &now());
        let ready = &body["status"]["conditions"][0];
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["lastTransitionTime"], "1970-01-01T00:00:00Z");
        assert!(ready["reason"].is_null() && ready["message"].is_null(), "sent as null, so a merge removes them");
        assert_eq!(body["status"]["containerStatuses"][0]["restartCount"], 2);
        assert!(body["status"].get("phase").is_none() && body["status"].get("podIP").is_none());
    }

    #[test]
    fn init_containers_are_reported_until_they_complete() {
        let mut p = pod(&["main"]);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers =
                Some(vec![Container { name: "format".into(), image: Some("img".into()), ..Default::default() }]);
        }
        let waiting_main = BTreeMap::from([(
            "main".to_string(),
            container_status("main", "img", false, 0, waiting("PodInitializing", String::new()), None),
        )]);
        let body = patch_body(&p, &waiting_main, &BTreeMap::new(), false, &now());
        assert_eq!(body["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
        let conds = body["status"]["conditions"].as_array().expect("conditions");
        let init = conds.iter().find(|c| c["type"] == "Initialized").expect("Initialized");
        assert_eq!(init["status"], "False");
        assert_eq!(conds[0]["status"], "False", "not Ready while initializing");

        let done = ContainerStateTerminated { exit_code: 0, reason: Some("Completed".into()), ..Default::default() };
        let inits = BTreeMap::from([(
            "format".to_string(),
            container_status("format", "img", true, 0, terminated(done), None),
        )]);
        let body = patch_body(&p, &waiting_main, &inits, false, &now());
        let conds = body["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(conds.iter().find(|c| c["type"] == "Initialized").expect("Initialized")["status"], "True");
        let crashed_init = BTreeMap::from([("format".to_string(), crashed("format"))]);
        let body = patch_body(&p, &waiting_main, &crashed_init, false, &now());
        assert_eq!(body["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff");
    }

    fn job_pod(policy: &str, containers: &[&str]) -> Pod {
        let mut p = pod(containers);
        if let Some(spec) = p.spec.as_mut() {
            spec.restart_policy = Some(policy.into());
        }
        p
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        let reason = if code == 0 { "Completed" } else { "Error" };
        let t = ContainerStateTerminated { exit_code: code, reason: Some(reason.into()), ..Default::default() };
        container_status(name, "img", false, 0, terminated(t), None)
    }

    fn views(statuses: &[ContainerStatus]) -> BTreeMap<String, ContainerStatus> {
        statuses.iter().map(|s| (s.name.clone(), s.clone())).collect()
    }

    #[test]
    fn a_job_pod_succeeds_once_every_container_exited_zero() {
        let p = job_pod("Never", &["a", "b"]);
        let running_b = container_status("b", "img", true, 0, running(now()), None);
        let half = views(&[exited("a", 0), running_b]);
        assert_eq!(terminal_phase(&p, &half, &BTreeMap::new()), None, "b still runs");
        let body = patch_body(&p, &half, &BTreeMap::new(), true, &now());
        assert!(body["status"].get("phase").is_none());
        assert_eq!(body["status"]["conditions"][0]["reason"], "ContainersNotReady");

        let done = views(&[exited("a", 0), exited("b", 0)]);
        assert_eq!(terminal_phase(&p, &done, &BTreeMap::new()), Some("Succeeded"));
        let body = patch_body(&p, &done, &BTreeMap::new(), true, &now());
        assert_eq!(body["status"]["phase"], "Succeeded");
        let conds = body["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(
            conds.iter().map(|c| c["type"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
            ["Ready", "ContainersReady"]
        );
        for c in conds {
            assert_eq!(c["status"], "False");
            assert_eq!(c["reason"], "PodCompleted");
            assert!(c["message"].is_null(), "the not-ready message of before is removed: {c}");
        }
        for cs in body["status"]["containerStatuses"].as_array().expect("statuses") {
            assert_eq!(cs["ready"], false);
            assert_eq!(cs["started"], false);
            assert_eq!(cs["state"]["terminated"]["exitCode"], 0);
            assert_eq!(cs["state"]["terminated"]["reason"], "Completed");
        }

        // Without the phase to report (kwok's), the same containers leave `phase` alone.
        let body = patch_body(&p, &done, &BTreeMap::new(), false, &now());
        assert!(body["status"].get("phase").is_none());
        assert_eq!(body["status"]["conditions"][0]["reason"], "ContainersNotReady");
    }

    #[test]
    fn a_failed_container_fails_a_never_pod_once_all_have_ended() {
        let p = job_pod("Never", &["a", "b"]);
        let running_b = container_status("b", "img", true, 0, running(now()), None);
        assert_eq!(terminal_phase(&p, &views(&[exited("a", 3), running_b]), &BTreeMap::new()), None);
        let ended = views(&[exited("a", 3), exited("b", 0)]);
        assert_eq!(terminal_phase(&p, &ended, &BTreeMap::new()), Some("Failed"));
        let body = patch_body(&p, &ended, &BTreeMap::new(), true, &now());
        assert_eq!(body["status"]["phase"], "Failed");
        assert_eq!(body["status"]["conditions"][0]["reason"], "PodFailed");
        assert_eq!(body["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
    }

    #[test]
    fn on_failure_pods_finish_only_in_success_and_always_pods_never() {
        let p = job_pod("OnFailure", &["a"]);
        assert_eq!(terminal_phase(&p, &views(&[exited("a", 1)]), &BTreeMap::new()), None, "it is restarted");
        assert_eq!(terminal_phase(&p, &views(&[crashed("a")]), &BTreeMap::new()), None);
        assert_eq!(terminal_phase(&p, &views(&[exited("a", 0)]), &BTreeMap::new()), Some("Succeeded"));
        let always = job_pod("Always", &["a"]);
        assert_eq!(terminal_phase(&always, &views(&[exited("a", 0)]), &BTreeMap::new()), None);
        assert_eq!(terminal_phase(&pod(&["a"]), &views(&[exited("a", 0)]), &BTreeMap::new()), None);
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod() {
        let mut p = job_pod("Never", &["main"]);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers =
                Some(vec![Container { name: "prep".into(), image: Some("img".into()), ..Default::default() }]);
        }
        let main = views(&[container_status("main", "img", false, 0, waiting("PodInitializing", String::new()), None)]);
        assert_eq!(terminal_phase(&p, &main, &views(&[exited("prep", 0)])), None);
        assert_eq!(terminal_phase(&p, &main, &views(&[exited("prep", 2)])), Some("Failed"));
        if let Some(spec) = p.spec.as_mut() {
            spec.restart_policy = Some("OnFailure".into());
        }
        assert_eq!(terminal_phase(&p, &main, &views(&[exited("prep", 2)])), None, "retried under OnFailure");
    }

    #[test]
    fn only_the_agents_own_views_finish_a_pod() {
        // kwok's pod-complete writes terminated statuses into the pod; they are not the agent's.
        let mut p = job_pod("Never", &["a"]);
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(vec![exited("a", 0)]);
        }
        assert_eq!(terminal_phase(&p, &BTreeMap::new(), &BTreeMap::new()), None);
    }

    #[test]
    fn containers_without_any_status_are_not_ready() {
        let mut p = pod(&["a"]);
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = None;
        }
        let statuses = merged_statuses(&p, &BTreeMap::new());
        assert!(!statuses[0].ready);
        assert_eq!(conditions(&p, &statuses, &now())[0].status, "False");
    }
}

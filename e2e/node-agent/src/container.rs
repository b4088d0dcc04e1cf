//! One container of a pod, run as a host process and supervised like kubelet does: environment
//! resolved at each start, restarts per `restartPolicy` with exponential backoff, `preStop` exec hook
//! then SIGTERM, then SIGKILL after the grace period when the pod goes away.

use crate::ctx::AgentCtx;
use crate::env::{self, Fetched};
use crate::pod;
use crate::pod_status::{self, PodStatusReporter};
use crate::probe::{self, AbortOnDrop, Readiness};
use crate::process::{self, ProcessSpec};
use crate::status::{self, ContainerRecord};
use crate::termination::TerminationLog;
use k8s_openapi::api::core::v1::{ConfigMap, Container, ContainerStateTerminated, ContainerStatus, Pod, Secret};
use kube::Api;
use kube::runtime::events::EventType;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Runs to successful completion before the regular containers start.
    Init,
    Regular,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An init container exited 0.
    Completed,
    /// Failed and will not be restarted (`restartPolicy: Never`).
    Failed,
    /// The pod went away.
    Stopped,
}

enum Run {
    Succeeded,
    Failed,
}

/// What a regular container reports in the pod's status (kubelet's container status).
struct Reported {
    reporter: Option<Arc<PodStatusReporter>>,
    /// An init container (reported in `initContainerStatuses`, ready only once completed).
    init: bool,
    name: String,
    image: String,
    restarts: i32,
    last: Option<ContainerStateTerminated>,
}

impl Reported {
    async fn report(&self, ready: bool, state: k8s_openapi::api::core::v1::ContainerState) {
        if let Some(r) = &self.reporter {
            // kubelet: a running init container is not ready; it counts once it has completed.
            let ready = ready && (!self.init || state.terminated.is_some());
            let status: ContainerStatus =
                pod_status::container_status(&self.name, &self.image, ready, self.restarts, state, self.last.clone());
            r.report(status, self.init).await;
        }
    }
}

/// Supervises `container` until it completes (init containers) or `cancel` fires. With a `reporter`
/// its state is reported in the pod's status as kubelet does.
pub async fn supervise(
    ctx: Arc<AgentCtx>,
    pod_rx: watch::Receiver<Pod>,
    container: Container,
    kind: Kind,
    cancel: CancellationToken,
    reporter: Option<Arc<PodStatusReporter>>,
) -> Outcome {
    let pod = pod_rx.borrow().clone();
    let (ns, name, uid) = ids(&pod);
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
    let status_path = ctx.layout.container_status(&ns, &name, &container.name);
    let log_path = ctx.layout.container_log(&ns, &name, &container.name);
    // A data-operation container reports what it writes to its terminationMessagePath.
    let termination = pod::reports_phase(&pod).then(|| {
        TerminationLog::new(&ctx.layout, &uid, &container.name, container.termination_message_path.as_deref())
    });
    let mut rec = ContainerRecord {
        namespace: ns.clone(),
        pod: name.clone(),
        uid,
        container: container.name.clone(),
        state: "waiting".into(),
        ..Default::default()
    };
    status::write(&status_path, &rec);
    let mut reported = Reported {
        reporter,
        init: kind == Kind::Init,
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        restarts: 0,
        last: None,
    };
    let readiness = probe::readiness(&container);
    if let Readiness::Unsupported(kind) = &readiness {
        tracing::warn!(pod = %name, namespace = %ns, container = %container.name, kind, "readiness probe type not supported: ignored, ready while running");
        process::log_line(&log_path, &format!("readiness probe ignored: {kind} probes are not supported, only exec"));
    }
    let mut backoff: Option<Duration> = None;
    loop {
        // Why the container waits while in backoff (kubelet: CrashLoopBackOff, or the config error).
        let waiting_reason;
        let pod = pod_rx.borrow().clone();
        let run = match build_spec(&ctx, &pod, &container, log_path.clone(), termination.clone()).await {
            Err(msg) => {
                rec.state = "config-error".into();
                rec.failures += 1;
                process::log_line(&log_path, &format!("cannot create container config: {msg}"));
                ctx.event(&pod, EventType::Warning, "Failed", format!("Error: {msg}")).await;
                waiting_reason = "CreateContainerConfigError";
                reported.report(false, pod_status::waiting(waiting_reason, msg.clone())).await;
                rec.message = Some(msg);
                status::write(&status_path, &rec);
                Run::Failed
            }
            Ok(spec) => {
                // Where this run's output starts in the log (before the process can write any).
                let log_offset = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
                // Each run starts with an empty termination-message file.
                let spawned = spec.termination.as_ref().map_or(Ok(()), TerminationLog::reset);
                match spawned.and_then(|()| process::spawn(&spec)) {
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::warn!(pod = %name, namespace = %ns, container = %container.name, error = %msg, "container failed to start");
                        rec.state = "start-failed".into();
                        rec.failures += 1;
                        process::log_line(&log_path, &format!("failed to start: {msg}"));
                        ctx.event(&pod, EventType::Warning, "Failed", format!("Error: {msg}")).await;
                        let t = pod_status::now();
                        reported.last = Some(ContainerStateTerminated {
                            exit_code: 128,
                            reason: Some("StartError".into()),
                            message: Some(msg.clone()),
                            started_at: Some(t.clone()),
                            finished_at: Some(t),
                            ..Default::default()
                        });
                        waiting_reason = "CrashLoopBackOff";
                        rec.message = Some(msg);
                        status::write(&status_path, &rec);
                        Run::Failed
                    }
                    Ok(mut child) => {
                        let pid = child.id();
                        let started = Instant::now();
                        let started_at = pod_status::now();
                        waiting_reason = "CrashLoopBackOff";
                        rec.starts += 1;
                        rec.state = "running".into();
                        rec.pid = pid;
                        rec.message = None;
                        status::write(&status_path, &rec);
                        tracing::info!(pod = %name, namespace = %ns, container = %container.name, pid, "container started");
                        ctx.event(&pod, EventType::Normal, "Started", format!("Started container {}", container.name))
                            .await;
                        // Ready right away on a first clean start, otherwise once it has kept running a while.
                        // With an exec readiness probe, ready only once it succeeds (a prober per run).
                        let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
                        let prober = match (&readiness, reported.reporter.is_some()) {
                            (Readiness::Exec(p), true) => {
                                Some(AbortOnDrop(tokio::spawn(probe::run(p.clone(), spec.clone(), probe_tx.clone()))))
                            }
                            _ => None,
                        };
                        let mut pending_ready = prober.is_none() && (rec.failures > 0 || reported.restarts > 0);
                        reported
                            .report(prober.is_none() && !pending_ready, pod_status::running(started_at.clone()))
                            .await;
                        let ready_timer = tokio::time::sleep(ctx.ready_after);
                        tokio::pin!(ready_timer);
                        let exit = loop {
                            tokio::select! {
                                exit = child.wait() => break Some(exit),
                                _ = &mut ready_timer, if pending_ready => {
                                    pending_ready = false;
                                    reported.report(true, pod_status::running(started_at.clone())).await;
                                }
                                Some((ready, failure)) = probe_rx.recv() => {
                                    if let Some(f) = &failure {
                                        process::log_line(&log_path, f);
                                        ctx.event(&pod, EventType::Warning, "Unhealthy", f.clone()).await;
                                    }
                                    reported.report(ready, pod_status::running(started_at.clone())).await;
                                }
                                _ = cancel.cancelled() => break None,
                            }
                        };
                        drop(prober);
                        drop(probe_tx);
                        match exit {
                            Some(exit) => {
                                process::reap_group(pid);
                                rec.pid = None;
                                if started.elapsed() >= ctx.backoff.reset_after {
                                    backoff = None;
                                }
                                match exit {
                                    Ok(st) => {
                                        use std::os::unix::process::ExitStatusExt;
                                        rec.last_exit_code = st.code();
                                        rec.last_signal = st.signal();
                                        let exit_code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                                        let file =
                                            spec.termination.as_ref().map(TerminationLog::read).unwrap_or_default();
                                        reported.last = Some(ContainerStateTerminated {
                                            exit_code,
                                            signal: st.signal(),
                                            reason: Some(if st.success() { "Completed" } else { "Error" }.into()),
                                            message: pod_status::termination_message(
                                                container.termination_message_policy.as_deref(),
                                                exit_code,
                                                &file,
                                                || pod_status::read_log_tail(&log_path, log_offset),
                                            ),
                                            started_at: Some(started_at.clone()),
                                            finished_at: Some(pod_status::now()),
                                            ..Default::default()
                                        });
                                        let msg = format!("exited: {st}");
                                        process::log_line(&log_path, &msg);
                                        tracing::info!(pod = %name, namespace = %ns, container = %container.name, %st, "container exited");
                                        if st.success() {
                                            rec.state = "completed".into();
                                            rec.message = None;
                                            status::write(&status_path, &rec);
                                            Run::Succeeded
                                        } else {
                                            rec.state = "exited".into();
                                            rec.failures += 1;
                                            rec.message = Some(msg);
                                            status::write(&status_path, &rec);
                                            Run::Failed
                                        }
                                    }
                                    Err(e) => {
                                        rec.state = "exited".into();
                                        rec.failures += 1;
                                        reported.last = Some(ContainerStateTerminated {
                                            exit_code: 128,
                                            reason: Some("Error".into()),
                                            message: Some(format!("cannot wait for the process: {e}")),
                                            started_at: Some(started_at.clone()),
                                            finished_at: Some(pod_status::now()),
                                            ..Default::default()
                                        });
                                        rec.message = Some(format!("cannot wait for the process: {e}"));
                                        status::write(&status_path, &rec);
                                        Run::Failed
                                    }
                                }
                            }
                            None => {
                                let pod = pod_rx.borrow().clone();
                                stop(&ctx, &pod, &container, &spec, &mut child).await;
                                rec.pid = None;
                                rec.state = "stopped".into();
                                status::write(&status_path, &rec);
                                return Outcome::Stopped;
                            }
                        }
                    }
                }
            }
        };
        let restart = match (kind, &run, policy.as_str()) {
            (Kind::Init, Run::Succeeded, _) => {
                if let Some(last) = reported.last.take() {
                    reported.report(true, pod_status::terminated(last)).await;
                }
                return Outcome::Completed;
            }
            (Kind::Regular, Run::Succeeded, "Always") => true,
            (_, Run::Succeeded, _) => false,
            (_, Run::Failed, "Never") => false,
            (_, Run::Failed, _) => true,
        };
        if !restart {
            if let Some(last) = reported.last.take() {
                reported.report(false, pod_status::terminated(last)).await;
            }
            let outcome = if matches!(run, Run::Failed) { Outcome::Failed } else { Outcome::Stopped };
            cancel.cancelled().await;
            if rec.state == "running" {
                rec.state = "stopped".into();
                status::write(&status_path, &rec);
            }
            return outcome;
        }
        let delay = ctx.backoff.next(backoff);
        backoff = Some(delay);
        rec.backoff_secs = Some(delay.as_secs_f64());
        status::write(&status_path, &rec);
        let pod = pod_rx.borrow().clone();
        if reported.last.is_some() && waiting_reason == "CrashLoopBackOff" {
            reported.restarts += 1;
            let msg = format!(
                "back-off {}s restarting failed container={} pod={name}_{ns}({})",
                delay.as_secs_f64(),
                container.name,
                rec.uid
            );
            reported.report(false, pod_status::waiting(waiting_reason, msg)).await;
        }
        ctx.event(
            &pod,
            EventType::Warning,
            "BackOff",
            format!("Back-off {}s restarting container {}", delay.as_secs_f64(), container.name),
        )
        .await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => {
                rec.backoff_secs = None;
                rec.state = "stopped".into();
                status::write(&status_path, &rec);
                return Outcome::Stopped;
            }
        }
        rec.backoff_secs = None;
    }
}

fn ids(pod: &Pod) -> (String, String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// Resolves the environment (reading the Secrets and ConfigMaps it names now, as kubelet does at
/// each start) and the command line. The error names what is missing, never a value.
async fn build_spec(
    ctx: &AgentCtx,
    pod: &Pod,
    container: &Container,
    log: PathBuf,
    termination: Option<TerminationLog>,
) -> Result<ProcessSpec, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let refs = env::referenced(container);
    let mut fetched = Fetched::default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    for name in &refs.secrets {
        match secrets.get_opt(name).await {
            Ok(Some(s)) => fetched.add_secret(name, &s),
            Ok(None) => {}
            Err(e) => return Err(format!("reading secret {name:?}: {e}")),
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    for name in &refs.config_maps {
        match cms.get_opt(name).await {
            Ok(Some(c)) => fetched.add_config_map(name, &c),
            Ok(None) => {}
            Err(e) => return Err(format!("reading configmap {name:?}: {e}")),
        }
    }
    let resolved = env::resolve(pod, container, &fetched).map_err(|e| e.to_string())?;
    let argv = env::argv(container, &resolved);
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
    let hostname = if host_network { ctx.node.clone() } else { pod.metadata.name.clone().unwrap_or_default() };
    let mut full = vec![
        ("PATH".to_string(), ctx.container_path.clone()),
        ("HOME".to_string(), "/root".to_string()),
        ("HOSTNAME".to_string(), hostname),
    ];
    for (k, v) in resolved {
        match full.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => full.push((k, v)),
        }
    }
    let cwd = container.working_dir.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| "/".into());
    Ok(ProcessSpec { argv, env: full, cwd: PathBuf::from(cwd), log, termination })
}

/// The pod's termination grace period, bounded by the agent's `--max-grace-period`.
pub fn grace(ctx: &AgentCtx, pod: &Pod) -> Duration {
    let secs = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0)).min(ctx.max_grace)
}

/// `preStop` exec hook (within the grace period), then SIGTERM/SIGKILL for the rest of it. The hook sees
/// the container's termination-message file as the container does (in a namespace of its own).
async fn stop(ctx: &AgentCtx, pod: &Pod, container: &Container, spec: &ProcessSpec, child: &mut tokio::process::Child) {
    let grace = grace(ctx, pod);
    let started = Instant::now();
    let hook = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
    if let Some(cmd) = hook.and_then(|h| h.exec.as_ref()).and_then(|e| e.command.clone()) {
        let hook_spec = ProcessSpec { argv: cmd, ..spec.clone() };
        process::log_line(&spec.log, "running preStop hook");
        match process::spawn(&hook_spec) {
            Ok(mut hook_child) => {
                if tokio::time::timeout(grace, hook_child.wait()).await.is_err() {
                    process::log_line(&spec.log, "preStop hook did not finish within the grace period");
                }
                let _ = process::terminate(&mut hook_child, Duration::ZERO).await;
            }
            Err(e) => process::log_line(&spec.log, &format!("preStop hook failed to start: {e}")),
        }
    } else if hook.is_some() {
        process::log_line(&spec.log, "preStop hook ignored: only exec hooks are supported");
    }
    ctx.event(pod, EventType::Normal, "Killing", format!("Stopping container {}", container.name)).await;
    let remaining = grace.saturating_sub(started.elapsed());
    match process::terminate(child, remaining).await {
        Ok(st) => process::log_line(&spec.log, &format!("stopped: {st}")),
        Err(e) => process::log_line(&spec.log, &format!("cannot wait for the stopped process: {e}")),
    }
}

//! One container of a pod, run as a host process and supervised like kubelet does: environment
//! resolved at each start, restarts per `restartPolicy` with exponential backoff (the decisions in
//! `lifecycle.rs`), `preStop` exec hook then SIGTERM, then SIGKILL after the grace period when the pod
//! goes away.

use crate::ctx::AgentCtx;
use crate::env::{self, Fetched};
use crate::lifecycle::{Ended, Lifecycle, Next, Run};
use crate::pod;
use crate::pod_status::{self, PodStatusReporter};
use crate::probe::{self, AbortOnDrop, Readiness};
use crate::process::{self, ProcessSpec};
use crate::status::{self, ContainerRecord};
use crate::termination::TerminationLog;
use k8s_openapi::api::core::v1::{ConfigMap, Container, ContainerState, ContainerStatus, Pod, Secret};
use kube::Api;
use kube::runtime::events::EventType;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use crate::lifecycle::{Kind, Outcome};

/// What a container reports in the pod's status (kubelet's container status).
struct Reported {
    reporter: Option<Arc<PodStatusReporter>>,
    /// An init container (reported in `initContainerStatuses`, ready only once completed).
    init: bool,
    name: String,
    image: String,
}

impl Reported {
    async fn report(&self, life: &Lifecycle, ready: bool, state: ContainerState) {
        if let Some(r) = &self.reporter {
            // kubelet: a running init container is not ready; it counts once it has completed.
            let ready = ready && (!self.init || state.terminated.is_some());
            let status: ContainerStatus =
                pod_status::container_status(&self.name, &self.image, ready, life.restarts, state, life.last.clone());
            r.report(status, self.init).await;
        }
    }
}

/// What stays the same across the runs of one container.
struct Setup<'a> {
    ctx: &'a AgentCtx,
    pod_rx: &'a watch::Receiver<Pod>,
    container: &'a Container,
    status_path: PathBuf,
    log_path: PathBuf,
    readiness: Readiness,
    reported: Reported,
    cancel: &'a CancellationToken,
}

impl Setup<'_> {
    fn write(&self, life: &Lifecycle) {
        status::write(&self.status_path, &life.rec);
    }
}

/// Supervises `container` until it completes (init containers) or `cancel` fires. With a `reporter`
/// its state is reported in the pod's status as kubelet does. The decisions are `lifecycle.rs`'s; this
/// is the I/O around them.
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
    // A data-operation container reports what it writes to its terminationMessagePath.
    let termination = pod::reports_phase(&pod).then(|| {
        TerminationLog::new(&ctx.layout, &uid, &container.name, container.termination_message_path.as_deref())
    });
    let mut life = Lifecycle::new(ContainerRecord {
        namespace: ns.clone(),
        pod: name.clone(),
        uid,
        container: container.name.clone(),
        state: "waiting".into(),
        ..Default::default()
    });
    let s = Setup {
        ctx: &ctx,
        pod_rx: &pod_rx,
        container: &container,
        status_path: ctx.layout.container_status(&ns, &name, &container.name),
        log_path: ctx.layout.container_log(&ns, &name, &container.name),
        readiness: probe::readiness(&container),
        reported: Reported {
            reporter,
            init: kind == Kind::Init,
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
        },
        cancel: &cancel,
    };
    s.write(&life);
    if let Readiness::Unsupported(kind) = &s.readiness {
        tracing::warn!(pod = %name, namespace = %ns, container = %container.name, kind, "readiness probe type not supported: ignored, ready while running");
        process::log_line(&s.log_path, &format!("readiness probe ignored: {kind} probes are not supported, only exec"));
    }
    loop {
        let pod = pod_rx.borrow().clone();
        let run = match build_spec(&ctx, &pod, &container, s.log_path.clone(), termination.clone()).await {
            Err(msg) => {
                process::log_line(&s.log_path, &format!("cannot create container config: {msg}"));
                ctx.event(&pod, EventType::Warning, "Failed", format!("Error: {msg}")).await;
                let run = life.ended(Ended::ConfigError(msg.clone()), ctx.backoff.reset_after);
                s.reported.report(&life, false, pod_status::waiting(life.waiting_reason, msg)).await;
                s.write(&life);
                run
            }
            Ok(spec) => match run_once(&s, &mut life, &spec).await {
                Some(run) => run,
                None => return Outcome::Stopped,
            },
        };
        match Lifecycle::next(kind, run, &policy) {
            Next::Completed => {
                if let Some(last) = life.last.take() {
                    s.reported.report(&life, true, pod_status::terminated(last)).await;
                }
                return Outcome::Completed;
            }
            Next::Finish(outcome) => {
                if let Some(last) = life.last.take() {
                    s.reported.report(&life, false, pod_status::terminated(last)).await;
                }
                cancel.cancelled().await;
                return outcome;
            }
            Next::Restart => {}
        }
        let (delay, crash) = life.back_off(&ctx.backoff, &name);
        s.write(&life);
        if let Some(msg) = crash {
            s.reported.report(&life, false, pod_status::waiting(life.waiting_reason, msg)).await;
        }
        let pod = pod_rx.borrow().clone();
        let note = format!("Back-off {}s restarting container {}", delay.as_secs_f64(), container.name);
        ctx.event(&pod, EventType::Warning, "BackOff", note).await;
        tokio::select! {
            _ = tokio::time::sleep(delay) => life.backoff_over(),
            _ = cancel.cancelled() => {
                life.stopped();
                s.write(&life);
                return Outcome::Stopped;
            }
        }
    }
}

/// One run: start the process, report it, watch readiness until it exits (`Some`: how the run went) or
/// the pod goes away (`None`: stopped as kubelet stops it).
async fn run_once(s: &Setup<'_>, life: &mut Lifecycle, spec: &ProcessSpec) -> Option<Run> {
    let (ctx, container) = (s.ctx, s.container);
    let pod = s.pod_rx.borrow().clone();
    let (ns, name, _) = ids(&pod);
    // Where this run's output starts in the log (before the process can write any).
    let log_offset = std::fs::metadata(&s.log_path).map(|m| m.len()).unwrap_or(0);
    // Each run starts with an empty termination-message file.
    let spawned = spec.termination.as_ref().map_or(Ok(()), TerminationLog::reset).and_then(|()| process::spawn(spec));
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(pod = %name, namespace = %ns, container = %container.name, error = %msg, "container failed to start");
            process::log_line(&s.log_path, &format!("failed to start: {msg}"));
            ctx.event(&pod, EventType::Warning, "Failed", format!("Error: {msg}")).await;
            let run = life.ended(Ended::StartFailed { message: msg, at: pod_status::now() }, ctx.backoff.reset_after);
            s.write(life);
            return Some(run);
        }
    };
    let pid = child.id();
    let started = Instant::now();
    let started_at = pod_status::now();
    life.started(pid);
    s.write(life);
    tracing::info!(pod = %name, namespace = %ns, container = %container.name, pid, "container started");
    ctx.event(&pod, EventType::Normal, "Started", format!("Started container {}", container.name)).await;
    // With an exec readiness probe, ready only once it succeeds (a prober per run).
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let prober = match (&s.readiness, s.reported.reporter.is_some()) {
        (Readiness::Exec(p), true) => {
            Some(AbortOnDrop(tokio::spawn(probe::run(p.clone(), spec.clone(), probe_tx.clone()))))
        }
        _ => None,
    };
    let (ready_now, mut pending_ready) = life.readiness_at_start(prober.is_some());
    s.reported.report(life, ready_now, pod_status::running(started_at.clone())).await;
    let ready_timer = tokio::time::sleep(ctx.ready_after);
    tokio::pin!(ready_timer);
    let exit = loop {
        tokio::select! {
            exit = child.wait() => break Some(exit),
            _ = &mut ready_timer, if pending_ready => {
                pending_ready = false;
                s.reported.report(life, true, pod_status::running(started_at.clone())).await;
            }
            Some((ready, failure)) = probe_rx.recv() => {
                if let Some(f) = &failure {
                    process::log_line(&s.log_path, f);
                    ctx.event(&pod, EventType::Warning, "Unhealthy", f.clone()).await;
                }
                s.reported.report(life, ready, pod_status::running(started_at.clone())).await;
            }
            _ = s.cancel.cancelled() => break None,
        }
    };
    drop(prober);
    drop(probe_tx);
    let Some(exit) = exit else {
        let pod = s.pod_rx.borrow().clone();
        stop(ctx, &pod, container, spec, &mut child).await;
        life.stopped();
        s.write(life);
        return None;
    };
    process::reap_group(pid);
    let (ran_for, finished_at) = (started.elapsed(), pod_status::now());
    let end = match exit {
        Ok(status) => {
            let file = spec.termination.as_ref().map(TerminationLog::read).unwrap_or_default();
            let code = status
                .code()
                .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
            let message =
                pod_status::termination_message(container.termination_message_policy.as_deref(), code, &file, || {
                    pod_status::read_log_tail(&s.log_path, log_offset)
                });
            process::log_line(&s.log_path, &format!("exited: {status}"));
            tracing::info!(pod = %name, namespace = %ns, container = %container.name, %status, "container exited");
            Ended::Exited { status, message, started_at, finished_at, ran_for }
        }
        Err(e) => Ended::Lost { error: e.to_string(), started_at, finished_at, ran_for },
    };
    let run = life.ended(end, ctx.backoff.reset_after);
    s.write(life);
    Some(run)
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

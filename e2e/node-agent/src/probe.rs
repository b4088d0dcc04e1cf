//! Readiness probes, as kubelet runs them: only `exec` probes are supported. The command runs as a
//! child of the agent (so in the node's mount namespace) with the container's environment and working
//! directory; only its exit code counts — its output is discarded and never reaches status, events or
//! logs.

use crate::process::{self, ProcessSpec};
use k8s_openapi::api::core::v1::{Container, Probe};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::mpsc;

/// An `exec` readiness probe with kubelet's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecProbe {
    pub command: Vec<String>,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// How a container's readiness is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// No readiness probe: ready while running (the agent's own rule).
    Running,
    /// Ready once the exec probe succeeds, until it fails `failure_threshold` times in a row.
    Exec(ExecProbe),
    /// A probe type the agent does not run (`httpGet`, `tcpSocket`, `grpc`): treated as `Running`.
    Unsupported(&'static str),
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(min)).unwrap_or(0))
}

fn count(v: Option<i32>, default: i32) -> u32 {
    u32::try_from(v.unwrap_or(default).max(1)).unwrap_or(1)
}

/// The readiness rule of `container` (kubelet defaults: period 10 s, timeout 1 s, thresholds 1 and 3).
pub fn readiness(container: &Container) -> Readiness {
    let Some(p) = container.readiness_probe.as_ref() else {
        return Readiness::Running;
    };
    exec_probe(p).map(Readiness::Exec).unwrap_or_else(|| {
        let kind = if p.http_get.is_some() {
            "httpGet"
        } else if p.tcp_socket.is_some() {
            "tcpSocket"
        } else if p.grpc.is_some() {
            "grpc"
        } else {
            "empty"
        };
        Readiness::Unsupported(kind)
    })
}

fn exec_probe(p: &Probe) -> Option<ExecProbe> {
    let command = p.exec.as_ref()?.command.clone().unwrap_or_default();
    Some(ExecProbe {
        command,
        initial_delay: secs(p.initial_delay_seconds, 0, 0),
        period: secs(p.period_seconds, 10, 1),
        timeout: secs(p.timeout_seconds, 1, 1),
        success_threshold: count(p.success_threshold, 1),
        failure_threshold: count(p.failure_threshold, 3),
    })
}

/// Consecutive probe results turned into readiness: not ready at first, ready after
/// `success_threshold` successes in a row, not ready again after `failure_threshold` failures in a row.
#[derive(Debug)]
pub struct Tracker {
    pub ready: bool,
    successes: u32,
    failures: u32,
    success_threshold: u32,
    failure_threshold: u32,
}

impl Tracker {
    pub fn new(probe: &ExecProbe) -> Self {
        Self {
            ready: false,
            successes: 0,
            failures: 0,
            success_threshold: probe.success_threshold,
            failure_threshold: probe.failure_threshold,
        }
    }

    /// Records one result; `true` when readiness changed.
    pub fn observe(&mut self, ok: bool) -> bool {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.ready && self.successes >= self.success_threshold {
                self.ready = true;
                return true;
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.ready && self.failures >= self.failure_threshold {
                self.ready = false;
                return true;
            }
        }
        false
    }
}

/// One probe run: `Ok` on exit 0, otherwise why it failed (exit code, timeout or start error — never
/// the command's output or arguments).
pub async fn run_once(command: &[String], base: &ProcessSpec, timeout: Duration) -> Result<(), String> {
    let program = command.first().ok_or_else(|| "readiness probe has no command".to_string())?;
    let mut cmd = Command::new(program);
    cmd.args(&command[1..])
        .env_clear()
        .envs(base.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&base.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("readiness probe cannot start {program}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) if st.success() => {
            process::reap_group(child.id());
            Ok(())
        }
        Ok(Ok(st)) => {
            use std::os::unix::process::ExitStatusExt;
            let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            Err(format!("readiness probe failed: exit {code}"))
        }
        Ok(Err(e)) => Err(format!("readiness probe cannot be waited for: {e}")),
        Err(_) => {
            let _ = process::terminate(&mut child, Duration::ZERO).await;
            Err(format!("readiness probe timed out after {}s", timeout.as_secs()))
        }
    }
}

/// Runs `probe` for one run of a container until dropped, sending each readiness change (with the
/// failure that caused a change to not ready).
pub async fn run(probe: ExecProbe, base: ProcessSpec, tx: mpsc::UnboundedSender<(bool, Option<String>)>) {
    let mut tracker = Tracker::new(&probe);
    tokio::time::sleep(probe.initial_delay).await;
    let mut tick = tokio::time::interval(probe.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = run_once(&probe.command, &base, probe.timeout).await;
        if let Err(e) = &result {
            tracing::debug!(log = %base.log.display(), error = %e, "readiness probe failed");
        }
        if tracker.observe(result.is_ok()) && tx.send((tracker.ready, result.err())).is_err() {
            return;
        }
    }
}

/// Aborts a spawned task when dropped (a prober lives exactly as long as one run of its container).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction};

    fn probe(cmd: &[&str]) -> ExecProbe {
        ExecProbe {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            success_threshold: 2,
            failure_threshold: 3,
        }
    }

    fn base() -> ProcessSpec {
        ProcessSpec {
            argv: vec![],
            env: vec![("PATH".into(), "/usr/bin:/bin".into()), ("PROBE_CODE".into(), "4".into())],
            cwd: "/".into(),
            log: "/nonexistent/log".into(),
            termination: None,
        }
    }

    #[test]
    fn defaults_follow_kubelet_and_other_types_are_unsupported() {
        let mut c = Container { name: "c".into(), ..Default::default() };
        assert_eq!(readiness(&c), Readiness::Running);
        c.readiness_probe =
            Some(Probe { exec: Some(ExecAction { command: Some(vec!["true".into()]) }), ..Default::default() });
        let Readiness::Exec(p) = readiness(&c) else { panic!("exec probe expected") };
        assert_eq!(
            (p.initial_delay, p.period, p.timeout, p.success_threshold, p.failure_threshold),
            (Duration::ZERO, Duration::from_secs(10), Duration::from_secs(1), 1, 3)
        );
        c.readiness_probe = Some(Probe { http_get: Some(HTTPGetAction::default()), ..Default::default() });
        assert_eq!(readiness(&c), Readiness::Unsupported("httpGet"));
    }

    #[test]
    fn tracker_needs_consecutive_results_to_flip() {
        let mut t = Tracker::new(&probe(&["true"]));
        assert!(!t.observe(false) && !t.ready);
        assert!(!t.observe(true) && !t.ready);
        assert!(t.observe(true) && t.ready);
        assert!(!t.observe(false) && !t.observe(false) && !t.observe(true) && t.ready);
        assert!(!t.observe(false) && !t.observe(false));
        assert!(t.observe(false) && !t.ready);
    }

    #[tokio::test]
    async fn run_once_reports_exit_codes_with_the_containers_env() {
        let b = base();
        assert_eq!(run_once(&["true".into()], &b, Duration::from_secs(5)).await, Ok(()));
        let cmd: Vec<String> = ["sh", "-c", "echo secret-output; exit $PROBE_CODE"].map(String::from).into();
        let err = run_once(&cmd, &b, Duration::from_secs(5)).await;
        assert_eq!(err, Err("readiness probe failed: exit 4".into()));
        let slow: Vec<String> = ["sleep", "30"].map(String::from).into();
        let err = run_once(&slow, &b, Duration::from_secs(1)).await.err().unwrap_or_default();
        assert!(err.contains("timed out"), "{err}");
    }
}

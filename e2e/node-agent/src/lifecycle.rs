//! A supervised container's life between its runs, pure: what each way a run ends does to its record
//! (`status.json`) and to the last termination kubelet would report, whether it starts again under the
//! pod's `restartPolicy`, and the backoff before it does. `container.rs` is the I/O around it: building
//! the process, spawning, waiting, probes, events, status writes.

use crate::ctx::Backoff;
use crate::status::ContainerRecord;
use k8s_openapi::api::core::v1::ContainerStateTerminated;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a container waits while it backs off: its process failed …
pub const CRASH_LOOP: &str = "CrashLoopBackOff";
/// … or its configuration could not be built (a missing Secret key, …).
pub const CONFIG_ERROR: &str = "CreateContainerConfigError";

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    Succeeded,
    Failed,
}

/// How one run ended.
#[derive(Debug)]
pub enum Ended {
    /// The configuration could not be built; nothing was started.
    ConfigError(String),
    /// The process could not be started.
    StartFailed { message: String, at: Time },
    /// The process exited; `message` is its termination message (kubelet's rule, already applied).
    Exited { status: ExitStatus, message: Option<String>, started_at: Time, finished_at: Time, ran_for: Duration },
    /// Waiting for the process failed.
    Lost { error: String, started_at: Time, finished_at: Time, ran_for: Duration },
}

/// What follows a run.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// An init container that succeeded: the pod goes on.
    Completed,
    /// Not started again: the outcome, once the pod goes away.
    Finish(Outcome),
    /// Started again after a backoff.
    Restart,
}

/// The container's state across its runs.
#[derive(Debug)]
pub struct Lifecycle {
    pub rec: ContainerRecord,
    /// Restarts after a crash (kubelet's `restartCount`).
    pub restarts: i32,
    /// The last run's termination (kubelet's `lastState.terminated`).
    pub last: Option<ContainerStateTerminated>,
    /// Why it waits while it backs off.
    pub waiting_reason: &'static str,
    backoff: Option<Duration>,
}

impl Lifecycle {
    pub fn new(rec: ContainerRecord) -> Self {
        Self { rec, restarts: 0, last: None, waiting_reason: CRASH_LOOP, backoff: None }
    }

    /// The process started with `pid`.
    pub fn started(&mut self, pid: Option<u32>) {
        self.waiting_reason = CRASH_LOOP;
        self.rec.starts += 1;
        self.rec.state = "running".into();
        self.rec.pid = pid;
        self.rec.message = None;
    }

    /// Readiness at a start: `(ready now, ready once it has kept running a while)`. Ready right away on a
    /// first clean start, later after an earlier failure; with a readiness probe, only as the probe says.
    pub fn readiness_at_start(&self, probed: bool) -> (bool, bool) {
        let later = !probed && (self.rec.failures > 0 || self.restarts > 0);
        (!probed && !later, later)
    }

    /// Records how a run ended.
    pub fn ended(&mut self, end: Ended, reset_after: Duration) -> Run {
        let terminated = |exit_code, signal, reason: &str, message, started_at, finished_at| ContainerStateTerminated {
            exit_code,
            signal,
            reason: Some(reason.into()),
            message,
            started_at: Some(started_at),
            finished_at: Some(finished_at),
            ..Default::default()
        };
        match end {
            Ended::ConfigError(message) => {
                self.waiting_reason = CONFIG_ERROR;
                self.rec.state = "config-error".into();
                self.rec.failures += 1;
                self.rec.message = Some(message);
                Run::Failed
            }
            Ended::StartFailed { message, at } => {
                self.waiting_reason = CRASH_LOOP;
                self.rec.state = "start-failed".into();
                self.rec.failures += 1;
                self.last = Some(terminated(128, None, "StartError", Some(message.clone()), at.clone(), at));
                self.rec.message = Some(message);
                Run::Failed
            }
            Ended::Exited { status, message, started_at, finished_at, ran_for } => {
                use std::os::unix::process::ExitStatusExt;
                self.exited(ran_for, reset_after);
                self.rec.last_exit_code = status.code();
                self.rec.last_signal = status.signal();
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                let reason = if status.success() { "Completed" } else { "Error" };
                self.last = Some(terminated(code, status.signal(), reason, message, started_at, finished_at));
                if status.success() {
                    self.rec.state = "completed".into();
                    self.rec.message = None;
                    Run::Succeeded
                } else {
                    self.rec.state = "exited".into();
                    self.rec.failures += 1;
                    self.rec.message = Some(format!("exited: {status}"));
                    Run::Failed
                }
            }
            Ended::Lost { error, started_at, finished_at, ran_for } => {
                self.exited(ran_for, reset_after);
                let message = format!("cannot wait for the process: {error}");
                self.rec.state = "exited".into();
                self.rec.failures += 1;
                self.last = Some(terminated(128, None, "Error", Some(message.clone()), started_at, finished_at));
                self.rec.message = Some(message);
                Run::Failed
            }
        }
    }

    /// A process that ran at least `reset_after` starts the backoff over.
    fn exited(&mut self, ran_for: Duration, reset_after: Duration) {
        self.rec.pid = None;
        if ran_for >= reset_after {
            self.backoff = None;
        }
    }

    /// Whether a container of `kind` runs again after `run`, under `policy` (kubelet's rules).
    pub fn next(kind: Kind, run: Run, policy: &str) -> Next {
        match (kind, run, policy) {
            (Kind::Init, Run::Succeeded, _) => Next::Completed,
            (Kind::Regular, Run::Succeeded, "Always") => Next::Restart,
            (_, Run::Succeeded, _) => Next::Finish(Outcome::Stopped),
            (_, Run::Failed, "Never") => Next::Finish(Outcome::Failed),
            (_, Run::Failed, _) => Next::Restart,
        }
    }

    /// The wait before the next start (exponential); after a crash also the `CrashLoopBackOff` message
    /// kubelet shows (the restart counted).
    pub fn back_off(&mut self, backoff: &Backoff, pod: &str) -> (Duration, Option<String>) {
        let delay = backoff.next(self.backoff);
        self.backoff = Some(delay);
        self.rec.backoff_secs = Some(delay.as_secs_f64());
        let crashed = self.last.is_some() && self.waiting_reason == CRASH_LOOP;
        let message = crashed.then(|| {
            self.restarts += 1;
            format!(
                "back-off {}s restarting failed container={} pod={pod}_{}({})",
                delay.as_secs_f64(),
                self.rec.container,
                self.rec.namespace,
                self.rec.uid
            )
        });
        (delay, message)
    }

    /// The backoff is over (the next start follows).
    pub fn backoff_over(&mut self) {
        self.rec.backoff_secs = None;
    }

    /// The process was stopped (the pod went away).
    pub fn stopped(&mut self) {
        self.rec.pid = None;
        self.rec.backoff_secs = None;
        self.rec.state = "stopped".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn life() -> Lifecycle {
        Lifecycle::new(ContainerRecord {
            namespace: "ns".into(),
            pod: "p".into(),
            uid: "u".into(),
            container: "c".into(),
            state: "waiting".into(),
            ..Default::default()
        })
    }

    fn t() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    const BACKOFF: Backoff =
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(4), reset_after: Duration::from_secs(60) };

    fn exited(code: i32, ran_for: u64) -> Ended {
        Ended::Exited {
            status: ExitStatus::from_raw(code << 8),
            message: Some("m".into()),
            started_at: t(),
            finished_at: t(),
            ran_for: Duration::from_secs(ran_for),
        }
    }

    #[test]
    fn restart_policy_decides_what_follows() {
        assert_eq!(Lifecycle::next(Kind::Init, Run::Succeeded, "Never"), Next::Completed);
        assert_eq!(Lifecycle::next(Kind::Regular, Run::Succeeded, "Always"), Next::Restart);
        assert_eq!(Lifecycle::next(Kind::Regular, Run::Succeeded, "OnFailure"), Next::Finish(Outcome::Stopped));
        assert_eq!(Lifecycle::next(Kind::Regular, Run::Failed, "Never"), Next::Finish(Outcome::Failed));
        assert_eq!(Lifecycle::next(Kind::Init, Run::Failed, "OnFailure"), Next::Restart);
        assert_eq!(Lifecycle::next(Kind::Regular, Run::Failed, "Always"), Next::Restart);
    }

    #[test]
    fn a_crash_loop_backs_off_exponentially_and_counts_restarts() {
        let mut l = life();
        assert_eq!(l.readiness_at_start(false), (true, false), "a first clean start is ready at once");
        l.started(Some(42));
        assert_eq!((l.rec.state.as_str(), l.rec.pid, l.rec.starts), ("running", Some(42), 1));
        assert_eq!(l.ended(exited(3, 1), BACKOFF.reset_after), Run::Failed);
        assert_eq!((l.rec.state.as_str(), l.rec.pid, l.rec.last_exit_code), ("exited", None, Some(3)));
        assert_eq!(l.rec.message.as_deref(), Some("exited: exit status: 3"));
        let last = l.last.clone().expect("terminated");
        assert_eq!((last.exit_code, last.reason.as_deref(), last.message.as_deref()), (3, Some("Error"), Some("m")));
        let (d1, msg) = l.back_off(&BACKOFF, "p");
        assert_eq!(d1, Duration::from_secs(1));
        assert!(msg.expect("crash message").contains("restarting failed container=c pod=p_ns(u)"));
        assert_eq!((l.restarts, l.rec.backoff_secs), (1, Some(1.0)));
        l.backoff_over();
        assert_eq!(l.readiness_at_start(false), (false, true), "after a failure: ready once it has run a while");
        assert_eq!(l.readiness_at_start(true), (false, false), "a probe decides");
        l.started(None);
        l.ended(exited(1, 1), BACKOFF.reset_after);
        assert_eq!(l.back_off(&BACKOFF, "p").0, Duration::from_secs(2));
        l.started(None);
        l.ended(exited(1, 1), BACKOFF.reset_after);
        assert_eq!(l.back_off(&BACKOFF, "p").0, Duration::from_secs(4));
        l.started(None);
        l.ended(exited(1, 1), BACKOFF.reset_after);
        assert_eq!(l.back_off(&BACKOFF, "p").0, Duration::from_secs(4), "capped");
        l.started(None);
        l.ended(exited(1, 61), BACKOFF.reset_after);
        assert_eq!(l.back_off(&BACKOFF, "p").0, Duration::from_secs(1), "a long run starts the backoff over");
        assert_eq!(l.restarts, 5);
    }

    #[test]
    fn each_way_a_run_ends_is_recorded() {
        let mut l = life();
        assert_eq!(
            l.ended(Ended::ConfigError("secret \"s\" has no key \"k\"".into()), BACKOFF.reset_after),
            Run::Failed
        );
        assert_eq!((l.rec.state.as_str(), l.waiting_reason, l.rec.failures), ("config-error", CONFIG_ERROR, 1));
        let (_, msg) = l.back_off(&BACKOFF, "p");
        assert_eq!((msg, l.restarts), (None, 0), "a config error is no crash");
        let mut l = life();
        l.ended(Ended::StartFailed { message: "executable not found: /bin/nope".into(), at: t() }, BACKOFF.reset_after);
        let last = l.last.clone().expect("terminated");
        assert_eq!(
            (l.rec.state.as_str(), last.exit_code, last.reason.as_deref()),
            ("start-failed", 128, Some("StartError"))
        );
        let mut l = life();
        l.started(Some(7));
        let lost = Ended::Lost { error: "gone".into(), started_at: t(), finished_at: t(), ran_for: Duration::ZERO };
        assert_eq!(l.ended(lost, BACKOFF.reset_after), Run::Failed);
        assert_eq!((l.rec.pid, l.rec.message.as_deref()), (None, Some("cannot wait for the process: gone")));
        let mut l = life();
        l.started(Some(7));
        assert_eq!(l.ended(exited(0, 5), BACKOFF.reset_after), Run::Succeeded);
        assert_eq!((l.rec.state.as_str(), l.rec.failures), ("completed", 0));
        assert_eq!(l.last.as_ref().and_then(|t| t.reason.as_deref()), Some("Completed"));
        let killed = Ended::Exited {
            status: ExitStatus::from_raw(9),
            message: None,
            started_at: t(),
            finished_at: t(),
            ran_for: Duration::ZERO,
        };
        l.ended(killed, BACKOFF.reset_after);
        assert_eq!((l.last.as_ref().map(|t| t.exit_code), l.rec.last_signal), (Some(137), Some(9)));
        l.stopped();
        assert_eq!(l.rec.state, "stopped");
    }
}

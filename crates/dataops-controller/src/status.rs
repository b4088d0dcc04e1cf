//! The DataLoad status a step leads to, pure. Conditions: `Waiting` while it may not start (with why),
//! then `Complete` or `Failed` (Fluid's types) once it ends.

use crate::plan::{Outcome, Run, Why};
use ferrofluid_api::common::condition;
use ferrofluid_api::operation::{OperationPhase, OperationStatus};
use k8s_openapi::jiff::Timestamp;

pub const WAITING: &str = "Waiting";
pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";

fn with_condition(
    mut s: OperationStatus,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> OperationStatus {
    let c = condition(&s.conditions, type_, ok, reason, message, now);
    s.conditions.retain(|x| x.type_ != type_);
    s.conditions.push(c);
    s
}

/// `1h2m3s` style, as Go prints a rounded duration.
pub fn duration_text(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m{sec}s"),
        _ => format!("{h}h{m}m{sec}s"),
    }
}

fn seconds_between(from: Option<&str>, to: Timestamp) -> i64 {
    from.and_then(|f| f.parse::<Timestamp>().ok()).map(|f| to.as_second() - f.as_second()).unwrap_or(0)
}

/// Pending, waiting for `w`.
pub fn waiting(current: &OperationStatus, w: &Why, now: Timestamp) -> OperationStatus {
    let mut s = current.clone();
    s.phase = OperationPhase::Pending;
    with_condition(s, WAITING, true, w.reason, &w.message, &now.to_string())
}

/// Failed before running (bad input, missing dataset, …).
pub fn refused(current: &OperationStatus, w: &Why, now: Timestamp) -> OperationStatus {
    let mut s = current.clone();
    s.phase = OperationPhase::Failed;
    s.completion_time.get_or_insert_with(|| now.to_string());
    s.duration = Some(duration_text(seconds_between(s.start_time.as_deref(), now)));
    s.conditions.retain(|c| c.type_ != WAITING);
    with_condition(s, FAILED, true, w.reason, &w.message, &now.to_string())
}

/// Executing, or finished as `run.outcome` says.
pub fn running(current: &OperationStatus, run: &Run, now: Timestamp) -> OperationStatus {
    let now_text = now.to_string();
    let mut s = current.clone();
    s.conditions.retain(|c| c.type_ != WAITING);
    s.start_time.get_or_insert_with(|| now_text.clone());
    s.progress = Some(run.progress.clone());
    s.duration = Some(duration_text(seconds_between(s.start_time.as_deref(), now)));
    match &run.outcome {
        Outcome::Running => {
            s.phase = OperationPhase::Executing;
            s
        }
        Outcome::Complete => {
            s.phase = OperationPhase::Complete;
            s.completion_time = Some(now_text.clone());
            s.last_successful_time = Some(now_text.clone());
            let msg = format!("done: {}", run.progress.summary);
            with_condition(s, COMPLETE, true, "Done", &msg, &now_text)
        }
        Outcome::Failed { node, message } => {
            s.phase = OperationPhase::Failed;
            s.completion_time = Some(now_text.clone());
            let msg = format!("{node} failed: {message}");
            with_condition(s, FAILED, true, "JobFailed", &msg, &now_text)
        }
    }
}

/// Key of `status.infos` that says which event started an `OnEvent` operation's current run.
pub const INFO_EVENT: &str = "lastEvent";

/// A new run — of a `Cron` operation, scheduled for `at`; of an `OnEvent` one, started at `at` by
/// `event`: Pending again with nothing of the last run but its times (and the event).
pub fn rescheduled(current: &OperationStatus, at: Timestamp, event: Option<&str>) -> OperationStatus {
    OperationStatus {
        phase: OperationPhase::Pending,
        last_schedule_time: Some(at.to_string()),
        last_successful_time: current.last_successful_time.clone(),
        infos: event.map(|e| [(INFO_EVENT.to_string(), e.to_string())].into()).unwrap_or_default(),
        ..Default::default()
    }
}

/// Whether `new` says more than `old` besides the clock: a pass writes only then, so a running load
/// is written when its progress moves, not on every pass.
pub fn changed(old: &OperationStatus, new: &OperationStatus) -> bool {
    let strip = |s: &OperationStatus| {
        let mut s = s.clone();
        s.duration = None;
        for c in &mut s.conditions {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::summarize;
    use ferrofluid_api::operation::NodeProgress;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(63), "1m3s");
        assert_eq!(duration_text(3723), "1h2m3s");
        assert_eq!(duration_text(-5), "0s");
    }

    #[test]
    fn a_wait_is_pending_with_its_reason_and_running_clears_it() {
        let w = Why { reason: "DatasetBusy", message: "busy".into() };
        let s = waiting(&OperationStatus::default(), &w, at("2026-01-01T00:00:00Z"));
        assert_eq!(s.phase, OperationPhase::Pending);
        assert_eq!(s.conditions[0].type_, WAITING);
        assert_eq!(s.conditions[0].reason.as_deref(), Some("DatasetBusy"));
        let node = NodeProgress { node: "n1".into(), job: "j".into(), parts: 4, ..Default::default() };
        let run = Run { create: vec![], progress: summarize(vec![node], Some("node")), outcome: Outcome::Running };
        let r = running(&s, &run, at("2026-01-01T00:00:10Z"));
        assert_eq!(r.phase, OperationPhase::Executing);
        assert!(r.conditions.is_empty());
        assert_eq!(r.start_time.as_deref(), Some("2026-01-01T00:00:10Z"));
    }

    #[test]
    fn finishing_records_time_duration_and_the_failing_node() {
        let start = OperationStatus { start_time: Some("2026-01-01T00:00:00Z".into()), ..Default::default() };
        let run = Run {
            create: vec![],
            progress: summarize(vec![], None),
            outcome: Outcome::Failed { node: "n2".into(), message: "BackoffLimitExceeded".into() },
        };
        let s = running(&start, &run, at("2026-01-01T00:01:05Z"));
        assert_eq!(s.phase, OperationPhase::Failed);
        assert_eq!(s.duration.as_deref(), Some("1m5s"));
        let c = s.conditions.iter().find(|c| c.type_ == FAILED).expect("failed condition");
        assert!(c.message.as_deref().is_some_and(|m| m.contains("n2") && m.contains("BackoffLimitExceeded")));
    }

    #[test]
    fn the_clock_alone_is_no_change() {
        let node = NodeProgress { node: "n1".into(), job: "j".into(), parts: 4, ..Default::default() };
        let run = Run { create: vec![], progress: summarize(vec![node.clone()], None), outcome: Outcome::Running };
        let a = running(&OperationStatus::default(), &run, at("2026-01-01T00:00:00Z"));
        let b = running(&a, &run, at("2026-01-01T00:00:30Z"));
        assert_ne!(a.duration, b.duration);
        assert!(!changed(&a, &b));
        let moved = NodeProgress { parts_done: 1, ..node };
        let run2 = Run { create: vec![], progress: summarize(vec![moved], None), outcome: Outcome::Running };
        assert!(changed(&b, &running(&b, &run2, at("2026-01-01T00:00:40Z"))));
    }
}

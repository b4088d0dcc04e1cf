//! The `OnEvent` policy, pure: a finished operation runs again when one of its events has happened
//! since its last run started —
//! - the operation it runs after (`runAfter`) completed again (a `Cron` load each night, then this
//!   processing after each);
//! - for a DataLoad, its dataset gained a cache node that the last run did not warm (workers scaled
//!   out or moved).
//!
//! Fluid accepts `OnEvent` but names no event; these are ferrofluid's (docs/configuration.md).

use ferrofluid_api::operation::OperationStatus;
use k8s_openapi::jiff::Timestamp;

/// The operation named in `runAfter`, when it is Complete: its label and completion time.
pub struct PrecedingRun<'a> {
    pub label: &'a str,
    pub completed: Option<&'a str>,
}

fn parse(t: Option<&str>) -> Option<Timestamp> {
    t.and_then(|t| t.parse().ok())
}

/// Why the finished operation with `status` runs again, if it does. `cache_nodes` are the dataset's
/// cache nodes now (DataLoad only).
pub fn trigger(
    status: &OperationStatus,
    preceding: Option<PrecedingRun<'_>>,
    cache_nodes: &[String],
) -> Option<String> {
    if !status.phase.finished() {
        return None;
    }
    // Since the last run started; a run refused before it started counts from its end.
    let since = parse(status.start_time.as_deref()).or_else(|| parse(status.completion_time.as_deref()));
    if let Some(p) = preceding
        && let (Some(done), Some(since)) = (parse(p.completed), since)
        && done > since
    {
        return Some(format!("{} completed again at {done}", p.label));
    }
    // Only a run that worked on nodes is followed by one on new nodes.
    let warmed: Vec<&str> = status.progress.as_ref().map(|p| p.nodes.iter().map(|n| n.node.as_str()).collect())?;
    if warmed.is_empty() {
        return None;
    }
    let new: Vec<&str> = cache_nodes.iter().map(String::as_str).filter(|n| !warmed.contains(n)).collect();
    match new.as_slice() {
        [] => None,
        [one] => Some(format!("cache node {one} joined the dataset")),
        many => Some(format!("cache nodes {} joined the dataset", many.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofluid_api::operation::{NodeProgress, OperationPhase, Progress};

    fn done(nodes: &[&str]) -> OperationStatus {
        OperationStatus {
            phase: OperationPhase::Complete,
            start_time: Some("2026-01-01T00:00:00Z".into()),
            completion_time: Some("2026-01-01T00:01:00Z".into()),
            progress: Some(Progress {
                nodes: nodes.iter().map(|n| NodeProgress { node: n.to_string(), ..Default::default() }).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn nodes(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_new_cache_node_starts_a_run_and_known_or_removed_ones_do_not() {
        let st = done(&["n1", "n2"]);
        assert_eq!(trigger(&st, None, &nodes(&["n1", "n2"])), None);
        assert_eq!(trigger(&st, None, &nodes(&["n1"])), None);
        assert_eq!(trigger(&st, None, &nodes(&["n1", "n3"])).as_deref(), Some("cache node n3 joined the dataset"));
        let running = OperationStatus { phase: OperationPhase::Executing, ..st.clone() };
        assert_eq!(trigger(&running, None, &nodes(&["n3"])), None, "only a finished operation");
        // A run refused before it worked on any node does not loop on nodes.
        let refused = OperationStatus { progress: None, ..st };
        assert_eq!(trigger(&refused, None, &nodes(&["n3"])), None);
    }

    #[test]
    fn the_preceding_operation_completing_after_the_last_start_starts_a_run() {
        let st = done(&[]);
        let before = PrecedingRun { label: "DataLoad \"warm\"", completed: Some("2025-12-31T23:59:00Z") };
        assert_eq!(trigger(&st, Some(before), &[]), None);
        let during = PrecedingRun { label: "DataLoad \"warm\"", completed: Some("2026-01-01T00:00:30Z") };
        let why = trigger(&st, Some(during), &[]).expect("runs again");
        assert!(why.starts_with("DataLoad \"warm\" completed again at 2026-01-01T00:00:30"), "{why}");
        // Refused before starting (its preceding failed): counted from when it was refused.
        let refused = OperationStatus { start_time: None, ..st };
        let later = PrecedingRun { label: "x", completed: Some("2026-01-01T00:02:00Z") };
        assert!(trigger(&refused, Some(later), &[]).is_some());
        let same = PrecedingRun { label: "x", completed: Some("2026-01-01T00:00:59Z") };
        assert_eq!(trigger(&refused, Some(same), &[]), None);
    }
}

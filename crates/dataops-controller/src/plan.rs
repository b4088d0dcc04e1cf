//! What one pass does for a live data operation that has not finished, pure: refuse bad input, wait
//! (for its schedule, the operation it runs after, the dataset, or the dataset's lock), take the lock,
//! or run — which Jobs to create, the progress they report, and whether the operation is over.

use crate::op::job_name;
use crate::part_report::{self, PartReport};
use ferrofluid_api::DatasetPhase;
use ferrofluid_api::operation::{FileCounts, NodeProgress, OperationPhase, OperationStatus, Progress};
use k8s_openapi::api::batch::v1::Job;
use std::collections::BTreeMap;

/// The state of the operation named in `spec.runAfter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preceding {
    /// No `runAfter`.
    None,
    Missing(String),
    Unfinished(String),
    Complete,
    Failed(String),
}

/// The dataset's lock of this kind (`status.operationRef.<Kind>`) as this operation sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Nobody holds it, or its holder is gone or finished (a stale entry, taken over).
    Free,
    Ours,
    /// Another operation of the kind holds it and is not finished.
    HeldBy(String),
}

/// One unit of work: a cache node (DataLoad), a key range (DataMigrate), the run (DataProcess), split
/// into `parts` Job completions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub parts: i32,
}

/// Everything a pass decides on.
pub struct View<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub status: &'a OperationStatus,
    /// The input checks' verdict (`op::check`).
    pub input: Result<(), Why>,
    pub dataset: &'a str,
    /// The dataset's phase; `None` when it does not exist.
    pub dataset_phase: Option<Option<DatasetPhase>>,
    pub preceding: Preceding,
    /// `runAfter` leads back to this operation.
    pub cycle: bool,
    pub lock: Lock,
    /// The units if it starts now (a running operation keeps those recorded in its status).
    pub units: Vec<Unit>,
    /// Why there are no units, when there are none: waited for (`NO_UNITS` rechecks).
    pub no_units: Why,
    /// This operation's Jobs, by name.
    pub jobs: BTreeMap<String, &'a Job>,
    /// What its Jobs' pods reported (DataLoad: files and bytes per part), by Job name.
    pub reports: BTreeMap<String, Vec<PartReport>>,
    /// Units worked on at the same time.
    pub max_in_flight: usize,
    pub unit_word: Option<&'static str>,
}

/// A refusal or a wait: the condition's reason and a message that names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    pub reason: &'static str,
    pub message: String,
}

pub fn why(reason: &'static str, message: impl Into<String>) -> Why {
    Why { reason, message: message.into() }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Bad input or an impossible operation: Failed before any Job ran.
    Refuse(Why),
    /// Pending until something else changes.
    Wait(Why),
    TakeLock,
    Run(Run),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Units whose Job is to be created now.
    pub create: Vec<String>,
    pub progress: Progress,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Running,
    Complete,
    /// A unit's Job failed: the unit and the Job's reason. Jobs still running are cancelled.
    Failed {
        node: String,
        message: String,
    },
}

/// Waiting for the operation named in `runAfter` (its phase changes wake this one).
pub const WAITING_FOR_PRECEDING: &str = "WaitingForPreceding";
/// A DataLoad's dataset has no cache node (no worker runs): the nodes' labels changing wakes it.
pub const NO_CACHE_NODES: &str = "NoCacheNodes";

/// The pass's step for a live operation that has not finished.
pub fn step(v: &View<'_>) -> Step {
    if let Err(w) = &v.input {
        return Step::Refuse(w.clone());
    }
    let ds = v.dataset;
    let Some(ds_phase) = v.dataset_phase else {
        return Step::Refuse(why(
            "DatasetNotFound",
            format!("spec.dataset.name: dataset {ds:?} does not exist in the {}'s namespace", v.kind),
        ));
    };
    if v.status.phase != OperationPhase::Executing {
        if v.cycle {
            return Step::Refuse(why(
                "RunAfterCycle",
                format!("spec.runAfter: the chain of runAfter leads back to this {}", v.kind),
            ));
        }
        match &v.preceding {
            Preceding::None | Preceding::Complete => {}
            Preceding::Missing(n) => {
                return Step::Wait(why(WAITING_FOR_PRECEDING, format!("spec.runAfter: {n} does not exist yet")));
            }
            Preceding::Unfinished(n) => {
                return Step::Wait(why(WAITING_FOR_PRECEDING, format!("waiting for {n} (spec.runAfter) to complete")));
            }
            Preceding::Failed(n) => {
                return Step::Refuse(why("PrecedingFailed", format!("spec.runAfter: {n} failed")));
            }
        }
        if ds_phase != Some(DatasetPhase::Bound) {
            return Step::Wait(why("DatasetNotBound", format!("dataset {ds:?} is not Bound yet")));
        }
    }
    let recorded: Vec<Unit> = v
        .status
        .progress
        .as_ref()
        .map(|p| p.nodes.iter().map(|n| Unit { name: n.node.clone(), parts: n.parts }).collect())
        .unwrap_or_default();
    // Nothing to work on yet (a DataLoad's dataset has no worker running): wait, without the lock.
    if recorded.is_empty() && v.units.is_empty() {
        return Step::Wait(v.no_units.clone());
    }
    match &v.lock {
        Lock::Ours => {}
        Lock::Free => return Step::TakeLock,
        Lock::HeldBy(other) => {
            return Step::Wait(why(
                "DatasetBusy",
                format!("dataset {ds:?} is busy with {} {other:?}; this one starts when it ends", v.kind),
            ));
        }
    }
    let units = if recorded.is_empty() { v.units.clone() } else { recorded };
    Step::Run(run(v, &units))
}

fn run(v: &View<'_>, units: &[Unit]) -> Run {
    let mut progress = Vec::with_capacity(units.len());
    let mut in_flight = 0usize;
    let mut waiting = Vec::new();
    for u in units {
        let job = job_name(v.name, &u.name);
        let p = match v.jobs.get(&job) {
            None => {
                waiting.push(u.name.clone());
                NodeProgress {
                    node: u.name.clone(),
                    job,
                    parts: u.parts,
                    phase: OperationPhase::Pending,
                    ..Default::default()
                }
            }
            Some(j) => {
                let reports = v.reports.get(&job).map(Vec::as_slice).unwrap_or_default();
                unit_progress(&u.name, job, u.parts, j, reports)
            }
        };
        if p.phase == OperationPhase::Executing {
            in_flight += 1;
        }
        progress.push(p);
    }
    let create: Vec<String> = waiting.into_iter().take(v.max_in_flight.saturating_sub(in_flight)).collect();
    for p in progress.iter_mut().filter(|p| create.contains(&p.node)) {
        p.phase = OperationPhase::Executing;
    }
    let outcome = match progress.iter().find(|p| p.phase == OperationPhase::Failed) {
        Some(f) => Outcome::Failed { node: f.node.clone(), message: f.message.clone().unwrap_or_default() },
        None if progress.iter().all(|p| p.phase == OperationPhase::Complete) => Outcome::Complete,
        None => Outcome::Running,
    };
    let create = if matches!(outcome, Outcome::Failed { .. }) { Vec::new() } else { create };
    Run { create, progress: summarize(progress, v.unit_word), outcome }
}

fn condition_true(job: &Job, type_: &str) -> Option<String> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == type_ && c.status == "True")?;
    Some([c.reason.as_deref(), c.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": "))
}

/// Whether a Job has ended (Complete or Failed).
pub fn job_finished(job: &Job) -> bool {
    condition_true(job, "Complete").is_some() || condition_true(job, "Failed").is_some()
}

fn unit_progress(unit: &str, job_name: String, parts: i32, job: &Job, reports: &[PartReport]) -> NodeProgress {
    let done = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0).min(parts);
    let (phase, message) = if condition_true(job, "Complete").is_some() {
        (OperationPhase::Complete, None)
    } else if let Some(m) = condition_true(job, "Failed") {
        (OperationPhase::Failed, Some(m))
    } else {
        (OperationPhase::Executing, None)
    };
    let parts_done = if phase == OperationPhase::Complete { parts } else { done };
    let counts = part_report::node_counts(reports, phase == OperationPhase::Complete);
    NodeProgress {
        node: unit.to_string(),
        job: job_name,
        parts_done,
        parts,
        counts: FileCounts {
            files_done: counts.map(|c| c.files_done),
            files: counts.map(|c| c.files),
            bytes_done: counts.map(|c| c.bytes_done),
            bytes: counts.map(|c| c.bytes),
        },
        phase,
        message,
    }
}

/// `512 B`, `3.0 KiB`, `64.0 MiB`, `1.5 GiB`.
pub fn size_text(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The sum of a field over the units; `None` unless `all` units have it (or, without `all`, none has).
fn total(nodes: &[NodeProgress], all: bool, field: impl Fn(&NodeProgress) -> Option<i64>) -> Option<i64> {
    let known: Vec<i64> = nodes.iter().filter_map(&field).collect();
    let enough = if all { !nodes.is_empty() && known.len() == nodes.len() } else { !known.is_empty() };
    enough.then(|| known.iter().sum())
}

/// Totals and the summary shown by `kubectl get`: `5/12 parts (41%) on 3 nodes`, with files and bytes
/// once the nodes have reported them: `5/12 parts, 40/96 files, 160.0 MiB/384.0 MiB (41%) on 3 nodes`
/// (the percentage by bytes when every node's list is known, by parts before).
pub fn summarize(nodes: Vec<NodeProgress>, unit_word: Option<&str>) -> Progress {
    let parts: i32 = nodes.iter().map(|n| n.parts).sum();
    let parts_done: i32 = nodes.iter().map(|n| n.parts_done).sum();
    let files_done = total(&nodes, false, |n| n.counts.files_done);
    let bytes_done = total(&nodes, false, |n| n.counts.bytes_done);
    let files = total(&nodes, true, |n| n.counts.files);
    let bytes = total(&nodes, true, |n| n.counts.bytes);
    let pct = match (bytes_done, bytes) {
        (Some(d), Some(b)) if b > 0 => d * 100 / b,
        _ if parts > 0 => i64::from(parts_done) * 100 / i64::from(parts),
        _ => 0,
    };
    let mut summary = format!("{parts_done}/{parts} parts");
    match (files_done, files, bytes_done, bytes) {
        (Some(fd), Some(f), Some(bd), Some(b)) => {
            summary.push_str(&format!(", {fd}/{f} files, {}/{}", size_text(bd), size_text(b)));
        }
        (Some(fd), _, Some(bd), _) => summary.push_str(&format!(", {fd} files, {} done", size_text(bd))),
        _ => {}
    }
    summary.push_str(&format!(" ({pct}%)"));
    if let Some(word) = unit_word {
        let plural = if nodes.len() == 1 { "" } else { "s" };
        summary.push_str(&format!(" on {} {word}{plural}", nodes.len()));
    }
    Progress { summary, parts_done, parts, counts: FileCounts { files_done, files, bytes_done, bytes }, nodes }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

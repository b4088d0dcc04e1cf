//! What one pass does for a live DataLoad, pure: refuse bad input, wait (for the operation it runs
//! after, the dataset, or the dataset's operation lock), take the lock, or run — which Jobs to create,
//! the progress they report, and whether the load is over.

use crate::warmup_job::job_name;
use ferrofluid_api::dataload::{NodeProgress, OperationPhase, Policy, Progress};
use ferrofluid_api::keys;
use ferrofluid_api::{DataLoad, Dataset, DatasetPhase};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
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

/// The dataset's DataLoad lock (`status.operationRef.DataLoad`) as this load sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Nobody holds it, or its holder is gone or finished (a stale entry, taken over).
    Free,
    Ours,
    /// Another DataLoad holds it and is not finished.
    HeldBy(String),
}

/// Everything a pass decides on.
pub struct View<'a> {
    pub load: &'a DataLoad,
    pub dataset: Option<&'a Dataset>,
    pub preceding: Preceding,
    /// `runAfter` leads back to this load.
    pub cycle: bool,
    pub lock: Lock,
    /// Nodes where the dataset's workers cache, sorted; used only when the load starts (then the nodes
    /// are recorded in its status and kept).
    pub cache_nodes: Vec<String>,
    /// This load's Jobs, by name.
    pub jobs: BTreeMap<String, &'a Job>,
    /// Nodes warmed at the same time.
    pub max_nodes_in_flight: usize,
    /// Parts each node's file list is split into (for new loads).
    pub parts: i32,
}

/// A refusal or a wait: the condition's reason and a message that names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Why {
    pub reason: &'static str,
    pub message: String,
}

fn why(reason: &'static str, message: impl Into<String>) -> Why {
    Why { reason, message: message.into() }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Bad input or an impossible load: Failed before any Job ran.
    Refuse(Why),
    /// Pending until something else changes.
    Wait(Why),
    TakeLock,
    Run(Run),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Nodes whose Job is to be created now.
    pub create: Vec<String>,
    pub progress: Progress,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Running,
    Complete,
    /// A node's Job failed: the node and the Job's reason. Jobs still running are cancelled.
    Failed {
        node: String,
        message: String,
    },
}

/// Checks what the schema checks too (for objects stored before it said so) and what it cannot say.
pub fn check(load: &DataLoad) -> Result<(), Why> {
    let ns = load.namespace().unwrap_or_default();
    match load.spec.policy.unwrap_or_default() {
        Policy::Once => {}
        p => {
            return Err(why(
                "PolicyNotSupported",
                format!("spec.policy: {p:?} is not run by ferrofluid yet; only Once (the default) is"),
            ));
        }
    }
    if let Some(other) = load.spec.dataset.namespace.as_deref().filter(|n| !n.is_empty() && *n != ns) {
        return Err(why(
            "CrossNamespace",
            format!(
                "spec.dataset.namespace: {other:?} is not the DataLoad's namespace {ns:?}; a DataLoad warms a dataset of its own namespace"
            ),
        ));
    }
    if let Some(after) = &load.spec.run_after {
        if after.kind != keys::KIND_DATALOAD {
            return Err(why(
                "RunAfterNotSupported",
                format!("spec.runAfter.kind: {:?}; a DataLoad can run after a DataLoad only", after.kind),
            ));
        }
        if let Some(other) = after.namespace.as_deref().filter(|n| !n.is_empty() && *n != ns) {
            return Err(why(
                "CrossNamespace",
                format!("spec.runAfter.namespace: {other:?} is not the DataLoad's namespace {ns:?}"),
            ));
        }
    }
    for (i, t) in load.spec.target.iter().enumerate() {
        let bad_part = t.path.split('/').any(|p| p == "." || p == "..");
        if !t.path.starts_with('/') || bad_part || t.path.chars().any(char::is_control) {
            return Err(why(
                "InvalidTarget",
                format!(
                    "spec.target[{i}].path {:?} must be an absolute path inside the dataset, without '.' or '..' parts or control characters",
                    t.path
                ),
            ));
        }
    }
    if let Some(t) = load.spec.options.get("threads")
        && !t.parse::<u8>().is_ok_and(|n| n >= 1)
    {
        return Err(why("InvalidOption", format!("spec.options.threads {t:?} must be a number from 1 to 255")));
    }
    if let Some(k) = load.spec.options.keys().find(|k| *k != "threads") {
        return Err(why("InvalidOption", format!("spec.options.{k}: unknown option; the only one is threads")));
    }
    Ok(())
}

/// The pass's step for a live load that has not finished.
pub fn step(v: &View<'_>) -> Step {
    if let Err(w) = check(v.load) {
        return Step::Refuse(w);
    }
    let ds_name = &v.load.spec.dataset.name;
    let Some(ds) = v.dataset else {
        return Step::Refuse(why(
            "DatasetNotFound",
            format!(
                "spec.dataset.name: dataset {ds_name:?} does not exist in namespace {:?}",
                v.load.namespace().unwrap_or_default()
            ),
        ));
    };
    let running = v.load.status.as_ref().is_some_and(|s| s.phase == OperationPhase::Executing);
    if !running {
        if v.cycle {
            return Step::Refuse(why(
                "RunAfterCycle",
                "spec.runAfter: the chain of runAfter leads back to this DataLoad",
            ));
        }
        match &v.preceding {
            Preceding::None | Preceding::Complete => {}
            Preceding::Missing(n) => {
                return Step::Wait(why(
                    "WaitingForPreceding",
                    format!("spec.runAfter: DataLoad {n:?} does not exist yet"),
                ));
            }
            Preceding::Unfinished(n) => {
                return Step::Wait(why(
                    "WaitingForPreceding",
                    format!("waiting for DataLoad {n:?} (spec.runAfter) to complete"),
                ));
            }
            Preceding::Failed(n) => {
                return Step::Refuse(why("PrecedingFailed", format!("spec.runAfter: DataLoad {n:?} failed")));
            }
        }
        let phase = ds.status.as_ref().and_then(|s| s.phase);
        if phase != Some(DatasetPhase::Bound) {
            return Step::Wait(why("DatasetNotBound", format!("dataset {ds_name:?} is not Bound yet")));
        }
    }
    match &v.lock {
        Lock::Ours => {}
        Lock::Free => return Step::TakeLock,
        Lock::HeldBy(other) => {
            return Step::Wait(why(
                "DatasetBusy",
                format!("dataset {ds_name:?} is being loaded by DataLoad {other:?}; this one starts when it ends"),
            ));
        }
    }
    let recorded: Vec<(String, i32)> = v
        .load
        .status
        .as_ref()
        .and_then(|s| s.progress.as_ref())
        .map(|p| p.nodes.iter().map(|n| (n.node.clone(), n.parts)).collect())
        .unwrap_or_default();
    let nodes: Vec<(String, i32)> =
        if recorded.is_empty() { v.cache_nodes.iter().map(|n| (n.clone(), v.parts)).collect() } else { recorded };
    if nodes.is_empty() {
        return Step::Refuse(why(
            "NoCacheNodes",
            format!("dataset {ds_name:?} has no cache node: its runtime runs no worker (spec.replicas)"),
        ));
    }
    Step::Run(run(v, &nodes))
}

fn run(v: &View<'_>, nodes: &[(String, i32)]) -> Run {
    let name = v.load.name_any();
    let mut progress = Vec::with_capacity(nodes.len());
    let mut in_flight = 0usize;
    let mut waiting = Vec::new();
    for (node, parts) in nodes {
        let job = job_name(&name, node);
        let p = match v.jobs.get(&job) {
            None => {
                waiting.push(node.clone());
                NodeProgress {
                    node: node.clone(),
                    job,
                    parts: *parts,
                    phase: OperationPhase::Pending,
                    ..Default::default()
                }
            }
            Some(j) => node_progress(node, job, *parts, j),
        };
        if p.phase == OperationPhase::Executing {
            in_flight += 1;
        }
        progress.push(p);
    }
    let create: Vec<String> = waiting.into_iter().take(v.max_nodes_in_flight.saturating_sub(in_flight)).collect();
    for p in progress.iter_mut().filter(|p| create.contains(&p.node)) {
        p.phase = OperationPhase::Executing;
    }
    let outcome = match progress.iter().find(|p| p.phase == OperationPhase::Failed) {
        Some(f) => Outcome::Failed { node: f.node.clone(), message: f.message.clone().unwrap_or_default() },
        None if progress.iter().all(|p| p.phase == OperationPhase::Complete) => Outcome::Complete,
        None => Outcome::Running,
    };
    let create = if matches!(outcome, Outcome::Failed { .. }) { Vec::new() } else { create };
    Run { create, progress: summarize(progress), outcome }
}

fn condition_true(job: &Job, type_: &str) -> Option<String> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == type_ && c.status == "True")?;
    Some([c.reason.as_deref(), c.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": "))
}

fn node_progress(node: &str, job_name: String, parts: i32, job: &Job) -> NodeProgress {
    let done = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0).min(parts);
    let (phase, message) = if condition_true(job, "Complete").is_some() {
        (OperationPhase::Complete, None)
    } else if let Some(m) = condition_true(job, "Failed") {
        (OperationPhase::Failed, Some(m))
    } else {
        (OperationPhase::Executing, None)
    };
    let parts_done = if phase == OperationPhase::Complete { parts } else { done };
    NodeProgress { node: node.to_string(), job: job_name, parts_done, parts, phase, message }
}

/// Totals and the summary shown by `kubectl get`.
pub fn summarize(nodes: Vec<NodeProgress>) -> Progress {
    let parts: i32 = nodes.iter().map(|n| n.parts).sum();
    let parts_done: i32 = nodes.iter().map(|n| n.parts_done).sum();
    let pct = if parts > 0 { i64::from(parts_done) * 100 / i64::from(parts) } else { 0 };
    let node_word = if nodes.len() == 1 { "node" } else { "nodes" };
    Progress {
        summary: format!("{parts_done}/{parts} parts ({pct}%) on {} {node_word}", nodes.len()),
        parts_done,
        parts,
        nodes,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

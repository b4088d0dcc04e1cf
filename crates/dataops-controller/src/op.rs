//! The three data operations behind one trait: what the shared pass (`plan`, `reconcile`) needs to know
//! of each — its dataset, schedule, predecessor and TTL, its own input checks, and the units of work
//! it is split into. Pure.

use crate::plan::{Why, why};
use crate::schedule;
use ferrofluid_api::dataload::{DataLoad, TargetPath};
use ferrofluid_api::datamigrate::DataMigrate;
use ferrofluid_api::dataprocess::DataProcess;
use ferrofluid_api::keys;
use ferrofluid_api::operation::{OperationRef, OperationStatus, Policy};
use k8s_openapi::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Kinds a `runAfter` may name.
pub const KINDS: [&str; 3] = [keys::KIND_DATALOAD, keys::KIND_DATAMIGRATE, keys::KIND_DATAPROCESS];

pub trait Op:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// `DataLoad`, …: the key of the dataset's lock and of `runAfter.kind`.
    const KIND: &'static str;
    /// The `controller` label of the reconcile metrics.
    const CONTROLLER: &'static str;
    const FINALIZER: &'static str;
    /// What its units of work are called in the progress summary (`node` for DataLoad), if anything.
    const UNIT_WORD: Option<&'static str>;

    fn op_status(&self) -> Option<&OperationStatus>;
    /// The dataset it works on (whose lock it takes), and the namespace the spec names for it, if any.
    fn dataset(&self) -> (&str, Option<&str>);
    fn run_after(&self) -> Option<&OperationRef>;
    fn ttl(&self) -> Option<i32>;
    fn policy(&self) -> Policy {
        Policy::Once
    }
    fn schedule(&self) -> Option<&str> {
        None
    }
    /// Input checks of this kind beyond the shared ones.
    fn check_own(&self) -> Result<(), Why>;
}

/// The checks every kind shares (what the schema says too, for objects stored before it did, and what
/// it cannot say), then the kind's own.
pub fn check<K: Op>(op: &K) -> Result<(), Why> {
    let ns = op.namespace().unwrap_or_default();
    match op.policy() {
        Policy::Once | Policy::OnEvent => {}
        Policy::Cron => {
            let Some(s) = op.schedule() else {
                return Err(why("InvalidSchedule", "spec.schedule is required with policy Cron"));
            };
            schedule::parse(s).map_err(|e| why("InvalidSchedule", format!("spec.schedule {s:?}: {e}")))?;
        }
    }
    if let (_, Some(other)) = op.dataset()
        && !other.is_empty()
        && other != ns
    {
        return Err(why(
            "CrossNamespace",
            format!(
                "spec.dataset.namespace: {other:?} is not the {}'s namespace {ns:?}; an operation works on a dataset of its own namespace",
                K::KIND
            ),
        ));
    }
    if let Some(after) = op.run_after() {
        if !KINDS.contains(&after.kind.as_str()) {
            return Err(why(
                "RunAfterNotSupported",
                format!("spec.runAfter.kind: {:?}; one of {}", after.kind, KINDS.join(", ")),
            ));
        }
        if let Some(other) = after.namespace.as_deref().filter(|n| !n.is_empty() && *n != ns) {
            return Err(why(
                "CrossNamespace",
                format!("spec.runAfter.namespace: {other:?} is not the {}'s namespace {ns:?}", K::KIND),
            ));
        }
    }
    op.check_own()
}

fn bad_path(path: &str) -> bool {
    !path.starts_with('/') || path.split('/').any(|p| p == "." || p == "..") || path.chars().any(char::is_control)
}

fn check_targets(targets: &[TargetPath]) -> Result<(), Why> {
    for (i, t) in targets.iter().enumerate() {
        if bad_path(&t.path) {
            return Err(why(
                "InvalidTarget",
                format!(
                    "spec.target[{i}].path {:?} must be an absolute path inside the dataset, without '.' or '..' parts or control characters",
                    t.path
                ),
            ));
        }
    }
    Ok(())
}

impl Op for DataLoad {
    const KIND: &'static str = keys::KIND_DATALOAD;
    const CONTROLLER: &'static str = "dataload";
    const FINALIZER: &'static str = keys::FINALIZER_DATALOAD;
    const UNIT_WORD: Option<&'static str> = Some("node");

    fn op_status(&self) -> Option<&OperationStatus> {
        self.status.as_ref()
    }
    fn dataset(&self) -> (&str, Option<&str>) {
        (&self.spec.dataset.name, self.spec.dataset.namespace.as_deref())
    }
    fn run_after(&self) -> Option<&OperationRef> {
        self.spec.run_after.as_ref()
    }
    fn ttl(&self) -> Option<i32> {
        self.spec.ttl_seconds_after_finished
    }
    fn policy(&self) -> Policy {
        self.spec.policy.unwrap_or_default()
    }
    fn schedule(&self) -> Option<&str> {
        self.spec.schedule.as_deref()
    }
    fn check_own(&self) -> Result<(), Why> {
        check_targets(&self.spec.target)?;
        if let Some(t) = self.spec.options.get("threads")
            && !t.parse::<u8>().is_ok_and(|n| n >= 1)
        {
            return Err(why("InvalidOption", format!("spec.options.threads {t:?} must be a number from 1 to 255")));
        }
        if let Some(k) = self.spec.options.keys().find(|k| *k != "threads") {
            return Err(why("InvalidOption", format!("spec.options.{k}: unknown option; the only one is threads")));
        }
        Ok(())
    }
}

impl Op for DataMigrate {
    const KIND: &'static str = keys::KIND_DATAMIGRATE;
    const CONTROLLER: &'static str = "datamigrate";
    const FINALIZER: &'static str = keys::FINALIZER_DATAMIGRATE;
    const UNIT_WORD: Option<&'static str> = None;

    fn op_status(&self) -> Option<&OperationStatus> {
        self.status.as_ref()
    }
    /// The dataset side (`to` when both are datasets: the one written).
    fn dataset(&self) -> (&str, Option<&str>) {
        let side = self.spec.to.dataset.as_ref().or(self.spec.from.dataset.as_ref());
        side.map_or(("", None), |d| (d.name.as_str(), d.namespace.as_deref()))
    }
    fn run_after(&self) -> Option<&OperationRef> {
        self.spec.run_after.as_ref()
    }
    fn ttl(&self) -> Option<i32> {
        self.spec.ttl_seconds_after_finished
    }
    fn policy(&self) -> Policy {
        self.spec.policy.unwrap_or_default()
    }
    fn schedule(&self) -> Option<&str> {
        self.spec.schedule.as_deref()
    }
    fn check_own(&self) -> Result<(), Why> {
        crate::migrate_job::check(self)
    }
}

impl Op for DataProcess {
    const KIND: &'static str = keys::KIND_DATAPROCESS;
    const CONTROLLER: &'static str = "dataprocess";
    const FINALIZER: &'static str = keys::FINALIZER_DATAPROCESS;
    const UNIT_WORD: Option<&'static str> = None;

    fn op_status(&self) -> Option<&OperationStatus> {
        self.status.as_ref()
    }
    fn dataset(&self) -> (&str, Option<&str>) {
        (&self.spec.dataset.name, self.spec.dataset.namespace.as_deref())
    }
    fn run_after(&self) -> Option<&OperationRef> {
        self.spec.run_after.as_ref()
    }
    fn ttl(&self) -> Option<i32> {
        self.spec.ttl_seconds_after_finished
    }
    fn policy(&self) -> Policy {
        self.spec.policy.unwrap_or_default()
    }
    fn schedule(&self) -> Option<&str> {
        self.spec.schedule.as_deref()
    }
    fn check_own(&self) -> Result<(), Why> {
        crate::process_job::check(self)
    }
}

/// Name of a unit's Job: `<operation, at most 54>-<8 hex of the unit>`, at most 63 characters (a Job's
/// name goes into its pods' labels).
pub fn job_name(op: &str, unit: &str) -> String {
    let mut cut: String = op.chars().take(54).collect();
    while cut.ends_with(['-', '.']) {
        cut.pop();
    }
    format!("{cut}-{:08x}", ferrofluid_api::naming::fnv1a64(unit.as_bytes()) & 0xffff_ffff)
}

//! One DataLoad's pass: read the caches, let `plan` decide, then write — the lock, the Jobs that are
//! missing, the status when it says something new, an event per transition. Deleting a DataLoad
//! cancels it: its Jobs are deleted (their pods with them) and the lock released.

use crate::lock;
use crate::metrics::OperationMetrics;
use crate::plan::{self, Lock, Outcome, Preceding, Step, View};
use crate::status;
use crate::warmup_job::{self, JobInputs};
use ferrofluid_api::dataload::{OperationPhase, OperationStatus};
use ferrofluid_api::keys::{self, DatasetKey};
use ferrofluid_api::{DataLoad, Dataset, JuiceFSRuntime};
use ferrofluid_service::error::{KubeError, Step as _};
use ferrofluid_service::events::Events;
use ferrofluid_service::ready::ReadyOnce;
use ferrofluid_service::reconcile::{Adding, Scaffold};
use ferrofluid_service::ssa;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use ferrofluid_service::reconcile::Error;

pub const MANAGER: &str = "ferrofluid-dataops-controller";
pub const CONTROLLER: &str = "dataload";

/// How often a load waiting for the operation it runs after looks again (DataLoads are not watched for
/// each other's status).
pub const PRECEDING_RECHECK: Duration = Duration::from_secs(5);

pub struct Context {
    pub client: kube::Client,
    pub events: Events,
    pub scaffold: Scaffold,
    pub metrics: OperationMetrics,
    pub loads: Store<DataLoad>,
    pub datasets: Store<Dataset>,
    pub runtimes: Store<JuiceFSRuntime>,
    pub jobs: Store<Job>,
    pub nodes: Store<Node>,
    pub ready: ReadyOnce,
    pub parts: i32,
    pub max_nodes_in_flight: usize,
}

impl Context {
    async fn caches_ready(&self) -> Result<(), Error> {
        self.ready
            .wait(|| async {
                self.datasets.wait_until_ready().await?;
                self.runtimes.wait_until_ready().await?;
                self.jobs.wait_until_ready().await?;
                self.nodes.wait_until_ready().await
            })
            .await
            .map_err(Error::Cache)
    }
}

pub async fn reconcile(load: Arc<DataLoad>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.caches_ready().await?;
    let c: &Context = &ctx;
    c.scaffold
        .finalized(
            &c.client,
            keys::FINALIZER_DATALOAD,
            Adding::Patch,
            load,
            move |l| async move { apply(&l, c).await },
            move |l| async move { cleanup(&l, c).await },
        )
        .await
}

pub fn error_policy(load: Arc<DataLoad>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.scaffold.error_policy(load.as_ref(), error)
}

fn dataset_of(load: &DataLoad, ctx: &Context) -> Option<Arc<Dataset>> {
    let ns = load.namespace().unwrap_or_default();
    ctx.datasets.get(&ObjectRef::new(&load.spec.dataset.name).within(&ns))
}

fn jobs_of<'a>(load: &DataLoad, all: &'a [Arc<Job>]) -> BTreeMap<String, &'a Job> {
    let uid = load.metadata.uid.clone().unwrap_or_default();
    all.iter()
        .filter(|j| j.labels().get(keys::LABEL_OPERATION_UID) == Some(&uid))
        .map(|j| (j.name_any(), j.as_ref()))
        .collect()
}

fn phase_of(load: &DataLoad) -> OperationPhase {
    load.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// The state of the DataLoad `name` (this namespace) runs after, and whether the chain loops.
fn preceding(load: &DataLoad, ctx: &Context) -> (Preceding, bool) {
    let ns = load.namespace().unwrap_or_default();
    let Some(after) = &load.spec.run_after else { return (Preceding::None, false) };
    let get = |n: &str| ctx.loads.get(&ObjectRef::new(n).within(&ns));
    let state = match get(&after.name) {
        None => Preceding::Missing(after.name.clone()),
        Some(p) => match phase_of(&p) {
            OperationPhase::Complete => Preceding::Complete,
            OperationPhase::Failed => Preceding::Failed(after.name.clone()),
            _ => Preceding::Unfinished(after.name.clone()),
        },
    };
    let me = load.name_any();
    let mut seen = BTreeSet::new();
    let mut next = Some(after.name.clone());
    let mut cycle = false;
    while let Some(n) = next {
        if n == me {
            cycle = true;
            break;
        }
        if !seen.insert(n.clone()) {
            break;
        }
        next = get(&n).and_then(|l| l.spec.run_after.as_ref().map(|a| a.name.clone()));
    }
    (state, cycle)
}

fn cache_nodes(key: &DatasetKey, nodes: &Store<Node>) -> Vec<String> {
    let label = key.worker_node_label();
    let mut out: Vec<String> = nodes
        .state()
        .iter()
        .filter(|n| n.labels().get(&label).map(String::as_str) == Some(keys::LABEL_TRUE))
        .map(|n| n.name_any())
        .collect();
    out.sort();
    out
}

async fn apply(load: &DataLoad, ctx: &Context) -> Result<Action, Error> {
    let ns = load.namespace().unwrap_or_default();
    let name = load.name_any();
    let current = load.status.clone().unwrap_or_default();
    if current.phase.finished() {
        return finished(load, ctx, &current).await;
    }
    let dataset = dataset_of(load, ctx);
    let key = DatasetKey::new(&ns, &load.spec.dataset.name);
    let (preceding, cycle) = preceding(load, ctx);
    let lock_state = dataset.as_deref().map_or(Lock::Free, |ds| {
        lock::state(ds, &name, |holder| {
            ctx.loads.get(&ObjectRef::new(holder).within(&ns)).is_none_or(|h| phase_of(&h).finished())
        })
    });
    let all_jobs = ctx.jobs.state();
    let view = View {
        load,
        dataset: dataset.as_deref(),
        preceding,
        cycle,
        lock: lock_state,
        cache_nodes: cache_nodes(&key, &ctx.nodes),
        jobs: jobs_of(load, &all_jobs),
        max_nodes_in_flight: ctx.max_nodes_in_flight,
        parts: ctx.parts,
    };
    let now = Timestamp::now();
    match plan::step(&view) {
        Step::Refuse(why) => {
            let next = status::refused(&current, &why, now);
            write_status(load, ctx, &current, &next).await?;
            ctx.events.warning(&load.object_ref(&()), why.reason, why.message).await;
            Ok(Action::await_change())
        }
        Step::Wait(why) => {
            let next = status::waiting(&current, &why, now);
            if status::changed(&current, &next) {
                write_status(load, ctx, &current, &next).await?;
                ctx.events.normal(&load.object_ref(&()), why.reason, why.message).await;
            }
            // The dataset and its lock are watched; the preceding load's phase is looked at again.
            Ok(if why.reason == "WaitingForPreceding" {
                Action::requeue(PRECEDING_RECHECK)
            } else {
                Action::await_change()
            })
        }
        Step::TakeLock => {
            let ds = dataset.ok_or_else(|| Error::Internal("lock without dataset".into()))?;
            set_lock(ctx, &ds, Some(&name)).await?;
            // The Dataset's watch event (its lock changed) starts the next pass, which runs.
            Ok(Action::await_change())
        }
        Step::Run(run) => {
            if !run.create.is_empty() {
                create_jobs(load, ctx, &key, &run.create).await?;
            }
            let next = status::running(&current, &run, now);
            if status::changed(&current, &next) {
                write_status(load, ctx, &current, &next).await?;
            }
            match &run.outcome {
                Outcome::Running => Ok(Action::await_change()),
                Outcome::Complete | Outcome::Failed { .. } => {
                    if let Outcome::Failed { node, message } = &run.outcome {
                        cancel_jobs(load, ctx, &all_jobs, true).await?;
                        let note = format!("warm-up failed on node {node}: {message}");
                        ctx.events.warning(&load.object_ref(&()), "Failed", note).await;
                    } else {
                        let note = format!("{} on {} node(s)", run.progress.summary, run.progress.nodes.len());
                        ctx.events.normal(&load.object_ref(&()), "Complete", note).await;
                    }
                    release_lock(load, ctx).await?;
                    Ok(Action::await_change())
                }
            }
        }
    }
}

/// A finished load: the lock released (again, if a pass was cut short), then the TTL.
async fn finished(load: &DataLoad, ctx: &Context, current: &OperationStatus) -> Result<Action, Error> {
    release_lock(load, ctx).await?;
    let Some(ttl) = load.spec.ttl_seconds_after_finished else { return Ok(Action::await_change()) };
    let done = current.completion_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let left = done.map_or(0, |d| d.as_second() + i64::from(ttl) - Timestamp::now().as_second());
    if left > 0 {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(left).unwrap_or(1))));
    }
    let api: Api<DataLoad> = Api::namespaced(ctx.client.clone(), &load.namespace().unwrap_or_default());
    let params = DeleteParams { preconditions: uid_precondition(load), ..DeleteParams::background() };
    match api.delete(&load.name_any(), &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => return Err(Error::Kube(KubeError { step: "delete expired dataload", source: e })),
    }
    Ok(Action::await_change())
}

fn uid_precondition(load: &DataLoad) -> Option<kube::api::Preconditions> {
    Some(kube::api::Preconditions { uid: load.metadata.uid.clone(), resource_version: None })
}

async fn cleanup(load: &DataLoad, ctx: &Context) -> Result<Action, Error> {
    let all_jobs = ctx.jobs.state();
    cancel_jobs(load, ctx, &all_jobs, false).await?;
    release_lock(load, ctx).await?;
    Ok(Action::await_change())
}

async fn write_status(
    load: &DataLoad,
    ctx: &Context,
    old: &OperationStatus,
    new: &OperationStatus,
) -> Result<(), Error> {
    let api: Api<DataLoad> = Api::namespaced(ctx.client.clone(), &load.namespace().unwrap_or_default());
    ssa::status(&api, MANAGER, &load.name_any(), new).await.step("write dataload status")?;
    if !old.phase.finished() && new.phase.finished() {
        let phase = format!("{:?}", new.phase);
        let secs = match (new.start_time.as_deref(), new.completion_time.as_deref()) {
            (Some(s), Some(e)) => match (s.parse::<Timestamp>(), e.parse::<Timestamp>()) {
                (Ok(s), Ok(e)) => (e.as_second() - s.as_second()) as f64,
                _ => 0.0,
            },
            _ => 0.0,
        };
        ctx.metrics.finished(keys::KIND_DATALOAD, &phase, secs);
    }
    Ok(())
}

async fn set_lock(ctx: &Context, ds: &Dataset, holder: Option<&str>) -> Result<(), Error> {
    let api: Api<Dataset> = Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    api.patch_status(
        &ds.name_any(),
        &PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() },
        &Patch::Merge(lock::patch(ds, holder)),
    )
    .await
    .step(if holder.is_some() { "take dataset operation lock" } else { "release dataset operation lock" })?;
    Ok(())
}

/// Clears the dataset's lock if this load holds it. A conflict (the Dataset changed since the cache
/// saw it) fails the pass, which is retried on a fresh view.
async fn release_lock(load: &DataLoad, ctx: &Context) -> Result<(), Error> {
    match dataset_of(load, ctx) {
        Some(ds) if lock::held_by(&ds, load) => set_lock(ctx, &ds, None).await,
        _ => Ok(()),
    }
}

async fn create_jobs(load: &DataLoad, ctx: &Context, key: &DatasetKey, nodes: &[String]) -> Result<(), Error> {
    let ns = load.namespace().unwrap_or_default();
    let runtime = ctx
        .runtimes
        .get(&ObjectRef::new(&key.name).within(&ns))
        .ok_or_else(|| Error::waiting("input", format!("runtime {} not found", key.name), Duration::from_secs(5)))?;
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pv = pvs.get(&key.pv_name()).await.step("read the dataset's persistent volume")?;
    let fluid_path = pv
        .spec
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .and_then(|c| c.volume_attributes.as_ref())
        .and_then(|a| a.get(keys::ATTR_FLUID_PATH))
        .cloned()
        .ok_or_else(|| {
            Error::Internal(format!("persistent volume {} has no {}", key.pv_name(), keys::ATTR_FLUID_PATH))
        })?;
    let inputs = JobInputs { load, runtime: &runtime, key, fluid_path: &fluid_path, parts: ctx.parts };
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    for node in nodes {
        let job = warmup_job::build(&inputs, node);
        let job_name = job.name_any();
        // Created, never applied over: a pass repeated after a restart (its cache not yet showing the
        // Job) finds its own Job under that name and leaves it; a Job of the same name that is not this
        // load's is a conflict, reported, never taken over.
        match api.create(&PostParams { field_manager: Some(MANAGER.into()), ..Default::default() }, &job).await {
            Ok(_) => {
                ctx.metrics.job_created(keys::KIND_DATALOAD);
                tracing::info!(dataload = %load.name_any(), namespace = %ns, node, job = %job_name, "warm-up job created");
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api.get_opt(&job_name).await.step("read existing warm-up job")?;
                let ours = existing
                    .as_ref()
                    .is_some_and(|j| j.labels().get(keys::LABEL_OPERATION_UID) == load.metadata.uid.as_ref());
                if !ours {
                    let msg =
                        format!("job {job_name} exists and is not this DataLoad's: not touched; delete or rename it");
                    ctx.events.warning(&load.object_ref(&()), "JobConflict", msg.clone()).await;
                    return Err(Error::waiting("conflict", msg, Duration::from_secs(30)));
                }
            }
            Err(e) => return Err(Error::Kube(KubeError { step: "create warm-up job", source: e })),
        }
    }
    Ok(())
}

/// Deletes this load's Jobs (their pods with them) — only the unfinished ones when `only_unfinished`.
async fn cancel_jobs(load: &DataLoad, ctx: &Context, all: &[Arc<Job>], only_unfinished: bool) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &load.namespace().unwrap_or_default());
    for (name, job) in jobs_of(load, all) {
        let done =
            job.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                cs.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            });
        if job.metadata.deletion_timestamp.is_some() || (only_unfinished && done) {
            continue;
        }
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions { uid: job.metadata.uid.clone(), resource_version: None }),
            ..DeleteParams::background()
        };
        match api.delete(&name, &params).await {
            Ok(_) => tracing::info!(dataload = %load.name_any(), job = %name, "warm-up job deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(Error::Kube(KubeError { step: "delete warm-up job", source: e })),
        }
    }
    Ok(())
}

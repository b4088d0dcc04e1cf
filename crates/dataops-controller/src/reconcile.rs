//! One data operation's pass, for every kind: read the caches, let `plan` decide, then write — the
//! lock, the Jobs that are missing, the status when it says something new, an event per transition.
//! Deleting an operation cancels it: its Jobs are deleted (their pods with them) and the lock released.
//! A `Cron` operation starts a new run at each time its schedule matches.

use crate::lock;
use crate::metrics::OperationMetrics;
use crate::on_event;
use crate::op::{self, Op};
use crate::part_report::{self, PartReport};
use crate::plan::{self, Lock, Outcome, Preceding, Step, View};
use crate::schedule;
use crate::status;
use crate::triggers;
use crate::work::Work;
use ferrofluid_api::juicefs_runtime::DefaultImage;
use ferrofluid_api::keys;
use ferrofluid_api::operation::{OperationPhase, OperationStatus, Policy};
use ferrofluid_api::{DataLoad, DataMigrate, DataProcess, Dataset, JuiceFSRuntime};
use ferrofluid_service::delete::{self, Guarded};
use ferrofluid_service::error::{KubeError, Step as _};
use ferrofluid_service::events::Events;
use ferrofluid_service::ready::ReadyOnce;
use ferrofluid_service::reconcile::{Adding, Scaffold};
use ferrofluid_service::ssa;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use ferrofluid_service::reconcile::Error;

pub const MANAGER: &str = "ferrofluid-dataops-controller";

/// What the passes of every kind share: the client, the caches, the settings.
pub struct Shared {
    pub client: kube::Client,
    pub events: Events,
    pub metrics: OperationMetrics,
    pub loads: Store<DataLoad>,
    pub migrates: Store<DataMigrate>,
    pub processes: Store<DataProcess>,
    pub datasets: Store<Dataset>,
    pub runtimes: Store<JuiceFSRuntime>,
    /// Each kind's Jobs (watched by their role label).
    pub jobs: JobStores,
    /// The pods of the DataLoads' and the DataMigrates' Jobs (their reports).
    pub pods: PodStores,
    pub nodes: Store<Node>,
    pub ready: ReadyOnce,
    pub parts: i32,
    pub max_nodes_in_flight: usize,
    /// The FUSE image of runtimes that name none (`--juicefs-image`).
    pub juicefs_image: DefaultImage,
}

pub struct JobStores {
    pub load: Store<Job>,
    pub migrate: Store<Job>,
    pub process: Store<Job>,
}

/// The pods of the kinds whose pods report (by their role label).
pub struct PodStores {
    pub load: Store<Pod>,
    pub migrate: Store<Pod>,
}

impl PodStores {
    pub fn of(&self, kind: &str) -> Option<&Store<Pod>> {
        match kind {
            keys::KIND_DATALOAD => Some(&self.load),
            keys::KIND_DATAMIGRATE => Some(&self.migrate),
            _ => None,
        }
    }
}

impl JobStores {
    pub fn of(&self, kind: &str) -> &Store<Job> {
        match kind {
            keys::KIND_DATAMIGRATE => &self.migrate,
            keys::KIND_DATAPROCESS => &self.process,
            _ => &self.load,
        }
    }
}

impl Shared {
    /// Waits for the caches of the other kinds of objects. Not for the operations' own caches: each
    /// kind's controller starts no pass before its own cache is listed (kube's runner waits on it, and a
    /// second waiter on the same store could take its one wake-up, see `ReadyOnce`); a `runAfter` naming
    /// another kind not listed yet reads as missing, which is waited for.
    async fn caches_ready(&self) -> Result<(), Error> {
        self.ready
            .wait(|| async {
                self.datasets.wait_until_ready().await?;
                self.runtimes.wait_until_ready().await?;
                self.jobs.load.wait_until_ready().await?;
                self.jobs.migrate.wait_until_ready().await?;
                self.jobs.process.wait_until_ready().await?;
                self.pods.load.wait_until_ready().await?;
                self.pods.migrate.wait_until_ready().await?;
                self.nodes.wait_until_ready().await
            })
            .await
            .map_err(Error::Cache)
    }

    /// What a pass reads of another operation `kind`/`name` in `ns`; `None` when it does not exist.
    fn other(&self, kind: &str, ns: &str, name: &str) -> Option<Other> {
        fn get<K: Op>(s: &Store<K>, ns: &str, name: &str) -> Option<Other> {
            let o = s.get(&ObjectRef::new(name).within(ns))?;
            let st = o.op_status();
            Some(Other {
                phase: st.map(|s| s.phase).unwrap_or_default(),
                completion_time: st.and_then(|s| s.completion_time.clone()),
                run_after: o.run_after().map(|a| (a.kind.clone(), a.name.clone())),
            })
        }
        match kind {
            keys::KIND_DATALOAD => get(&self.loads, ns, name),
            keys::KIND_DATAMIGRATE => get(&self.migrates, ns, name),
            keys::KIND_DATAPROCESS => get(&self.processes, ns, name),
            _ => None,
        }
    }

    /// The phase of operation `kind`/`name` in `ns`; `None` when it does not exist.
    pub fn phase_of(&self, kind: &str, ns: &str, name: &str) -> Option<OperationPhase> {
        self.other(kind, ns, name).map(|o| o.phase)
    }

    /// When operation `kind`/`name` in `ns` completed, if it is Complete.
    pub fn completed_at(&self, kind: &str, ns: &str, name: &str) -> Option<String> {
        self.other(kind, ns, name).filter(|o| o.phase == OperationPhase::Complete)?.completion_time
    }

    fn run_after_of(&self, kind: &str, ns: &str, name: &str) -> Option<(String, String)> {
        self.other(kind, ns, name)?.run_after
    }

    pub fn dataset(&self, ns: &str, name: &str) -> Option<Arc<Dataset>> {
        self.datasets.get(&ObjectRef::new(name).within(ns))
    }

    pub fn runtime(&self, ns: &str, name: &str) -> Option<Arc<JuiceFSRuntime>> {
        self.runtimes.get(&ObjectRef::new(name).within(ns))
    }
}

/// Another operation as a pass sees it: its phase, completion time and `runAfter` (kind, name).
struct Other {
    phase: OperationPhase,
    completion_time: Option<String>,
    run_after: Option<(String, String)>,
}

/// One kind's controller: the shared parts and its own metrics and backoff.
pub struct Context {
    pub shared: Arc<Shared>,
    pub scaffold: Scaffold,
}

pub async fn reconcile<K: Work>(op: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.shared.caches_ready().await?;
    let c: &Context = &ctx;
    c.scaffold
        .finalized(
            &c.shared.client,
            K::FINALIZER,
            Adding::Patch,
            op,
            move |o| async move { apply(o.as_ref(), &c.shared).await },
            move |o| async move { cleanup(o.as_ref(), &c.shared).await },
        )
        .await
}

pub fn error_policy<K: Work>(op: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.scaffold.error_policy(op.as_ref(), error)
}

fn jobs_of<'a, K: Op>(op: &K, all: &'a [Arc<Job>]) -> BTreeMap<String, &'a Job> {
    let uid = op.meta().uid.clone().unwrap_or_default();
    all.iter()
        .filter(|j| j.labels().get(keys::LABEL_OPERATION_UID) == Some(&uid))
        .map(|j| (j.name_any(), j.as_ref()))
        .collect()
}

/// What the pods of these Jobs reported, by Job name (a DataLoad's parts, a DataMigrate's ranges; a
/// DataProcess's pods are not watched and report nothing).
fn reports_of(ns: &str, jobs: &BTreeMap<String, &Job>, pods: Option<&Store<Pod>>) -> BTreeMap<String, Vec<PartReport>> {
    let mut out: BTreeMap<String, Vec<PartReport>> = BTreeMap::new();
    for p in pods.map(Store::state).unwrap_or_default() {
        let Some(job) = triggers::job_of(&p) else { continue };
        if job.namespace.as_deref() != Some(ns) || !jobs.contains_key(&job.name) {
            continue;
        }
        let reports = triggers::termination_messages(&p).into_iter().filter_map(|m| part_report::parse(&m));
        out.entry(job.name).or_default().extend(reports);
    }
    out
}

/// The state of the operation named in `runAfter`, and whether the chain loops back.
fn preceding<K: Op>(op: &K, sh: &Shared) -> (Preceding, bool) {
    let ns = op.namespace().unwrap_or_default();
    let Some(after) = op.run_after() else { return (Preceding::None, false) };
    let label = format!("{} {:?}", after.kind, after.name);
    let state = match sh.phase_of(&after.kind, &ns, &after.name) {
        None => Preceding::Missing(label),
        Some(OperationPhase::Complete) => Preceding::Complete,
        Some(OperationPhase::Failed) => Preceding::Failed(label),
        Some(_) => Preceding::Unfinished(label),
    };
    let me = (K::KIND.to_string(), op.name_any());
    let mut seen = BTreeSet::new();
    let mut next = Some((after.kind.clone(), after.name.clone()));
    let mut cycle = false;
    while let Some(n) = next {
        if n == me {
            cycle = true;
            break;
        }
        if !seen.insert(n.clone()) {
            break;
        }
        next = sh.run_after_of(&n.0, &ns, &n.1);
    }
    (state, cycle)
}

async fn apply<K: Work>(op: &K, sh: &Shared) -> Result<Action, Error> {
    let ns = op.namespace().unwrap_or_default();
    let name = op.name_any();
    let current = op.op_status().cloned().unwrap_or_default();
    let now = Timestamp::now();
    if current.phase.finished() {
        return finished(op, sh, &current, now).await;
    }
    // A Cron operation's first run waits for its first scheduled time.
    if op.policy() == Policy::Cron
        && current.last_schedule_time.is_none()
        && let Ok(()) = op::check(op)
    {
        let created = op.meta().creation_timestamp.as_ref().map_or(now, |t| t.0);
        return schedule_next(op, sh, &current, created, now).await;
    }
    let (ds_name, _) = op.dataset();
    let dataset = sh.dataset(&ns, ds_name);
    let (preceding, cycle) = preceding(op, sh);
    let lock_state = dataset.as_deref().map_or(Lock::Free, |ds| {
        lock::state(ds, K::KIND, &name, |holder| sh.phase_of(K::KIND, &ns, holder).is_none_or(|p| p.finished()))
    });
    let all_jobs = sh.jobs.of(K::KIND).state();
    let (units, no_units) = op.units(sh);
    let jobs = jobs_of(op, &all_jobs);
    let reports = reports_of(&ns, &jobs, sh.pods.of(K::KIND));
    let view = View {
        kind: K::KIND,
        name: &name,
        status: &current,
        input: op::check(op),
        dataset: ds_name,
        dataset_phase: dataset.as_ref().map(|d| d.status.as_ref().and_then(|s| s.phase)),
        preceding,
        cycle,
        lock: lock_state,
        units,
        no_units,
        jobs,
        reports,
        max_in_flight: op.max_in_flight(sh),
        unit_word: K::UNIT_WORD,
    };
    let oref = op.object_ref(&());
    match plan::step(&view) {
        Step::Refuse(why) => {
            // Refused while running (its dataset deleted, its spec made invalid): its Jobs stop too.
            cancel_jobs(op, sh, &all_jobs, true).await?;
            let next = status::refused(&current, &why, now);
            write_status(op, sh, &current, &next).await?;
            sh.events.warning(&oref, why.reason, why.message).await;
            Ok(Action::await_change())
        }
        Step::Wait(why) => {
            let next = status::waiting(&current, &why, now);
            if status::changed(&current, &next) {
                write_status(op, sh, &current, &next).await?;
                sh.events.normal(&oref, why.reason, why.message).await;
            }
            // Woken by what it waits for: the dataset and its lock, the preceding operation, the cache nodes.
            Ok(Action::await_change())
        }
        Step::TakeLock => {
            let ds = dataset.ok_or_else(|| Error::Internal("lock without dataset".into()))?;
            set_lock(sh, &ds, K::KIND, Some(&name)).await?;
            // The Dataset's watch event (its lock changed) starts the next pass, which runs.
            Ok(Action::await_change())
        }
        Step::Run(run) => {
            if !run.create.is_empty() {
                for job in op.jobs_for(sh, &run.create).await? {
                    create_job(op, sh, &job).await?;
                }
            }
            let next = status::running(&current, &run, now);
            if status::changed(&current, &next) {
                write_status(op, sh, &current, &next).await?;
            }
            match &run.outcome {
                Outcome::Running => Ok(Action::await_change()),
                Outcome::Complete | Outcome::Failed { .. } => {
                    if let Outcome::Failed { node, message } = &run.outcome {
                        cancel_jobs(op, sh, &all_jobs, true).await?;
                        sh.events.warning(&oref, "Failed", format!("{node} failed: {message}")).await;
                    } else {
                        sh.events.normal(&oref, "Complete", run.progress.summary.clone()).await;
                    }
                    release_lock(op, sh).await?;
                    // A Cron operation is woken for its next run by its own status change.
                    Ok(Action::await_change())
                }
            }
        }
    }
}

/// Waits for the next time the schedule matches after `after`, then marks a new run (Pending, its
/// scheduled time recorded) once the last run's Jobs are gone.
async fn schedule_next<K: Work>(
    op: &K,
    sh: &Shared,
    current: &OperationStatus,
    after: Timestamp,
    now: Timestamp,
) -> Result<Action, Error> {
    let pattern = op.schedule().unwrap_or_default();
    let next = schedule::next_after(pattern, after).map_err(Error::Internal)?;
    if next > now {
        let wait = u64::try_from(next.as_second() - now.as_second()).unwrap_or(1).max(1);
        return Ok(Action::requeue(Duration::from_secs(wait)));
    }
    let next_status = status::rescheduled(current, next, None);
    start_over(op, sh, current, &next_status, "Scheduled", format!("run scheduled for {next}")).await
}

/// Starts a new run: once the last run's Jobs are gone (the new run's have the same names), the status
/// `next` (Pending) is written and an event tells why.
async fn start_over<K: Work>(
    op: &K,
    sh: &Shared,
    current: &OperationStatus,
    next: &OperationStatus,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    let all_jobs = sh.jobs.of(K::KIND).state();
    if !jobs_of(op, &all_jobs).is_empty() {
        cancel_jobs(op, sh, &all_jobs, false).await?;
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    write_status(op, sh, current, next).await?;
    sh.events.normal(&op.object_ref(&()), reason, message).await;
    Ok(Action::await_change())
}

/// A finished operation: the lock released (again, if a pass was cut short), then its next scheduled
/// run (Cron) or its TTL.
async fn finished<K: Work>(op: &K, sh: &Shared, current: &OperationStatus, now: Timestamp) -> Result<Action, Error> {
    release_lock(op, sh).await?;
    // A Cron run that ended (not an operation refused before its first run) is followed by the next one.
    if op.policy() == Policy::Cron && current.last_schedule_time.is_some() {
        let last = current.last_schedule_time.as_deref().and_then(|t| t.parse().ok()).unwrap_or(now);
        return schedule_next(op, sh, current, last, now).await;
    }
    if op.policy() == Policy::OnEvent && op::check(op).is_ok() {
        let ns = op.namespace().unwrap_or_default();
        let label_and_time =
            op.run_after().map(|a| (format!("{} {:?}", a.kind, a.name), sh.completed_at(&a.kind, &ns, &a.name)));
        let preceding = label_and_time
            .as_ref()
            .map(|(label, completed)| on_event::PrecedingRun { label, completed: completed.as_deref() });
        let nodes: Vec<String> =
            if K::KIND == keys::KIND_DATALOAD { op.units(sh).0.into_iter().map(|u| u.name).collect() } else { vec![] };
        if let Some(why) = on_event::trigger(current, preceding, &nodes) {
            let next = status::rescheduled(current, now, Some(&why));
            return start_over(op, sh, current, &next, "Triggered", why).await;
        }
        // Woken again by its events: the preceding operation's changes, the cache nodes' labels.
        return Ok(Action::await_change());
    }
    let Some(ttl) = op.ttl() else { return Ok(Action::await_change()) };
    let done = current.completion_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let left = done.map_or(0, |d| d.as_second() + i64::from(ttl) - now.as_second());
    if left > 0 {
        return Ok(Action::requeue(Duration::from_secs(u64::try_from(left).unwrap_or(1))));
    }
    let api: Api<K> = Api::namespaced(sh.client.clone(), &op.namespace().unwrap_or_default());
    delete::guarded(&api, &op.name_any(), op.meta().uid.clone()).await.step("delete expired operation")?;
    Ok(Action::await_change())
}

async fn cleanup<K: Work>(op: &K, sh: &Shared) -> Result<Action, Error> {
    let all_jobs = sh.jobs.of(K::KIND).state();
    cancel_jobs(op, sh, &all_jobs, false).await?;
    release_lock(op, sh).await?;
    Ok(Action::await_change())
}

async fn write_status<K: Op>(op: &K, sh: &Shared, old: &OperationStatus, new: &OperationStatus) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(sh.client.clone(), &op.namespace().unwrap_or_default());
    ssa::status(&api, MANAGER, &op.name_any(), new).await.step("write operation status")?;
    if !old.phase.finished() && new.phase.finished() {
        let phase = format!("{:?}", new.phase);
        let secs = match (new.start_time.as_deref(), new.completion_time.as_deref()) {
            (Some(s), Some(e)) => match (s.parse::<Timestamp>(), e.parse::<Timestamp>()) {
                (Ok(s), Ok(e)) => (e.as_second() - s.as_second()) as f64,
                _ => 0.0,
            },
            _ => 0.0,
        };
        sh.metrics.finished(K::KIND, &phase, secs);
    }
    Ok(())
}

async fn set_lock(sh: &Shared, ds: &Dataset, kind: &str, holder: Option<&str>) -> Result<(), Error> {
    let api: Api<Dataset> = Api::namespaced(sh.client.clone(), &ds.namespace().unwrap_or_default());
    let params = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    api.patch_status(&ds.name_any(), &params, &Patch::Merge(lock::patch(ds, kind, holder)))
        .await
        .step(if holder.is_some() { "take dataset operation lock" } else { "release dataset operation lock" })?;
    Ok(())
}

/// Clears the dataset's lock of this kind if this operation holds it. A conflict (the Dataset changed
/// since the cache saw it) fails the pass, which is retried on a fresh view.
async fn release_lock<K: Op>(op: &K, sh: &Shared) -> Result<(), Error> {
    let ns = op.namespace().unwrap_or_default();
    match sh.dataset(&ns, op.dataset().0) {
        Some(ds) if lock::holder(&ds, K::KIND).as_deref() == Some(op.name_any().as_str()) => {
            set_lock(sh, &ds, K::KIND, None).await
        }
        _ => Ok(()),
    }
}

/// Creates one of the operation's Jobs — never applied over: a pass repeated after a restart (its cache
/// not yet showing the Job) finds its own Job under that name and leaves it; a Job of the same name that
/// is not this operation's is a conflict, reported, never taken over.
async fn create_job<K: Op>(op: &K, sh: &Shared, job: &Job) -> Result<(), Error> {
    let ns = op.namespace().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(sh.client.clone(), &ns);
    let job_name = job.name_any();
    match api.create(&PostParams { field_manager: Some(MANAGER.into()), ..Default::default() }, job).await {
        Ok(_) => {
            sh.metrics.job_created(K::KIND);
            tracing::info!(kind = K::KIND, name = %op.name_any(), namespace = %ns, job = %job_name, "job created");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get_opt(&job_name).await.step("read existing job")?;
            let ours =
                existing.as_ref().is_some_and(|j| j.labels().get(keys::LABEL_OPERATION_UID) == op.meta().uid.as_ref());
            if ours {
                return Ok(());
            }
            let msg = format!("job {job_name} exists and is not this {}'s: not touched; delete or rename it", K::KIND);
            sh.events.warning(&op.object_ref(&()), "JobConflict", msg.clone()).await;
            Err(Error::waiting("conflict", msg, Duration::from_secs(30)))
        }
        Err(e) => Err(Error::Kube(KubeError { step: "create job", source: e })),
    }
}

/// Deletes this operation's Jobs (their pods with them) — only the unfinished ones when `only_unfinished`.
async fn cancel_jobs<K: Op>(op: &K, sh: &Shared, all: &[Arc<Job>], only_unfinished: bool) -> Result<(), Error> {
    let api: Api<Job> = Api::namespaced(sh.client.clone(), &op.namespace().unwrap_or_default());
    for (name, job) in jobs_of(op, all) {
        if job.metadata.deletion_timestamp.is_some() || (only_unfinished && plan::job_finished(job)) {
            continue;
        }
        if delete::guarded(&api, &name, job.metadata.uid.clone()).await.step("delete job")? == Guarded::Deleting {
            tracing::info!(kind = K::KIND, name = %op.name_any(), job = %name, "job deleted");
        }
    }
    Ok(())
}

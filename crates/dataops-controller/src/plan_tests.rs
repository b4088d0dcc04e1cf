use super::*;
use ferrofluid_api::dataload::{DataLoadSpec, OperationRef, OperationStatus, TargetDataset, TargetPath};
use ferrofluid_api::{DatasetSpec, DatasetStatus};
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

fn load() -> DataLoad {
    let mut l = DataLoad::new(
        "warm",
        DataLoadSpec { dataset: TargetDataset { name: "data".into(), namespace: None }, ..Default::default() },
    );
    l.metadata.namespace = Some("ns".into());
    l
}

fn bound() -> Dataset {
    let mut d = Dataset::new("data", DatasetSpec::default());
    d.status = Some(DatasetStatus { phase: Some(DatasetPhase::Bound), ..Default::default() });
    d
}

fn view<'a>(l: &'a DataLoad, ds: Option<&'a Dataset>, lock: Lock, jobs: BTreeMap<String, &'a Job>) -> View<'a> {
    View {
        load: l,
        dataset: ds,
        preceding: Preceding::None,
        cycle: false,
        lock,
        cache_nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        jobs,
        max_nodes_in_flight: 2,
        parts: 4,
    }
}

fn job(succeeded: i32, cond: Option<&str>) -> Job {
    Job {
        status: Some(JobStatus {
            succeeded: Some(succeeded),
            conditions: cond.map(|c| {
                vec![JobCondition {
                    type_: c.into(),
                    status: "True".into(),
                    reason: Some("BackoffLimitExceeded".into()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn reason(s: Step) -> &'static str {
    match s {
        Step::Refuse(w) | Step::Wait(w) => w.reason,
        other => panic!("not a refusal or a wait: {other:?}"),
    }
}

#[test]
fn bad_input_is_refused_naming_the_field() {
    let ds = bound();
    let mut l = load();
    l.spec.policy = Some(Policy::Cron);
    assert_eq!(reason(step(&view(&l, Some(&ds), Lock::Free, BTreeMap::new()))), "PolicyNotSupported");
    let mut l = load();
    l.spec.target = vec![TargetPath { path: "/a/../../etc".into(), replicas: None }];
    let s = step(&view(&l, Some(&ds), Lock::Free, BTreeMap::new()));
    assert!(matches!(&s, Step::Refuse(w) if w.message.contains("spec.target[0].path")), "{s:?}");
    let mut l = load();
    l.spec.options.insert("threads".into(), "0".into());
    assert_eq!(reason(step(&view(&l, Some(&ds), Lock::Free, BTreeMap::new()))), "InvalidOption");
    let mut l = load();
    l.spec.dataset.namespace = Some("other".into());
    assert_eq!(reason(step(&view(&l, Some(&ds), Lock::Free, BTreeMap::new()))), "CrossNamespace");
    let l = load();
    let s = step(&view(&l, None, Lock::Free, BTreeMap::new()));
    assert!(matches!(&s, Step::Refuse(w) if w.reason == "DatasetNotFound" && w.message.contains("spec.dataset.name")));
}

#[test]
fn it_waits_for_its_predecessor_the_dataset_and_the_lock() {
    let ds = bound();
    let mut l = load();
    l.spec.run_after = Some(OperationRef { kind: "DataLoad".into(), name: "first".into(), ..Default::default() });
    let mut v = view(&l, Some(&ds), Lock::Free, BTreeMap::new());
    v.preceding = Preceding::Unfinished("first".into());
    assert_eq!(reason(step(&v)), "WaitingForPreceding");
    v.preceding = Preceding::Failed("first".into());
    assert_eq!(reason(step(&v)), "PrecedingFailed");
    v.preceding = Preceding::Complete;
    v.cycle = true;
    assert_eq!(reason(step(&v)), "RunAfterCycle");
    let mut unbound = bound();
    unbound.status = None;
    assert_eq!(reason(step(&view(&load(), Some(&unbound), Lock::Free, BTreeMap::new()))), "DatasetNotBound");
    let l = load();
    assert_eq!(reason(step(&view(&l, Some(&ds), Lock::HeldBy("other".into()), BTreeMap::new()))), "DatasetBusy");
    assert_eq!(step(&view(&l, Some(&ds), Lock::Free, BTreeMap::new())), Step::TakeLock);
}

#[test]
fn jobs_start_bounded_and_progress_adds_up() {
    let ds = bound();
    let l = load();
    let Step::Run(r) = step(&view(&l, Some(&ds), Lock::Ours, BTreeMap::new())) else { panic!("runs") };
    assert_eq!(r.create, vec!["n1".to_string(), "n2".to_string()], "two nodes in flight at most");
    assert_eq!(r.outcome, Outcome::Running);
    assert_eq!((r.progress.parts_done, r.progress.parts), (0, 12));
    let (a, b) = (job(4, Some("Complete")), job(1, None));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &a), (job_name("warm", "n2"), &b)]);
    let Step::Run(r) = step(&view(&l, Some(&ds), Lock::Ours, jobs)) else { panic!("runs") };
    assert_eq!(r.create, vec!["n3".to_string()], "n1 finished, so n3 may start");
    assert_eq!((r.progress.parts_done, r.progress.parts), (5, 12));
    assert_eq!(r.progress.summary, "5/12 parts (41%) on 3 nodes");
}

#[test]
fn a_failed_node_fails_the_load_and_all_complete_completes_it() {
    let ds = bound();
    let mut l = load();
    // Nodes recorded when it started are kept, whatever the cache nodes are now.
    l.status = Some(OperationStatus {
        phase: OperationPhase::Executing,
        progress: Some(summarize(vec![NodeProgress { node: "n1".into(), parts: 4, ..Default::default() }])),
        ..Default::default()
    });
    let failed = job(2, Some("Failed"));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &failed)]);
    let Step::Run(r) = step(&view(&l, Some(&ds), Lock::Ours, jobs)) else { panic!("runs") };
    assert!(
        matches!(&r.outcome, Outcome::Failed { node, message } if node == "n1" && message.contains("BackoffLimitExceeded"))
    );
    assert!(r.create.is_empty());
    let done = job(4, Some("Complete"));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &done)]);
    let Step::Run(r) = step(&view(&l, Some(&ds), Lock::Ours, jobs)) else { panic!("runs") };
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(r.progress.nodes.len(), 1);
}

#[test]
fn a_dataset_without_cache_nodes_cannot_be_loaded() {
    let ds = bound();
    let l = load();
    let mut v = view(&l, Some(&ds), Lock::Ours, BTreeMap::new());
    v.cache_nodes.clear();
    assert_eq!(reason(step(&v)), "NoCacheNodes");
}

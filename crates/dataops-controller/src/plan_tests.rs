use super::*;
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

fn units(names: &[&str]) -> Vec<Unit> {
    names.iter().map(|n| Unit { name: n.to_string(), parts: 4 }).collect()
}

fn view<'a>(status: &'a OperationStatus, lock: Lock, jobs: BTreeMap<String, &'a Job>) -> View<'a> {
    View {
        kind: "DataLoad",
        name: "warm",
        status,
        input: Ok(()),
        dataset: "data",
        dataset_phase: Some(Some(DatasetPhase::Bound)),
        preceding: Preceding::None,
        cycle: false,
        lock,
        units: units(&["n1", "n2", "n3"]),
        no_units: why(NO_CACHE_NODES, "none"),
        jobs,
        reports: BTreeMap::new(),
        max_in_flight: 2,
        unit_word: Some("node"),
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
fn bad_input_and_a_missing_dataset_are_refused_naming_the_field() {
    let st = OperationStatus::default();
    let mut v = view(&st, Lock::Free, BTreeMap::new());
    v.input = Err(why("InvalidOption", "spec.options.threads"));
    assert_eq!(reason(step(&v)), "InvalidOption");
    let mut v = view(&st, Lock::Free, BTreeMap::new());
    v.dataset_phase = None;
    let s = step(&v);
    assert!(matches!(&s, Step::Refuse(w) if w.reason == "DatasetNotFound" && w.message.contains("spec.dataset.name")));
}

#[test]
fn it_waits_for_its_predecessor_the_dataset_and_the_lock() {
    let st = OperationStatus::default();
    let mut v = view(&st, Lock::Free, BTreeMap::new());
    v.preceding = Preceding::Unfinished("DataLoad first".into());
    assert_eq!(reason(step(&v)), WAITING_FOR_PRECEDING);
    v.preceding = Preceding::Failed("DataLoad first".into());
    assert_eq!(reason(step(&v)), "PrecedingFailed");
    v.preceding = Preceding::Complete;
    v.cycle = true;
    assert_eq!(reason(step(&v)), "RunAfterCycle");
    let mut v = view(&st, Lock::Free, BTreeMap::new());
    v.dataset_phase = Some(None);
    assert_eq!(reason(step(&v)), "DatasetNotBound");
    assert_eq!(reason(step(&view(&st, Lock::HeldBy("other".into()), BTreeMap::new()))), "DatasetBusy");
    assert_eq!(step(&view(&st, Lock::Free, BTreeMap::new())), Step::TakeLock);
}

#[test]
fn jobs_start_bounded_and_progress_adds_up() {
    let st = OperationStatus::default();
    let Step::Run(r) = step(&view(&st, Lock::Ours, BTreeMap::new())) else { panic!("runs") };
    assert_eq!(r.create, vec!["n1".to_string(), "n2".to_string()], "two units in flight at most");
    assert_eq!(r.outcome, Outcome::Running);
    assert_eq!((r.progress.parts_done, r.progress.parts), (0, 12));
    let (a, b) = (job(4, Some("Complete")), job(1, None));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &a), (job_name("warm", "n2"), &b)]);
    let Step::Run(r) = step(&view(&st, Lock::Ours, jobs)) else { panic!("runs") };
    assert_eq!(r.create, vec!["n3".to_string()], "n1 finished, so n3 may start");
    assert_eq!((r.progress.parts_done, r.progress.parts), (5, 12));
    assert_eq!(r.progress.summary, "5/12 parts (41%) on 3 nodes");
}

#[test]
fn a_failed_unit_fails_the_operation_and_all_complete_completes_it() {
    // Units recorded when it started are kept, whatever the cache nodes are now.
    let st = OperationStatus {
        phase: OperationPhase::Executing,
        progress: Some(summarize(vec![NodeProgress { node: "n1".into(), parts: 4, ..Default::default() }], None)),
        ..Default::default()
    };
    let failed = job(2, Some("Failed"));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &failed)]);
    let Step::Run(r) = step(&view(&st, Lock::Ours, jobs)) else { panic!("runs") };
    assert!(
        matches!(&r.outcome, Outcome::Failed { node, message } if node == "n1" && message.contains("BackoffLimitExceeded"))
    );
    assert!(r.create.is_empty());
    let done = job(4, Some("Complete"));
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &done)]);
    let Step::Run(r) = step(&view(&st, Lock::Ours, jobs)) else { panic!("runs") };
    assert_eq!(r.outcome, Outcome::Complete);
    assert_eq!(r.progress.nodes.len(), 1);
}

#[test]
fn without_units_it_waits_before_taking_the_lock() {
    let st = OperationStatus::default();
    let mut v = view(&st, Lock::Free, BTreeMap::new());
    v.units.clear();
    assert!(matches!(step(&v), Step::Wait(w) if w.reason == "NoCacheNodes"));
}

#[test]
fn summaries_name_units_only_where_they_mean_something() {
    let n = NodeProgress { node: "range-0".into(), parts: 1, parts_done: 1, ..Default::default() };
    assert_eq!(summarize(vec![n.clone(), NodeProgress { parts_done: 0, ..n }], None).summary, "1/2 parts (50%)");
}

#[test]
fn job_names_fit_a_label_and_differ_per_unit() {
    let long = "a".repeat(63);
    let n = job_name(&long, "node-1");
    assert_eq!(n.len(), 63);
    assert_ne!(n, job_name(&long, "node-2"));
    assert_eq!(job_name("warm", "node-1"), job_name("warm", "node-1"));
    assert!(job_name("warm-", "x").starts_with("warm-") && !job_name("warm-", "x").contains("--"));
}

#[test]
fn files_and_bytes_come_from_the_parts_reports() {
    let st = OperationStatus {
        phase: OperationPhase::Executing,
        progress: Some(summarize(
            vec![
                NodeProgress { node: "n1".into(), parts: 4, ..Default::default() },
                NodeProgress { node: "n2".into(), parts: 4, ..Default::default() },
            ],
            None,
        )),
        ..Default::default()
    };
    let one = job(1, None);
    let jobs = BTreeMap::from([(job_name("warm", "n1"), &one), (job_name("warm", "n2"), &one)]);
    let mut v = view(&st, Lock::Ours, jobs);
    let report = PartReport { part: 0, files: 4, bytes: 4 << 20, total_files: 16, total_bytes: 64 << 20 };
    v.reports.insert(job_name("warm", "n1"), vec![report]);
    let Step::Run(r) = step(&v) else { panic!("runs") };
    let p = &r.progress;
    // n2 has not reported its list: files and bytes done are known, the totals not yet.
    let c = p.counts;
    assert_eq!((c.files_done, c.files, c.bytes_done, c.bytes), (Some(4), None, Some(4 << 20), None));
    assert_eq!(p.summary, "2/8 parts, 4 files, 4.0 MiB done (25%) on 2 nodes");
    let n2 = PartReport { part: 1, files: 4, bytes: 4 << 20, total_files: 16, total_bytes: 64 << 20 };
    v.reports.insert(job_name("warm", "n2"), vec![n2]);
    let Step::Run(r) = step(&v) else { panic!("runs") };
    assert_eq!(r.progress.summary, "2/8 parts, 8/32 files, 8.0 MiB/128.0 MiB (6%) on 2 nodes");
}

#[test]
fn sizes_read_in_binary_units() {
    assert_eq!(size_text(0), "0 B");
    assert_eq!(size_text(1023), "1023 B");
    assert_eq!(size_text(1536), "1.5 KiB");
    assert_eq!(size_text(64 << 20), "64.0 MiB");
    assert_eq!(size_text(3 << 40), "3.0 TiB");
}

//! `bench-phases`: two more phases of `hack/bench.sh` after the burst (a benchmark tool, not a test).
//!
//! - `arrivals`: on the cluster the burst left loaded, new Dataset + JuiceFSRuntime pairs are created at a
//!   steady `--rate` per second for `--seconds`; each pair's time from its creation (the first create
//!   request sent) to its Dataset and its PVC first seen `Bound` by a watch.
//! - `deletion`: every Dataset and JuiceFSRuntime of the namespace deleted at once (one delete request per
//!   object, `--in-flight` at a time, as `kubectl delete datasets,juicefsruntimes --all` would); watches
//!   count what is left — Datasets, runtimes, StatefulSets, DaemonSets, PVCs, Jobs and pods of the
//!   namespace, PVs named `<namespace>-…`, `fluid.io/` labels on nodes — until all are zero or `--timeout`.
//!
//! Each writes its JSON to `--out` (read by `hack/bench-report.py phases`) and exits 0 when the phase
//! completed, 3 when it timed out.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PartialObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// Namespace of the benchmark's datasets.
    #[arg(long, global = true, default_value = "ferrofluid-bench")]
    namespace: String,
    /// Where the JSON result goes.
    #[arg(long, global = true, default_value = "phase.json")]
    out: PathBuf,
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    /// Pairs created at a steady rate on a loaded cluster; time to Bound per pair.
    Arrivals {
        /// A Dataset and a JuiceFSRuntime (YAML documents separated by `---`); each pair gets the name
        /// `<prefix>-<i>`.
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long, default_value = "arrival")]
        prefix: String,
        /// Pairs per second.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// For how long pairs are created.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// How long, after the last creation, the last pairs may take to be Bound.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Everything deleted at once; how long until nothing is left.
    Deletion {
        /// Delete requests in flight at once.
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = ferrofluid_e2e::client_as("bench-phases").await?;
    let (result, complete) = match &args.phase {
        Phase::Arrivals { manifest, prefix, rate, seconds, timeout } => {
            let pair = std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
            let plan = Arrivals { pair: parse_pair(&pair)?, prefix: prefix.clone(), rate: *rate, seconds: *seconds };
            arrivals(&client, &args.namespace, plan, Duration::from_secs(*timeout)).await?
        }
        Phase::Deletion { in_flight, timeout } => {
            deletion(&client, &args.namespace, *in_flight, Duration::from_secs(*timeout)).await?
        }
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?).context("writing --out")?;
    println!("{}", serde_json::to_string(&result["summary"])?);
    if !complete {
        std::process::exit(3);
    }
    Ok(())
}

fn parse_pair(text: &str) -> Result<Vec<DynamicObject>> {
    let docs: Vec<DynamicObject> = text
        .split("\n---")
        .filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map(|d| serde_saphyr::from_str(d).context("a manifest document"))
        .collect::<Result<_>>()?;
    anyhow::ensure!(!docs.is_empty(), "the manifest holds no object");
    Ok(docs)
}

struct Arrivals {
    pair: Vec<DynamicObject>,
    prefix: String,
    rate: f64,
    seconds: u64,
}

/// When a pair's objects were sent and first seen Bound (ms since the epoch).
#[derive(Default, Clone)]
struct Pair {
    sent_ms: Option<u64>,
    created_ms: Option<u64>,
    bound_ms: Option<u64>,
    pvc_bound_ms: Option<u64>,
    error: Option<String>,
}

async fn arrivals(client: &kube::Client, ns: &str, plan: Arrivals, timeout: Duration) -> Result<(Value, bool)> {
    let total = (plan.rate * plan.seconds as f64).round() as usize;
    let pairs: Arc<Mutex<BTreeMap<String, Pair>>> =
        Arc::new(Mutex::new((1..=total).map(|i| (format!("{}-{i}", plan.prefix), Pair::default())).collect()));

    // The watches first: a phase seen before its pair's create returned still counts.
    // Dynamic: Fluid's Datasets may show phases this repository's types do not know.
    let ds_ar = ApiResource::from_gvk(&GroupVersionKind::gvk("data.fluid.io", "v1alpha1", "Dataset"));
    let datasets = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ds_ar);
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
    let ds_tx = seen_tx.clone();
    let ds_watch = watcher::watcher(datasets, watcher::Config::default()).default_backoff().for_each(move |ev| {
        if let Ok(Event::Apply(d) | Event::InitApply(d)) = ev
            && d.data.pointer("/status/phase").and_then(Value::as_str) == Some("Bound")
        {
            let _ = ds_tx.send((false, d.name_any()));
        }
        futures::future::ready(())
    });
    let pvc_watch = watcher::watcher(pvcs, watcher::Config::default()).default_backoff().for_each(move |ev| {
        if let Ok(Event::Apply(p) | Event::InitApply(p)) = ev
            && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        {
            let _ = seen_tx.send((true, p.name_any()));
        }
        futures::future::ready(())
    });
    let watches = tokio::spawn(async move { futures::join!(ds_watch, pvc_watch) });
    let record = {
        let pairs = pairs.clone();
        tokio::spawn(async move {
            while let Some((pvc, name)) = seen_rx.recv().await {
                let t = now_ms();
                if let Some(p) = pairs.lock().expect("lock").get_mut(&name) {
                    let at = if pvc { &mut p.pvc_bound_ms } else { &mut p.bound_ms };
                    at.get_or_insert(t);
                }
            }
        })
    };

    // The creations, each pair on a task of its own so a slow apiserver does not slow the pace.
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(0.01)));
    let started = Instant::now();
    let mut creators = Vec::new();
    for i in 1..=total {
        pace.tick().await;
        let name = format!("{}-{i}", plan.prefix);
        let (client, ns, objects, pairs) = (client.clone(), ns.to_string(), plan.pair.clone(), pairs.clone());
        creators.push(tokio::spawn(async move {
            pairs.lock().expect("lock").entry(name.clone()).or_default().sent_ms = Some(now_ms());
            let outcome = create_pair(&client, &ns, &name, objects).await;
            let mut pairs = pairs.lock().expect("lock");
            let p = pairs.entry(name).or_default();
            match outcome {
                Ok(()) => p.created_ms = Some(now_ms()),
                Err(e) => p.error = Some(format!("{e:#}")),
            }
        }));
    }
    for c in creators {
        c.await?;
    }
    let creating_s = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + timeout;
    let done =
        |pairs: &BTreeMap<String, Pair>| pairs.values().all(|p| p.bound_ms.is_some() && p.pvc_bound_ms.is_some());
    while Instant::now() < deadline && !done(&pairs.lock().expect("lock")) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    watches.abort();
    record.abort();

    let pairs = pairs.lock().expect("lock").clone();
    let complete = done(&pairs);
    let since_sent = |at: fn(&Pair) -> Option<u64>| -> Vec<f64> {
        let mut v: Vec<f64> =
            pairs.values().filter_map(|p| Some((at(p)?.saturating_sub(p.sent_ms?)) as f64 / 1000.0)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (bound, pvc_bound, create) =
        (since_sent(|p| p.bound_ms), since_sent(|p| p.pvc_bound_ms), since_sent(|p| p.created_ms));
    let errors: Vec<&String> = pairs.values().filter_map(|p| p.error.as_ref()).collect();
    let summary = json!({
        "pairs": total,
        "rate_per_s": plan.rate,
        "creating_s": creating_s,
        "bound": bound.len(),
        "pvcs_bound": pvc_bound.len(),
        "bound_p50_s": percentile(&bound, total, 50.0),
        "bound_p99_s": percentile(&bound, total, 99.0),
        "bound_max_s": percentile(&bound, total, 100.0),
        "pvc_bound_p50_s": percentile(&pvc_bound, total, 50.0),
        "pvc_bound_p99_s": percentile(&pvc_bound, total, 99.0),
        "create_requests_p99_s": percentile(&create, total, 99.0),
        "errors": errors.len(),
        "first_error": errors.first(),
    });
    let per_pair: BTreeMap<&String, Value> = pairs
        .iter()
        .map(|(n, p)| {
            (n, json!({"sent_ms": p.sent_ms, "created_ms": p.created_ms, "bound_ms": p.bound_ms, "pvc_bound_ms": p.pvc_bound_ms}))
        })
        .collect();
    Ok((json!({"phase": "arrivals", "complete": complete, "summary": summary, "pairs": per_pair}), complete))
}

async fn create_pair(client: &kube::Client, ns: &str, name: &str, objects: Vec<DynamicObject>) -> Result<()> {
    for mut obj in objects {
        let types = obj.types.clone().context("a manifest document without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types).context("apiVersion/kind")?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk));
        obj.metadata.name = Some(name.to_string());
        obj.metadata.namespace = Some(ns.to_string());
        api.create(&PostParams::default(), &obj).await.with_context(|| format!("creating {} {name}", types.kind))?;
    }
    Ok(())
}

/// Nearest-rank percentile over `n` values of which those not in `sorted` count as slower than all
/// (`None` then: not every pair got there).
fn percentile(sorted: &[f64], n: usize, p: f64) -> Option<f64> {
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n.max(1));
    sorted.get(rank - 1).copied()
}

/// A metadata-only watch cache of one kind (metadata-only requests).
fn track<K>(api: Api<PartialObjectMeta<K>>) -> Store<PartialObjectMeta<K>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()).default_backoff());
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

async fn deletion(client: &kube::Client, ns: &str, in_flight: usize, timeout: Duration) -> Result<(Value, bool)> {
    let prefix = format!("{ns}-");
    let datasets = track(Api::<PartialObjectMeta<Dataset>>::namespaced(client.clone(), ns));
    let runtimes = track(Api::<PartialObjectMeta<JuiceFSRuntime>>::namespaced(client.clone(), ns));
    let statefulsets = track(Api::<PartialObjectMeta<StatefulSet>>::namespaced(client.clone(), ns));
    let daemonsets = track(Api::<PartialObjectMeta<DaemonSet>>::namespaced(client.clone(), ns));
    let pvcs = track(Api::<PartialObjectMeta<PersistentVolumeClaim>>::namespaced(client.clone(), ns));
    let jobs = track(Api::<PartialObjectMeta<Job>>::namespaced(client.clone(), ns));
    let pods = track(Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), ns));
    let pvs = track(Api::<PartialObjectMeta<PersistentVolume>>::all(client.clone()));
    let nodes = track(Api::<PartialObjectMeta<Node>>::all(client.clone()));
    for ready in [
        datasets.wait_until_ready().await,
        runtimes.wait_until_ready().await,
        statefulsets.wait_until_ready().await,
        daemonsets.wait_until_ready().await,
        pvcs.wait_until_ready().await,
        jobs.wait_until_ready().await,
        pods.wait_until_ready().await,
        pvs.wait_until_ready().await,
        nodes.wait_until_ready().await,
    ] {
        ready.context("a watch cache")?;
    }
    let count = || -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("datasets", datasets.state().len()),
            ("runtimes", runtimes.state().len()),
            ("statefulsets", statefulsets.state().len()),
            ("daemonsets", daemonsets.state().len()),
            ("pvcs", pvcs.state().len()),
            ("jobs", jobs.state().len()),
            ("pods", pods.state().len()),
            ("pvs", pvs.state().iter().filter(|p| p.name_any().starts_with(&prefix)).count()),
            (
                "node_labels",
                nodes.state().iter().map(|n| n.labels().keys().filter(|k| k.starts_with("fluid.io/")).count()).sum(),
            ),
        ])
    };
    let at_start = count();

    // One delete per object, `in_flight` at a time; the watches keep counting meanwhile.
    let started = Instant::now();
    let start_ms = now_ms();
    let ds_api = Api::<Dataset>::namespaced(client.clone(), ns);
    let rt_api = Api::<JuiceFSRuntime>::namespaced(client.clone(), ns);
    let mut deletes: Vec<futures::future::BoxFuture<'static, Result<(), kube::Error>>> = Vec::new();
    for d in datasets.state() {
        let (api, name) = (ds_api.clone(), d.name_any());
        deletes.push(Box::pin(async move { api.delete(&name, &DeleteParams::background()).await.map(|_| ()) }));
    }
    for r in runtimes.state() {
        let (api, name) = (rt_api.clone(), r.name_any());
        deletes.push(Box::pin(async move { api.delete(&name, &DeleteParams::background()).await.map(|_| ()) }));
    }
    let requests = deletes.len();
    let sender = tokio::spawn(async move {
        let failed = stream::iter(deletes)
            .buffer_unordered(in_flight.max(1))
            .filter(|r| futures::future::ready(matches!(r, Err(e) if !is_not_found(e))))
            .count()
            .await;
        (failed, Instant::now())
    });

    let mut gone_at: HashMap<&'static str, f64> = HashMap::new();
    let mut timeline = Vec::new();
    let mut last_sample = None::<Instant>;
    let deadline = started + timeout;
    let mut left;
    loop {
        left = count();
        let elapsed = started.elapsed().as_secs_f64();
        for (kind, n) in &left {
            if *n == 0 {
                gone_at.entry(kind).or_insert(elapsed);
            }
        }
        if last_sample.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            timeline.push(json!({"s": elapsed, "left": left}));
            last_sample = Some(Instant::now());
        }
        if left.values().all(|n| *n == 0) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let complete = left.values().all(|n| *n == 0);
    let all_gone_s = complete.then(|| started.elapsed().as_secs_f64());
    timeline.push(json!({"s": started.elapsed().as_secs_f64(), "left": left}));
    let (failed, sent_at) = sender.await?;
    let summary = json!({
        "delete_requests": requests,
        "delete_requests_failed": failed,
        "requests_sent_s": sent_at.saturating_duration_since(started).as_secs_f64(),
        "all_gone_s": all_gone_s,
        "timeout_s": timeout.as_secs(),
        "gone_s": gone_at.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<BTreeMap<_, _>>(),
        "at_start": at_start,
        "left": left,
    });
    Ok((
        json!({"phase": "deletion", "start_ms": start_ms, "complete": complete, "summary": summary, "timeline": timeline}),
        complete,
    ))
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

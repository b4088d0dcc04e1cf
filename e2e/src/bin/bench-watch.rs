//! `bench-watch`: the measuring side of `hack/bench.sh` (a benchmark tool, not a test).
//!
//! It watches the Datasets, JuiceFSRuntimes and PersistentVolumeClaims of one namespace and records, per
//! dataset name, when its Dataset and JuiceFSRuntime were first seen (the pair is created when the later
//! of the two appears), when the Dataset was first seen `Bound` and when its PVC was first seen `Bound`.
//! Around the run it takes two snapshots of what the run cost:
//!
//! - per named process (`--process NAME=PID`): CPU seconds of the whole process tree — the process
//!   itself, its waited-for children (`cutime`/`cstime`: Fluid's finished `ddc-helm` runs) and every
//!   descendant still alive — and the process's peak resident memory (`VmHWM`);
//! - per named metrics endpoint (`--metrics NAME=ADDR`, plain HTTP on loopback): the sums of the request
//!   counters it exports (`ferrofluid_api_requests_total`, client-go's `rest_client_requests_total`);
//! - the kube-apiserver's `apiserver_request_total`, summed and by verb (`kubectl get --raw /metrics`).
//!
//! The first snapshot is taken once the three watches are synced, then `--ready` is written (the bench
//! creates the objects after that). The second is taken the moment every one of the `--datasets`
//! Datasets and their PVCs are Bound, or at `--timeout`. A Dataset seen leaving `Bound` once it was
//! (a flap: `Failed` or `NotBound` while its data is there) is counted per dataset (`left_bound`). Everything goes as JSON to `--out`. Exit code 0
//! when all were Bound, 3 on timeout (the JSON is written either way).

use anyhow::{Context, Result};
use clap::Parser;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// Namespace of the benchmark's Datasets.
    #[arg(long)]
    namespace: String,
    /// How many Datasets (and PVCs) must be Bound.
    #[arg(long)]
    datasets: usize,
    /// Give up after this many seconds from the first snapshot.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
    /// File written once the watches are synced and the first snapshot is taken.
    #[arg(long)]
    ready: PathBuf,
    /// NAME=PID of a process whose tree CPU time and peak RSS are recorded (repeatable).
    #[arg(long = "process", value_parser = name_value)]
    processes: Vec<(String, String)>,
    /// NAME=ADDR of a plain-HTTP /metrics endpoint on loopback whose request counters are recorded.
    #[arg(long = "metrics", value_parser = name_value)]
    metrics: Vec<(String, String)>,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| format!("{s}: want NAME=VALUE"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What the watches saw of one dataset name (milliseconds since the epoch).
#[derive(Default)]
struct Seen {
    dataset_ms: Option<u64>,
    runtime_ms: Option<u64>,
    dataset_created: Option<String>,
    runtime_created: Option<String>,
    bound_ms: Option<u64>,
    pvc_bound_ms: Option<u64>,
    /// The phase the Dataset showed last, and how often it went from Bound to anything else.
    last_phase: Option<String>,
    left_bound: u32,
}

enum Kind {
    Dataset,
    Runtime,
    Pvc,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = ferrofluid_e2e::client_as("bench-watch").await?;
    let gvk = |kind| GroupVersionKind::gvk("data.fluid.io", "v1alpha1", kind);
    let ds_ar = ApiResource::from_gvk(&gvk("Dataset"));
    let rt_ar = ApiResource::from_gvk(&gvk("JuiceFSRuntime"));
    let datasets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &args.namespace, &ds_ar);
    let runtimes: Api<DynamicObject> = Api::namespaced_with(client.clone(), &args.namespace, &rt_ar);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &args.namespace);

    // One stream of (kind, object name, creationTimestamp, phase, InitDone?) from the three watches.
    let cfg = watcher::Config::default;
    type Item = (Kind, Option<(String, Option<String>, Option<String>)>);
    let dyn_item = |kind: fn() -> Kind| {
        move |ev: Event<DynamicObject>| -> Vec<Item> {
            match ev {
                Event::Apply(o) | Event::InitApply(o) => {
                    let phase = o.data.pointer("/status/phase").and_then(Value::as_str).map(str::to_string);
                    let created = o.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string());
                    vec![(kind(), Some((o.metadata.name.unwrap_or_default(), created, phase)))]
                }
                Event::InitDone => vec![(kind(), None)],
                _ => vec![],
            }
        }
    };
    let ds_events = watcher::watcher(datasets, cfg()).default_backoff().map(|r| r.map(dyn_item(|| Kind::Dataset)));
    let rt_events = watcher::watcher(runtimes, cfg()).default_backoff().map(|r| r.map(dyn_item(|| Kind::Runtime)));
    let pvc_events = watcher::watcher(pvcs, cfg()).default_backoff().map(|r| {
        r.map(|ev| match ev {
            Event::Apply(o) | Event::InitApply(o) => {
                let phase = o.status.as_ref().and_then(|s| s.phase.clone());
                vec![(Kind::Pvc, Some((o.metadata.name.unwrap_or_default(), None, phase)))]
            }
            Event::InitDone => vec![(Kind::Pvc, None)],
            _ => vec![],
        })
    });
    let mut events = stream::select_all(vec![ds_events.boxed(), rt_events.boxed(), pvc_events.boxed()]);

    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut synced = 0;
    let mut start: Option<Value> = None;
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let (mut all_bound_ms, mut all_pvcs_bound_ms) = (None, None);
    loop {
        let next = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(items))) => items,
            Ok(Some(Err(e))) => {
                eprintln!("bench-watch: watch error (retried): {e}");
                continue;
            }
            Ok(None) => anyhow::bail!("the watch streams ended"),
            Err(_) => break, // timeout
        };
        let t = now_ms();
        for (kind, item) in next {
            let Some((name, created, phase)) = item else {
                synced += 1;
                if synced == 3 && start.is_none() {
                    start = Some(snapshot(&args).await);
                    deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
                    std::fs::write(&args.ready, b"ready\n").context("writing --ready")?;
                }
                continue;
            };
            // PVCs are named after their dataset by both ferrofluid and Fluid.
            let s = seen.entry(name).or_default();
            let bound = phase.as_deref() == Some("Bound");
            match kind {
                Kind::Dataset => {
                    s.dataset_ms.get_or_insert(t);
                    if s.dataset_created.is_none() {
                        s.dataset_created = created;
                    }
                    if bound {
                        s.bound_ms.get_or_insert(t);
                    }
                    if s.last_phase.as_deref() == Some("Bound") && !bound {
                        s.left_bound += 1;
                    }
                    if phase.is_some() {
                        s.last_phase = phase.clone();
                    }
                }
                Kind::Runtime => {
                    s.runtime_ms.get_or_insert(t);
                    if s.runtime_created.is_none() {
                        s.runtime_created = created;
                    }
                }
                Kind::Pvc => {
                    if bound {
                        s.pvc_bound_ms.get_or_insert(t);
                    }
                }
            }
        }
        let bound = seen.values().filter(|s| s.bound_ms.is_some()).count();
        let pvcs_bound = seen.values().filter(|s| s.pvc_bound_ms.is_some()).count();
        if all_bound_ms.is_none() && bound >= args.datasets {
            all_bound_ms = Some(t);
        }
        if all_pvcs_bound_ms.is_none() && pvcs_bound >= args.datasets {
            all_pvcs_bound_ms = Some(t);
        }
        if start.is_some() && all_bound_ms.is_some() && all_pvcs_bound_ms.is_some() {
            break;
        }
    }
    let end = snapshot(&args).await;
    let complete = all_bound_ms.is_some() && all_pvcs_bound_ms.is_some();

    let per_dataset: BTreeMap<&String, Value> = seen
        .iter()
        .filter(|(_, s)| s.dataset_ms.is_some())
        .map(|(name, s)| {
            let created_ms = s.dataset_ms.max(s.runtime_ms);
            (
                name,
                json!({
                    "created_ms": created_ms,
                    "dataset_creation_timestamp": s.dataset_created,
                    "runtime_creation_timestamp": s.runtime_created,
                    "bound_ms": s.bound_ms,
                    "pvc_bound_ms": s.pvc_bound_ms,
                    "left_bound": s.left_bound,
                }),
            )
        })
        .collect();
    let result = json!({
        "datasets_wanted": args.datasets,
        "complete": complete,
        "all_bound_ms": all_bound_ms,
        "all_pvcs_bound_ms": all_pvcs_bound_ms,
        "start": start,
        "end": end,
        "datasets": per_dataset,
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?).context("writing --out")?;
    if !complete {
        eprintln!(
            "bench-watch: timed out: {} of {} Datasets and {} PVCs Bound",
            seen.values().filter(|s| s.bound_ms.is_some()).count(),
            args.datasets,
            seen.values().filter(|s| s.pvc_bound_ms.is_some()).count()
        );
        std::process::exit(3);
    }
    Ok(())
}

/// CPU, memory and request counters right now.
async fn snapshot(args: &Args) -> Value {
    let t = now_ms();
    let procs = proc_table();
    let processes: BTreeMap<&String, Value> =
        args.processes.iter().map(|(name, pid)| (name, process_tree(&procs, pid))).collect();
    let metrics: BTreeMap<&String, Value> = args
        .metrics
        .iter()
        .map(|(name, addr)| {
            let v = addr
                .parse::<SocketAddr>()
                .map_err(anyhow::Error::from)
                .and_then(|a| ferrofluid_e2e::http::http_get(a, "/metrics"))
                .map(|text| counters(&text))
                .unwrap_or_else(|e| json!({ "error": e.to_string() }));
            (name, v)
        })
        .collect();
    let apiserver = match apiserver_metrics().await {
        Ok(text) => counters(&text),
        Err(e) => json!({ "error": e.to_string() }),
    };
    json!({ "ms": t, "processes": processes, "metrics": metrics, "apiserver": apiserver })
}

/// The kube-apiserver's /metrics, through kubectl (same KUBECONFIG).
async fn apiserver_metrics() -> Result<String> {
    let out = tokio::process::Command::new("kubectl").args(["get", "--raw", "/metrics"]).output().await?;
    anyhow::ensure!(out.status.success(), "kubectl get --raw /metrics: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

/// Sums of the request counters in exposition text: per family, in total and by verb (the
/// apiserver's and ferrofluid's `verb`, client-go's `method`).
fn counters(text: &str) -> Value {
    const FAMILIES: [&str; 3] =
        ["apiserver_request_total", "ferrofluid_api_requests_total", "rest_client_requests_total"];
    let mut out: BTreeMap<&str, (f64, BTreeMap<String, f64>)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(family) =
            FAMILIES.iter().find(|f| line.starts_with(&format!("{f}{{")) || line.starts_with(&format!("{f} ")))
        else {
            continue;
        };
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        let verb = ["verb=\"", "method=\""]
            .iter()
            .find_map(|k| line.split_once(k).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v.to_string()))
            .unwrap_or_default();
        let e = out.entry(family).or_default();
        e.0 += value;
        *e.1.entry(verb).or_default() += value;
    }
    json!(
        out.into_iter()
            .map(|(f, (total, by))| (f, json!({ "total": total, "by_verb": by })))
            .collect::<BTreeMap<_, _>>()
    )
}

/// One row of /proc/<pid>/stat: parent, own CPU ticks, waited-for children's CPU ticks.
struct ProcStat {
    ppid: u32,
    own: u64,
    children: u64,
}

/// Every process's stat row, by pid.
fn proc_table() -> HashMap<u32, ProcStat> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(st) = read_stat(pid) {
            out.insert(pid, st);
        }
    }
    out
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat { ppid: n(4)? as u32, own: n(14)? + n(15)?, children: n(16)? + n(17)? })
}

/// CPU seconds of `pid`'s whole tree and its own peak RSS.
fn process_tree(procs: &HashMap<u32, ProcStat>, pid: &str) -> Value {
    // /proc reports CPU in USER_HZ ticks, which Linux fixes at 100 per second for user space.
    const TICKS: f64 = 100.0;
    let Ok(root) = pid.parse::<u32>() else { return json!({ "error": format!("bad pid {pid}") }) };
    let Some(me) = procs.get(&root) else { return json!({ "error": format!("process {pid} is gone") }) };
    let mut live_descendants = 0u64;
    let mut count = 0u32;
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (child, st) in procs.iter().filter(|(_, st)| st.ppid == p) {
            live_descendants += st.own + st.children;
            count += 1;
            frontier.push(*child);
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{root}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    json!({
        "cpu_s": (me.own + me.children + live_descendants) as f64 / TICKS,
        "own_cpu_s": me.own as f64 / TICKS,
        "children_cpu_s": (me.children + live_descendants) as f64 / TICKS,
        "live_descendants": count,
        "hwm_kib": kib("VmHWM:"),
        "rss_kib": kib("VmRSS:"),
    })
}

//! `bound-timeline --namespace NS --manifest FILE [--name NAME] [--timeout-seconds 120]`: where one
//! dataset's time to Bound goes. Watches the namespace's datasets, runtimes, workloads, pods and
//! volumes, creates the manifest's objects (Secret, Dataset, JuiceFSRuntime — any system that uses
//! Fluid's API and names: ferrofluid or Fluid), and prints when each step of the path was first seen,
//! in milliseconds from the create request, with the step's own share. A benchmark tool, not a test.

use anyhow::{Context, Result, bail};
use clap::Parser;
use ferrofluid_api::{Dataset, JuiceFSRuntime};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Times each step of one dataset's path to Bound")]
struct Args {
    /// Namespace to create the objects in (must exist).
    #[arg(long)]
    namespace: String,
    /// YAML file with the objects to create (Secret, Dataset, JuiceFSRuntime).
    #[arg(long)]
    manifest: std::path::PathBuf,
    /// Dataset (and runtime) name; default: the manifest's Dataset.
    #[arg(long)]
    name: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value_t = 120)]
    timeout_seconds: u64,
    /// Kubeconfig (default: KUBECONFIG or in-cluster).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
}

/// The steps, in the order a dataset normally takes them.
const STEPS: &[&str] = &[
    "objects created",
    "runtime first written by a controller",
    "PV created",
    "worker StatefulSet created",
    "FUSE DaemonSet created",
    "worker pod created",
    "worker pod scheduled",
    "worker pod running",
    "worker pod ready",
    "PVC created",
    "dataset Bound",
    "runtime reports a ready worker",
    "PVC Bound",
];

fn phase(v: Option<serde_json::Value>) -> String {
    v.and_then(|p| p.as_str().map(String::from)).unwrap_or_default()
}

/// The steps one object's state shows (names as in `STEPS`).
fn steps_of(kind: &str, obj: &DynamicObject, name: &str, ns: &str) -> Vec<&'static str> {
    let meta = &obj.metadata;
    let obj_name = meta.name.as_deref().unwrap_or_default();
    let status = obj.data.get("status");
    let at = |path: &[&str]| {
        let mut v = status;
        for p in path {
            v = v.and_then(|x| x.get(p));
        }
        v.cloned()
    };
    let mut out = Vec::new();
    match kind {
        "Dataset" if obj_name == name && phase(at(&["phase"])) == "Bound" => out.push("dataset Bound"),
        "JuiceFSRuntime" if obj_name == name => {
            // A finalizer, an owner or a status: a controller has written the runtime.
            let written = meta.finalizers.as_ref().is_some_and(|f| !f.is_empty())
                || meta.owner_references.as_ref().is_some_and(|o| !o.is_empty());
            if written || status.is_some() {
                out.push("runtime first written by a controller");
            }
            let ready = at(&["workerNumberReady"]).and_then(|v| v.as_i64()).unwrap_or(0);
            if ready >= 1 {
                out.push("runtime reports a ready worker");
            }
        }
        "PersistentVolume" if obj_name == format!("{ns}-{name}") => out.push("PV created"),
        "StatefulSet" if obj_name == format!("{name}-worker") => out.push("worker StatefulSet created"),
        "DaemonSet" if obj_name == format!("{name}-fuse") => out.push("FUSE DaemonSet created"),
        "Pod" if obj_name.starts_with(&format!("{name}-worker-")) => {
            out.push("worker pod created");
            if obj.data.pointer("/spec/nodeName").and_then(|v| v.as_str()).is_some_and(|n| !n.is_empty()) {
                out.push("worker pod scheduled");
            }
            if phase(at(&["phase"])) == "Running" {
                out.push("worker pod running");
            }
            let ready = at(&["conditions"]).and_then(|c| {
                c.as_array().map(|cs| {
                    cs.iter().any(|c| {
                        c.get("type").and_then(|t| t.as_str()) == Some("Ready")
                            && c.get("status").and_then(|s| s.as_str()) == Some("True")
                    })
                })
            });
            if ready == Some(true) {
                out.push("worker pod ready");
            }
        }
        "PersistentVolumeClaim" if obj_name == name => {
            out.push("PVC created");
            if phase(at(&["phase"])) == "Bound" {
                out.push("PVC Bound");
            }
        }
        _ => {}
    }
    out
}

/// Forwards every object `K` the watch shows as (kind, object), as it arrives.
fn forward<K>(api: Api<K>, kind: &'static str, tx: mpsc::UnboundedSender<(&'static str, DynamicObject)>)
where
    K: Resource + Clone + Debug + DeserializeOwned + serde::Serialize + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default()).boxed();
    tokio::spawn(relay(stream, kind, tx));
}

async fn relay<K: serde::Serialize>(
    mut stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
    kind: &'static str,
    tx: mpsc::UnboundedSender<(&'static str, DynamicObject)>,
) {
    while let Some(ev) = stream.next().await {
        let obj = match ev {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            Ok(watcher::Event::InitDone) => {
                let _ = tx.send(("InitDone", DynamicObject::new("", &ApiResource::erase::<Secret>(&()))));
                continue;
            }
            _ => continue,
        };
        if let Ok(dynamic) = serde_json::to_value(&obj).and_then(serde_json::from_value::<DynamicObject>)
            && tx.send((kind, dynamic)).is_err()
        {
            return;
        }
    }
}

/// Creates every object of the manifest in `ns`; the Dataset's name.
async fn create_all(client: &kube::Client, ns: &str, text: &str) -> Result<Option<String>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).context("parsing the manifest")?;
    let mut dataset = None;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let obj: DynamicObject = serde_json::from_value(doc).context("a manifest document")?;
        let kind = obj.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default();
        let ar = match kind.as_str() {
            "Secret" => ApiResource::erase::<Secret>(&()),
            "Dataset" => {
                dataset = obj.metadata.name.clone();
                ApiResource::erase::<Dataset>(&())
            }
            "JuiceFSRuntime" => ApiResource::erase::<JuiceFSRuntime>(&()),
            other => bail!("the manifest holds a {other}; only Secret, Dataset and JuiceFSRuntime are created"),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating {kind} {}", obj.name_any()))?;
    }
    Ok(dataset)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = ferrofluid_service::client::client(args.kubeconfig.as_deref()).await?;
    let ns = args.namespace.as_str();
    let text = std::fs::read_to_string(&args.manifest).with_context(|| format!("{}", args.manifest.display()))?;

    let (tx, mut rx) = mpsc::unbounded_channel();
    forward(Api::<Dataset>::namespaced(client.clone(), ns), "Dataset", tx.clone());
    forward(Api::<JuiceFSRuntime>::namespaced(client.clone(), ns), "JuiceFSRuntime", tx.clone());
    forward(Api::<StatefulSet>::namespaced(client.clone(), ns), "StatefulSet", tx.clone());
    forward(Api::<DaemonSet>::namespaced(client.clone(), ns), "DaemonSet", tx.clone());
    forward(Api::<Pod>::namespaced(client.clone(), ns), "Pod", tx.clone());
    forward(Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns), "PersistentVolumeClaim", tx.clone());
    forward(Api::<PersistentVolume>::all(client.clone()), "PersistentVolume", tx.clone());
    drop(tx);
    // Every watch has listed what exists before anything is created.
    let mut listed = 0;
    while listed < 7 {
        match rx.recv().await {
            Some(("InitDone", _)) => listed += 1,
            Some(_) => {}
            None => bail!("a watch ended before it listed"),
        }
    }

    let t0 = Instant::now();
    let created = create_all(&client, ns, &text).await?;
    let name = args.name.or(created).context("no Dataset in the manifest and no --name")?;
    let mut seen: BTreeMap<&'static str, Duration> = BTreeMap::new();
    seen.insert("objects created", t0.elapsed());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_seconds);
    while seen.len() < STEPS.len() {
        let Ok(Some((kind, obj))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            eprintln!("timed out after {} s", args.timeout_seconds);
            break;
        };
        let at = t0.elapsed();
        for step in steps_of(kind, &obj, &name, ns) {
            seen.entry(step).or_insert(at);
        }
    }

    println!("| step | at (ms) | step took (ms) |\n|---|---|---|");
    let mut previous = Duration::ZERO;
    for step in STEPS {
        match seen.get(step) {
            Some(at) => {
                let share = at.saturating_sub(previous);
                previous = previous.max(*at);
                println!("| {step} | {} | {} |", at.as_millis(), share.as_millis());
            }
            None => println!("| {step} | not seen | |"),
        }
    }
    if seen.len() < STEPS.len() {
        std::process::exit(1);
    }
    Ok(())
}

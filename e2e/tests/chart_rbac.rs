//! The Helm chart's RBAC is exactly what the components need at run time.
//!
//! The chart is rendered with `helm template`; its ServiceAccounts, ClusterRoles, Roles and bindings are
//! applied into a namespace of their own (the "release namespace"). Each component gets a token of its
//! chart ServiceAccount (`kubectl create token`) and a kubeconfig that uses only that token. Then the real
//! dataset-controller, runtime-controller and metrics-collector run with those kubeconfigs — leader-elected
//! on Leases in the release namespace, the two controllers watching only a second namespace where the seed
//! flow runs (the chart grants them cluster-wide; a namespaced run uses a subset of the same rules, and
//! nodes and PVs are cluster-scoped anyway). The flow: Secret + Dataset with an `encryptOptions` metaurl,
//! JuiceFSRuntime → Dataset Bound, PVC Bound, worker node labelled, `cacheStates` written by the collector
//! (its scrape target is a tiny HTTP server on the worker pod's kwok IP) → Dataset deleted → PV, PVC,
//! workloads, node labels and the runtime all gone. The webhook runs beside them with its own token: it
//! creates its certificate Secret in the release namespace, publishes its CA into the chart's
//! MutatingWebhookConfiguration (applied too; it selects no namespace of this test) and becomes ready on
//! its dataset and node caches. No component may log a 403/Forbidden.
//!
//! "Nothing more": `kubectl auth can-i --list --as=system:serviceaccount:<ns>:<sa>` of every component
//! (csi-plugin included) must equal the table below — no wildcard, no Secret access beyond the
//! dataset-controller's `get` and the webhook's own certificate Secret, Leases only by name for get/patch.

use anyhow::{Context, Result, bail, ensure};
use ferrofluid_api::DatasetKey;
use ferrofluid_api::keys::{self, CapacityKind, LABEL_DATASET_NUM};
use ferrofluid_e2e::TempDir;
use ferrofluid_e2e::chart::{self, render};
use ferrofluid_e2e::fake_metrics::{self, MetricsEndpoint};
use ferrofluid_e2e::process::eventually;
use ferrofluid_e2e::redis::free_port;
use ferrofluid_e2e::{TestNamespace, bin_path, kubectl, kubectl_ok, manifest};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);
const COMPONENTS: [&str; 6] =
    ["dataset-controller", "runtime-controller", "dataops-controller", "metrics-collector", "webhook", "csi-plugin"];
const RBAC_KINDS: [&str; 5] = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];
/// Components without leader election (no Lease).
const NO_LEASE: [&str; 2] = ["webhook", "csi-plugin"];

/// One granted permission as `kubectl auth can-i --list` prints it: resource, resource names, verbs.
type Grant = (String, String, String);

fn grant(resource: &str, names: &str, verbs: &str) -> Grant {
    (resource.to_string(), names.to_string(), verbs.to_string())
}

/// What each component of release `release` may do, derived from the API calls in its code (docs/helm.md
/// explains each). `in_release_ns`: the listing for the release namespace, which adds the leader-election
/// Lease (and the webhook's certificate Secret).
fn expected(component: &str, release: &str, in_release_ns: bool) -> BTreeSet<Grant> {
    let events = grant("events.events.k8s.io", "[]", "[create patch]");
    let mut set: BTreeSet<Grant> = match component {
        "dataset-controller" => [
            grant("datasets.data.fluid.io", "[]", "[get list watch patch]"),
            grant("datasets.data.fluid.io/status", "[]", "[patch]"),
            grant("pods", "[]", "[list watch]"),
            events,
        ]
        .into(),
        "runtime-controller" => [
            grant("juicefsruntimes.data.fluid.io", "[]", "[get list watch patch]"),
            grant("juicefsruntimes.data.fluid.io/status", "[]", "[patch]"),
            grant("datasets.data.fluid.io", "[]", "[get list watch patch]"),
            grant("datasets.data.fluid.io/status", "[]", "[patch]"),
            grant("statefulsets.apps", "[]", "[get list watch create patch delete]"),
            grant("daemonsets.apps", "[]", "[get list watch create patch delete]"),
            grant("persistentvolumeclaims", "[]", "[get list watch create patch delete]"),
            grant("pods", "[]", "[list watch]"),
            grant("jobs.batch", "[]", "[get list watch create patch delete]"),
            grant("persistentvolumes", "[]", "[get list watch create patch delete]"),
            grant("nodes", "[]", "[get list watch patch]"),
            events,
        ]
        .into(),
        "dataops-controller" => [
            grant("dataloads.data.fluid.io", "[]", "[get list watch patch delete]"),
            grant("datamigrates.data.fluid.io", "[]", "[get list watch patch delete]"),
            grant("dataprocesses.data.fluid.io", "[]", "[get list watch patch delete]"),
            grant("dataloads.data.fluid.io/status", "[]", "[patch]"),
            grant("datamigrates.data.fluid.io/status", "[]", "[patch]"),
            grant("dataprocesses.data.fluid.io/status", "[]", "[patch]"),
            grant("datasets.data.fluid.io", "[]", "[list watch]"),
            grant("juicefsruntimes.data.fluid.io", "[]", "[list watch]"),
            grant("datasets.data.fluid.io/status", "[]", "[patch]"),
            grant("jobs.batch", "[]", "[get list watch create delete]"),
            grant("pods", "[]", "[list watch]"),
            grant("persistentvolumes", "[]", "[get]"),
            grant("nodes", "[]", "[list watch]"),
            events,
        ]
        .into(),
        "metrics-collector" => [
            grant("pods", "[]", "[list watch]"),
            grant("juicefsruntimes.data.fluid.io", "[]", "[list watch]"),
            grant("datasets.data.fluid.io", "[]", "[list watch]"),
            grant("juicefsruntimes.data.fluid.io/status", "[]", "[patch]"),
            grant("datasets.data.fluid.io/status", "[]", "[patch]"),
        ]
        .into(),
        "webhook" => [
            grant("datasets.data.fluid.io", "[]", "[list watch]"),
            grant("persistentvolumeclaims", "[]", "[list watch]"),
            grant("nodes", "[]", "[list watch]"),
            grant(
                "mutatingwebhookconfigurations.admissionregistration.k8s.io",
                &format!("[{release}-ferrofluid-webhook]"),
                "[list watch patch]",
            ),
        ]
        .into(),
        "csi-plugin" => {
            [grant("juicefsruntimes.data.fluid.io", "[]", "[get]"), grant("nodes", "[]", "[get patch]"), events].into()
        }
        other => panic!("unknown component {other}"),
    };
    if in_release_ns && component == "webhook" {
        set.insert(grant("secrets", "[]", "[create]"));
        set.insert(grant("secrets", &format!("[{release}-ferrofluid-webhook-cert]"), "[list watch update]"));
    }
    if in_release_ns && !NO_LEASE.contains(&component) {
        set.insert(grant("leases.coordination.k8s.io", "[]", "[create]"));
        set.insert(grant("leases.coordination.k8s.io", &format!("[ferrofluid-{component}]"), "[get patch]"));
    }
    set
}

/// Granted to every authenticated user by the cluster's default roles, not by the chart.
fn is_default_grant(resource: &str) -> bool {
    resource.starts_with("selfsubject")
}

/// Cluster-scoped objects of one test release, removed on drop (the namespaces are TestNamespaces).
struct Release {
    name: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let selector = format!("app.kubernetes.io/instance={}", self.name);
        let kinds = "clusterrole,clusterrolebinding,mutatingwebhookconfiguration";
        let _ = kubectl(&["delete", kinds, "-l", &selector, "--ignore-not-found"], None);
    }
}

/// When a run fails midway, the controllers are gone before the flow namespace is deleted: remove the
/// finalizers they would have handled, the dataset's PV and its node labels, so nothing is left behind.
/// After a successful run there is nothing left for it to do.
struct FlowCleanup {
    key: DatasetKey,
}

impl Drop for FlowCleanup {
    fn drop(&mut self) {
        let ns = self.key.namespace.as_str();
        let unfinalize = r#"{"metadata":{"finalizers":null}}"#;
        for kind in ["juicefsruntime", "dataset"] {
            let _ = kubectl(&["-n", ns, "patch", kind, &self.key.name, "--type", "merge", "-p", unfinalize], None);
        }
        let _ = kubectl(&["delete", "pv", &self.key.pv_name(), "--ignore-not-found", "--wait=false"], None);
        let keys = [
            self.key.worker_node_label(),
            self.key.juicefs_worker_node_label(),
            self.key.fuse_node_label(),
            self.key.capacity_node_label(CapacityKind::Memory),
            self.key.capacity_node_label(CapacityKind::Disk),
            self.key.capacity_node_label(CapacityKind::Total),
        ];
        let Ok(out) = kubectl(&["get", "nodes", "-o", "json"], None) else { return };
        let Ok(nodes) = serde_json::from_str::<Value>(&out.stdout) else { return };
        for node in nodes["items"].as_array().into_iter().flatten() {
            let Some(labels) = node["metadata"]["labels"].as_object() else { continue };
            if !keys.iter().any(|k| labels.contains_key(k)) {
                continue;
            }
            // Drop this dataset's keys and recount `fluid.io/dataset-num` as the runtime-controller would.
            let mut patch = serde_json::Map::new();
            for k in keys.iter().filter(|k| labels.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            let remaining =
                labels.keys().filter(|k| k.starts_with("fluid.io/s-juicefs-") && !keys.contains(*k)).count();
            patch.insert(
                LABEL_DATASET_NUM.into(),
                if remaining > 0 { Value::String(remaining.to_string()) } else { Value::Null },
            );
            let body = json!({"metadata": {
                "labels": patch, "resourceVersion": node["metadata"]["resourceVersion"],
            }});
            let name = node["metadata"]["name"].as_str().unwrap_or_default();
            let _ = kubectl(&["patch", "node", name, "--type", "merge", "-p", &body.to_string()], None);
        }
    }
}

/// Server and CA of the local cluster, from the admin kubeconfig (the token replaces the admin user).
/// A kubeconfig (mode 0600) that authenticates with a fresh token of `sa` in `ns`.
fn token_kubeconfig(dir: &Path, sa: &str, ns: &str) -> Result<PathBuf> {
    chart::token_kubeconfig(dir, sa, &chart::service_account_token(sa, ns, None)?)
}

/// A component binary run with its own kubeconfig; SIGTERM (so it releases its Lease) then SIGKILL on drop.
struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    http: SocketAddr,
}

impl Proc {
    fn start(bin: &str, kubeconfig: &Path, log_dir: &Path, args: &[String]) -> Result<Self> {
        let http: SocketAddr = args
            .iter()
            .position(|a| a == "--http-addr")
            .and_then(|i| args.get(i + 1))
            .context("--http-addr is required")?
            .parse()?;
        let log = log_dir.join(format!("{bin}.log"));
        let out = std::fs::File::create(&log)?;
        let crate_target = bin.replace('-', "_");
        let child = Command::new(bin_path(bin))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("RUST_LOG", format!("info,{crate_target}=debug"))
            .env("POD_NAME", format!("chart-rbac-{bin}"))
            .env_remove("KUBECONFIG")
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        Ok(Self { name: bin.into(), child: Some(child), log, http })
    }

    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Status line of `GET /readyz`, after checking that the process still runs.
    fn readyz(&mut self) -> Result<String> {
        ensure!(self.still_running(), "{} exited:\n{}", self.name, self.log_text());
        let mut s = std::net::TcpStream::connect_timeout(&self.http, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    }

    fn still_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log_text());
        }
    }
}

/// Parses `kubectl auth can-i --list` into resource grants (non-resource URL lines are skipped).
fn parse_can_i(text: &str) -> Result<BTreeSet<Grant>> {
    let mut grants = BTreeSet::new();
    for line in text.lines().skip(1) {
        if line.starts_with(char::is_whitespace) || line.trim().is_empty() {
            continue; // a non-resource URL
        }
        let (resource, rest) = line.split_once(char::is_whitespace).context("can-i line")?;
        let groups: Vec<&str> = rest.split(']').map(|g| g.trim()).filter(|g| !g.is_empty()).collect();
        let [non_resource, names, verbs] = groups.as_slice() else { bail!("unexpected can-i line {line:?}") };
        ensure!(*non_resource == "[", "resource line with non-resource URLs: {line:?}");
        grants.insert((resource.to_string(), format!("{names}]"), format!("{verbs}]")));
    }
    Ok(grants)
}

fn can_i_list(sa_ns: &str, sa: &str, ns: &str) -> Result<BTreeSet<Grant>> {
    let user = format!("--as=system:serviceaccount:{sa_ns}:{sa}");
    let text = kubectl_ok(&["auth", "can-i", "--list", &user, "-n", ns], None)?;
    Ok(parse_can_i(&text)?.into_iter().filter(|(r, _, _)| !is_default_grant(r)).collect())
}

fn jsonpath(ns: &str, what: &[&str], path: &str) -> Result<String> {
    let mut args = vec!["-n", ns, "get"];
    args.extend_from_slice(what);
    let p = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &p, "--ignore-not-found"]);
    Ok(kubectl_ok(&args, None)?.trim().to_string())
}

async fn wait_for(ns: &str, what: &[&str], path: &str, want: &str) {
    let desc = format!("{} {path} = {want:?}", what.join(" "));
    eventually(&desc, T, || async { Ok((jsonpath(ns, what, path)? == want).then_some(())) }).await
}

async fn wait_gone(ns: &str, what: &[&str]) {
    let desc = format!("{} to be deleted", what.join(" "));
    eventually(&desc, T, || async {
        let mut args = vec!["-n", ns, "get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "name", "--ignore-not-found"]);
        Ok(kubectl_ok(&args, None)?.trim().is_empty().then_some(()))
    })
    .await
}

#[test]
fn chart_rbac_grants_no_wildcards_and_no_secret_writes() -> Result<()> {
    for values in [
        &[][..],
        &["--set", "watchNamespace=somewhere", "--set", "rbac.ownerReferencesPermissionEnforcement=true"],
        &[
            "--set",
            "datasetController.checkSecrets.enabled=true",
            "--set",
            "datasetController.checkSecrets.namespaces={a}",
        ],
    ] {
        let docs = render("static", "ferrofluid-system", values)?;
        let roles: Vec<&Value> =
            docs.iter().filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "Role"))).collect();
        ensure!(roles.len() >= 7, "expected the roles of four components, got {}", roles.len());
        for role in roles {
            let name = role["metadata"]["name"].as_str().unwrap_or_default();
            for rule in role["rules"].as_array().context("rules")? {
                for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    let items = rule[field].as_array().cloned().unwrap_or_default();
                    ensure!(
                        !items.iter().any(|v| v.as_str().is_some_and(|s| s.contains('*'))),
                        "{name}: wildcard in {rule}"
                    );
                }
                ensure!(rule.get("nonResourceURLs").is_none(), "{name}: non-resource rule {rule}");
                let verbs: BTreeSet<&str> =
                    rule["verbs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                for v in ["escalate", "bind", "impersonate", "deletecollection"] {
                    ensure!(!verbs.contains(v), "{name}: verb {v} in {rule}");
                }
                let resources: Vec<&str> =
                    rule["resources"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                if resources.contains(&"secrets") {
                    ensure!(resources == ["secrets"], "{name}: Secrets in a rule with other resources: {rule}");
                    let names: Vec<&str> =
                        rule["resourceNames"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    if name.ends_with("dataset-controller-secrets") {
                        ensure!(verbs == BTreeSet::from(["get"]), "{name}: Secrets beyond get: {rule}");
                    } else if name.ends_with("webhook-cert") {
                        // The webhook's certificate Secret: created (not restrictable by name), then watched and
                        // replaced by name only; no other Secret.
                        ensure!(role["kind"] == "Role", "{name}: the certificate rules must be namespaced: {rule}");
                        let own = names == ["static-ferrofluid-webhook-cert"];
                        ensure!(
                            (names.is_empty() && verbs == BTreeSet::from(["create"]))
                                || (own && verbs == BTreeSet::from(["list", "update", "watch"])),
                            "{name}: Secrets beyond creating and updating its own certificate Secret: {rule}"
                        );
                    } else {
                        bail!("{name} may not touch Secrets: {rule}");
                    }
                }
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_runs_the_seed_flow_with_exactly_the_granted_rules() -> Result<()> {
    let release_ns = TestNamespace::new("chart-rbac")?;
    let flow = TestNamespace::new("chart-flow")?;
    let release = Release { name: format!("rbac{}", std::process::id()) };
    let work = TempDir::new("ferrofluid-chart-rbac")?;
    let _cleanup = FlowCleanup { key: DatasetKey::new(&flow.name, "jfsdemo") };

    // 1. The chart's ServiceAccounts and RBAC, applied as the chart renders them, and its webhook
    //    configuration (its namespaceSelector matches no namespace of this test: nothing is sent to it).
    let docs = render(&release.name, &release_ns.name, &[])?;
    let rbac = chart::of_kinds(&docs, &RBAC_KINDS);
    ensure!(!rbac.is_empty(), "the chart renders no RBAC");
    chart::apply(&rbac, "chart-rbac-test")?;
    let config = format!("{}-ferrofluid-webhook", release.name);
    let configs = chart::of_kinds(&docs, &["MutatingWebhookConfiguration"]);
    ensure!(configs.len() == 1, "the chart renders {} webhook configurations", configs.len());
    chart::apply(&configs, "chart-rbac-test")?;
    let sa = |component: &str| format!("{}-ferrofluid-{component}", release.name);

    // 2. Nothing more than the table says, for every component, in the release namespace and elsewhere.
    for component in COMPONENTS {
        for (ns, in_release_ns) in [(&release_ns.name, true), (&flow.name, false)] {
            let got = can_i_list(&release_ns.name, &sa(component), ns)?;
            let want = expected(component, &release.name, in_release_ns);
            let extra: Vec<_> = got.difference(&want).collect();
            let missing: Vec<_> = want.difference(&got).collect();
            ensure!(
                extra.is_empty() && missing.is_empty(),
                "{component} in {ns}: granted beyond the table {extra:?}; in the table but not granted {missing:?}"
            );
        }
    }

    // 3. The real components, each with only its ServiceAccount's token.
    let http = || -> Result<String> { Ok(format!("127.0.0.1:{}", free_port()?)) };
    let lease_args = |extra: &[&str]| -> Result<Vec<String>> {
        let mut v: Vec<String> =
            ["--http-addr", &http()?, "--lease-namespace", &release_ns.name, "--leader-elect=true"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        Ok(v)
    };
    let mut procs = vec![
        Proc::start(
            "dataset-controller",
            &token_kubeconfig(&work.0, &sa("dataset-controller"), &release_ns.name)?,
            &work.0,
            &lease_args(&["--namespace", &flow.name, "--recheck-seconds", "1"])?,
        )?,
        Proc::start(
            "runtime-controller",
            &token_kubeconfig(&work.0, &sa("runtime-controller"), &release_ns.name)?,
            &work.0,
            &lease_args(&["--namespace", &flow.name, "--resync-seconds", "5"])?,
        )?,
        Proc::start(
            "dataops-controller",
            &token_kubeconfig(&work.0, &sa("dataops-controller"), &release_ns.name)?,
            &work.0,
            &lease_args(&["--namespace", &flow.name])?,
        )?,
        Proc::start(
            "metrics-collector",
            &token_kubeconfig(&work.0, &sa("metrics-collector"), &release_ns.name)?,
            &work.0,
            &lease_args(&["--scrape-interval", "1s", "--scrape-timeout", "1s"])?,
        )?,
        // Not leader-elected; its Secret and configuration are the chart's names, in the release namespace.
        Proc::start(
            "webhook",
            &token_kubeconfig(&work.0, &sa("webhook"), &release_ns.name)?,
            &work.0,
            &[
                "--http-addr".to_string(),
                http()?,
                "--tls-addr".to_string(),
                format!("127.0.0.1:{}", free_port()?),
                "--cert-hosts=127.0.0.1".to_string(),
                format!("--cert-namespace={}", release_ns.name),
                format!("--cert-secret={}-cert", config),
                format!("--webhook-config={config}"),
            ],
        )?,
    ];

    // Each serves /readyz (a standby is ready too, so this does not wait for leadership).
    for p in &mut procs {
        let name = p.name.clone();
        let deadline = Instant::now() + T;
        loop {
            match p.readyz() {
                Ok(status) if status.contains(" 200 ") => break,
                Err(e) if !p.still_running() => return Err(e),
                _ => {}
            }
            ensure!(Instant::now() < deadline, "{name} never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The webhook made its certificate Secret and published its CA in the configuration (both before it
    // became ready; waited for all the same, as the runner reports ready for an instant before the
    // webhook's own work says otherwise).
    wait_for(&release_ns.name, &["secret", &format!("{config}-cert")], "{.type}", "kubernetes.io/tls").await;
    eventually(&format!("the webhook's CA in {config}"), T, || async {
        let path = "{.webhooks[0].clientConfig.caBundle}";
        Ok((!jsonpath(&release_ns.name, &["mutatingwebhookconfiguration", &config], path)?.is_empty()).then_some(()))
    })
    .await;

    // 4. The seed flow in the flow namespace.
    let ns = flow.name.as_str();
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(&manifest("seed-dataset-with-secret.yaml")))?;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.phase}", "NotBound").await;
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(&manifest("seed-runtime.yaml")))?;
    wait_for(ns, &["juicefsruntime", "jfsdemo"], "{.status.workerPhase}", "Ready").await;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.phase}", "Bound").await;
    wait_for(ns, &["pvc", "jfsdemo"], "{.status.phase}", "Bound").await;
    let key = DatasetKey::new(ns, "jfsdemo");
    wait_for(ns, &["pv", &key.pv_name()], "{.status.phase}", "Bound").await;
    let worker_node = jsonpath(ns, &["pods", "-l", "role=juicefs-worker"], "{.items[0].spec.nodeName}")?;
    ensure!(!worker_node.is_empty(), "no worker pod on a node");
    let label_path = format!("{{.metadata.labels.{}}}", key.juicefs_worker_node_label().replace('.', "\\."));
    wait_for(ns, &["node", &worker_node], &label_path, "true").await;

    // The collector scrapes the worker pod's metrics port; serve it, and wait for cacheStates in both statuses.
    let ip = jsonpath(ns, &["pods", "-l", "role=juicefs-worker"], "{.items[0].status.podIP}")?;
    let port = jsonpath(
        ns,
        &["pods", "-l", "role=juicefs-worker"],
        "{.items[0].spec.containers[0].ports[?(@.name==\"metrics\")].containerPort}",
    )?;
    let addr: SocketAddr = format!("{ip}:{port}").parse().with_context(|| format!("worker endpoint {ip}:{port}"))?;
    let metrics = MetricsEndpoint::fixed(addr, fake_metrics::exposition(1048576, 3, 1, 4194304))?;
    wait_for(ns, &["juicefsruntime", "jfsdemo"], "{.status.cacheStates.cached}", "1.00MiB").await;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.cacheStates.cached}", "1.00MiB").await;
    drop(metrics);

    // A DataLoad: the lock taken, a warm-up Job created (its pod is not run on these kwok nodes), progress
    // in the status; deleted, it cancels: the Job gone, the lock released.
    let load = "apiVersion: data.fluid.io/v1alpha1\nkind: DataLoad\nmetadata:\n  name: warm\nspec:\n  dataset:\n    name: jfsdemo\n  ttlSecondsAfterFinished: 600\n";
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(load))?;
    wait_for(ns, &["dataload", "warm"], "{.status.phase}", "Executing").await;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.operationRef.DataLoad}", "warm").await;
    let jobs = jsonpath(
        ns,
        &["jobs", "-l", "role=dataload"],
        "{.items[*].metadata.annotations.ferrofluid\\.io/operation-node}",
    )?;
    ensure!(jobs == worker_node, "one warm-up Job, on the cache node {worker_node}: {jobs:?}");
    kubectl_ok(&["-n", ns, "delete", "dataload", "warm", "--wait=false"], None)?;
    wait_gone(ns, &["dataload", "warm"]).await;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.operationRef.DataLoad}", "").await;
    wait_for(ns, &["jobs", "-l", "role=dataload"], "{.items[*].metadata.name}", "").await;

    // Every component holds its Lease in the release namespace.
    for component in ["dataset-controller", "runtime-controller", "dataops-controller", "metrics-collector"] {
        let holder =
            jsonpath(&release_ns.name, &["lease", &format!("ferrofluid-{component}")], "{.spec.holderIdentity}")?;
        ensure!(holder.starts_with(&format!("chart-rbac-{component}_")), "lease of {component} held by {holder:?}");
    }

    // A dataset that refers to this one (in the same namespace: the controllers here watch only this
    // one), once it is shared: bound onto it (the runtime-controller's finalizer, PV and PVC for it), then
    // deleted without a trace.
    let share = format!("{}={ns}", keys::ANNOTATION_SHARE_WITH);
    kubectl_ok(&["-n", ns, "annotate", "dataset", "jfsdemo", &share], None)?;
    let referring = format!(
        "apiVersion: data.fluid.io/v1alpha1\nkind: Dataset\nmetadata:\n  name: shared\nspec:\n  mounts:\n    - \
         mountPoint: dataset://{ns}/jfsdemo\n"
    );
    kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(&referring))?;
    wait_for(ns, &["dataset", "shared"], "{.status.phase}", "Bound").await;
    wait_for(ns, &["pvc", "shared"], "{.status.phase}", "Bound").await;
    wait_for(ns, &["dataset", "jfsdemo"], "{.status.datasetRef[0]}", &format!("{ns}/shared")).await;
    kubectl_ok(&["-n", ns, "delete", "dataset", "shared", "--wait=false"], None)?;
    wait_gone(ns, &["dataset", "shared"]).await;
    wait_gone(ns, &["pvc", "shared"]).await;
    wait_gone(ns, &["pv", &DatasetKey::new(ns, "shared").pv_name()]).await;

    // 5. Deleting the dataset unwinds everything.
    kubectl_ok(&["-n", ns, "delete", "dataset", "jfsdemo", "--wait=false"], None)?;
    wait_gone(ns, &["dataset", "jfsdemo"]).await;
    wait_gone(ns, &["juicefsruntime", "jfsdemo"]).await;
    wait_gone(ns, &["pvc", "jfsdemo"]).await;
    wait_gone(ns, &["pv", &key.pv_name()]).await;
    wait_gone(ns, &["statefulset", "jfsdemo-worker"]).await;
    wait_gone(ns, &["daemonset", "jfsdemo-fuse"]).await;
    let labels = kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.labels}"], None)?;
    ensure!(!labels.contains(&key.dataset_id()), "node labels of {} left: {labels}", key.dataset_id());

    // 6. No component was refused anything, and all are still running.
    for p in &mut procs {
        ensure!(p.still_running(), "{} exited:\n{}", p.name, p.log_text());
    }
    for mut p in procs {
        p.stop();
        let log = p.log_text();
        let refused: Vec<&str> =
            // "code: 403" as kube reports API errors; a bare "403" also matches random lease identities.
            log.lines().filter(|l| l.contains("code: 403") || l.to_lowercase().contains("forbidden")).collect();
        ensure!(refused.is_empty(), "{} was refused:\n{}", p.name, refused.join("\n"));
        ensure!(!log.trim().is_empty(), "{} logged nothing", p.name);
    }
    Ok(())
}

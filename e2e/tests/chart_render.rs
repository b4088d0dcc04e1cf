//! What `helm template` renders for the Deployments, the csi-plugin DaemonSet, the CSIDriver and the
//! webhook's configuration, with default and non-default values: the contract with the binaries' flags,
//! kubelet, the API server and Prometheus.
//! (Applying the renderings to the API server is hack/chart-test.sh; RBAC is chart_rbac.rs.)

use anyhow::{Context, Result, ensure};
use ferrofluid_e2e::{bin_path, tool_path};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn render(extra: &[&str]) -> Result<Vec<Value>> {
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/ferrofluid");
    let out = Command::new(tool_path("helm"))
        .args(["template", "ff"])
        .arg(chart)
        .args(["--namespace", "ferrofluid-system"])
        .args(extra)
        .output()
        .context("running helm template")?;
    ensure!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout)?)?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("{kind} {name} not rendered"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)
}

fn mount<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["volumeMounts"].as_array()?.iter().find(|m| m["name"] == name)
}

fn host_path(pod: &Value, volume: &str) -> Option<String> {
    pod["volumes"].as_array()?.iter().find(|v| v["name"] == volume)?["hostPath"]["path"].as_str().map(String::from)
}

#[test]
fn deployments_are_leader_elected_with_probes_and_metrics() -> Result<()> {
    let docs = render(&[])?;
    for (component, binary_flag) in [
        ("dataset-controller", "--recheck-seconds=15"),
        ("runtime-controller", "--mount-root=/runtime-mnt"),
        ("dataops-controller", "--dataload-parts=4"),
        ("metrics-collector", "--scrape-interval=15s"),
    ] {
        let d = find(&docs, "Deployment", &format!("ff-ferrofluid-{component}"))?;
        ensure!(d["spec"]["replicas"] == 2, "{component}: replicas");
        let pod = &d["spec"]["template"]["spec"];
        ensure!(pod["serviceAccountName"] == format!("ff-ferrofluid-{component}"), "{component}: service account");
        let c = &pod["containers"][0];
        ensure!(c["command"][0] == format!("/usr/local/bin/{component}"), "{component}: command");
        let args = strings(&c["args"]);
        ensure!(args.contains(&"--http-addr=0.0.0.0:8080".to_string()), "{component}: {args:?}");
        ensure!(args.contains(&binary_flag.to_string()), "{component}: {args:?}");
        ensure!(env(c, "FERROFLUID_LEADER_ELECT").is_some_and(|e| e["value"] == "true"), "{component}: leader");
        ensure!(
            env(c, "POD_NAMESPACE").is_some_and(|e| e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"),
            "{component}: POD_NAMESPACE from the downward API (the Lease namespace)"
        );
        ensure!(env(c, "POD_NAME").is_some(), "{component}: POD_NAME");
        ensure!(env(c, "FERROFLUID_WATCH_NAMESPACE").is_none(), "{component}: watches all namespaces by default");
        ensure!(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "{component}: liveness");
        ensure!(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "{component}: readiness");
        ensure!(c["ports"][0]["containerPort"] == 8080 && c["ports"][0]["name"] == "http", "{component}: port");
        let ann = &d["spec"]["template"]["metadata"]["annotations"];
        ensure!(ann["prometheus.io/scrape"] == "true" && ann["prometheus.io/port"] == "8080", "{component}: {ann}");
        ensure!(c["resources"]["requests"]["cpu"].is_string(), "{component}: resources");
        ensure!(c["securityContext"]["readOnlyRootFilesystem"] == true, "{component}: read-only root");
        find(&docs, "Service", &format!("ff-ferrofluid-{component}-metrics"))?;
    }
    Ok(())
}

/// The JuiceFS image of runtimes that name none: one value, `juicefs.image`, given to both controllers that
/// build JuiceFS pods (the runtime-controller's workers and FUSE clients, the dataops-controller's Jobs).
#[test]
fn both_controllers_get_the_default_juicefs_image() -> Result<()> {
    let mirror = ["--set", "juicefs.image.repository=registry.local:5000/jfs", "--set", "juicefs.image.tag=1.4.2"];
    for (values, flag) in [
        (&[][..], "--juicefs-image=juicedata/juicefs-fuse:ce-v1.2.3"),
        (&mirror[..], "--juicefs-image=registry.local:5000/jfs:1.4.2"),
    ] {
        let docs = render(values)?;
        for component in ["runtime-controller", "dataops-controller"] {
            let d = find(&docs, "Deployment", &format!("ff-ferrofluid-{component}"))?;
            let args = strings(&d["spec"]["template"]["spec"]["containers"][0]["args"]);
            ensure!(args.iter().filter(|a| a.starts_with("--juicefs-image=")).count() == 1, "{component}: {args:?}");
            ensure!(args.contains(&flag.to_string()), "{component}: {args:?}");
        }
    }
    Ok(())
}

#[test]
fn csi_daemonset_registers_with_kubelet_and_propagates_mounts() -> Result<()> {
    for (kubelet, mount_root) in [("/var/lib/kubelet", "/runtime-mnt"), ("/var/lib/k0s/kubelet", "/mnt/ff")] {
        let docs = render(&["--set", &format!("kubeletRoot={kubelet}"), "--set", &format!("mountRoot={mount_root}")])?;
        let ds = find(&docs, "DaemonSet", "ff-ferrofluid-csi-plugin")?;
        let pod = &ds["spec"]["template"]["spec"];
        ensure!(pod["hostNetwork"] == true, "hostNetwork");
        let containers = pod["containers"].as_array().context("containers")?;
        let registrar = containers.iter().find(|c| c["name"] == "node-driver-registrar").context("registrar")?;
        let plugin = containers.iter().find(|c| c["name"] == "csi-plugin").context("plugin")?;
        ensure!(
            registrar["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("registry.k8s.io/sig-storage/csi-node-driver-registrar:")),
            "registrar image"
        );
        let reg_args = strings(&registrar["args"]);
        let socket = format!("{kubelet}/plugins/fuse.csi.fluid.io/csi.sock");
        ensure!(reg_args.contains(&format!("--kubelet-registration-path={socket}")), "{reg_args:?}");
        ensure!(reg_args.contains(&"--csi-address=/csi/csi.sock".to_string()), "{reg_args:?}");
        ensure!(host_path(pod, "registration-dir") == Some(format!("{kubelet}/plugins_registry")), "registration dir");
        ensure!(host_path(pod, "plugin-dir") == Some(format!("{kubelet}/plugins/fuse.csi.fluid.io")), "plugin dir");
        ensure!(host_path(pod, "kubelet-dir") == Some(kubelet.to_string()), "kubelet dir");
        ensure!(host_path(pod, "mount-root") == Some(mount_root.to_string()), "mount root");

        let args = strings(&plugin["args"]);
        for want in [
            "--endpoint=unix:///csi/csi.sock".to_string(),
            "--node-id=$(NODE_NAME)".to_string(),
            format!("--mount-root={mount_root}"),
            format!("--kubelet-root={kubelet}"),
        ] {
            ensure!(args.contains(&want), "csi-plugin args {args:?} lack {want}");
        }
        ensure!(
            env(plugin, "NODE_NAME").is_some_and(|e| e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"),
            "NODE_NAME"
        );
        ensure!(plugin["securityContext"]["privileged"] == true, "privileged");
        for (volume, path) in [("kubelet-dir", kubelet), ("mount-root", mount_root)] {
            let m = mount(plugin, volume).with_context(|| format!("{volume} not mounted"))?;
            ensure!(m["mountPath"] == path && m["mountPropagation"] == "Bidirectional", "{volume}: {m}");
        }
        let rc = find(&docs, "Deployment", "ff-ferrofluid-runtime-controller")?;
        let rc_args = strings(&rc["spec"]["template"]["spec"]["containers"][0]["args"]);
        ensure!(rc_args.contains(&format!("--mount-root={mount_root}")), "runtime-controller {rc_args:?}");
    }
    Ok(())
}

#[test]
fn csidriver_storageclass_and_optional_objects() -> Result<()> {
    let docs = render(&[])?;
    let driver = find(&docs, "CSIDriver", "fuse.csi.fluid.io")?;
    ensure!(driver["spec"]["attachRequired"] == false && driver["spec"]["podInfoOnMount"] == true, "{driver}");
    let sc = find(&docs, "StorageClass", "fluid")?;
    ensure!(sc["provisioner"] == "kubernetes.io/no-provisioner" && sc["volumeBindingMode"] == "Immediate", "{sc}");
    ensure!(
        !docs.iter().any(|d| d["kind"] == "ServiceMonitor" || d["kind"] == "PodMonitor" || d["kind"] == "ConfigMap")
    );

    let off = render(&["--set", "csiDriver.create=false", "--set", "storageClass.create=false"])?;
    ensure!(!off.iter().any(|d| d["kind"] == "CSIDriver" || d["kind"] == "StorageClass"), "create=false honoured");

    let monitors = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true"];
    let without_api = render(&monitors)?;
    ensure!(!without_api.iter().any(|d| d["kind"] == "ServiceMonitor" || d["kind"] == "PodMonitor"), "guarded");
    let mut with_api = monitors.to_vec();
    with_api.extend([
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
        "--api-versions",
        "monitoring.coreos.com/v1/PodMonitor",
    ]);
    let with_api = render(&with_api)?;
    find(&with_api, "ServiceMonitor", "ff-ferrofluid")?;
    find(&with_api, "PodMonitor", "ff-ferrofluid-csi-plugin")?;

    let dash = render(&["--set", "dashboards.enabled=true"])?;
    let cm = find(&dash, "ConfigMap", "ff-ferrofluid-dashboards")?;
    ensure!(cm["metadata"]["labels"]["grafana_dashboard"] == "1", "{}", cm["metadata"]);
    let data = cm["data"].as_object().context("dashboard data")?;
    ensure!(!data.is_empty(), "no dashboard in the ConfigMap");
    for (file, json) in data {
        serde_json::from_str::<Value>(json.as_str().unwrap_or_default())
            .with_context(|| format!("{file} is not valid JSON"))?;
    }

    let scoped = render(&["--set", "watchNamespace=team-a", "--set", "leaderElection.enabled=false"])?;
    for component in ["dataset-controller", "runtime-controller", "dataops-controller", "metrics-collector"] {
        let d = find(&scoped, "Deployment", &format!("ff-ferrofluid-{component}"))?;
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        ensure!(env(c, "FERROFLUID_WATCH_NAMESPACE").is_some_and(|e| e["value"] == "team-a"), "{component}");
        ensure!(env(c, "FERROFLUID_LEADER_ELECT").is_some_and(|e| e["value"] == "false"), "{component}");
        let rb = find(&scoped, "RoleBinding", &format!("ff-ferrofluid-{component}"))?;
        ensure!(rb["metadata"]["namespace"] == "team-a" && rb["roleRef"]["kind"] == "ClusterRole", "{rb}");
    }
    ensure!(
        !scoped
            .iter()
            .any(|d| d["kind"] == "Role"
                && d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-leader-election"))),
        "no Lease Role without leader election"
    );
    // Cluster-scoped rules stay cluster-wide; the plugin is never namespace-scoped.
    for name in [
        "ff-ferrofluid-runtime-controller-cluster",
        "ff-ferrofluid-dataops-controller-cluster",
        "ff-ferrofluid-csi-plugin",
    ] {
        find(&scoped, "ClusterRoleBinding", name)?;
    }
    Ok(())
}

/// Every flag and environment variable the chart gives a component is one its binary accepts, with a valid
/// value: each rendered container's command line runs through the real binary's parser (`--help` last, so
/// nothing starts once parsing succeeded).
#[test]
fn rendered_command_lines_parse_with_the_real_binaries() -> Result<()> {
    let variants: [&[&str]; 2] = [
        &[],
        &[
            "--set",
            "watchNamespace=team-a",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "logging.json=false",
            "--set",
            "csiPlugin.fuseRecovery=false",
            "--set",
            "metricsCollector.scrapeInterval=30s",
            "--set",
            "webhook.preferNodesWithoutCache=true",
            "--set",
            "metricsCollector.customMetrics.enabled=true",
            "--set",
            "juicefs.image.repository=registry.local:5000/jfs",
            "--set",
            "juicefs.image.tag=1.4.2",
        ],
    ];
    let mut checked = 0;
    for values in variants {
        let docs = render(values)?;
        for workload in docs.iter().filter(|d| d["kind"] == "Deployment" || d["kind"] == "DaemonSet") {
            for c in workload["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten() {
                let Some(command) = c["command"][0].as_str() else { continue }; // the registrar sidecar
                let binary = command.rsplit('/').next().unwrap_or(command);
                let args: Vec<String> =
                    strings(&c["args"]).into_iter().map(|a| a.replace("$(NODE_NAME)", "node-1")).collect();
                let mut cmd = Command::new(bin_path(binary));
                cmd.env_clear().args(&args).arg("--help");
                for e in c["env"].as_array().into_iter().flatten() {
                    if let (Some(name), Some(value)) = (e["name"].as_str(), e["value"].as_str()) {
                        cmd.env(name, value);
                    }
                }
                let out = cmd.output().with_context(|| format!("running {binary}"))?;
                ensure!(
                    out.status.success(),
                    "{binary} rejects the chart's command line {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    ensure!(checked == 12, "expected 6 components x 2 renderings, checked {checked}");
    Ok(())
}

/// The webhook: a Deployment whose replicas all serve (no leader election) on port `https` with a certificate
/// for the Service's names, the Service on 443, and a MutatingWebhookConfiguration calling it — with the
/// label the webhook requires before it patches `caBundle`, no `caBundle` of its own (Helm must never reset
/// the one the webhook published), and the release namespace never selected.
#[test]
fn webhook_serves_its_configuration_through_its_service() -> Result<()> {
    let docs = render(&[])?;
    let name = "ff-ferrofluid-webhook";
    let d = find(&docs, "Deployment", name)?;
    ensure!(d["spec"]["replicas"] == 2, "replicas");
    let pod = &d["spec"]["template"]["spec"];
    ensure!(pod["serviceAccountName"] == name, "service account");
    let c = &pod["containers"][0];
    ensure!(c["command"][0] == "/usr/local/bin/webhook", "command");
    let args = strings(&c["args"]);
    let svc = "ff-ferrofluid-webhook.ferrofluid-system";
    for want in [
        "--http-addr=0.0.0.0:8080".to_string(),
        "--tls-addr=0.0.0.0:9443".to_string(),
        format!("--cert-hosts={name},{svc},{svc}.svc,{svc}.svc.cluster.local"),
        "--cert-secret=ff-ferrofluid-webhook-cert".to_string(),
        format!("--webhook-config={name}"),
        "--cert-check-interval=1h".to_string(),
    ] {
        ensure!(args.contains(&want), "webhook args {args:?} lack {want}");
    }
    ensure!(!args.iter().any(|a| a.starts_with("--prefer-nodes-without-cache")), "{args:?}");
    ensure!(
        env(c, "POD_NAMESPACE").is_some_and(|e| e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"),
        "POD_NAMESPACE (the certificate Secret's namespace) from the downward API"
    );
    ensure!(env(c, "FERROFLUID_LEADER_ELECT").is_none(), "the webhook is not leader-elected");
    ensure!(env(c, "FERROFLUID_WATCH_NAMESPACE").is_none(), "reads datasets of all namespaces by default");
    let ports = c["ports"].as_array().context("ports")?;
    ensure!(ports.iter().any(|p| p["name"] == "https" && p["containerPort"] == 9443), "{ports:?}");
    ensure!(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness");
    ensure!(c["readinessProbe"]["httpGet"]["port"] == "http", "readiness on the http port");
    ensure!(c["securityContext"]["readOnlyRootFilesystem"] == true, "read-only root");
    find(&docs, "Service", &format!("{name}-metrics"))?;

    let service = find(&docs, "Service", name)?;
    let sp = &service["spec"]["ports"][0];
    ensure!(sp["port"] == 443 && sp["targetPort"] == "https", "{sp}");
    ensure!(service["spec"]["selector"]["app.kubernetes.io/component"] == "webhook", "{}", service["spec"]);

    let cfg = find(&docs, "MutatingWebhookConfiguration", name)?;
    ensure!(cfg["metadata"]["labels"]["ferrofluid.io/inject-ca-bundle"] == "true", "{}", cfg["metadata"]);
    let hooks = cfg["webhooks"].as_array().context("webhooks")?;
    ensure!(hooks.len() == 1, "one webhook: {hooks:?}");
    let w = &hooks[0];
    ensure!(w["name"].as_str().is_some_and(|n| n.matches('.').count() >= 2), "a fully qualified name: {}", w["name"]);
    ensure!(w["clientConfig"].get("caBundle").is_none(), "the chart sets no caBundle: {}", w["clientConfig"]);
    let s = &w["clientConfig"]["service"];
    ensure!(
        s["name"] == name && s["namespace"] == "ferrofluid-system" && s["path"] == "/mutate" && s["port"] == 443,
        "{s}"
    );
    ensure!(strings(&w["admissionReviewVersions"]) == ["v1"], "{}", w["admissionReviewVersions"]);
    ensure!(w["sideEffects"] == "None" && w["reinvocationPolicy"] == "IfNeeded", "{w}");
    ensure!(w["failurePolicy"] == "Ignore" && w["timeoutSeconds"] == 5, "{w}");
    let rule = &w["rules"][0];
    ensure!(
        strings(&rule["operations"]) == ["CREATE"]
            && strings(&rule["apiGroups"]) == [""]
            && strings(&rule["resources"]) == ["pods"],
        "{rule}"
    );
    let own_ns_excluded = |sel: &Value| {
        sel["matchExpressions"].as_array().into_iter().flatten().any(|e| {
            e["key"] == "kubernetes.io/metadata.name"
                && e["operator"] == "NotIn"
                && strings(&e["values"]) == ["ferrofluid-system"]
        })
    };
    let sel = &w["namespaceSelector"];
    ensure!(sel["matchLabels"]["fluid.io/enable-injection"] == "true", "Fluid's opt-in label: {sel}");
    ensure!(own_ns_excluded(sel), "the release namespace is excluded: {sel}");
    let obj = &w["objectSelector"]["matchExpressions"][0];
    ensure!(
        obj["key"] == "fluid.io/enable-injection" && obj["operator"] == "NotIn" && strings(&obj["values"]) == ["false"],
        "Fluid's per-pod opt-out: {obj}"
    );

    // Non-default values.
    let other = render(&[
        "--set",
        "webhook.failurePolicy=Fail",
        "--set",
        "webhook.preferNodesWithoutCache=true",
        "--set",
        "webhook.timeoutSeconds=10",
        "--set",
        "webhook.port=8443",
        "--set",
        "webhook.namespaceSelector=null",
        "--set",
        "webhook.objectSelector=null",
        "--set",
        "watchNamespace=team-a",
    ])?;
    let d = find(&other, "Deployment", name)?;
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&c["args"]);
    ensure!(args.contains(&"--prefer-nodes-without-cache".to_string()), "{args:?}");
    ensure!(args.contains(&"--tls-addr=0.0.0.0:8443".to_string()), "{args:?}");
    ensure!(c["ports"].as_array().into_iter().flatten().any(|p| p["containerPort"] == 8443), "{}", c["ports"]);
    ensure!(env(c, "FERROFLUID_WATCH_NAMESPACE").is_some_and(|e| e["value"] == "team-a"), "watchNamespace");
    let rb = find(&other, "RoleBinding", name)?;
    ensure!(rb["metadata"]["namespace"] == "team-a", "datasets read in team-a only: {rb}");
    let w = &find(&other, "MutatingWebhookConfiguration", name)?["webhooks"][0];
    ensure!(w["failurePolicy"] == "Fail" && w["timeoutSeconds"] == 10, "{w}");
    let sel = &w["namespaceSelector"];
    ensure!(sel.get("matchLabels").is_none() && own_ns_excluded(sel), "every namespace but the release's: {sel}");
    ensure!(w.get("objectSelector").is_none(), "every pod: {w}");

    ensure!(render(&["--set", "webhook.failurePolicy=fail"]).is_err(), "an unknown failurePolicy is refused");
    let off = render(&["--set", "webhook.enabled=false"])?;
    ensure!(
        !off.iter().any(|d| d["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(name))),
        "webhook.enabled=false still renders webhook objects"
    );
    Ok(())
}

/// The custom metrics API: off by default (one provider per cluster); on, the APIService names the
/// Service, whose target is the collector container's `custom-metrics` port, which the collector serves
/// (`--custom-metrics-addr`); its RBAC: SubjectAccessReviews and the front proxy's ConfigMap, nothing more.
#[test]
fn custom_metrics_api_is_registered_through_its_service() -> Result<()> {
    ensure!(!render(&[])?.iter().any(|d| d["kind"] == "APIService"), "an APIService by default");
    let docs = render(&["--set", "metricsCollector.customMetrics.enabled=true"])?;
    let api = docs.iter().find(|d| d["kind"] == "APIService").context("APIService")?;
    ensure!(api["metadata"]["name"] == "v1beta2.custom.metrics.k8s.io", "{api}");
    let svc_name = api["spec"]["service"]["name"].as_str().context("service name")?;
    let svc = docs
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == svc_name)
        .with_context(|| format!("Service {svc_name}"))?;
    ensure!(svc["metadata"]["namespace"] == api["spec"]["service"]["namespace"], "{svc}");
    let port = &svc["spec"]["ports"][0];
    ensure!(port["port"] == api["spec"]["service"]["port"] && port["targetPort"] == "custom-metrics", "{svc}");
    let collector = docs
        .iter()
        .find(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("metrics-collector"))
        })
        .context("collector")?;
    let c = &collector["spec"]["template"]["spec"]["containers"][0];
    let named = c["ports"].as_array().into_iter().flatten().find(|p| p["name"] == "custom-metrics").context("port")?;
    ensure!(strings(&c["args"]).contains(&format!("--custom-metrics-addr=0.0.0.0:{}", named["containerPort"])), "{c}");
    for (k, v) in svc["spec"]["selector"].as_object().context("selector")? {
        ensure!(collector["spec"]["template"]["metadata"]["labels"][k] == *v, "the Service selects the collector pods");
    }
    let rules = docs
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRole" && d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-custom-metrics"))
        })
        .context("ClusterRole")?;
    ensure!(rules["rules"].as_array().map(Vec::len) == Some(1), "{rules}");
    ensure!(rules["rules"][0]["resources"][0] == "subjectaccessreviews" && rules["rules"][0]["verbs"][0] == "create");
    let reader = docs
        .iter()
        .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == "kube-system")
        .context("RoleBinding in kube-system")?;
    ensure!(reader["roleRef"]["name"] == "extension-apiserver-authentication-reader", "{reader}");
    Ok(())
}

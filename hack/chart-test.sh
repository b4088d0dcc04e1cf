#!/usr/bin/env bash
# The Helm chart against the real local control plane:
#   1. `helm lint` with the default values and with non-default ones;
#   2. `helm template` with default and non-default values (watch one namespace, no leader election,
#      another kubelet root, dashboards, owner-reference enforcement), each applied with
#      `kubectl apply --server-side --dry-run=server` (the API server validates every object, CRDs included);
#   3. the default rendering applied for real into namespace $CHART_TEST_NS (kwok nodes "run" the pods),
#      waited for until its Deployments and the DaemonSet are rolled out, then deleted again, together with
#      every cluster-scoped object it created; then the same with `helm install --wait` / `helm uninstall`.
#      The CRDs are never deleted.
# The RBAC of the chart is exercised by the real controllers in e2e/tests/chart_rbac.rs (cargo test).
#
# Needs: the local control plane (make cluster-up) with the CRDs installed; helm and kubectl (hack/setup.sh).
# Env: CHART_TEST_NS (default ferrofluid-chart-test), KUBECONFIG (default .local/kubeconfig).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CHART="charts/ferrofluid"
NS="${CHART_TEST_NS:-ferrofluid-chart-test}"
WATCH_NS="$NS-watch"
RELEASE="chart-test"
export KUBECONFIG="${KUBECONFIG:-$LOCAL_DIR/kubeconfig}"
OUT="$(mktemp -d)"
# Cluster-scoped objects this run created and must remove (kind/name).
CREATED_CLUSTER_OBJECTS=()
# Cluster-scoped kinds the chart renders with the release's labels.
CLUSTER_KINDS="clusterrole,clusterrolebinding,validatingadmissionpolicy,validatingadmissionpolicybinding,mutatingwebhookconfiguration"

for tool in helm kubectl jq; do command -v "$tool" >/dev/null || die "$tool not found: run hack/setup.sh"; done
kubectl get --raw /readyz >/dev/null 2>&1 || die "no API server at $KUBECONFIG: run make cluster-up"
kubectl get crd datasets.data.fluid.io juicefsruntimes.data.fluid.io >/dev/null \
  || die "ferrofluid CRDs are not installed: kubectl apply --server-side -f $CHART/crds/"

cleanup() {
  local rc=$?
  log "cleaning up"
  kubectl delete namespace "$NS" "$WATCH_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  # Only what this release labelled, cluster-wide (ClusterRoles, bindings; CSIDriver/StorageClass below).
  kubectl delete "$CLUSTER_KINDS" -l "app.kubernetes.io/instance=$RELEASE" --ignore-not-found >/dev/null || true
  local obj
  for obj in "${CREATED_CLUSTER_OBJECTS[@]}"; do
    kubectl delete "$obj" --ignore-not-found >/dev/null || true
  done
  rm -rf "$OUT"
  exit $rc
}
trap cleanup EXIT

render() { # render <file> [helm args…]
  local file=$1; shift
  helm template "$RELEASE" "$CHART" --namespace "$NS" "$@" >"$OUT/$file"
}

# Non-default values: one watched namespace, single replicas without leader election, another kubelet
# root and mount root, text logs, owner-reference enforcement, Grafana dashboards, no metrics Services, a
# webhook that fails closed and prefers nodes without cache for pods without a dataset.
NON_DEFAULT=(
  --set "watchNamespace=$WATCH_NS"
  --set leaderElection.enabled=false
  --set datasetController.replicas=1 --set runtimeController.replicas=1 --set metricsCollector.replicas=1
  --set kubeletRoot=/var/lib/k0s/kubelet --set mountRoot=/mnt/ferrofluid
  --set logging.json=false --set logging.level=debug
  --set rbac.ownerReferencesPermissionEnforcement=true
  --set dashboards.enabled=true
  --set metrics.service.enabled=false --set metrics.podAnnotations=false
  --set image.tag=test --set csiPlugin.image.tag=test
  --set csiDriver.create=false --set storageClass.create=false
  --set runtimeController.hostPortRange=30000-30999
  --set webhook.replicas=1 --set webhook.failurePolicy=Fail --set webhook.preferNodesWithoutCache=true
  --set webhook.timeoutSeconds=10 --set webhook.certCheckInterval=10m
  --set datasetController.checkSecrets.enabled=true
  --set runtimePolicy.enabled=true --set 'runtimePolicy.allowedImages={registry.example.com/juicefs/}'
  --set 'runtimePolicy.allowedCachePaths={/dev/shm,/var/jfsCache}'
  --set metricsCollector.customMetrics.enabled=true
)
MINIMAL=(--set metricsCollector.enabled=false --set csiPlugin.enabled=false --set webhook.enabled=false)

log "helm lint"
helm lint --strict "$CHART" >/dev/null
helm lint --strict "$CHART" "${NON_DEFAULT[@]}" >/dev/null
helm lint --strict "$CHART" "${MINIMAL[@]}" >/dev/null

log "helm template"
render default.yaml
render default-crds.yaml --include-crds
render non-default.yaml "${NON_DEFAULT[@]}"
render minimal.yaml "${MINIMAL[@]}"
render monitors.yaml --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true \
  --api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PodMonitor
render monitors-absent.yaml --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true

kinds() { grep -E '^kind: ' "$OUT/$1" | sort | uniq -c | awk '{print $3"="$1}' | tr '\n' ' '; }
log "default: $(kinds default.yaml)"
# prometheus-operator objects only where the cluster serves them.
grep -q '^kind: ServiceMonitor' "$OUT/monitors.yaml" || die "ServiceMonitor missing with its API available"
grep -q '^kind: PodMonitor' "$OUT/monitors.yaml" || die "PodMonitor missing with its API available"
! grep -qE '^kind: (ServiceMonitor|PodMonitor)' "$OUT/monitors-absent.yaml" \
  || die "monitors rendered although the cluster does not serve them"
grep -q '^kind: ConfigMap' "$OUT/non-default.yaml" || die "dashboards ConfigMap missing"
grep -q '^kind: APIService' "$OUT/non-default.yaml" || die "custom metrics APIService missing"
! grep -q '^kind: APIService' "$OUT/default.yaml" || die "the custom metrics APIService is on by default"
if helm template "$RELEASE" "$CHART" --set datasetController.checkSecrets.enabled=true >/dev/null 2>&1; then
  die "checkSecrets without namespaces must not render (Secret reads are never granted cluster-wide)"
fi
! grep -qE '^kind: DaemonSet' "$OUT/minimal.yaml" || die "csiPlugin.enabled=false still renders the plugin"
! grep -qE '^kind: MutatingWebhookConfiguration' "$OUT/minimal.yaml" || die "webhook.enabled=false still renders it"

kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$WATCH_NS" >/dev/null

for f in default-crds.yaml non-default.yaml minimal.yaml; do
  log "server-side dry run: $f"
  kubectl apply --server-side --dry-run=server --force-conflicts --field-manager ferrofluid-chart-test -f "$OUT/$f" >/dev/null
done

# The real apply: the CRDs are already installed (shared by every test), so they are left out; the CSIDriver
# and the `fluid` StorageClass are applied only when absent, so someone else's are never touched or removed.
real=()
for obj in csidriver/fuse.csi.fluid.io storageclass/fluid; do
  if kubectl get "$obj" >/dev/null 2>&1; then
    log "$obj exists already: leaving it out of the real apply"
    case $obj in
      csidriver/*) real+=(--set csiDriver.create=false) ;;
      storageclass/*) real+=(--set storageClass.create=false) ;;
    esac
  else
    CREATED_CLUSTER_OBJECTS+=("$obj")
  fi
done
render real.yaml "${real[@]}"
log "apply into namespace $NS: $(kinds real.yaml)"
kubectl apply --server-side --field-manager ferrofluid-chart-test -f "$OUT/real.yaml" >/dev/null
for d in dataset-controller runtime-controller dataops-controller metrics-collector webhook; do
  kubectl -n "$NS" rollout status "deployment/$RELEASE-ferrofluid-$d" --timeout=120s >/dev/null
done
kubectl -n "$NS" rollout status "daemonset/$RELEASE-ferrofluid-csi-plugin" --timeout=120s >/dev/null
ready=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/instance=$RELEASE" -o json \
  | jq '[.items[] | select(.status.conditions // [] | any(.type == "Ready" and .status == "True"))] | length')
want=$(kubectl -n "$NS" get deployments,daemonsets -l "app.kubernetes.io/instance=$RELEASE" -o json \
  | jq '[.items[] | (.spec.replicas // .status.desiredNumberScheduled)] | add')
log "$ready of $want pods Ready"
[ "$ready" -eq "$want" ] || die "only $ready of $want chart pods are Ready"
if [[ " ${CREATED_CLUSTER_OBJECTS[*]} " == *" csidriver/fuse.csi.fluid.io "* ]]; then
  [ "$(kubectl get csidriver fuse.csi.fluid.io -o jsonpath='{.spec.attachRequired}/{.spec.podInfoOnMount}')" = "false/true" ] \
    || die "CSIDriver fields differ from attachRequired=false podInfoOnMount=true"
fi

log "deleting the release's objects"
kubectl delete -f "$OUT/real.yaml" --ignore-not-found --wait=true --timeout=120s >/dev/null
left=$(kubectl get "$CLUSTER_KINDS" -l "app.kubernetes.io/instance=$RELEASE" -o name)
[ -z "$left" ] || die "left behind: $left"

# The same through Helm itself: install (the CRDs exist already, so --skip-crds), wait until every pod is
# Ready, uninstall. The cleanup trap removes whatever a failure leaves.
log "helm install / uninstall"
helm install "$RELEASE" "$CHART" --namespace "$NS" --skip-crds --wait --timeout 120s "${real[@]}" >/dev/null
[ "$(helm status "$RELEASE" --namespace "$NS" -o json | jq -r .info.status)" = "deployed" ] || die "release not deployed"
helm uninstall "$RELEASE" --namespace "$NS" --wait --timeout 120s >/dev/null
left=$(kubectl get "$CLUSTER_KINDS" -l "app.kubernetes.io/instance=$RELEASE" -o name)
[ -z "$left" ] || die "helm uninstall left behind: $left"
CREATED_CLUSTER_OBJECTS=()
log "chart test passed"

#!/usr/bin/env bash
# Benchmark (not a test): how fast the admission webhook answers. On the local cluster (started for the
# run and stopped after if it was not running), with BENCH_WEBHOOK_NODES (default 1000) plain Node
# objects in the webhook's node cache (no kubelet or kwok behind them, 127.x addresses, deleted after),
# one of which carries the dataset's cache label, a Dataset and its pre-bound PVC, the webhook (release
# build) behind a MutatingWebhookConfiguration whose url is on loopback: e2e/src/bin/bench-webhook.rs
# sends BENCH_WEBHOOK_REQUESTS (2000) dry-run pod creations, BENCH_WEBHOOK_CONCURRENCY (8) at a time, and
# reports the client's, the API server's and the webhook's own latencies (docs/benchmarks.md).
#
#   hack/bench-webhook.sh        (make bench-webhook)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

NODES="${BENCH_WEBHOOK_NODES:-1000}"
REQUESTS="${BENCH_WEBHOOK_REQUESTS:-2000}"
CONCURRENCY="${BENCH_WEBHOOK_CONCURRENCY:-8}"
NS="ferrofluid-bench-webhook"
CONFIG="ferrofluid-bench-webhook"
OUT="$LOCAL_DIR/bench-webhook"
export KUBECONFIG="$LOCAL_DIR/kubeconfig"

"$HACK_DIR/setup.sh" >/dev/null
cargo build --locked --release -p webhook >/dev/null 2>&1 || cargo build --locked --release -p webhook
cargo build --locked --release -p ferrofluid-e2e --bin bench-webhook >/dev/null 2>&1 ||
  cargo build --locked --release -p ferrofluid-e2e --bin bench-webhook
BIN="$REPO_ROOT/target/release"
rm -rf "$OUT"
mkdir -p "$OUT"

started_cluster=0
hook=""
cleanup() {
  [ -z "$hook" ] || stop_group "$hook"
  kubectl delete mutatingwebhookconfiguration "$CONFIG" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete nodes -l ferrofluid.io/bench=webhook --wait=false >/dev/null 2>&1 || true
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  kubectl delete pv "$NS-data" --wait=false >/dev/null 2>&1 || true
  if [ $started_cluster -eq 1 ]; then "$HACK_DIR/local-cluster.sh" down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
  "$HACK_DIR/local-cluster.sh" up
  started_cluster=1
fi
kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/ >/dev/null
kubectl create namespace "$NS" >/dev/null

log "creating $NODES Node objects"
for i in $(seq 0 $((NODES - 1))); do
  cache=""
  [ "$i" -ne 0 ] || cache=", fluid.io/s-$NS-data: \"true\""
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: bench-webhook-$i
  labels: {ferrofluid.io/bench: webhook, kubernetes.io/hostname: bench-webhook-$i$cache}
spec:
  taints: [{key: ferrofluid.io/bench, effect: NoSchedule}]
status:
  addresses: [{type: InternalIP, address: "127.0.$((200 + i / 250)).$((i % 250 + 1))"}]
EOF
done >"$OUT/nodes.yaml"
kubectl apply -f "$OUT/nodes.yaml" >/dev/null

cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: data.fluid.io/v1alpha1
kind: Dataset
metadata: {name: data, namespace: $NS}
spec:
  mounts: [{name: m, mountPoint: "juicefs:///bench"}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: $NS-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  storageClassName: ""
  hostPath: {path: /tmp/ferrofluid-bench-webhook-none}
  claimRef: {namespace: $NS, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: $NS
  labels: {app.kubernetes.io/managed-by: ferrofluid, fluid.io/dataset-id: $NS-data}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: $NS-data
  resources: {requests: {storage: 1Gi}}
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metrics=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: $CONFIG
  labels: {ferrofluid.io/inject-ca-bundle: "true"}
webhooks:
  - name: pods.webhook.ferrofluid.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig: {url: "https://127.0.0.1:$port/mutate"}
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $NS}}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
EOF

spawn_recorded "$OUT/webhook.log" "$BIN/webhook" --kubeconfig "$KUBECONFIG" --http-addr "127.0.0.1:$metrics" \
  --tls-addr "127.0.0.1:$port" --cert-hosts 127.0.0.1 --cert-namespace "$NS" --webhook-config "$CONFIG"
hook=$SPAWNED_PID
deadline=$((SECONDS + 60))
until [ -n "$(kubectl get mutatingwebhookconfiguration "$CONFIG" -o 'jsonpath={.webhooks[0].clientConfig.caBundle}')" ] &&
  curl -sf "http://127.0.0.1:$metrics/readyz" >/dev/null; do
  [ $SECONDS -lt $deadline ] || die "the webhook did not become ready (see $OUT/webhook.log)"
  sleep 0.5
done
log "webhook ready; $REQUESTS dry-run pod creations, $CONCURRENCY at a time"
"$BIN/bench-webhook" --namespace "$NS" --claim data --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
  --webhook-metrics "127.0.0.1:$metrics" --out "$OUT/result.json"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$hook/status" 2>/dev/null || echo "?")
log "webhook peak RSS: ${rss} kB; result in $OUT/result.json"

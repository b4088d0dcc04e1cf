#!/usr/bin/env bash
# Benchmarks (not tests): time to Bound for N datasets over the kwok nodes, and the controllers' CPU
# time and peak memory while they do it. Bounded: N datasets (default 100), one namespace, 10 minutes.
#
#   hack/bench.sh [N]        (make bench)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

N="${1:-${BENCH_DATASETS:-100}}"
NS="ferrofluid-bench"
"$HACK_DIR/setup.sh" >/dev/null
cargo build --locked --release -p dataset-controller -p runtime-controller >/dev/null 2>&1 || cargo build --locked --release -p dataset-controller -p runtime-controller
BIN="$REPO_ROOT/target/release"

started=0
pids=()
unwind() { # delete the datasets while the controllers still run, so nothing is left behind
  kubectl -n "$NS" delete datasets --all --wait=false >/dev/null 2>&1 || true
  local deadline=$(( $(date +%s) + 300 ))
  while [ -n "$(kubectl -n "$NS" get datasets,juicefsruntimes -o name 2>/dev/null)" ] && [ "$(date +%s)" -lt $deadline ]; do
    sleep 1
  done
}
cleanup() {
  [ ${#pids[@]} -gt 0 ] && unwind
  kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ $started -eq 1 ] && "$HACK_DIR/local-cluster.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
if ! "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
  started=1
  "$HACK_DIR/local-cluster.sh" up >/dev/null
fi
export KUBECONFIG="$LOCAL_DIR/kubeconfig"
kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/ >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" create secret generic jfs-secret --from-literal=metaurl=redis://127.0.0.1:6379/1 >/dev/null

"$BIN/dataset-controller" --namespace "$NS" --leader-elect=false --http-addr 127.0.0.1:18181 >"$LOCAL_DIR/bench-ds.log" 2>&1 &
pids+=($!)
"$BIN/runtime-controller" --namespace "$NS" --leader-elect=false --http-addr 127.0.0.1:18182 --concurrency 8 \
  >"$LOCAL_DIR/bench-rt.log" 2>&1 &
pids+=($!)
sleep 1

manifests=$(mktemp)
for i in $(seq 1 "$N"); do
  sed "s/name: jfsdemo/name: bench-$i/" e2e/manifests/seed-dataset-with-secret.yaml | awk 'f; /^---/{f=1}'
  echo "---"
  sed "s/name: jfsdemo/name: bench-$i/" e2e/manifests/seed-runtime.yaml
  echo "---"
done > "$manifests"

start=$(date +%s.%N)
kubectl -n "$NS" apply -f "$manifests" >/dev/null
deadline=$(( $(date +%s) + 600 ))
while :; do
  bound=$(kubectl -n "$NS" get datasets -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$' || true)
  [ "$bound" -ge "$N" ] && break
  [ "$(date +%s)" -lt $deadline ] || { log "only $bound of $N datasets Bound after 600 s"; exit 1; }
  sleep 0.5
done
end=$(date +%s.%N)
pvcs=$(kubectl -n "$NS" get pvc -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Bound$' || true)

stat() { # pid → "cpu_seconds peak_rss_mib"
  local ticks utime stime hwm
  ticks=$(getconf CLK_TCK)
  read -r utime stime < <(awk '{print $14, $15}' "/proc/$1/stat")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$1/status")
  echo "$(echo "scale=2; ($utime + $stime) / $ticks" | bc) $(echo "scale=1; $hwm / 1024" | bc)"
}
read -r ds_cpu ds_mem < <(stat "${pids[0]}")
read -r rt_cpu rt_mem < <(stat "${pids[1]}")
nodes=$(kubectl get nodes -o name | wc -l)
elapsed=$(echo "$end - $start" | bc)
printf '| datasets | nodes | time to all Bound | PVCs Bound | runtime-controller CPU / peak RSS | dataset-controller CPU / peak RSS |\n'
printf '|---|---|---|---|---|---|\n'
printf '| %s | %s | %.1f s | %s | %s s / %s MiB | %s s / %s MiB |\n' "$N" "$nodes" "$elapsed" "$pvcs" "$rt_cpu" "$rt_mem" "$ds_cpu" "$ds_mem"


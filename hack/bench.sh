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

# At rest: the datasets stay Bound while a stand-in for the metrics-collector rewrites every dataset's and
# runtime's cacheStates each SCRAPE seconds (one server-side apply per object, its own field manager, as
# the collector does). Counted from each controller's ferrofluid_api_requests_total: writes (create,
# patch, update, delete), reads (get, list) and watch (re)starts, per minute; and reconciles per minute.
WINDOW="${BENCH_REST_SECONDS:-120}"
SCRAPE="${BENCH_SCRAPE_SECONDS:-15}"
counters() { # port → "writes reads watches reconciles"
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^ferrofluid_api_requests_total/ {
      verb = $0; sub(/.*verb="/, "", verb); sub(/".*/, "", verb)
      if (verb == "get" || verb == "list") r += $NF; else if (verb == "watch") w += $NF; else wr += $NF
    }
    /^ferrofluid_reconciliations_total/ { rc += $NF }
    END { printf "%d %d %d %d\n", wr, r, w, rc }'
}
settled() { # until neither controller sends a request for 10 s (at most 120 s)
  local a b i
  for i in $(seq 1 12); do
    a="$(counters 18181) $(counters 18182)"; sleep 10; b="$(counters 18181) $(counters 18182)"
    [ "$(echo "$a" | awk '{print $1+$2, $5+$6}')" = "$(echo "$b" | awk '{print $1+$2, $5+$6}')" ] && return 0
  done
  log "the controllers did not settle within 120 s; measuring anyway"
}
status_bodies() { # round → one YAML stream of cacheStates applies for every dataset and runtime
  local i kind
  for i in $(seq 1 "$N"); do
    for kind in Dataset JuiceFSRuntime; do
      printf 'apiVersion: data.fluid.io/v1alpha1\nkind: %s\nmetadata: {name: bench-%s}\nstatus: {cacheStates: {cached: "%s.00MiB", cacheHitRatio: "%s.0%%"}}\n---\n' \
        "$kind" "$i" "$1" "$1"
    done
  done
}
read -r _ _ _ setup_rc_rt < <(counters 18182)
read -r setup_w_rt setup_r_rt _ _ < <(counters 18182)
settled
read -r ds_w0 ds_r0 ds_wa0 ds_rc0 < <(counters 18181)
read -r rt_w0 rt_r0 rt_wa0 rt_rc0 < <(counters 18182)
rest_start=$(date +%s)
round=0
while [ $(( $(date +%s) - rest_start )) -lt "$WINDOW" ]; do
  round=$((round + 1))
  status_bodies "$round" | kubectl -n "$NS" apply --server-side --force-conflicts --field-manager bench-collector \
    --subresource=status -f - >/dev/null
  sleep "$SCRAPE"
done
minutes=$(echo "scale=3; ($(date +%s) - $rest_start) / 60" | bc)
read -r ds_w1 ds_r1 ds_wa1 ds_rc1 < <(counters 18181)
read -r rt_w1 rt_r1 rt_wa1 rt_rc1 < <(counters 18182)
per_min() { echo "scale=1; ($2 - $1) / $minutes" | bc; }
printf '\nAt rest, %s datasets Bound, %s s, the stand-in collector writing %s status objects every %s s (%s rounds):\n\n' \
  "$N" "$WINDOW" "$((2 * N))" "$SCRAPE" "$round"
printf '| controller | writes/min | reads/min | watch starts/min | reconciles/min |\n|---|---|---|---|---|\n'
printf '| runtime-controller | %s | %s | %s | %s |\n' "$(per_min "$rt_w0" "$rt_w1")" "$(per_min "$rt_r0" "$rt_r1")" \
  "$(per_min "$rt_wa0" "$rt_wa1")" "$(per_min "$rt_rc0" "$rt_rc1")"
printf '| dataset-controller | %s | %s | %s | %s |\n' "$(per_min "$ds_w0" "$ds_w1")" "$(per_min "$ds_r0" "$ds_r1")" \
  "$(per_min "$ds_wa0" "$ds_wa1")" "$(per_min "$ds_rc0" "$ds_rc1")"
printf '\nSetting up (start to all Bound): runtime-controller %s writes and %s reads in %s reconciles (%s requests per reconcile).\n' \
  "$setup_w_rt" "$setup_r_rt" "$setup_rc_rt" "$(echo "scale=1; ($setup_w_rt + $setup_r_rt) / $setup_rc_rt" | bc)"


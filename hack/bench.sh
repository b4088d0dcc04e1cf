#!/usr/bin/env bash
# Benchmarks (not tests): ferrofluid and Fluid v1.0.8 side by side. For each system in turn, on a fresh
# local cluster (FF_NODES kwok nodes), the same N Dataset + JuiceFSRuntime pairs are created at once; a
# watch (e2e/src/bin/bench-watch.rs) records when each Dataset and PVC is Bound and what the run cost
# (controllers' CPU including their child processes, peak RSS, API requests). One table compares them
# and docs/bench-cdf-N.svg plots the time-to-Bound CDFs (hack/bench-report.py). After ferrofluid's run
# its requests at rest are measured too (BENCH_REST_SECONDS, 0 skips). Then, per system, one traced
# dataset, steady arrivals on the loaded cluster (BENCH_ARRIVAL_RATE pairs per second for
# BENCH_ARRIVAL_SECONDS, 0 skips; only after a complete burst) and the deletion of everything at once
# (BENCH_DELETION=0 skips); each phase is given BENCH_PHASE_TIMEOUT seconds (default 120).
#
#   hack/bench.sh [N]        (make bench; BENCH_DATASETS=1000 FF_NODES=100 make bench for the big run)
#
# Bounded: N datasets in one namespace; each system gets BENCH_TIMEOUT seconds (default 600) from the
# creation of its datasets; everything it started (controllers, watch, cluster) is stopped on any exit.
# The clusters live in $LOCAL_DIR (FERROFLUID_LOCAL and the FF_* ports of hack/local-cluster.sh apply);
# a cluster already running there is refused rather than torn down.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

N="${1:-${BENCH_DATASETS:-100}}"
NODES="${FF_NODES:-3}"
TIMEOUT="${BENCH_TIMEOUT:-600}"
read -r -a SYSTEMS <<<"${BENCH_SYSTEMS:-ferrofluid fluid}"
PORT_BASE="${BENCH_PORT_BASE:-18181}" # ferrofluid +0 +1; Fluid +2 .. +5 (hack/fluid.sh)
NS="ferrofluid-bench"
OUT="$LOCAL_DIR/bench"
export FF_NODES="$NODES" KUBECONFIG="$LOCAL_DIR/kubeconfig"

if "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
  die "a cluster is running at $LOCAL_DIR; the bench needs fresh ones: stop it (make cluster-down) or point FERROFLUID_LOCAL and the FF_*_PORT variables elsewhere"
fi
"$HACK_DIR/setup.sh" >/dev/null
cargo_release() { cargo build --locked --release "$@" >/dev/null 2>&1 || cargo build --locked --release "$@"; }
# Two builds: together, cargo would unify the features of shared dependencies with the e2e crate's and
# the controllers would not be the binaries a release build of their own crates gives.
cargo_release -p dataset-controller -p runtime-controller
cargo_release -p ferrofluid-e2e --bin bench-watch --bin bound-timeline --bin bench-phases
BIN="$REPO_ROOT/target/release"
case " ${SYSTEMS[*]} " in *" fluid "*) "$HACK_DIR/fluid.sh" build ;; esac
rm -rf "$OUT"
mkdir -p "$OUT"

# The seed's Dataset (its metaurl Secret once, shared) and JuiceFSRuntime, N times, placement Shared
# (Fluid's default, Exclusive, puts at most one dataset's workers on a node). Pair i goes to file
# i mod CREATORS: that many kubectl processes create them at once (one kubectl, one object after the
# other, managed only a few objects per second while a system was busy with the first ones).
CREATORS="${BENCH_CREATE_PARALLEL:-8}"
for i in $(seq 1 "$N"); do
  {
    sed -e "s/name: jfsdemo/name: bench-$i/" -e 's/^spec:$/spec:\n  placement: Shared/' \
      e2e/manifests/seed-dataset-with-secret.yaml | awk 'f; /^---/{f=1}'
    echo "---"
    sed "s/name: jfsdemo/name: bench-$i/" e2e/manifests/seed-runtime.yaml
    echo "---"
  } >>"$OUT/manifests-$((i % CREATORS)).yaml"
done

cluster_up=0
pids=()
creators=()
cleanup() {
  local p
  for p in "${creators[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do stop_group "$p"; done
  pids=()
  "$HACK_DIR/fluid.sh" stop >/dev/null 2>&1 || true
  if [ $cluster_up -eq 1 ]; then "$HACK_DIR/local-cluster.sh" down >/dev/null 2>&1 || true; fi
  cluster_up=0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metrics_up() { curl -sf "http://127.0.0.1:$1/metrics" >/dev/null; }
controllers_up() { metrics_up "$DS_PORT" && metrics_up "$RT_PORT"; }
wait_until() { # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@"; do [ $SECONDS -lt $deadline ] || die "timed out waiting for $what"; sleep 0.5; done
}

# Starts SYSTEM's two controllers; sets DS_PID, RT_PID, DS_PORT, RT_PORT.
start_ferrofluid() {
  DS_PORT=$PORT_BASE RT_PORT=$((PORT_BASE + 1))
  # As before this comparison: release builds scoped to the namespace, no leader election, the
  # runtime-controller with 8 concurrent reconciles; the client-side limit is the default 200/s, burst 400.
  spawn_recorded "$OUT/ferrofluid-dataset-controller.log" "$BIN/dataset-controller" --namespace "$NS" \
    --leader-elect=false --http-addr "127.0.0.1:$DS_PORT"
  DS_PID=$SPAWNED_PID; pids+=("$DS_PID")
  spawn_recorded "$OUT/ferrofluid-runtime-controller.log" "$BIN/runtime-controller" --namespace "$NS" \
    --leader-elect=false --http-addr "127.0.0.1:$RT_PORT" --concurrency 8
  RT_PID=$SPAWNED_PID; pids+=("$RT_PID")
  wait_until 60 "ferrofluid's controllers" controllers_up
}
start_fluid() {
  DS_PORT=$((PORT_BASE + 2)) RT_PORT=$((PORT_BASE + 3))
  "$HACK_DIR/fluid.sh" start
  DS_PID=$(cat "$LOCAL_DIR/fluid/run/dataset-controller.pid")
  RT_PID=$(cat "$LOCAL_DIR/fluid/run/juicefsruntime-controller.pid")
}

# One system on a fresh cluster: $OUT/SYSTEM.json (bench-watch's record plus audit and DNS summaries).
run_system() { # ferrofluid | fluid
  local sys=$1 rc=0 p
  log "$sys: fresh cluster, $NODES nodes"
  FF_AUDIT=1 "$HACK_DIR/local-cluster.sh" up >/dev/null
  cluster_up=1
  local run="$LOCAL_DIR/cluster/run"
  if [ "$sys" = fluid ]; then "$HACK_DIR/fluid.sh" install; else
    kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/ >/dev/null
  fi
  kubectl create namespace "$NS" >/dev/null
  kubectl -n "$NS" create secret generic jfs-secret --from-literal=metaurl=redis://127.0.0.1:6379/1 >/dev/null
  "start_$sys"

  spawn_recorded "$OUT/$sys-watch.log" "$BIN/bench-watch" --namespace "$NS" --datasets "$N" \
    --timeout "$TIMEOUT" --out "$OUT/$sys.json" --ready "$OUT/$sys.ready" \
    --process "dataset-controller=$DS_PID" --process "runtime-controller=$RT_PID" \
    --process "kube-apiserver=$(cat "$run/kube-apiserver.pid")" --process "etcd=$(cat "$run/etcd.pid")" \
    --metrics "dataset-controller=127.0.0.1:$DS_PORT" --metrics "runtime-controller=127.0.0.1:$RT_PORT"
  local watch=$SPAWNED_PID; pids+=("$watch")
  wait_until 120 "bench-watch to sync" test -f "$OUT/$sys.ready"
  log "$sys: creating $N datasets"
  local f
  creators=()
  for f in "$OUT"/manifests-*.yaml; do
    kubectl -n "$NS" create -f "$f" >/dev/null &
    creators+=($!)
  done
  for p in "${creators[@]}"; do wait "$p"; done
  creators=()
  wait "$watch" || rc=$?
  [ $rc -eq 0 ] || log "$sys: not every dataset was Bound within ${TIMEOUT} s (bench-watch exit $rc)"
  python3 "$HACK_DIR/bench-report.py" annotate "$OUT/$sys.json" \
    --audit-log "$LOCAL_DIR/cluster/audit.log" --dns-log "$LOCAL_DIR/cluster/dns-queries.log"
  if [ "$sys" = ferrofluid ] && [ $rc -eq 0 ] && [ "${BENCH_REST_SECONDS:-120}" -gt 0 ]; then
    at_rest >"$OUT/at-rest.md"
  fi
  # Where one dataset's time goes, on the cluster as the burst (and the rest) left it: one more
  # pair, traced step by step by its watches (bound-timeline; at most 120 s).
  {
    sed -e 's/name: jfsdemo/name: traced/' -e 's/^spec:$/spec:\n  placement: Shared/' \
      e2e/manifests/seed-dataset-with-secret.yaml | awk 'f; /^---/{f=1}'
    echo "---"
    sed 's/name: jfsdemo/name: traced/' e2e/manifests/seed-runtime.yaml
  } >"$OUT/traced.yaml"
  "$BIN/bound-timeline" --namespace "$NS" --manifest "$OUT/traced.yaml" --timeout-seconds 120 \
    >"$OUT/$sys-trace.md" 2>&1 || log "$sys: the traced dataset did not take every step within 120 s"
  # Steady arrivals on the loaded cluster (only after a complete burst: otherwise the two would mix),
  # then everything deleted at once.
  local phase_timeout="${BENCH_PHASE_TIMEOUT:-120}"
  if [ $rc -eq 0 ] && [ "${BENCH_ARRIVAL_SECONDS:-60}" -gt 0 ]; then
    sed 's/name: traced/name: NAME/' "$OUT/traced.yaml" >"$OUT/arrival.yaml"
    log "$sys: arrivals, ${BENCH_ARRIVAL_RATE:-5}/s for ${BENCH_ARRIVAL_SECONDS:-60} s"
    "$BIN/bench-phases" --namespace "$NS" --out "$OUT/$sys-arrivals.json" arrivals --manifest "$OUT/arrival.yaml" \
      --rate "${BENCH_ARRIVAL_RATE:-5}" --seconds "${BENCH_ARRIVAL_SECONDS:-60}" --timeout "$phase_timeout" \
      >/dev/null || log "$sys: not every arriving dataset was Bound within ${phase_timeout} s of the last creation"
  fi
  if [ "${BENCH_DELETION:-1}" = 1 ]; then
    log "$sys: deleting everything at once"
    "$BIN/bench-phases" --namespace "$NS" --out "$OUT/$sys-deletion.json" deletion --timeout "$phase_timeout" \
      >/dev/null || log "$sys: not everything was gone within ${phase_timeout} s"
  fi
  cleanup
}

# At rest (ferrofluid): the datasets stay Bound while a stand-in for the metrics-collector rewrites every
# dataset's and runtime's cacheStates each SCRAPE seconds (one server-side apply per object, its own
# field manager, as the collector does). Counted from each controller's ferrofluid_api_requests_total:
# writes (create, patch, update, delete), reads (get, list) and watch (re)starts, per minute; and
# reconciles per minute.
at_rest() {
  local WINDOW="${BENCH_REST_SECONDS:-120}" SCRAPE="${BENCH_SCRAPE_SECONDS:-15}"
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
    local a b
    for _ in $(seq 1 12); do
      a="$(counters "$DS_PORT") $(counters "$RT_PORT")"; sleep 10; b="$(counters "$DS_PORT") $(counters "$RT_PORT")"
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
  log "ferrofluid: at rest for ${WINDOW} s"
  local setup_w_rt setup_r_rt setup_rc_rt ds_w0 ds_r0 ds_wa0 ds_rc0 rt_w0 rt_r0 rt_wa0 rt_rc0
  local ds_w1 ds_r1 ds_wa1 ds_rc1 rt_w1 rt_r1 rt_wa1 rt_rc1 rest_start round minutes
  read -r setup_w_rt setup_r_rt _ setup_rc_rt < <(counters "$RT_PORT")
  settled
  read -r ds_w0 ds_r0 ds_wa0 ds_rc0 < <(counters "$DS_PORT")
  read -r rt_w0 rt_r0 rt_wa0 rt_rc0 < <(counters "$RT_PORT")
  rest_start=$(date +%s)
  round=0
  while [ $(($(date +%s) - rest_start)) -lt "$WINDOW" ]; do
    round=$((round + 1))
    status_bodies "$round" | kubectl -n "$NS" apply --server-side --force-conflicts --field-manager bench-collector \
      --subresource=status -f - >/dev/null
    sleep "$SCRAPE"
  done
  minutes=$(echo "scale=3; ($(date +%s) - $rest_start) / 60" | bc)
  read -r ds_w1 ds_r1 ds_wa1 ds_rc1 < <(counters "$DS_PORT")
  read -r rt_w1 rt_r1 rt_wa1 rt_rc1 < <(counters "$RT_PORT")
  per_min() { echo "scale=1; ($2 - $1) / $minutes" | bc; }
  printf '\nferrofluid at rest, %s datasets Bound, %s s, the stand-in collector writing %s status objects every %s s (%s rounds):\n\n' \
    "$N" "$WINDOW" "$((2 * N))" "$SCRAPE" "$round"
  printf '| controller | writes/min | reads/min | watch starts/min | reconciles/min |\n|---|---|---|---|---|\n'
  printf '| runtime-controller | %s | %s | %s | %s |\n' "$(per_min "$rt_w0" "$rt_w1")" "$(per_min "$rt_r0" "$rt_r1")" \
    "$(per_min "$rt_wa0" "$rt_wa1")" "$(per_min "$rt_rc0" "$rt_rc1")"
  printf '| dataset-controller | %s | %s | %s | %s |\n' "$(per_min "$ds_w0" "$ds_w1")" "$(per_min "$ds_r0" "$ds_r1")" \
    "$(per_min "$ds_wa0" "$ds_wa1")" "$(per_min "$ds_rc0" "$ds_rc1")"
  printf '\nSetting up (start to all Bound): runtime-controller %s writes and %s reads in %s reconciles (%s requests per reconcile).\n' \
    "$setup_w_rt" "$setup_r_rt" "$setup_rc_rt" "$(echo "scale=1; ($setup_w_rt + $setup_r_rt) / $setup_rc_rt" | bc)"
}

results=()
for sys in "${SYSTEMS[@]}"; do
  case $sys in ferrofluid | fluid) ;; *) die "BENCH_SYSTEMS: unknown system $sys" ;; esac
  run_system "$sys"
  results+=("$sys=$OUT/$sys.json")
done
python3 "$HACK_DIR/bench-report.py" table --datasets "$N" --nodes "$NODES" --timeout "$TIMEOUT" \
  --svg "docs/bench-cdf-$N.svg" "${results[@]}" | tee "$OUT/table.md"
python3 "$HACK_DIR/bench-report.py" phases "${SYSTEMS[@]/#/$OUT/}" | tee "$OUT/phases.md"
[ -f "$OUT/at-rest.md" ] && cat "$OUT/at-rest.md"
for sys in "${SYSTEMS[@]}"; do
  if [ -f "$OUT/$sys-trace.md" ]; then
    printf '\n%s: one more dataset on the loaded cluster, step by step:\n\n' "$sys"
    cat "$OUT/$sys-trace.md"
  fi
done
log "results, logs and per-dataset timings in $OUT (Fluid's logs in $LOCAL_DIR/fluid/logs); plot in docs/bench-cdf-$N.svg"

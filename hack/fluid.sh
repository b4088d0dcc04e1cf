#!/usr/bin/env bash
# Fluid v1.0.8 (github.com/fluid-cloudnative/fluid) on the local cluster, for hack/bench.sh: its
# dataset-controller and juicefsruntime-controller built from the Go module, run as host processes with
# the flags and environment of Fluid's own chart (charts/fluid/fluid/templates/controller/).
#
#   hack/fluid.sh build     build both controllers into $FF_CACHE/tools and keep Fluid's CRDs and its
#                           juicefs and library charts in $FF_CACHE/fluid-$FLUID_VERSION (idempotent)
#   hack/fluid.sh install   on the cluster of $LOCAL_DIR/kubeconfig: Fluid's 13 CRDs (server-side), the
#                           namespace fluid-system and a stand-in juicefsruntime-controller Deployment
#   hack/fluid.sh start     start both controllers (pids in $LOCAL_DIR/fluid/run), wait until each leads
#   hack/fluid.sh stop      stop them and whatever they started (helm); remove their HOME and TMPDIR
#
# Nothing of Fluid's code is copied into ferrofluid: the binaries come from the module, the CRDs and
# charts are copied out of the module cache into the cache directory at build time.
#
# Ports (loopback only): metrics on $BENCH_PORT_BASE+2 (dataset) and +3 (juicefs), pprof on +4 and +5.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FLUID_MODULE="github.com/fluid-cloudnative/fluid"
FLUID_COMMIT="de578cd23c56a83b527ac00586ab1659cf460f68" # the tag v1.0.8 (the module's Origin.Hash)
FLUID_DATA="$FF_CACHE/fluid-$FLUID_VERSION"            # crds/ and charts/ from the module
FLUID_STATE="$LOCAL_DIR/fluid"                         # per-run: HOME, TMPDIR, logs, pids
PORT_BASE="${BENCH_PORT_BASE:-18181}"
DS_BIN="$FF_CACHE/tools/fluid-dataset-controller-$FLUID_VERSION"
RT_BIN="$FF_CACHE/tools/fluid-juicefsruntime-controller-$FLUID_VERSION"

# --- build -------------------------------------------------------------------------------------------

cmd_build() {
  grep -q "^require $FLUID_MODULE $FLUID_VERSION\$\|	$FLUID_MODULE $FLUID_VERSION " "$HACK_DIR/fluid/go.mod" ||
    die "hack/fluid/go.mod does not pin $FLUID_MODULE $FLUID_VERSION"
  "$HACK_DIR/build-tools.sh" helm >/dev/null # ddc-helm is our helm (before the lock: it takes it too)
  mkdir -p "$FF_CACHE/tools"
  exec 9>"$FF_CACHE/build.lock"
  flock 9
  command -v go >/dev/null || die "Go is required to build Fluid"
  # As Fluid's Makefile stamps its binaries (build date fixed, so builds are reproducible).
  local pkg=$FLUID_MODULE ldflags
  ldflags="-s -w -X $pkg.version=$FLUID_VERSION -X $pkg.gitCommit=$FLUID_COMMIT -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X $pkg.buildDate=1970-01-01_00:00:00"
  local name out
  for name in dataset juicefs; do
    out=$DS_BIN; [ $name = juicefs ] && out=$RT_BIN
    [ -x "$out" ] && continue
    log "building Fluid $FLUID_VERSION cmd/$name (first build takes minutes)"
    (cd "$HACK_DIR/fluid" && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "$ldflags" \
      -o "$out.tmp" "$FLUID_MODULE/cmd/$name")
    mv "$out.tmp" "$out"
  done
  if [ ! -f "$FLUID_DATA/.complete" ]; then
    local src
    src=$(cd "$HACK_DIR/fluid" && go list -m -f '{{.Dir}}' "$FLUID_MODULE")
    rm -rf "$FLUID_DATA"
    mkdir -p "$FLUID_DATA/charts"
    cp -r "$src/charts/fluid/fluid/crds" "$FLUID_DATA/crds"
    cp -r "$src/charts/juicefs" "$src/charts/library" "$FLUID_DATA/charts/"
    chmod -R u+w "$FLUID_DATA" # the module cache is read-only
    # Module zips carry no symlinks: Fluid's repository links the juicefs chart's `library` dependency.
    mkdir -p "$FLUID_DATA/charts/juicefs/charts"
    ln -sfn ../../library "$FLUID_DATA/charts/juicefs/charts/library"
    [ "$(find "$FLUID_DATA/crds" -name '*.yaml' | wc -l)" -eq 13 ] || die "expected 13 CRDs in $src/charts/fluid/fluid/crds"
    touch "$FLUID_DATA/.complete"
  fi
}

# --- install -----------------------------------------------------------------------------------------

kc() { kubectl --kubeconfig "$LOCAL_DIR/kubeconfig" "$@"; }

cmd_install() {
  kc apply --server-side --field-manager fluid-crds -f "$FLUID_DATA/crds/" >/dev/null
  kc wait --for condition=Established --timeout 60s -f "$FLUID_DATA/crds/" >/dev/null
  kc create namespace fluid-system --dry-run=client -o yaml | kc apply -f - >/dev/null
  # Fluid's dataset-controller scales the Deployment of the runtime's controller from 0 to 1 when it
  # first sees a dataset ("runtime controllers on demand") and requeues the dataset if it cannot. We
  # run that controller ourselves, so this one is a stand-in that never runs a pod: paused (no
  # ReplicaSet is ever created) and, should one appear, selecting no node.
  kc apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: juicefsruntime-controller
  namespace: fluid-system
  labels: {control-plane: juicefsruntime-controller}
spec:
  replicas: 0
  paused: true
  selector:
    matchLabels: {control-plane: juicefsruntime-controller}
  template:
    metadata:
      labels: {control-plane: juicefsruntime-controller}
    spec:
      nodeSelector: {ferrofluid.io/bench-stand-in: "never"}
      containers:
      - name: manager
        image: fluidcloudnative/juicefsruntime-controller:v1.0.8
YAML
}

# --- start / stop ------------------------------------------------------------------------------------

start_proc() { # name command...: spawn_recorded (lib.sh), pid in run/NAME.pid
  local name=$1; shift
  spawn_recorded "$FLUID_STATE/logs/$name.log" "$@"
  echo "$SPAWNED_PID" >"$FLUID_STATE/run/$name.pid"
}

leads() { # port lease-name: the controller's metrics report it holds its lease
  local metrics # (not piped into grep -q: under pipefail, curl's SIGPIPE would fail the match)
  metrics=$(curl -sf "http://127.0.0.1:$1/metrics") || return 1
  grep -q "^leader_election_master_status{name=\"$2\"} 1" <<<"$metrics"
}

cmd_start() {
  if [ ! -x "$DS_BIN" ] || [ ! -x "$RT_BIN" ] || [ ! -f "$FLUID_DATA/.complete" ]; then
    die "run hack/fluid.sh build first"
  fi
  rm -rf "${FLUID_STATE:?}/logs" # each start's logs only
  mkdir -p "$FLUID_STATE/logs" "$FLUID_STATE/run" "$FLUID_STATE/bin" "$FLUID_STATE/tmp" "$FLUID_STATE/home"
  # Fluid finds its charts in $HOME/charts and runs helm as `ddc-helm` from PATH: a HOME of its own
  # holds a copy of the two charts (with the library link), and ddc-helm is our helm.
  rm -rf "$FLUID_STATE/home/charts"
  cp -a "$FLUID_DATA/charts" "$FLUID_STATE/home/charts"
  ln -sfn "$FF_BIN/helm" "$FLUID_STATE/bin/ddc-helm"
  local -a common=(env -i "HOME=$FLUID_STATE/home" "PATH=$FLUID_STATE/bin:/usr/local/bin:/usr/bin:/bin"
    "KUBECONFIG=$LOCAL_DIR/kubeconfig" "TMPDIR=$FLUID_STATE/tmp" "HELM_DRIVER=configmap")
  # Flags and environment: the chart's templates with its default values (runtimeWorkers 3,
  # kubeClientQPS 20, kubeClientBurst 30, workQueueQPS 10, workQueueBurst 100); only the listen
  # addresses are loopback here, and FLUID_WORKDIR (/tmp in the chart) is this run's TMPDIR.
  start_proc dataset-controller "${common[@]}" "FLUID_WORKDIR=$FLUID_STATE/tmp" MY_POD_NAMESPACE=fluid-system \
    "$DS_BIN" start --development=false --pprof-addr="127.0.0.1:$((PORT_BASE + 4))" \
    --enable-leader-election --leader-election-namespace=fluid-system --reconcile-workers=3 \
    --kube-api-qps=20 --kube-api-burst=30 --workqueue-qps=10 --workqueue-burst=100 \
    --metrics-addr="127.0.0.1:$((PORT_BASE + 2))"
  start_proc juicefsruntime-controller "${common[@]}" \
    JUICEFS_CE_IMAGE_ENV=juicedata/mount:ce-v1.3.0 JUICEFS_EE_IMAGE_ENV=juicedata/mount:ee-5.2.10-eb0a8b3 \
    MOUNT_ROOT=/runtime-mnt CRITICAL_FUSE_POD=true FLUID_SYNC_RETRY_DURATION=15s \
    "$RT_BIN" start --development=false --pprof-addr="127.0.0.1:$((PORT_BASE + 5))" \
    --enable-leader-election --runtime-workers=3 --kube-api-qps=20 --kube-api-burst=30 \
    --workqueue-qps=10 --workqueue-burst=100 --leader-election-namespace=fluid-system \
    --metrics-addr="127.0.0.1:$((PORT_BASE + 3))"
  local deadline=$((SECONDS + 60))
  until leads $((PORT_BASE + 2)) dataset.data.fluid.io && leads $((PORT_BASE + 3)) juicefs.data.fluid.io; do
    [ $SECONDS -lt $deadline ] || die "Fluid's controllers did not take their leases within 60 s (logs in $FLUID_STATE/logs)"
    sleep 0.5
  done
}

cmd_stop() {
  local f
  for f in "$FLUID_STATE"/run/*.pid; do
    [ -f "$f" ] || continue
    stop_group "$(cat "$f")"
    rm -f "$f"
  done
  rm -rf "${FLUID_STATE:?}/home" "${FLUID_STATE:?}/tmp" "${FLUID_STATE:?}/bin"
}

case "${1:-}" in
  build) cmd_build ;;
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 build | install | start | stop" >&2; exit 2 ;;
esac

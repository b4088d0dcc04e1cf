#!/usr/bin/env bash
# Benchmarks (not tests): CSI call latency (NodeStage/NodePublish/NodeUnpublish/NodeUnstage p50/p99 with
# N volumes already published, and the API requests each call sends) and the data path (sequential
# read of a file through the pod's bind mount vs the raw JuiceFS FUSE mount; cold, JuiceFS disk cache,
# page cache). A real csi-plugin and real JuiceFS clients (Redis metadata, local-directory bucket) run
# in a private mount namespace (`unshare -m`) with e2e/src/bin/bench-csi; see docs/bench-csi.md.
#
#   hack/bench-csi.sh [bench-csi run flags…]     e.g. --counts 0,50 --samples 50 --file-mib 256
#
# Uses the local control plane of $FERROFLUID_LOCAL (FF_* ports, as hack/local-cluster.sh reads them),
# started if it is not running and then stopped again; the plugin acts as node $BENCH_CSI_NODE (default
# node-1). Bounded: BENCH_CSI_TIMEOUT seconds (default 900), then everything is stopped. Every process,
# mount (they exist only in the private namespace) and the work directory go on exit, failure included.
# Env: FERROFLUID_BIN_DIR (csi-plugin and bench-csi; release builds by default), BENCH_CSI_NODE,
#      BENCH_CSI_TIMEOUT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

[ "$(id -u)" -eq 0 ] || die "needs root (mount namespaces, FUSE)"
for tool in juicefs redis-server unshare nsenter fincore; do
  command -v "$tool" >/dev/null || die "$tool is missing: run hack/setup.sh"
done
NODE="${BENCH_CSI_NODE:-node-1}"
TIMEOUT="${BENCH_CSI_TIMEOUT:-900}"
BIN="${FERROFLUID_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release}"
if [ -z "${FERROFLUID_BIN_DIR:-}" ]; then
  log "building csi-plugin and bench-csi (release)"
  nice -n 10 cargo build --locked --release -p csi-plugin -p ferrofluid-e2e --bin csi-plugin --bin bench-csi >&2
fi
KUBECONFIG_FILE="$LOCAL_DIR/kubeconfig"

started=0 pid="" ns="" WORK=""
# shellcheck disable=SC2317,SC2329 # the EXIT trap
cleanup() {
  local rc=$? left first point
  set +e +o pipefail # clean up as much as possible, whatever fails
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Whatever still runs in the namespace (plugin, juicefs, redis after a hard failure) is killed; its
  # mounts vanish with its last process. First every JuiceFS connection is aborted (`umount -f` of a
  # FUSE mount does): a juicefs thread blocked on its own mount would otherwise never exit.
  if [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; then
    first=$(ns_pids "$ns")
    first=${first%%$'\n'*}
    if [ -n "$first" ]; then
      while read -r point; do
        nsenter -t "$first" -m -- umount --no-canonicalize -f -l "$point" </dev/null 2>/dev/null || true
      done < <(awk '/ - fuse\.juicefs / {print $5}' "/proc/$first/mountinfo" 2>/dev/null)
    fi
    for _ in $(seq 1 50); do
      left=$(ns_pids "$ns")
      [ -z "$left" ] && break
      # shellcheck disable=SC2086
      kill -KILL $left 2>/dev/null || true
      sleep 0.1
    done
    left=$(ns_pids "$ns")
    [ -z "$left" ] || log "warning: processes still in the benchmark's namespace: $(echo "$left" | tr '\n' ' ')"
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  if [ "$started" -eq 1 ]; then
    "$HACK_DIR/local-cluster.sh" down >/dev/null 2>&1 || true
  elif [ -f "$KUBECONFIG_FILE" ]; then
    "$BIN/bench-csi" clean-labels --kubeconfig "$KUBECONFIG_FILE" --node "$NODE" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
  started=1
  log "starting the local control plane ($LOCAL_DIR)"
  "$HACK_DIR/local-cluster.sh" up >/dev/null
fi
kubectl --kubeconfig "$KUBECONFIG_FILE" get node "$NODE" >/dev/null || die "no node $NODE in the local cluster"
# NodeUnstage reads the volume's JuiceFSRuntime (its clean policy): the kind must exist.
kubectl --kubeconfig "$KUBECONFIG_FILE" apply --server-side --field-manager ferrofluid-crds \
  -f charts/ferrofluid/crds/ >/dev/null

WORK="$(mktemp -d /tmp/ferrofluid-bench-csi.XXXXXX)"
mkdir "$WORK/run"
log "bench-csi (node $NODE, work dir $WORK, at most ${TIMEOUT}s)"
# unshare without --fork execs: $pid is bench-csi itself, the first process of the namespace. Redis puts
# its directory under TMPDIR, inside the work directory.
TMPDIR="$WORK" unshare -m --propagation private -- "$BIN/bench-csi" run --work "$WORK/run" \
  --csi-plugin "$BIN/csi-plugin" --kubeconfig "$KUBECONFIG_FILE" --node "$NODE" "$@" &
pid=$!
for _ in $(seq 1 50); do
  ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
  [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] && break
  ns=""
  sleep 0.1
done
deadline=$((SECONDS + TIMEOUT))
while kill -0 "$pid" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || die "bench-csi still running after ${TIMEOUT}s; stopping it"
  sleep 1
done
rc=0
wait "$pid" || rc=$?
pid=""
[ $rc -eq 0 ] || { log "bench-csi failed ($rc); plugin log:"; tail -n 30 "$WORK/run/csi-plugin.log" >&2 || true; }
exit $rc

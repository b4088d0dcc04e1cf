#!/usr/bin/env bash
# csi-sanity (kubernetes-csi/csi-test) against ferrofluid's CSI plugin `fuse.csi.fluid.io`.
#
# The plugin runs on a temporary socket inside a private mount namespace (`unshare -m`), with temporary
# mount and kubelet roots, next to a real JuiceFS FUSE mount (Redis metadata, local-directory object
# store) at the volume's fluid_path, so NodeStage/NodePublish really bind-mount. It labels the local
# cluster's node $CSI_SANITY_NODE (default node-3) while a volume is staged; the label is removed on
# unstage because the test runtime does not exist. Nothing is left mounted on the host.
#
# Needs: the local control plane (make cluster-up), csi-sanity and juicefs (hack/setup.sh), redis-server.
# Env: FERROFLUID_BIN_DIR (where csi-plugin is; built with cargo when missing), CSI_SANITY_NODE,
#      CSI_SANITY_ARGS (extra csi-sanity flags, e.g. --ginkgo.focus=Node); arguments are passed on too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# csi-sanity tests that cannot apply to this driver, as regular expressions on the test names (see
# docs/csi.md): none at present — every test that does not apply skips itself from the capabilities.
SKIP_TESTS="${CSI_SANITY_SKIP:-}"

inner() {
  # Runs inside the private mount namespace: juicefs, the plugin and csi-sanity all see the same mounts.
  FLUID="$WORK/runtime-mnt/juicefs/$RUNTIME_NS/$RUNTIME_NAME/juicefs-fuse"
  JPID="" PPID_CSI=""
  # shellcheck disable=SC2329
  stop() {
    [ -n "$PPID_CSI" ] && kill "$PPID_CSI" 2>/dev/null && wait "$PPID_CSI" 2>/dev/null || true
    [ -n "$JPID" ] && kill -- "-$JPID" 2>/dev/null || true
    sleep 0.5
    umount -l "$FLUID" 2>/dev/null || true
  }
  trap stop EXIT
  # csi-sanity creates the staging and mount dirs with a plain mkdir: their parents must exist.
  local staging="$WORK/kubelet/plugins/kubernetes.io/csi/fuse.csi.fluid.io/sanity/globalmount"
  local mountdir="$WORK/kubelet/pods/sanity/volumes/kubernetes.io~csi/sanity"
  mkdir -p "$FLUID" "$(dirname "$staging")" "$(dirname "$mountdir")"
  setsid juicefs mount "$META_URL" "$FLUID" >"$WORK/juicefs.log" 2>&1 &
  JPID=$!
  for _ in $(seq 100); do
    grep -qF " $FLUID " /proc/self/mountinfo && break
    sleep 0.2
  done
  grep -qF " $FLUID " /proc/self/mountinfo || { cat "$WORK/juicefs.log" >&2; die "juicefs did not mount"; }

  "$BIN_DIR/csi-plugin" --endpoint "unix://$WORK/csi.sock" --node-id "$NODE" --controller-service=true \
    --mount-root "$WORK/runtime-mnt" --kubelet-root "$WORK/kubelet" --kubeconfig "$KUBECONFIG_FILE" \
    --http-addr 127.0.0.1:0 --publish-timeout 10s >"$WORK/csi-plugin.log" 2>&1 &
  PPID_CSI=$!
  for _ in $(seq 100); do [ -S "$WORK/csi.sock" ] && break; sleep 0.1; done
  [ -S "$WORK/csi.sock" ] || { cat "$WORK/csi-plugin.log" >&2; die "csi-plugin did not start"; }

  cat >"$WORK/params.yaml" <<EOF
fluid_path: $FLUID
mount_type: JuiceFS
runtime_namespace: $RUNTIME_NS
runtime_name: $RUNTIME_NAME
EOF
  local rc=0
  # shellcheck disable=SC2086
  csi-sanity --csi.endpoint "$WORK/csi.sock" \
    --csi.stagingdir "$staging" --csi.mountdir "$mountdir" \
    --csi.testvolumeparameters "$WORK/params.yaml" \
    ${SKIP_TESTS:+--ginkgo.skip="$SKIP_TESTS"} ${CSI_SANITY_ARGS:-} "$@" || rc=$?
  if [ $rc -ne 0 ]; then
    log "csi-plugin log (last 40 lines):"
    tail -40 "$WORK/csi-plugin.log" >&2
  fi
  return $rc
}

if [ "${1:-}" = "--inner" ]; then
  shift
  inner "$@"
  exit $?
fi

KUBECONFIG_FILE="${FERROFLUID_KUBECONFIG:-$LOCAL_DIR/kubeconfig}"
[ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: start the local cluster (make cluster-up)"
for tool in csi-sanity juicefs redis-server unshare setsid; do
  command -v "$tool" >/dev/null || die "$tool is missing: run hack/setup.sh"
done
BIN_DIR="${FERROFLUID_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug}"
if [ ! -x "$BIN_DIR/csi-plugin" ]; then
  log "building csi-plugin"
  (cd "$REPO_ROOT" && cargo build -p csi-plugin)
fi

WORK="$(mktemp -d /tmp/ferrofluid-csi-sanity.XXXXXX)"
REDIS_PID=""
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
META_URL="redis://127.0.0.1:$PORT/1"
juicefs format --storage file --bucket "$WORK/bucket" "$META_URL" sanity >"$WORK/format.log" 2>&1 \
  || { cat "$WORK/format.log" >&2; die "juicefs format failed"; }

export WORK BIN_DIR KUBECONFIG_FILE META_URL SKIP_TESTS
export NODE="${CSI_SANITY_NODE:-node-3}" RUNTIME_NS="ferrofluid-csi-sanity" RUNTIME_NAME="sanity"
log "csi-sanity against $BIN_DIR/csi-plugin (node $NODE, work dir $WORK)"
unshare -m --propagation private -- bash "${BASH_SOURCE[0]}" --inner "$@"

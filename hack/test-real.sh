#!/usr/bin/env bash
# The real-node tests (`make test-real`; `make test` ends with it): a real kubelet + containerd node
# (hack/real-node.sh up, with the images of hack/images.sh), then e2e/tests/real_node.rs — `helm install`
# of the chart, the seed's flow through kubelet, the CSI plugin and the FUSE DaemonSet, and Fluid v1.0.8's
# own JuiceFS e2e case. Everything it started is stopped again, also when a test fails.
#
# When this machine cannot run a real node it says why and runs nothing (exit 0): not root, no
# /dev/fuse, no mount namespaces, or a local cluster with kwok nodes already running (pods would land on
# kwok's nodes; `make down` first).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

why_not() {
  [ "$(id -u)" = 0 ] || { echo "not root: kubelet, containerd and the mounts need root"; return; }
  [ -c /dev/fuse ] || { echo "no /dev/fuse: the FUSE clients cannot mount"; return; }
  unshare --mount true 2>/dev/null || { echo "no mount namespaces (unshare -m): containers cannot run"; return; }
  [ -d /sys/fs/cgroup ] || { echo "no cgroup file system at /sys/fs/cgroup"; return; }
  if "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1 &&
    [ "$(kubectl --kubeconfig "$LOCAL_DIR/kubeconfig" get nodes -l type=kwok -o name | wc -l)" -gt 0 ]; then
    echo "a local cluster with kwok nodes is running (pods would land on them): make down first"
  fi
}
reason=$(why_not)
if [ -n "$reason" ]; then
  log "real-node tests NOT RUN: $reason"
  exit 0
fi

cluster_started=0
"$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1 || cluster_started=1
cleanup() {
  "$HACK_DIR/real-node.sh" down || true
  [ $cluster_started -eq 1 ] && FF_NODES=0 "$HACK_DIR/local-cluster.sh" down || true
}
trap cleanup EXIT

"$HACK_DIR/build-tools.sh" minio helm prometheus promtool
"$HACK_DIR/real-node.sh" up
log "building the real-node test"
cargo test --locked -p ferrofluid-e2e --test real_node --no-run
export FERROFLUID_KUBECONFIG="$LOCAL_DIR/kubeconfig" FERROFLUID_REAL_DIR="$LOCAL_DIR/real"
export FERROFLUID_REAL_NODE="${FF_REAL_NODE:-real-0}"
log "real-node tests (kubelet + containerd, the chart's images, helm install, Fluid's JuiceFS e2e case)"
cargo test --locked -p ferrofluid-e2e --test real_node -- --ignored --nocapture

#!/usr/bin/env bash
# The whole test suite: style, lints, unit tests, then the cluster suites against a real local
# control plane. A cluster that is already up (`make up`) is reused and left running; otherwise one is
# started and always stopped again, also when a test fails. Last, the real-node tests
# (hack/test-real.sh: a kubelet + containerd node of their own, on a control plane without kwok nodes),
# which say why and run nothing where the machine cannot run a real node.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

"$HACK_DIR/setup.sh"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "unit tests"
cargo test --locked

started=0
cleanup() { [ $started -eq 1 ] && "$HACK_DIR/local-cluster.sh" down || true; }
trap cleanup EXIT
if ! "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
  started=1
  "$HACK_DIR/local-cluster.sh" up
fi
export KUBECONFIG="$LOCAL_DIR/kubeconfig"
kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/ >/dev/null
# Not `kubectl wait --for condition=established`: it fails outright on a CRD so new that it has no
# conditions yet (seen in CI); poll each CRD's Established condition instead.
established() {
  local c
  for c in datasets juicefsruntimes dataloads datamigrates dataprocesses; do
    [ "$(kubectl get "crd/$c.data.fluid.io" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ] ||
      return 1
  done
}
deadline=$((SECONDS + 60))
until established; do
  [ $SECONDS -lt $deadline ] || die "the CRDs were not established within 60 s"
  sleep 0.5
done

log "Helm chart: lint, render, apply to the real apiserver, install and uninstall"
"$HACK_DIR/chart-test.sh"

log "building the binaries the cluster tests run"
cargo build --locked --workspace --bins
export FERROFLUID_BIN_DIR="$REPO_ROOT/target/debug" FERROFLUID_KUBECONFIG="$KUBECONFIG"

log "cluster tests (real apiserver, controller-manager, scheduler, kwok; real JuiceFS, Redis and mounts)"
cargo test --locked -p ferrofluid-e2e -- --test-threads 4

log "csi-sanity against the CSI plugin"
"$HACK_DIR/csi-sanity.sh"

# The real node needs a control plane without kwok nodes: stop ours first (a reused one stays, and
# hack/test-real.sh then says it cannot run).
cleanup
started=0
"$HACK_DIR/test-real.sh"

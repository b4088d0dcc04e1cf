#!/usr/bin/env bash
# The whole test suite: style, lints, unit tests, then the cluster suites against a real local
# control plane. A cluster that is already up (`make up`) is reused and left running; otherwise one is
# started and always stopped again, also when a test fails.
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
kubectl wait --for condition=established --timeout 60s crd/datasets.data.fluid.io crd/juicefsruntimes.data.fluid.io \
  crd/dataloads.data.fluid.io crd/datamigrates.data.fluid.io crd/dataprocesses.data.fluid.io >/dev/null

log "Helm chart: lint, render, apply to the real apiserver, install and uninstall"
"$HACK_DIR/chart-test.sh"

log "building the binaries the cluster tests run"
cargo build --locked --workspace --bins
export FERROFLUID_BIN_DIR="$REPO_ROOT/target/debug" FERROFLUID_KUBECONFIG="$KUBECONFIG"

log "cluster tests (real apiserver, controller-manager, scheduler, kwok; real JuiceFS, Redis and mounts)"
cargo test --locked -p ferrofluid-e2e -- --test-threads 4

log "csi-sanity against the CSI plugin"
"$HACK_DIR/csi-sanity.sh"

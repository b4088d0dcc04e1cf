#!/usr/bin/env bash
# The local demo: a real control plane, ferrofluid's CRDs, and the seed's Dataset and JuiceFSRuntime
# applied unchanged. Leaves the cluster running when KEEP=1 (what `make up` does).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

"$HACK_DIR/setup.sh"
cargo build --locked --workspace --bins

started=0
cleanup() { [ "${KEEP:-0}" = 1 ] || [ $started -eq 0 ] || "$HACK_DIR/local-cluster.sh" down; }
trap cleanup EXIT
"$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1 || started=1
"$HACK_DIR/local-cluster.sh" up
export KUBECONFIG="$LOCAL_DIR/kubeconfig"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "The cluster: a real kube-apiserver, controller-manager and scheduler; kwok nodes on loopback"
show kubectl get nodes -o wide
step "Install ferrofluid's CRDs (generated from the Rust types in api/)"
show kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/
kubectl wait --for condition=established --timeout 60s crd/datasets.data.fluid.io crd/juicefsruntimes.data.fluid.io >/dev/null
step "Apply the seed's Dataset and JuiceFSRuntime, unchanged"
show cat e2e/manifests/seed-dataset.yaml e2e/manifests/seed-runtime.yaml
show kubectl apply -f e2e/manifests/seed-dataset.yaml -f e2e/manifests/seed-runtime.yaml
step "What kubectl shows"
show kubectl get datasets,juicefsruntimes -o wide
show kubectl get fluid
step "Schema validation: a runtime with a negative cache quota is refused"
printf 'apiVersion: data.fluid.io/v1alpha1\nkind: JuiceFSRuntime\nmetadata: {name: bad}\nspec:\n  tieredstore:\n    levels: [{mediumtype: MEM, path: /dev/shm, quota: -1}]\n' \
  | kubectl apply -f - 2>&1 | sed 's/^/  /' || true
kubectl delete -f e2e/manifests/seed-runtime.yaml -f e2e/manifests/seed-dataset.yaml --wait=false >/dev/null
step "Done"

#!/usr/bin/env bash
# The main job on this machine: the seed's flow, end to end, on a real local control plane with three
# agent-backed nodes, real JuiceFS mounts (Redis metadata, local-directory object store), and
# ferrofluid's components — narrated with real kubectl output. Tears everything down at the end, unless
# KEEP=1 (what `make up` does; `make down` stops it all).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

NODES=(node-1 node-2 node-3)
"$HACK_DIR/setup.sh"
cargo build --locked --workspace --bins

export KUBECONFIG="$LOCAL_DIR/kubeconfig"
down() {
  "$HACK_DIR/node-agents.sh" stop >/dev/null 2>&1 || true
  "$HACK_DIR/components.sh" stop || true
  "$HACK_DIR/local-cluster.sh" down || true
  rm -rf "$LOCAL_DIR/bucket" "$LOCAL_DIR/dataset.yaml"
}
[ "${KEEP:-0}" = 1 ] || trap down EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
wait_for() { # description timeout condition (shell code, evaluated afresh each time)
  local what=$1 t=$2 cond=$3
  for _ in $(seq 1 $((t * 2))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timed out waiting for $what"
}
jp() { kubectl get "$1" -o "jsonpath=$2" 2>/dev/null; }

step "A real control plane (etcd, kube-apiserver, controller-manager, scheduler) with kwok nodes on loopback"
"$HACK_DIR/local-cluster.sh" up --nodes "${#NODES[@]}"
show kubectl get nodes -o wide
show kubectl apply --server-side --field-manager ferrofluid-crds -f charts/ferrofluid/crds/
kubectl wait --for condition=established --timeout 60s crd/datasets.data.fluid.io crd/juicefsruntimes.data.fluid.io >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: fuse.csi.fluid.io}
spec: {attachRequired: false, podInfoOnMount: true}
YAML

step "ferrofluid's components, and node agents standing in for kubelet on ${NODES[*]}"
fresh=0
"$HACK_DIR/components.sh" status >/dev/null 2>&1 || fresh=1
"$HACK_DIR/components.sh" start
"$HACK_DIR/node-agents.sh" start "${NODES[@]}"

REDIS_URL="redis://127.0.0.1:${FF_REDIS_PORT:-16379}/1"
BUCKET="$LOCAL_DIR/bucket"
# A new Redis (the metadata) starts empty, so the object store must too; a running one keeps both.
[ "$fresh" = 0 ] || rm -rf "$BUCKET"
mkdir -p "$BUCKET"
step "1. The seed's Dataset (bucket filled in; metaurl from a Secret; ReadWriteMany, since the demo writes)"
# Without accessModes a dataset is ReadOnlyMany, as in Fluid: the demo's pod writes, so it asks for more.
sed -e "s|redis://127.0.0.1:6379/1|$REDIS_URL|" -e "s|/var/lib/ferrofluid/bucket|$BUCKET|" \
  -e 's|^spec:$|spec:\n  accessModes: [ReadWriteMany]|' \
  e2e/manifests/seed-dataset-with-secret.yaml > "$LOCAL_DIR/dataset.yaml"
show kubectl apply -f "$LOCAL_DIR/dataset.yaml"
# NotBound (or already Bound when `make up` runs again on a running setup).
phase_set() { case "$(jp dataset/jfsdemo '{.status.phase}')" in NotBound|Bound) return 0 ;; *) return 1 ;; esac; }
wait_for "dataset NotBound" 60 phase_set
step "2. The dataset-controller marks it NotBound"
show kubectl get datasets
step "3. The seed's JuiceFSRuntime, unchanged"
show cat e2e/manifests/seed-runtime.yaml
show kubectl apply -f e2e/manifests/seed-runtime.yaml
wait_for "runtime Ready" 120 "[ \"\$(jp juicefsruntime/jfsdemo '{.status.workerPhase}')\" = Ready ]"
wait_for "dataset Bound" 120 "[ \"\$(jp dataset/jfsdemo '{.status.phase}')\" = Bound ]"
wait_for "PVC Bound" 60 "[ \"\$(jp pvc/jfsdemo '{.status.phase}')\" = Bound ]"
step "4. The runtime-controller: workers, FUSE DaemonSet (no pods yet), Bound dataset, PV and PVC, node labels"
show kubectl get juicefsruntimes,statefulsets,daemonsets,pods -o wide
show kubectl get datasets,pv,pvc
show kubectl get nodes -L fluid.io/dataset-num,fluid.io/s-default-jfsdemo,fluid.io/f-default-jfsdemo

step "5. The seed's demo-app pod uses the PVC"
show kubectl apply -f e2e/manifests/seed-pod.yaml
wait_for "pod scheduled" 60 "[ -n \"\$(jp pod/demo-app '{.spec.nodeName}')\" ]"
NODE=$(jp pod/demo-app '{.spec.nodeName}')
step "6-7. NodeStageVolume on $NODE: the CSI plugin labels the node, the FUSE DaemonSet starts a pod there"
wait_for "FUSE label" 60 "[ \"\$(jp "node/$NODE" '{.metadata.labels.fluid\.io/f-default-jfsdemo}')\" = true ]"
wait_for "FUSE pod ready" 120 "[ \"\$(jp daemonset/jfsdemo-fuse '{.status.numberReady}')\" = 1 ]"
show kubectl get pods -o wide -l role=juicefs-fuse
step "8. The FUSE pod mounted JuiceFS at the node's fluid_path (inside $NODE's mount namespace)"
FLUID_PATH=/runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse
UID_=$(jp pod/demo-app '{.metadata.uid}')
TARGET=/var/lib/kubelet/pods/$UID_/volumes/kubernetes.io~csi/default-jfsdemo/mount
published() { "$HACK_DIR/node-exec" "$NODE" -- grep -q " $TARGET " /proc/self/mountinfo; }
wait_for "pod volume published" 120 published
show "$HACK_DIR/node-exec" "$NODE" -- sh -c "grep fuse.juicefs /proc/self/mountinfo | cut -d' ' -f5,9,10"
step "9-10. NodePublishVolume bind-mounted it into the pod's volume directory; the pod sees the data"
show "$HACK_DIR/node-exec" "$NODE" -- sh -c "echo 'hello from ferrofluid' > $TARGET/hello.txt && ls -l $TARGET"
show "$HACK_DIR/node-exec" "$NODE" -- cat "$TARGET/hello.txt"
"$HACK_DIR/node-exec" "$NODE" -- cat "$TARGET/hello.txt" >/dev/null
step "Cache metrics: the metrics-collector writes cacheStates"
cached() { local c; c=$(jp dataset/jfsdemo '{.status.cacheStates.cached}'); [ -n "$c" ] && [ "${c#0}" = "$c" ]; }
wait_for "a non-zero cacheStates.cached" 60 cached
show kubectl get datasets -o wide
curl -s http://127.0.0.1:18083/metrics | grep -E '^ferrofluid_dataset_cache' | head -8 || true

if [ "${KEEP:-0}" = 1 ]; then
  step "Left running: export KUBECONFIG=$KUBECONFIG; hack/node-exec $NODE -- ls $TARGET; make down stops it all"
  exit 0
fi
step "Teardown: deleting the pod and the dataset unwinds everything"
show kubectl delete pod demo-app --wait=true
show kubectl delete dataset jfsdemo --wait=true --timeout=120s
wait_for "runtime gone" 120 "[ -z \"\$(kubectl get juicefsruntime jfsdemo -o name --ignore-not-found)\" ]"
show kubectl get pv,pvc,statefulsets,daemonsets
show kubectl get nodes -L fluid.io/dataset-num,fluid.io/f-default-jfsdemo
step "Done"

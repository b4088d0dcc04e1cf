#!/usr/bin/env bash
# The main job on this machine: the seed's flow, end to end, on a real local control plane with three
# agent-backed nodes, real JuiceFS mounts (Redis metadata, MinIO object store), and
# ferrofluid's components — narrated with real kubectl output — then a cache warm-up with a DataLoad, the
# first read of loaded and of unloaded data compared by the metrics-collector's hit and miss counters.
# Tears everything down at the end, unless KEEP=1 (what `make up` does; `make down` stops it all).
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
  "$HACK_DIR/minio.sh" stop || true
  rm -rf "$LOCAL_DIR/dataset.yaml" "$LOCAL_DIR/reader.yaml" "$LOCAL_DIR/dataload.yaml" \
    "$LOCAL_DIR/write-trees.sh"
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
# (Not `kubectl wait --for condition=established`: it fails on a CRD so new that it has no conditions yet.)
established() {
  local c
  for c in datasets juicefsruntimes dataloads; do
    [ "$(jp "crd/$c.data.fluid.io" '{.status.conditions[?(@.type=="Established")].status}')" = True ] || return 1
  done
}
wait_for "the CRDs established" 60 established
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
# The object store: MinIO (built from its Go module) on loopback. A new Redis (the metadata) starts
# empty, so the object store must too; a running one keeps both.
[ "$fresh" = 0 ] || "$HACK_DIR/minio.sh" stop
"$HACK_DIR/minio.sh" start
eval "$("$HACK_DIR/minio.sh" env)"
step "1. The seed's Dataset on MinIO (bucket filled in, storage minio; metaurl and MinIO's keys from a Secret; ReadWriteMany)"
# Filled in by the shell itself (no secret in any command's arguments), readable by root only.
shopt -u patsub_replacement 2>/dev/null || true # `&` in a value stays `&`
dataset=$(<e2e/manifests/seed-dataset-minio.yaml)
dataset=${dataset//<metaurl>/$REDIS_URL}
dataset=${dataset//<access-key>/$MINIO_ACCESS_KEY}
dataset=${dataset//<secret-key>/$MINIO_SECRET_KEY}
dataset=${dataset//<bucket>/$MINIO_ENDPOINT/jfsdemo}
(umask 077 && printf '%s\n' "$dataset" >"$LOCAL_DIR/dataset.yaml")
unset dataset MINIO_SECRET_KEY
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

# Cache warm-up. The collector's counters for this dataset (hits, misses of every JuiceFS client of it).
COLLECTOR=http://127.0.0.1:18083/metrics
counters() {
  { curl -sf "$COLLECTOR" || true; } | awk '
    /^ferrofluid_dataset_cache_(hits|misses)_total\{/ && /namespace="default"/ && /dataset="jfsdemo"/ {
      if ($1 ~ /^ferrofluid_dataset_cache_hits_total/) h = $2; else m = $2 }
    END { printf "%d %d\n", h, m }'
}
# The counters once they stop moving (the collector scrapes every 2 s).
settled() {
  local a b
  for _ in $(seq 1 30); do
    a=$(counters); sleep 2.5; b=$(counters)
    [ "$a" = "$b" ] && { echo "$b"; return 0; }
  done
  die "the collector's counters never settled"
}
# Reads DIR in the reader pod's volume on the cache node and prints the read's hits and misses.
first_read() { # dir
  local before after bytes
  before=$(settled)
  bytes=$("$HACK_DIR/node-exec" "$CACHE_NODE" -- sh -c "cat $READER_TARGET/$1/* | wc -c")
  for _ in $(seq 1 60); do [ "$(counters)" != "$before" ] && break; sleep 1; done
  after=$(settled)
  echo "$before $after" | awk -v d="$1" -v n="$bytes" '{
    h = $3 - $1; m = $4 - $2; r = (h + m > 0) ? h / (h + m) : 0
    printf "first read of /%s (%d MiB): %d cache hits, %d misses: hit ratio %.2f\n", d, n / 1048576, h, m, r }'
}

CACHE_NODE=$(kubectl get pods -l role=juicefs-worker -o jsonpath='{.items[0].spec.nodeName}')
step "Cache warm-up 1/3. Two 32 MiB trees, /cold and /train, written by a JuiceFS client of their own without a cache"
# As a batch job outside the cluster would write them: nothing of them is cached anywhere. (The dataset's
# mountPoint is juicefs:///demo, so its /cold is the file system's /demo/cold.)
VIEW=/tmp/ferrofluid-demo-writer
cat > "$LOCAL_DIR/write-trees.sh" <<SCRIPT
set -e
mkdir -p $VIEW $VIEW.cache
juicefs --no-agent mount -d --no-usage-report --metrics 127.0.0.1:0 --cache-dir $VIEW.cache --cache-size 0 \\
  $REDIS_URL $VIEW >/dev/null 2>&1
for d in cold train; do
  mkdir -p $VIEW/demo/\$d
  for i in 1 2 3 4 5 6 7 8; do head -c 4194304 /dev/urandom > $VIEW/demo/\$d/f\$i; done
done
du -sh $VIEW/demo/cold $VIEW/demo/train
juicefs umount $VIEW
rm -rf $VIEW $VIEW.cache
SCRIPT
show cat "$LOCAL_DIR/write-trees.sh"
show "$HACK_DIR/node-exec" "$NODE" -- sh "$LOCAL_DIR/write-trees.sh"
step "Cache warm-up 2/3. An app pod on the cache node ($CACHE_NODE, where the worker runs) reads /cold, which nobody loaded"
sed -e 's/name: demo-app/name: reader/' -e 's/^spec:$/spec:\n  nodeSelector: {fluid.io\/s-default-jfsdemo: "true"}/' \
  e2e/manifests/seed-pod.yaml > "$LOCAL_DIR/reader.yaml"
show kubectl apply -f "$LOCAL_DIR/reader.yaml"
wait_for "reader scheduled" 60 "[ -n \"\$(jp pod/reader '{.spec.nodeName}')\" ]"
READER_TARGET=/var/lib/kubelet/pods/$(jp pod/reader '{.metadata.uid}')/volumes/kubernetes.io~csi/default-jfsdemo/mount
reader_published() { "$HACK_DIR/node-exec" "$CACHE_NODE" -- grep -q " $READER_TARGET " /proc/self/mountinfo; }
wait_for "reader's volume published" 120 reader_published
show kubectl get pods -o wide
first_read cold
step "Cache warm-up 3/3. A DataLoad of /train: one Job on the cache node runs juicefs warmup through its FUSE client"
kubectl delete dataload warm-train --ignore-not-found --wait=true >/dev/null # from an earlier `make up`
cat > "$LOCAL_DIR/dataload.yaml" <<'YAML'
apiVersion: data.fluid.io/v1alpha1
kind: DataLoad
metadata:
  name: warm-train
spec:
  dataset:
    name: jfsdemo
  target:
    - path: /train
YAML
show cat "$LOCAL_DIR/dataload.yaml"
show kubectl apply -f "$LOCAL_DIR/dataload.yaml"
# kubectl aligns each call's output on its own: the lines are re-aligned so that they line up.
align() {
  awk '{ p = $4; for (i = 5; i <= NF - 2; i++) p = p " " $i
         printf "%-12s %-9s %-10s %-28s %-5s %s\n", $1, $2, $3, p, $(NF - 1), $NF }'
}
printf '$ kubectl get dataload warm-train   # whenever its phase or progress changes\n'
echo "NAME DATASET PHASE PROGRESS AGE DURATION" | align
shown=""
for _ in $(seq 1 480); do
  row=$(kubectl get dataload warm-train --no-headers 2>/dev/null || true)
  # Its phase and progress, without name, dataset, age and duration; empty while it shows no progress yet.
  now=$(echo "$row" | awk 'NF >= 9 { p = $3; for (i = 4; i <= NF - 2; i++) p = p " " $i; print p }')
  if [ -n "$now" ] && [ "$now" != "$shown" ]; then
    echo "$row" | align
    shown=$now
  fi
  case "$now" in Complete*) break ;; Failed*) kubectl describe dataload warm-train; die "the DataLoad failed" ;; esac
  sleep 0.5
done
[ "$(jp dataload/warm-train '{.status.phase}')" = Complete ] || die "the DataLoad did not complete in 240 s"
show kubectl get jobs,pods -l role=dataload -o wide
first_read train
show kubectl get datasets -o wide

if [ "${KEEP:-0}" = 1 ]; then
  step "Left running: export KUBECONFIG=$KUBECONFIG; hack/node-exec $NODE -- ls $TARGET; kubectl get fluid; make down stops it all"
  exit 0
fi
step "Teardown: deleting the pods, the DataLoad and the dataset unwinds everything"
show kubectl delete pod demo-app reader --wait=true
show kubectl delete dataload warm-train --wait=true
show kubectl delete dataset jfsdemo --wait=true --timeout=120s
wait_for "runtime gone" 120 "[ -z \"\$(kubectl get juicefsruntime jfsdemo -o name --ignore-not-found)\" ]"
show kubectl get pv,pvc,statefulsets,daemonsets
show kubectl get nodes -L fluid.io/dataset-num,fluid.io/f-default-jfsdemo
step "Done"

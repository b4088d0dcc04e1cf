#!/usr/bin/env bash
# A real node for the local cluster: containerd (Debian's) and kubelet (built from the same Kubernetes
# module as the control plane) on this machine, registered as node real-0 at 127.0.2.1.
#
#   hack/real-node.sh up       the local control plane without kwok nodes (hack/local-cluster.sh, FF_NODES=0),
#                              the images (hack/images.sh build), containerd with them imported, kubelet,
#                              the node initialized, and the `kubernetes` Service reachable from host-network pods
#   hack/real-node.sh down     kubelet, every container, containerd and the proxies stopped; every mount
#                              under the rig unmounted; its state removed (the control plane is left running)
#   hack/real-node.sh install  `helm upgrade --install` of charts/ferrofluid (release ferrofluid in
#                              ferrofluid-system, hack/real-node/values.yaml), waits for every pod, serves
#                              the webhook's Service
#   hack/real-node.sh uninstall `helm uninstall` of that release
#   hack/real-node.sh status   exit 0 when containerd answers and the node is Ready
#   hack/real-node.sh proxy NAMESPACE SERVICE
#                              serve a Service's cluster IP on loopback (see "Services" below)
#
# What this machine makes the rig do (docs/local-cluster.md, "A real node"):
# - Addresses: kubelet's --node-ip refuses loopback, so kubelet runs with --cloud-provider external and
#   this script plays the cloud controller: it sets the node's InternalIP (127.0.2.1) and removes the
#   `node.cloudprovider.kubernetes.io/uninitialized` taint. The apiserver reaches kubelet (logs, exec) at
#   that InternalIP with its kubelet client certificate.
# - No pod network: pods that need the network use hostNetwork (all of ferrofluid's do here, see
#   hack/real-node/values.yaml); other pods get an address and no interface from
#   hack/real-node/cni-loopback-address. No bridge, veth or private-range address is ever made.
# - Services: no kube-proxy. `proxy` forwards a Service's cluster IP (127.96.0.0/16, loopback) and port to
#   the host-network pods behind it with socat: the `kubernetes` Service (what in-cluster clients use) at
#   `up`, the webhook's after the chart is installed.
# - The VM lacks CAP_SYS_RESOURCE (containerd: restrict_oom_score_adj), runs cgroup v1 (kubelet:
#   failCgroupV1 false, cgroupfs) and has no registry (images are imported, pullPolicy IfNotPresent).
# - `/` has private propagation: the chart's mount root is bind-mounted onto itself and made shared so
#   that the FUSE pods' and the CSI plugin's Bidirectional mounts reach the host; kubelet makes its own
#   root dir shared.
# - One containerd per machine: containerd 1.6 keeps some state in /run/containerd whatever its config
#   says, so only one rig runs at a time.
# Every process started is recorded in $REAL/run/<name>.pid and stopped by that pid.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REAL="$LOCAL_DIR/real"
RUN="$REAL/run"
NODE_NAME="${FF_REAL_NODE:-real-0}"
NODE_IP="${FF_REAL_NODE_IP:-127.0.2.1}"
KUBELET_PORT="${FF_KUBELET_PORT:-20250}"
KUBELET_HEALTHZ_PORT="${FF_KUBELET_HEALTHZ_PORT:-20248}"
SOCK="$REAL/containerd/containerd.sock"
KUBELET_ROOT="$REAL/kubelet"
MOUNT_ROOT="$REAL/runtime-mnt"
KUBECONFIG_FILE="$LOCAL_DIR/kubeconfig"
PKI="$LOCAL_DIR/cluster/pki"
export KUBECONFIG="$KUBECONFIG_FILE"

pid_of() { local f="$RUN/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

stop_pid() { # name: TERM, then KILL after 10 s, to its whole process group (socat's forked children too)
  local p
  p=$(pid_of "$1") || { rm -f "$RUN/$1.pid"; return 0; }
  kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$p" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
}

start_bg() { # name command...
  local name=$1; shift
  setsid "$@" >>"$REAL/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_until() { # what seconds command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timed out after ${secs}s waiting for $what (logs in $REAL/logs)"
}

need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  command -v socat >/dev/null || missing+=(socat)
  [ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

write_containerd_config() {
  mkdir -p "$REAL/containerd" "$REAL/cni/bin" "$REAL/cni/net.d"
  cp /usr/lib/cni/loopback "$REAL/cni/bin/loopback"
  cp "$HACK_DIR/real-node/cni-loopback-address" "$REAL/cni/bin/loopback-address"
  cat >"$REAL/cni/net.d/10-rig.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "rig", "plugins": [{"type": "loopback-address"}]}
EOF
  cat >"$REAL/containerd/config.toml" <<EOF
version = 2
root = "$REAL/containerd/root"
state = "$REAL/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$REAL/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/ferrofluid/pause:local"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$REAL/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$REAL/cni/bin"
    conf_dir = "$REAL/cni/net.d"
EOF
}

write_kubelet_config() {
  mkdir -p "$KUBELET_ROOT" "$REAL/kubelet-pki" "$REAL/pod-logs"
  cat >"$REAL/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $NODE_IP
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: ""
enforceNodeAllocatable: []
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
maxPods: 60
podLogsDir: $REAL/pod-logs
EOF
}

# The node as a cloud controller would leave it: loopback InternalIP, no uninitialized taint.
initialize_node() {
  wait_until "node $NODE_NAME to register" 120 kubectl get node "$NODE_NAME"
  kubectl patch node "$NODE_NAME" --subresource=status --type=merge \
    -p "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$NODE_IP\"},{\"type\":\"Hostname\",\"address\":\"$NODE_NAME\"}]}}" >/dev/null
  kubectl taint node "$NODE_NAME" node.cloudprovider.kubernetes.io/uninitialized- >/dev/null 2>&1 || true
  wait_until "node $NODE_NAME Ready" 180 \
    sh -c "kubectl get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

cmd_proxy() { # namespace service: forward each port of its cluster IP to the node's port behind it
  local ns=$1 svc=$2 ip line port target
  ip=$(kubectl get service -n "$ns" "$svc" -o jsonpath='{.spec.clusterIP}')
  [[ $ip == 127.* ]] || die "service $ns/$svc: cluster IP $ip is not loopback"
  while read -r line; do
    port=${line%% *}; target=${line#* }
    if [ "$ns/$svc" = default/kubernetes ]; then
      target="127.0.0.1:$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')"
    else
      # A named targetPort is the container port of that name on the (host-network) pods behind it.
      if ! [[ $target =~ ^[0-9]+$ ]]; then
        local sel
        sel=$(kubectl get service -n "$ns" "$svc" -o go-template='{{range $k, $v := .spec.selector}}{{$k}}={{$v}},{{end}}')
        target=$(kubectl get pods -n "$ns" -l "${sel%,}" -o go-template="{{range .items}}{{range .spec.containers}}{{range .ports}}{{if eq .name \"$target\"}}{{.containerPort}}{{\"\\n\"}}{{end}}{{end}}{{end}}{{end}}" | head -1)
        [ -n "$target" ] || die "service $ns/$svc: no pod with port $line"
      fi
      target="$NODE_IP:$target"
    fi
    local name="proxy-$ns-$svc-$port"
    stop_pid "$name"
    start_bg "$name" socat "TCP-LISTEN:$port,bind=$ip,reuseaddr,fork" "TCP:$target"
    log "service $ns/$svc: $ip:$port -> $target"
  done < <(kubectl get service -n "$ns" "$svc" -o go-template='{{range .spec.ports}}{{.port}} {{.targetPort}}{{"\n"}}{{end}}')
}

RELEASE=ferrofluid
RELEASE_NS=ferrofluid-system

cmd_install() {
  local started=$SECONDS svc
  helm upgrade --install "$RELEASE" "$REPO_ROOT/charts/ferrofluid" -n "$RELEASE_NS" --create-namespace \
    -f "$HACK_DIR/real-node/values.yaml" --set "kubeletRoot=$KUBELET_ROOT" --set "mountRoot=$MOUNT_ROOT" \
    --wait --timeout 5m >/dev/null
  svc=$(kubectl get services -n "$RELEASE_NS" -l app.kubernetes.io/component=webhook \
    -o jsonpath='{range .items[?(@.spec.ports[0].port==443)]}{.metadata.name}{end}')
  [ -z "$svc" ] || cmd_proxy "$RELEASE_NS" "$svc"
  kubectl get pods -n "$RELEASE_NS" -o wide
  log "chart installed in $((SECONDS - started))s: KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_uninstall() {
  helm status "$RELEASE" -n "$RELEASE_NS" >/dev/null 2>&1 || return 0
  helm uninstall "$RELEASE" -n "$RELEASE_NS" --wait --timeout 3m >/dev/null
  kubectl delete namespace "$RELEASE_NS" --ignore-not-found --timeout 120s >/dev/null
  log "chart uninstalled"
}

cmd_up() {
  mkdir -p "$RUN" "$REAL/logs"
  need_packages
  if "$HACK_DIR/local-cluster.sh" status >/dev/null 2>&1; then
    [ "$(kubectl get nodes -l type=kwok -o name | wc -l)" -eq 0 ] ||
      die "the local cluster runs kwok nodes: pods would land on them; stop it first (make cluster-down)"
  else
    FF_NODES=0 "$HACK_DIR/local-cluster.sh" up
  fi
  "$HACK_DIR/build-tools.sh" kubelet
  "$HACK_DIR/images.sh" build

  if [ -z "$(pid_of containerd)" ]; then
    write_containerd_config
    start_bg containerd containerd --config "$REAL/containerd/config.toml"
    wait_until containerd 60 ctr --address "$SOCK" version
  fi
  "$HACK_DIR/images.sh" import "$SOCK"

  # Bidirectional mounts need a shared mount: the chart's mount root, bound onto itself.
  mkdir -p "$MOUNT_ROOT"
  mountpoint -q "$MOUNT_ROOT" || mount --bind "$MOUNT_ROOT" "$MOUNT_ROOT"
  mount --make-shared "$MOUNT_ROOT"

  if [ -z "$(pid_of kubelet)" ]; then
    write_kubelet_config
    start_bg kubelet kubelet --config "$REAL/kubelet.yaml" --kubeconfig "$KUBECONFIG_FILE" \
      --hostname-override "$NODE_NAME" --cloud-provider external --root-dir "$KUBELET_ROOT" \
      --cert-dir "$REAL/kubelet-pki" --node-labels "ferrofluid.io/rig=real-node" --v 2
  fi
  initialize_node
  cmd_proxy default kubernetes
  log "real node $NODE_NAME Ready at $NODE_IP (kubelet root $KUBELET_ROOT, mount root $MOUNT_ROOT)"
}

# Every task of containerd's k8s.io namespace killed and removed (their processes are not children of
# containerd: stopping containerd alone would leave them running).
remove_containers() {
  local c
  ctr --address "$SOCK" version >/dev/null 2>&1 || return 0
  for c in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$SOCK" -n k8s.io tasks kill -a -s SIGKILL "$c" >/dev/null 2>&1 || true
  done
  for c in $(ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$SOCK" -n k8s.io tasks rm -f "$c" >/dev/null 2>&1 || true
  done
  for c in $(ctr --address "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
    ctr --address "$SOCK" -n k8s.io containers rm "$c" >/dev/null 2>&1 || true
  done
}

# Processes whose command line names the rig's directory (shims, leftover FUSE clients of its pods).
rig_processes() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$REAL" && echo "${p#/proc/}"
  done
  return 0
}

unmount_rig() {
  local m
  # Deepest first; lazy, since a dead FUSE mount cannot be unmounted otherwise.
  for m in $(findmnt -rn -o TARGET | grep -F "$REAL" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    umount -l "$m" 2>/dev/null || true
  done
}

# kubelet's cgroups (cgroupfs driver): the pods' are gone with their processes; remove the empty dirs.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/unified/kubepods; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

cmd_down() {
  mkdir -p "$RUN"
  local f
  for f in "$RUN"/proxy-*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)"; done
  stop_pid kubelet
  remove_containers
  stop_pid containerd
  local p
  for p in $(rig_processes); do kill -KILL "$p" 2>/dev/null || true; done
  unmount_rig
  remove_cgroups
  # What kubelet and containerd make outside their configured dirs whatever the config says (fixed paths
  # in kubelet 1.34 and containerd 1.6): the device-plugin socket, the log symlink dir, the shim socket
  # dir. Removed only when empty of anything else (rmdir), so another user's files are never touched.
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/containers /run/containerd/s /run/containerd \
    2>/dev/null || true
  if kubectl get node "$NODE_NAME" >/dev/null 2>&1; then kubectl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 || true; fi
  # Never remove a directory with a mount still under it (a FUSE mount there is somebody's data).
  if findmnt -rn -o TARGET | grep -qF "$REAL"; then
    die "mounts left under $REAL: $(findmnt -rn -o TARGET | grep -F "$REAL" | tr '\n' ' ')"
  fi
  rm -rf "$REAL"
  log "real node down"
}

cmd_status() {
  [ -n "$(pid_of containerd)" ] && [ -n "$(pid_of kubelet)" ] || return 1
  kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  install) cmd_install ;;
  uninstall) cmd_uninstall ;;
  proxy) shift; cmd_proxy "$@" ;;
  *) die "usage: $0 up|down|install|uninstall|status|proxy NAMESPACE SERVICE" ;;
esac

#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for tests and the local demo:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and kwok simulating N nodes.
#
#   hack/local-cluster.sh up [--nodes N]   start (idempotent: a healthy cluster is left as it is)
#   hack/local-cluster.sh down             stop every process and remove all state
#   hack/local-cluster.sh status           exit 0 when every component is up and the API is ready
#   hack/local-cluster.sh restart NAME [--down SECONDS]
#                                          kill -9 one control-plane component (etcd, kube-apiserver,
#                                          kube-controller-manager, kube-scheduler, kwok), keep it down for
#                                          SECONDS (default 0), start it again with the very command `up`
#                                          used (recorded in run/NAME.cmd), and wait until it is healthy
#
# kwok renews a node Lease every few seconds (--node-lease-duration-seconds): that is the heartbeat the
# node lifecycle controller reads. Without it the only heartbeat is kwok's node status patch, sent every
# 5 minutes, and nodes (and their pods) would flap NotReady for a moment at each one. The heartbeats can
# lag on a busy 2-core machine; a 5-minute node grace period keeps that from marking nodes NotReady.
#
# kwok runs with hack/kwok-stages.yaml: its own pod stages but for one change, Job pods of data
# operations (label ferrofluid.io/operation-uid) are not marked Succeeded by kwok; a node agent running
# them sets their phase when their containers end.
#
# Every address is loopback: apiserver and etcd on 127.0.0.1, node i at 127.0.1.i, pod IPs from
# 127.128.0.0/16 (FF_POD_CIDR) and service IPs from 127.96.0.0/16. Admin kubeconfig: .local/kubeconfig.
#
# FF_AUDIT=1 makes the apiserver write one audit event per request (Metadata level, at RequestReceived:
# user, user agent, verb, resource) to .local/cluster/audit.log; hack/bench.sh counts requests by client
# with it. Off by default.
#
# DNS stays on loopback too: every control-plane process runs in a private mount namespace whose
# /etc/resolv.conf names only a recorder (hack/dns-recorder.py) on UDP $FF_DNS_IP:53. It answers every
# query REFUSED and appends it to .local/cluster/dns-queries.log, so any name the control plane tries to
# resolve is visible there; it stays empty. The machine's own /etc/resolv.conf is never touched.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NODES="${FF_NODES:-3}"
ETCD_PORT="${FF_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${FF_ETCD_PEER_PORT:-12380}"
API_PORT="${FF_API_PORT:-16443}"
KCM_PORT="${FF_KCM_PORT:-20257}"
SCHED_PORT="${FF_SCHED_PORT:-20259}"
KWOK_PORT="${FF_KWOK_PORT:-20247}"
# One recorder per cluster: the default address is derived from the apiserver port, which two clusters
# on one machine never share (resolv.conf cannot name a port, so each needs an address of its own).
DNS_IP="${FF_DNS_IP:-127.53.$((API_PORT / 256)).$((API_PORT % 256))}"
# Two clusters on one machine each want their own pod range: agent-backed pods listen on their pod IPs.
POD_CIDR="${FF_POD_CIDR:-127.128.0.1/16}"
SERVICE_CIDR="127.96.0.0/16"

STATE="$LOCAL_DIR/cluster"
PKI="$STATE/pki"
LOGS="$STATE/logs"
RUN="$STATE/run"
KUBECONFIG_FILE="$LOCAL_DIR/kubeconfig"
RESOLV_CONF="$STATE/resolv.conf"
DNS_LOG="$STATE/dns-queries.log"
COMPONENTS=(dns-recorder etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

wait_for() { # description timeout-seconds command...
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

start() { # name command... ; runs detached in its own session, logs to $LOGS/name.log
  local name=$1; shift
  if alive "$name"; then return 0; fi
  # The exact command, NUL-separated, so `restart` starts it again with the same flags.
  printf '%s\0' "$@" >"$RUN/$name.cmd"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

# Like start, inside a private mount namespace where /etc/resolv.conf is $RESOLV_CONF. setsid, unshare
# (without --fork) and sh all exec, so the recorded pid is the component itself; the namespace ends with it.
start_resolving_via_recorder() { # name command...
  local name=$1; shift
  start "$name" unshare --mount --propagation private -- \
    sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$RESOLV_CONF" "$@"
}

start_dns_recorder() {
  printf '# hack/local-cluster.sh: the control plane resolves through the query recorder only\nnameserver %s\noptions attempts:1 timeout:1\n' \
    "$DNS_IP" >"$RESOLV_CONF"
  touch "$DNS_LOG"
  start dns-recorder python3 "$HACK_DIR/dns-recorder.py" --listen "$DNS_IP" --log "$DNS_LOG"
  wait_for "the DNS recorder on $DNS_IP:53" 30 grep -q '^listening on' "$LOGS/dns-recorder.log" ||
    die "DNS recorder not listening: $(cat "$LOGS/dns-recorder.log")"
}

gen_pki() {
  [ -f "$PKI/admin.crt" ] && return 0
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=ferrofluid-local-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    # v3 certificates with explicit usages: rustls (the Rust clients) refuses v1 certificates.
    printf 'subjectAltName=IP:127.0.0.1,IP:127.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > apiserver.ext
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > client.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
      -days 3650 -extfile apiserver.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=kubernetes-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 \
      -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext
  )
}

# The front proxy: a CA of its own and the client certificate the apiserver presents when it passes a
# request on to an aggregated API (the metrics-collector's custom metrics API), which trusts exactly that
# CA and name (published in kube-system/extension-apiserver-authentication). Made once, also for a PKI
# made before it existed.
gen_front_proxy_pki() {
  [ -f "$PKI/front-proxy-client.crt" ] && return 0
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 \
      -subj "/CN=ferrofluid-local-front-proxy-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
      -subj "/CN=front-proxy-client" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > front-proxy.ext
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
      -out front-proxy-client.crt -days 3650 -extfile front-proxy.ext 2>/dev/null
    rm -f front-proxy-client.csr front-proxy.ext
  )
}

# The client certificate the apiserver presents to kubelets (logs, exec, port-forward): a real kubelet
# (hack/real-node.sh) authenticates it against the cluster CA and authorizes it by SubjectAccessReview.
# kwok's nodes ignore it. Made once, also for a PKI made before it existed.
gen_kubelet_client_pki() {
  [ -f "$PKI/apiserver-kubelet-client.crt" ] && return 0
  (
    cd "$PKI"
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key -out apiserver-kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' > kubelet-client.ext
    openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver-kubelet-client.crt -days 3650 -extfile kubelet-client.ext 2>/dev/null
    rm -f apiserver-kubelet-client.csr kubelet-client.ext
  )
}

write_kubeconfig() {
  cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: ferrofluid-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: ferrofluid-local
  context: {cluster: ferrofluid-local, user: admin}
current-context: ferrofluid-local
KC
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

apply_nodes() {
  local i
  [ "$NODES" -gt 0 ] || return 0 # a control plane without kwok nodes (hack/real-node.sh)
  for i in $(seq 1 "$NODES"); do
    cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  addresses:
  - {type: InternalIP, address: 127.0.1.$i}
  - {type: Hostname, address: node-$i}
  allocatable: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 500Gi}
  capacity: {cpu: "32", memory: 128Gi, pods: "110", ephemeral-storage: 500Gi}
NODE
  done | kc apply -f - >/dev/null
}

nodes_ready() {
  local ready
  ready=$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
  [ "$ready" -ge "$NODES" ]
}

cmd_up() {
  "$HACK_DIR/build-tools.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
  mkdir -p "$LOGS" "$RUN" "$STATE/etcd"
  if cmd_status >/dev/null 2>&1 && [ "$(kc get nodes -l type=kwok -o name | wc -l)" -ge "$NODES" ]; then
    log "local cluster already up ($KUBECONFIG_FILE)"
    return 0
  fi
  gen_pki
  gen_front_proxy_pki
  gen_kubelet_client_pki
  write_kubeconfig
  start_dns_recorder

  start_resolving_via_recorder etcd etcd --name ferrofluid --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "ferrofluid=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_for etcd 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  local -a audit=()
  if [ "${FF_AUDIT:-0}" = 1 ]; then
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted, ResponseComplete, Panic]\nrules:\n- level: Metadata\n' \
      >"$STATE/audit-policy.yaml"
    audit=(--audit-policy-file "$STATE/audit-policy.yaml" --audit-log-path "$STATE/audit.log")
  fi

  # For logs/exec/port-forward the apiserver dials the pod's node at its preferred address; by default
  # that is the Hostname (node-i), which it would resolve. InternalIP (127.0.1.i) needs no DNS.
  start_resolving_via_recorder kube-apiserver kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode RBAC --allow-privileged=true \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --enable-priority-and-fairness=false --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP "${audit[@]}"
  wait_for kube-apiserver 120 kubectl --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz

  start_resolving_via_recorder kube-controller-manager kube-controller-manager \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" \
    --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
    --service-cluster-ip-range "$SERVICE_CIDR" --use-service-account-credentials=false \
    --node-monitor-grace-period 300s --kube-api-qps 300 --kube-api-burst 600 \
    --horizontal-pod-autoscaler-sync-period 5s
  start_resolving_via_recorder kube-scheduler kube-scheduler \
    --kubeconfig "$KUBECONFIG_FILE" --authentication-kubeconfig "$KUBECONFIG_FILE" \
    --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false \
    --kube-api-qps 300 --kube-api-burst 600
  start_resolving_via_recorder kwok kwok --kubeconfig "$KUBECONFIG_FILE" --config "$HACK_DIR/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr "$POD_CIDR" --node-ip 127.0.1.254 --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$KWOK_PORT"

  apply_nodes
  wait_for "$NODES Ready nodes" 120 nodes_ready
  wait_for "default service account" 120 kubectl --kubeconfig "$KUBECONFIG_FILE" get serviceaccount default -n default
  log "local cluster up: export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_down() {
  local name p i
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
    name=${COMPONENTS[$i]}
    p=$(pid_of "$name")
    [ -n "$p" ] || continue
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$STATE" "$KUBECONFIG_FILE"
  log "local cluster down"
}

# The value following FLAG in NAME's recorded command.
recorded_flag() { # name flag
  local -a cmd; local i
  mapfile -d '' cmd <"$RUN/$1.cmd"
  for (( i=0; i<${#cmd[@]}-1; i++ )); do
    [ "${cmd[$i]}" = "$2" ] && { echo "${cmd[$((i + 1))]}"; return 0; }
  done
  return 1
}

# Whether NAME answers its health check (ports read from its recorded command, not the environment).
healthy() { # name
  local addr
  case $1 in
    etcd)
      addr=$(recorded_flag etcd --listen-client-urls)
      curl -sf "$addr/health" >/dev/null && kc get --raw /readyz >/dev/null ;;
    kube-apiserver) kc get --raw /readyz >/dev/null ;;
    kube-controller-manager | kube-scheduler)
      curl -skf "https://127.0.0.1:$(recorded_flag "$1" --secure-port)/healthz" >/dev/null ;;
    kwok) curl -sf "http://$(recorded_flag kwok --server-address)/healthz" >/dev/null ;;
  esac
}

# kill -9 (the whole session: the component is its leader), optionally stay down, start it again with
# the recorded command, wait until healthy. Prints the milliseconds from the kill until healthy.
cmd_restart() { # name [--down seconds]
  local name=${1:-} down=0 p started
  case $name in
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kwok) ;;
    *) die "restart: NAME is one of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok" ;;
  esac
  [ "${2:-}" = "--down" ] && down=$3
  [ -f "$RUN/$name.cmd" ] || die "restart: no recorded command for $name (start the cluster with this script's up)"
  local -a cmd
  mapfile -d '' cmd <"$RUN/$name.cmd"
  p=$(pid_of "$name")
  started=$(date +%s%N)
  if [ -n "$p" ]; then
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && die "restart: $name (pid $p) survived SIGKILL"
  fi
  log "$name killed (SIGKILL); down for ${down}s"
  sleep "$down"
  start "$name" "${cmd[@]}"
  wait_for "$name healthy again" 180 healthy "$name" || die "$name did not become healthy: $(tail -n 20 "$LOGS/$name.log")"
  log "$name healthy again (pid $(pid_of "$name"))"
  echo $(( ($(date +%s%N) - started) / 1000000 ))
}

cmd_status() {
  local name ok=0
  for name in "${COMPONENTS[@]}"; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; ok=1; fi
  done
  if [ -f "$DNS_LOG" ]; then
    echo "control-plane DNS: $DNS_IP:53, $(wc -l <"$DNS_LOG") queries recorded in $DNS_LOG"
  fi
  if [ -f "$KUBECONFIG_FILE" ] && kc get --raw /readyz >/dev/null 2>&1; then
    echo "apiserver: ready"
  else
    echo "apiserver: not ready"; ok=1
  fi
  return $ok
}

case "${1:-}" in
  up) shift; [ "${1:-}" = "--nodes" ] && NODES=$2; cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) shift; cmd_restart "$@" ;;
  *) echo "usage: $0 up [--nodes N] | down | status | restart NAME [--down SECONDS]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The control-plane components of ferrofluid as local processes (what the Helm chart runs as
# Deployments): dataset-controller, runtime-controller, dataops-controller, metrics-collector, and a Redis for JuiceFS
# metadata. The csi-plugin runs per node, under the node agents (hack/node-agents.sh).
#
#   hack/components.sh start | stop | status
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BIN_DIR="${FERROFLUID_BIN_DIR:-$REPO_ROOT/target/debug}"
RUN="$LOCAL_DIR/components"
KUBECONFIG_FILE="${KUBECONFIG:-$LOCAL_DIR/kubeconfig}"
REDIS_PORT="${FF_REDIS_PORT:-16379}"
NAMES=(redis dataset-controller runtime-controller dataops-controller metrics-collector)

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_one() { # name port command...
  local name=$1; shift
  alive "$name" && return 0
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

cmd_start() {
  mkdir -p "$RUN" "$LOCAL_DIR/redis"
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: start the cluster first"
  start_one redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$LOCAL_DIR/redis"
  local common=(--kubeconfig "$KUBECONFIG_FILE" --leader-elect=false)
  start_one dataset-controller "$BIN_DIR/dataset-controller" "${common[@]}" --http-addr 127.0.0.1:18081
  start_one runtime-controller "$BIN_DIR/runtime-controller" "${common[@]}" --http-addr 127.0.0.1:18082 --resync-seconds 10
  start_one metrics-collector "$BIN_DIR/metrics-collector" "${common[@]}" --http-addr 127.0.0.1:18083 \
    --scrape-interval 2s --scrape-timeout 1s
  start_one dataops-controller "$BIN_DIR/dataops-controller" "${common[@]}" --http-addr 127.0.0.1:18084
  for port in 18081 18082 18083 18084; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  done
  log "components up: logs in $RUN; metrics on 127.0.0.1:18081-18084; redis on 127.0.0.1:$REDIS_PORT"
}

cmd_stop() {
  local name p
  for name in "${NAMES[@]}"; do
    p=$(pid_of "$name")
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    rm -f "$RUN/$name.pid"
  done
  rm -rf "$LOCAL_DIR/redis"
}

cmd_status() {
  local ok=0 name
  for name in "${NAMES[@]}"; do
    if alive "$name"; then echo "$name: running"; else echo "$name: stopped"; ok=1; fi
  done
  return $ok
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Node agents: each agent-backed node is its own mount namespace, with private /runtime-mnt and
# /var/lib/kubelet bound from .local/nodes/<node>/{runtime-mnt,kubelet}, and a node-agent (the kubelet
# stand-in, e2e/node-agent) running the node's ferrofluid pods and its csi-plugin inside it.
#
#   hack/node-agents.sh start NODE...    start agents (idempotent: a running agent is left as it is)
#   hack/node-agents.sh stop [NODE...]   stop agents (all when no node is named): no process, mount or
#                                        namespace is left behind
#   hack/node-agents.sh status [NODE...] exit 0 when every named (or known) agent runs
#
# Environment: FF_NODES_DIR (default .local/nodes), KUBECONFIG (default .local/kubeconfig),
# FERROFLUID_BIN_DIR (node-agent and csi-plugin, default target/debug), FF_NODE_CSI=0 to run no
# csi-plugin, FF_AGENT_ARGS for extra node-agent flags, FF_AGENT_STOP_TIMEOUT (seconds, default 60).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NODES_DIR="${FF_NODES_DIR:-$LOCAL_DIR/nodes}"
KUBECONFIG_FILE="${KUBECONFIG:-$LOCAL_DIR/kubeconfig}"
BIN_DIR="${FERROFLUID_BIN_DIR:-$REPO_ROOT/target/debug}"
STOP_TIMEOUT="${FF_AGENT_STOP_TIMEOUT:-60}"
MOUNT_POINTS=(/runtime-mnt /var/lib/kubelet)

[ "$(id -u)" -eq 0 ] || die "node agents need root (mount namespaces and bind mounts)"

# The agent's pid when it runs (its pid is the namespace's first process), else nothing.
agent_pid() {
  local dir=$NODES_DIR/$1 p
  p=$(cat "$dir/ns.pid" 2>/dev/null || true)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  grep -qa node-agent "/proc/$p/cmdline" 2>/dev/null || return 0
  echo "$p"
}

cmd_start() {
  local node dir agent csi_args=() pid
  agent="$BIN_DIR/node-agent"
  [ -x "$agent" ] || die "$agent missing: run cargo build --workspace --bins"
  if [ "${FF_NODE_CSI:-1}" != 0 ]; then
    [ -x "$BIN_DIR/csi-plugin" ] || die "$BIN_DIR/csi-plugin missing (FF_NODE_CSI=0 runs agents without CSI)"
    csi_args=(--csi-plugin "$BIN_DIR/csi-plugin")
  fi
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig at $KUBECONFIG_FILE: start the cluster first"
  # Mount points on the host stay empty; each namespace binds its node's directories onto them.
  mkdir -p "${MOUNT_POINTS[@]}"
  for node in "$@"; do
    dir=$NODES_DIR/$node
    if [ -n "$(agent_pid "$node")" ]; then
      log "node agent for $node already running (pid $(agent_pid "$node"))"
      continue
    fi
    # An agent that died hard may have left processes in its namespace: clear them first.
    [ -f "$dir/ns.id" ] && cmd_stop "$node"
    mkdir -p "$dir/runtime-mnt" "$dir/kubelet" "$dir/logs" "$dir/csi" "$dir/status"
    rm -f "$dir/ns.pid" "$dir/ns.id" "$dir/agent.ready"
    dir=$(cd "$dir" && pwd)
    # unshare -m: a new mount namespace where every mount is private (nothing propagates to the host
    # or other nodes). The shell binds the node's directories, records its pid, and execs the agent
    # (same pid): the namespace lives exactly as long as the agent and whatever it started.
    # shellcheck disable=SC2016
    NO_COLOR=1 setsid unshare --mount --propagation private -- /bin/sh -c '
      set -e
      dir=$1; shift
      mount --bind "$dir/runtime-mnt" /runtime-mnt
      mount --bind "$dir/kubelet" /var/lib/kubelet
      # Each node has its own /dev/shm (MEM cache tiers live there); it vanishes with the namespace.
      mount -t tmpfs -o "size=${FF_NODE_SHM_SIZE:-1g},mode=1777" tmpfs /dev/shm
      echo $$ > "$dir/ns.pid"
      exec "$@"' node-ns "$dir" \
      "$agent" --node "$node" --node-dir "$dir" --kubeconfig "$KUBECONFIG_FILE" \
      --kubelet-root /var/lib/kubelet "${csi_args[@]}" ${FF_AGENT_ARGS:-} \
      >>"$dir/logs/node-agent.log" 2>&1 </dev/null &
    for _ in $(seq 1 300); do
      pid=$(agent_pid "$node")
      [ -n "$pid" ] && [ -f "$dir/agent.ready" ] && break
      sleep 0.1
    done
    pid=$(agent_pid "$node")
    if [ -z "$pid" ] || [ ! -f "$dir/agent.ready" ]; then
      tail -n 20 "$dir/logs/node-agent.log" >&2 || true
      die "node agent for $node did not become ready (log: $dir/logs/node-agent.log)"
    fi
    readlink "/proc/$pid/ns/mnt" > "$dir/ns.id"
    log "node agent for $node running (pid $pid, $dir)"
  done
}

cmd_stop() {
  local node dir pid ns left
  for node in "$@"; do
    dir=$NODES_DIR/$node
    [ -d "$dir" ] || continue
    pid=$(agent_pid "$node")
    ns=$(cat "$dir/ns.id" 2>/dev/null || true)
    [ -z "$pid" ] || ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || echo "$ns")
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && log "node agent for $node did not stop in ${STOP_TIMEOUT}s; killing"
    fi
    # Whatever is still in the namespace (an agent killed hard, a stuck process) is killed; the
    # namespace, and every mount in it, goes with its last process.
    if [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; then
      for _ in $(seq 1 50); do
        left=$(ns_pids "$ns" "/$node/runtime-mnt")
        [ -z "$left" ] && break
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
        sleep 0.1
      done
      left=$(ns_pids "$ns" "/$node/runtime-mnt")
      [ -z "$left" ] || die "processes left in $node's namespace: $(echo "$left" | tr '\n' ' ')"
    fi
    rm -f "$dir/ns.pid" "$dir/ns.id" "$dir/agent.ready"
    log "node agent for $node stopped"
  done
}

known_nodes() {
  local d
  for d in "$NODES_DIR"/*/; do [ -d "$d" ] && basename "$d"; done
  return 0
}

cmd_status() {
  local node pid ok=0
  for node in "$@"; do
    pid=$(agent_pid "$node")
    if [ -n "$pid" ]; then echo "$node: running (pid $pid)"; else echo "$node: stopped"; ok=1; fi
  done
  return $ok
}

action=${1:-}
[ $# -gt 0 ] && shift
# shellcheck disable=SC2046 # node names are words: split on purpose
case "$action" in
  start) [ $# -gt 0 ] || die "usage: $0 start NODE..."; cmd_start "$@" ;;
  stop) if [ $# -gt 0 ]; then cmd_stop "$@"; else cmd_stop $(known_nodes); fi ;;
  status) if [ $# -gt 0 ]; then cmd_status "$@"; else cmd_status $(known_nodes); fi ;;
  *) echo "usage: $0 start NODE... | stop [NODE...] | status [NODE...]" >&2; exit 2 ;;
esac

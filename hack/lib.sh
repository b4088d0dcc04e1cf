# Shared settings for hack/ scripts. Source it; it defines paths and versions once.
# shellcheck shell=bash

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

K8S_VERSION="v1.34.4"
ETCD_VERSION="v3.6.4"
KWOK_VERSION="v0.7.0"
CSI_TEST_VERSION="v5.4.0"
HELM_VERSION="v3.19.5"
# MinIO publishes no module versions, only commits: the newest the module proxy lists (2026-02-12).
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
FLUID_VERSION="v1.0.8" # hack/bench.sh runs it side by side (hack/fluid.sh; pinned in hack/fluid/go.mod)
PROMETHEUS_VERSION="v0.316.0" # Go module version of Prometheus 3.16.0 (v0.3xx.y = 3.xx.y); hack/prometheus.sh

# Built tools live outside the checkout so fresh clones (CI) reuse them.
FF_CACHE="${FERROFLUID_CACHE:-$HOME/.cache/ferrofluid}"
FF_BIN="$FF_CACHE/bin"
LOCAL_DIR="${FERROFLUID_LOCAL:-$REPO_ROOT/.local}"

export PATH="$FF_BIN:/usr/local/go/bin:$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Starts `command...` in the background in a session of its own (so killing the process group also
# stops its children), output appended to LOG. When the local cluster at $LOCAL_DIR has its DNS
# recorder, the command runs in a private mount namespace whose /etc/resolv.conf names only the
# recorder (as hack/local-cluster.sh runs the control plane): any name it resolves is recorded in the
# cluster's dns-queries.log. setsid, unshare and sh all exec, so SPAWNED_PID is the command itself.
spawn_recorded() { # log command...
  local out=$1 resolv="$LOCAL_DIR/cluster/resolv.conf"; shift
  if [ -f "$resolv" ]; then
    # shellcheck disable=SC2016 # $0 and $@ are the inner shell's: the command is passed as arguments
    setsid unshare --mount --propagation private -- \
      sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$resolv" "$@" >>"$out" 2>&1 </dev/null &
  else
    setsid "$@" >>"$out" 2>&1 </dev/null &
  fi
  SPAWNED_PID=$!
}

# SIGTERM to the process group PID leads (spawn_recorded's), SIGKILL after 5 s.
stop_group() { # pid
  kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}

# Pids of the processes in mount namespace $1 (as `readlink /proc/PID/ns/mnt` prints it) — and, with
# $2, only those whose mount table shows $2 (e.g. `/<node>/runtime-mnt`): the kernel gives a new
# namespace the number of one that just went, so a number read before a namespace ended may by now
# name someone else's.
ns_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$1" ] || continue
    [ -z "${2:-}" ] || grep -qF -- "$2" "$p/mountinfo" 2>/dev/null || continue
    echo "${p#/proc/}"
  done
  return 0
}

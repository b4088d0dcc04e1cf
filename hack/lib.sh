# Shared settings for hack/ scripts. Source it; it defines paths and versions once.
# shellcheck shell=bash

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

K8S_VERSION="v1.34.4"
ETCD_VERSION="v3.6.4"
KWOK_VERSION="v0.7.0"
CSI_TEST_VERSION="v5.4.0"
HELM_VERSION="v3.19.5"

# Built tools live outside the checkout so fresh clones (CI) reuse them.
FF_CACHE="${FERROFLUID_CACHE:-$HOME/.cache/ferrofluid}"
FF_BIN="$FF_CACHE/bin"
LOCAL_DIR="${FERROFLUID_LOCAL:-$REPO_ROOT/.local}"

export PATH="$FF_BIN:/usr/local/go/bin:$HOME/.cargo/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

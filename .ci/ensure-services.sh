#!/usr/bin/env bash
# Make sure the services the test suite needs are up on this machine:
#   1. PostgreSQL answering on 127.0.0.1:5432 (started with pg_ctlcluster if not)
#   2. the pgvector extension installed (db/install-pgvector.sh, idempotent)
#   3. Redis answering on 127.0.0.1:6379 (started as a daemon if not)
# Idempotent: when everything is already up this only runs quick checks.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_WAIT_S="${PG_WAIT_S:-30}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_WAIT_S="${REDIS_WAIT_S:-15}"
REDIS_DIR=/var/lib/redis
REDIS_LOG=/var/log/redis/ci.log

log() { echo "[services] $*"; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

# --------------------------------------------------------------- PostgreSQL
pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }

# The cluster that owns $PG_PORT (falls back to the newest installed version's
# "main" cluster when pg_lsclusters cannot tell).
pg_cluster() {
  local c
  c="$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }')"
  if [ -z "$c" ]; then
    c="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n1)"
    [ -n "$c" ] && c="$c main"
  fi
  echo "$c"
}

command -v pg_isready >/dev/null 2>&1 || die "pg_isready not found (is PostgreSQL installed?)"
if pg_up; then
  log "PostgreSQL is up on ${PG_HOST}:${PG_PORT}"
else
  read -r PG_VER PG_NAME <<<"$(pg_cluster)" || true
  [ -n "${PG_VER:-}" ] || die "PostgreSQL is down and no cluster was found under /etc/postgresql"
  log "PostgreSQL not answering on ${PG_HOST}:${PG_PORT}; starting cluster ${PG_VER}/${PG_NAME}"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VER" "$PG_NAME" start \
    || log "pg_ctlcluster start returned non-zero (it may already be starting); waiting anyway"
  for _ in $(seq 1 "$PG_WAIT_S"); do pg_up && break; sleep 1; done
  if ! pg_up; then
    tail -n 20 "/var/log/postgresql/postgresql-${PG_VER}-${PG_NAME}.log" 2>/dev/null | sed 's/^/[services]   /' >&2 || true
    die "PostgreSQL did not come up on ${PG_HOST}:${PG_PORT} within ${PG_WAIT_S}s"
  fi
  log "PostgreSQL is up on ${PG_HOST}:${PG_PORT}"
fi

# ----------------------------------------------------------------- pgvector
log "ensuring pgvector"
PGHOST="$PG_HOST" PGPORT="$PG_PORT" bash "$REPO_ROOT/db/install-pgvector.sh" \
  || die "db/install-pgvector.sh failed"

# -------------------------------------------------------------------- Redis
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (is redis installed?)"
if redis_up; then
  log "Redis is up on ${REDIS_HOST}:${REDIS_PORT}"
else
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found"
  log "Redis not answering on ${REDIS_HOST}:${REDIS_PORT}; starting redis-server"
  mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOG")"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_LOG" \
    || log "redis-server returned non-zero; waiting anyway"
  for _ in $(seq 1 "$REDIS_WAIT_S"); do redis_up && break; sleep 1; done
  if ! redis_up; then
    tail -n 20 "$REDIS_LOG" 2>/dev/null | sed 's/^/[services]   /' >&2 || true
    die "Redis did not come up on ${REDIS_HOST}:${REDIS_PORT} within ${REDIS_WAIT_S}s"
  fi
  log "Redis is up on ${REDIS_HOST}:${REDIS_PORT}"
fi

log "all services ready"

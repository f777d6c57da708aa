#!/usr/bin/env bash
# Install the pgvector extension into the locally running PostgreSQL server.
#
# pgvector is not packaged for Debian bookworm, so it is built from Debian's
# trixie *source* package against the bookworm postgresql-server-dev-<major>
# headers. Only a deb-src entry is added for trixie, so no trixie binary
# packages can ever be pulled in.
#
# Idempotent and non-interactive: if the server already offers the `vector`
# extension, nothing is built (the extension is only (re)created in the test
# and postgres databases, which is a no-op when it already exists).
#
# Environment overrides:
#   PGHOST (127.0.0.1)  PGPORT (5432)  PGUSER (postgres)
#   PGVECTOR_DATABASES  databases to CREATE EXTENSION in (default: "test postgres")
#   PGVECTOR_SUITE      Debian suite to take the source package from (default: trixie)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-postgres}"
DATABASES="${PGVECTOR_DATABASES:-test postgres}"
SUITE="${PGVECTOR_SUITE:-trixie}"
SRC_LIST="/etc/apt/sources.list.d/pgvector-${SUITE}-src.sources"
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300)

log() { echo "[pgvector] $*"; }
die() { echo "[pgvector] ERROR: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (or have sudo available)"
  SUDO=(sudo -n DEBIAN_FRONTEND=noninteractive)
fi

psql_q() { # psql_q <db> <sql>  -> unaligned, tuples-only output
  PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
    psql -X -v ON_ERROR_STOP=1 -qtA -d "$1" -c "$2"
}

server_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" >/dev/null 2>&1; }

vector_available() {
  [ "$(psql_q postgres "select 1 from pg_available_extensions where name='vector'" 2>/dev/null)" = "1" ]
}

create_and_verify() {
  local db dist ver
  for db in $DATABASES; do
    if [ "$(psql_q postgres "select 1 from pg_database where datname='${db}'")" != "1" ]; then
      die "database '${db}' does not exist on ${PGHOST}:${PGPORT}"
    fi
    psql_q "$db" "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    ver="$(psql_q "$db" "select extversion from pg_extension where extname='vector'")"
    log "extension vector ${ver} present in database '${db}'"
  done
  dist="$(psql_q test "select '[1,2,3]'::vector <-> '[3,2,1]'::vector")"
  log "verification query: '[1,2,3]'::vector <-> '[3,2,1]'::vector = ${dist}"
}

command -v psql >/dev/null 2>&1 || die "psql not found (is postgresql-client installed?)"
server_up || die "PostgreSQL is not answering on ${PGHOST}:${PGPORT}; start it first (e.g. .ci/ensure-services.sh)"

# ---------------------------------------------------------------- fast path
if vector_available; then
  log "vector extension already available in the running server; nothing to build"
  create_and_verify
  exit 0
fi

# ------------------------------------------------ detect server major version
PG_MAJOR="$(psql_q postgres "select current_setting('server_version_num')::int / 10000")"
[[ "$PG_MAJOR" =~ ^[0-9]+$ ]] || die "could not determine PostgreSQL major version (got '${PG_MAJOR}')"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
log "running server is PostgreSQL ${PG_MAJOR}; will build against ${PG_CONFIG}"

# ------------------------------------------- find the Debian mirror in use
# Reads both one-line (*.list) and deb822 (*.sources) formats and takes the
# URI that serves the plain bookworm suite (not -security / -updates).
detect_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      /^[[:space:]]*#/ { next }
      $1 == "deb" || $1 == "deb-src" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (uris != "" && (" " suites " ") ~ / bookworm /) { split(uris, u, " "); print u[1] }
        uris = ""; suites = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      tolower($1) == "uris:"   { $1 = ""; uris = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      END { flush() }' "$f"
  done
}
MIRROR="$(detect_mirror | sed -e 's:/*$::' | head -n1 || true)"
if [ -z "$MIRROR" ]; then
  MIRROR="http://deb.debian.org/debian"
  log "could not detect the configured Debian mirror; falling back to ${MIRROR}"
else
  log "using Debian mirror ${MIRROR}"
fi

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || die "${KEYRING} missing (install debian-archive-keyring)"

# ------------------------------------------------- add deb-src for trixie
WANT_SRC="Types: deb-src
URIs: ${MIRROR}
Suites: ${SUITE}
Components: main
Signed-By: ${KEYRING}"
if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$WANT_SRC" ]; then
  log "writing ${SRC_LIST} (deb-src only, ${SUITE})"
  printf '%s\n' "$WANT_SRC" | "${SUDO[@]}" tee "$SRC_LIST" >/dev/null
else
  log "${SRC_LIST} already present"
fi

log "apt-get update"
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" update

# ------------------------------------------------------ build dependencies
# Pin server-dev to the installed server's version when that version is still
# installable, so the server package is not upgraded as a side effect.
PKGS=(build-essential dpkg-dev "postgresql-server-dev-${PG_MAJOR}")
SERVER_VER="$(dpkg-query -W -f='${Version}' "postgresql-${PG_MAJOR}" 2>/dev/null || true)"
if [ -n "$SERVER_VER" ] && apt-cache madison "postgresql-server-dev-${PG_MAJOR}" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$SERVER_VER"; then
  PKGS[2]="postgresql-server-dev-${PG_MAJOR}=${SERVER_VER}"
fi
log "installing build dependencies: ${PKGS[*]}"
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" install --no-install-recommends "${PKGS[@]}"
[ -x "$PG_CONFIG" ] || die "${PG_CONFIG} not found after installing postgresql-server-dev-${PG_MAJOR}"

# The server-dev install can pull in a newer postgresql-<major>; make sure
# the server is still answering before going on.
for _ in $(seq 1 30); do server_up && break; sleep 1; done
server_up || die "PostgreSQL stopped answering after installing build dependencies"

# ----------------------------------------------------------- fetch & build
WORKDIR="$(mktemp -d /tmp/pgvector-build.XXXXXX)"
trap 'rm -rf "$WORKDIR"' EXIT
# apt downloads as the unprivileged _apt user; give it the directory so it
# does not fall back to an unsandboxed download (and warn about it).
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$WORKDIR"; fi
log "fetching source package pgvector/${SUITE} into ${WORKDIR}"
(cd "$WORKDIR" && apt-get -q source "pgvector/${SUITE}")
SRC_DIR="$(find "$WORKDIR" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n1)"
if [ -z "$SRC_DIR" ] || [ ! -f "$SRC_DIR/Makefile" ]; then
  die "pgvector source tree not found in ${WORKDIR}"
fi
log "building $(basename "$SRC_DIR") with PG_CONFIG=${PG_CONFIG}"
# OPTFLAGS="" drops pgvector's default -march=native so the build is portable
# between CPUs (e.g. a cached CI image).
make -C "$SRC_DIR" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS=""
log "installing"
"${SUDO[@]}" make -C "$SRC_DIR" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install

# ----------------------------------------------------------------- verify
vector_available || die "build finished but the server still does not list the vector extension"
create_and_verify
log "done: pgvector $(basename "$SRC_DIR" | sed 's/^pgvector-//') installed in ${SECONDS}s"

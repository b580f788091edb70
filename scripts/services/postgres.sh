#!/usr/bin/env bash
# Make sure a PostgreSQL server the tests can use is running, and print its URL
# as exactly one stdout line:
#   PSP_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/DBNAME
# Everything else goes to stderr.
#
# Tried in order:
#   1. a server on 127.0.0.1:5432 that lets `postgres` in without a password
#      (trust auth): use database `test` there, else create `psp_test`;
#   2. the machine's own cluster (Debian /etc/postgresql/VERSION/main) if it
#      exists but is stopped: start it, then check 1 again;
#   3. a private cluster in ${PSP_SERVICES_DIR:-REPO/.services}/postgres on
#      127.0.0.1:${PSP_PG_PORT:-55432}, trust auth, database `psp_test`.
# PSP_PG_FORCE_PRIVATE=1 skips 1 and 2.
#
# Usage: postgres.sh [start]   ensure running, print the URL (default)
#        postgres.sh stop      stop the private cluster (never the system one)
#
# Idempotent: a second call while the server runs is fast and prints the same
# line. Install the server first with scripts/services/install.sh.
set -euo pipefail
shopt -s nullglob

exec 3>&1 1>&2 # keep stdout for the URL line alone

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PRIVATE_DIR=${PSP_SERVICES_DIR:-$REPO/.services}/postgres
PRIVATE_PORT=${PSP_PG_PORT:-55432}
HOST=127.0.0.1
SUPERUSER=postgres
PRIVATE_DATABASE=psp_test

newest() { [[ $# -gt 0 ]] && printf '%s\n' "$@" | sort -V | tail -n 1; }

# The newest installed server's binaries (initdb/pg_ctl are not on PATH on Debian).
BIN_DIR=$(newest /usr/lib/postgresql/*/bin || true)
pg_tool() {
    if [[ -n $BIN_DIR && -x $BIN_DIR/$1 ]]; then
        echo "$BIN_DIR/$1"
    elif command -v "$1" >/dev/null; then
        command -v "$1"
    else
        die "PostgreSQL's $1 not found; run scripts/services/install.sh (as root) first"
    fi
}

# Fail with the install hint up front: inside "$(pg_tool ...)" die only ends a subshell.
require_tools() {
    local tool
    for tool in "$@"; do
        pg_tool "$tool" >/dev/null
    done
}

# psql as the superuser over TCP, never prompting for a password.
sql() {
    local port=$1 database=$2
    shift 2
    PGCONNECT_TIMEOUT=5 "$(pg_tool psql)" -X -w -q -v ON_ERROR_STOP=1 -At \
        -h "$HOST" -p "$port" -U "$SUPERUSER" -d "$database" "$@"
}

usable_with_trust_auth() {
    local port=$1
    "$(pg_tool pg_isready)" -q -h "$HOST" -p "$port" -t 3 &&
        [[ $(sql "$port" postgres -c 'select 1' 2>/dev/null) == 1 ]]
}

database_exists() {
    local port=$1 database=$2
    [[ $(sql "$port" postgres -c "select 1 from pg_database where datname = '$database'") == 1 ]]
}

create_database_if_missing() {
    local port=$1 database=$2
    if ! database_exists "$port" "$database"; then
        log "creating database $database on port $port"
        # A parallel caller may win the race; then the database exists anyway.
        sql "$port" postgres -c "create database $database" || database_exists "$port" "$database"
    fi
}

print_url() {
    printf 'PSP_TEST_PG_URL=postgresql+psycopg://%s@%s:%s/%s\n' "$SUPERUSER" "$HOST" "$1" "$2" >&3
}

use_server_on() {
    local port=$1
    if database_exists "$port" test; then
        print_url "$port" test
    else
        create_database_if_missing "$port" "$PRIVATE_DATABASE"
        print_url "$port" "$PRIVATE_DATABASE"
    fi
}

# --- 1 and 2: the machine's own server ------------------------------------

try_system_server() {
    if usable_with_trust_auth 5432; then
        log "using the server on $HOST:5432"
        use_server_on 5432
        return 0
    fi
    command -v pg_ctlcluster >/dev/null || return 1
    local version_dir version
    version_dir=$(newest /etc/postgresql/*/main || true)
    [[ -n $version_dir ]] || return 1
    version=$(basename "$(dirname "$version_dir")")
    if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
        log "system cluster $version/main runs but does not let $SUPERUSER in over TCP without a password"
        return 1
    fi
    # Debian's default pg_hba.conf asks for passwords over TCP; starting such
    # a cluster only to stop it again would make every call seconds slower.
    if ! grep -Eqs '^[[:space:]]*host[a-z]*[[:space:]].*[[:space:]]trust([[:space:]]|$)' \
        "/etc/postgresql/$version/main/pg_hba.conf"; then
        log "system cluster $version/main is stopped and its pg_hba.conf trusts no TCP login; not using it"
        return 1
    fi
    log "starting the system cluster $version/main"
    if ! pg_ctlcluster --skip-systemctl-redirect "$version" main start 3>&-; then
        log "could not start the system cluster $version/main"
        return 1
    fi
    local port
    port=$(pg_conftool -s "$version" main show port 2>/dev/null || echo 5432)
    if usable_with_trust_auth "$port"; then
        log "using the system cluster on $HOST:$port"
        use_server_on "$port"
        return 0
    fi
    log "system cluster $version/main does not trust $SUPERUSER over TCP; stopping it again"
    pg_ctlcluster --skip-systemctl-redirect "$version" main stop || log "warning: could not stop it"
    return 1
}

# --- 3: the private cluster -----------------------------------------------

# initdb and postgres refuse to run as root: as root, run them as the
# `postgres` OS user (created if missing); anyone else runs them as themselves.
# fds 3 (our stdout) and 9 (the lock) are closed so that the server daemon
# does not inherit them: it would hold the caller's pipe open and the lock.
as_cluster_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@" 3>&- 9>&-
    else
        "$@" 3>&- 9>&-
    fi
}

ensure_postgres_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    id postgres >/dev/null 2>&1 && return 0
    log "creating the system user postgres"
    useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
        --shell /usr/sbin/nologin postgres
}

start_private_cluster() {
    local data=$PRIVATE_DIR/data
    require_tools initdb pg_ctl
    mkdir -p "$PRIVATE_DIR"
    ensure_postgres_os_user
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$PRIVATE_DIR"
    fi
    if ! as_cluster_owner test -w "$PRIVATE_DIR"; then
        die "the postgres user cannot write $PRIVATE_DIR (a parent folder is private?); set PSP_SERVICES_DIR to a folder it can reach, e.g. /tmp/psp-services"
    fi
    if [[ ! -s $data/PG_VERSION ]]; then
        log "creating a private cluster in $data"
        as_cluster_owner "$(pg_tool initdb)" -D "$data" -U "$SUPERUSER" --auth=trust \
            --encoding=UTF8 --no-locale >"$PRIVATE_DIR/initdb.log" 2>&1 ||
            die "initdb failed; see $PRIVATE_DIR/initdb.log"
        # Test-only cluster: TCP on loopback only, no unix socket (its path
        # could be too long or unwritable), and no durability work.
        cat >>"$data/postgresql.conf" <<EOF

# Added by scripts/services/postgres.sh (test cluster)
listen_addresses = '$HOST'
port = $PRIVATE_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    fi
    if ! as_cluster_owner "$(pg_tool pg_ctl)" -D "$data" status >/dev/null 2>&1; then
        log "starting the private cluster on $HOST:$PRIVATE_PORT"
        as_cluster_owner "$(pg_tool pg_ctl)" -D "$data" -l "$PRIVATE_DIR/postgres.log" \
            -o "-p $PRIVATE_PORT" -w -t 60 start >/dev/null ||
            die "the private cluster did not start; see $PRIVATE_DIR/postgres.log (port $PRIVATE_PORT taken? set PSP_PG_PORT)"
    fi
    usable_with_trust_auth "$PRIVATE_PORT" ||
        die "the private cluster runs but $HOST:$PRIVATE_PORT does not answer; see $PRIVATE_DIR/postgres.log"
    create_database_if_missing "$PRIVATE_PORT" "$PRIVATE_DATABASE"
    print_url "$PRIVATE_PORT" "$PRIVATE_DATABASE"
}

stop_private_cluster() {
    local data=$PRIVATE_DIR/data
    if [[ -s $data/PG_VERSION ]] && as_cluster_owner "$(pg_tool pg_ctl)" -D "$data" status >/dev/null 2>&1; then
        log "stopping the private cluster in $data"
        as_cluster_owner "$(pg_tool pg_ctl)" -D "$data" -m fast -w stop >/dev/null
    else
        log "the private cluster in $data is not running"
    fi
}

# Serialise concurrent callers (e.g. parallel test workers) on one lock file.
with_lock() {
    mkdir -p "$PRIVATE_DIR"
    exec 9>"$PRIVATE_DIR/.lock"
    flock 9
    "$@"
}

case ${1:-start} in
start)
    require_tools psql pg_isready
    if [[ ${PSP_PG_FORCE_PRIVATE:-0} != 1 ]] && try_system_server; then
        exit 0
    fi
    with_lock start_private_cluster
    ;;
stop)
    require_tools pg_ctl
    if [[ -d $PRIVATE_DIR ]]; then
        with_lock stop_private_cluster
    else
        log "no private cluster in $PRIVATE_DIR"
    fi
    ;;
*)
    die "usage: $0 [start|stop]"
    ;;
esac

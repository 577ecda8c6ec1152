#!/bin/sh
# `make restore`: the server's database replaced by a backup, all or nothing. The file is
# checked whole before anything is touched or asked (an intact gzip, pg_dump's own end line,
# a PostgreSQL major version no newer than the server's); then, unless YES=1, a person
# confirms on standard input; then the writers stop and the dump runs as one transaction
# whose lock waits are bounded (the dump itself sets lock_timeout = 0: wait
# forever), so a restore that fails leaves the database as it was. The writers start again
# either way. CHECK_ONLY=1: the file's checks alone.
#
#   scripts/restore-database.sh FILE docker compose   (the compose command, as the Makefile has it)
set -u
file=$1
shift
compose="$*"
database() { COMPOSE=$compose sh scripts/database-client.sh "$@"; }
lock_seconds=${RESTORE_LOCK_SECONDS:-60}
writers="agent door towel apollo graphql hasura"
refuse() {
  echo "error: $1: nothing restored, nothing stopped" >&2
  exit 1
}

gzip -t "$file" 2>/dev/null || refuse "$file is not an intact gzip file (cut short or damaged?)"
# pg_dump's last words, after which only blank and `--` lines and, from the releases of
# August 2025 on (15.14, 16.10, 17.6), the `\unrestrict` that closes its opening `\restrict`.
ending=$(gunzip -c "$file" | awk '!/^(--)?$/ && !/^\\unrestrict / {last = $0} END {print last}')
[ "$ending" = "-- PostgreSQL database dump complete" ] ||
  refuse "$file does not end as a whole pg_dump does (cut short?)"
dumped=$(gunzip -c "$file" | sed -n 's/^-- Dumped from database version \([0-9]*\).*/\1/p' | head -n 1)
server=$(database psql -X -tA -c 'SHOW server_version_num' 2>/dev/null) ||
  refuse "the database does not answer (is the stack up? make ps)"
server=$((server / 10000))
# pg_dump's output restores into its own major version or a newer one, never an older.
[ -n "$dumped" ] && [ "$dumped" -le "$server" ] ||
  refuse "$file was dumped from PostgreSQL ${dumped:-?}, newer than the server's $server: a dump restores into the same major version or a newer one"
# make upgrade-db's check of the backup it made: only the above.
[ "${CHECK_ONLY:-}" != 1 ] || exit 0

if [ "${YES:-}" != 1 ]; then
  printf 'Replace every flow, run and log on the server with %s? [y/N] ' "$file"
  read -r answer || answer=
  [ "$answer" = y ] || { echo "Nothing restored."; exit 1; }
fi

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
# shellcheck disable=SC2086
"$@" stop $writers || refuse "the services that write to the database did not stop"
if gunzip -c "$file" | sed "s/^SET lock_timeout = 0;\$/SET lock_timeout = '${lock_seconds}s';/" |
  database psql -X -q --single-transaction -v ON_ERROR_STOP=1 >/dev/null 2>"$errors"; then
  restored=1
else
  restored=0
fi
# shellcheck disable=SC2086
"$@" up -d $writers
if [ "$restored" = 1 ]; then
  echo "Restored $file."
else
  echo "error: restoring $file failed, so none of it was applied: the database is as it was" \
    "(one transaction), and its services run again. PostgreSQL said: $(grep ERROR "$errors" | tail -n 1)" >&2
  exit 1
fi

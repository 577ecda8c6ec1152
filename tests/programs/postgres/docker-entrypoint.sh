#!/bin/sh
# The official postgres image's start, in short, for Debian's PostgreSQL in `make e2e`'s
# local image: the first start makes the cluster in PGDATA for POSTGRES_USER with
# POSTGRES_PASSWORD and creates POSTGRES_DB; then postgres runs as the postgres user on
# every address, password-checked from the network, trusted on the local socket.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=$(echo /usr/lib/postgresql/*/bin)
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
# Another command (a client's: pg_dump, psql) runs as given, as in the official image.
case "${1:-postgres}" in postgres | -*) ;; *) exec "$@" ;; esac
[ "${1:-}" != postgres ] || shift
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  password_file=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$password_file"
  chown postgres "$password_file"
  as_postgres "$BIN/initdb" -D "$PGDATA" --username="$user" --pwfile="$password_file" \
    --auth-local=trust --auth-host=md5 >/dev/null
  rm -f "$password_file"
  echo "host all all all md5" >> "$PGDATA/pg_hba.conf"
  if [ "${POSTGRES_DB:-$user}" != "$user" ]; then
    as_postgres "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB" OWNER "$user";
SQL
  fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA" \
  -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"

#!/bin/sh
# psql or pg_dump on the server's database, for `make backup` and `make restore`: in the
# stack's own postgres container, or, when POSTGRES_HOST names an external database, in a
# client container (POSTGRES_CLIENT_IMAGE) on the host's network, so that it reaches what
# the host reaches and needs no tools on the host. The password goes through the
# environment, never on a command line.
#
#   COMPOSE="docker compose" scripts/database-client.sh psql|pg_dump ARGS...
set -u
setting() { python3 -m scripts.stack setting "$1"; }
tool=$1
shift
host=$(setting POSTGRES_HOST)
if [ -z "$host" ]; then
  # shellcheck disable=SC2086 # the compose command is words: docker compose
  exec $COMPOSE exec -T postgres "$tool" -U prefect -d prefect_server "$@"
fi
PGPASSWORD=$(setting POSTGRES_PASSWORD)
PGSSLMODE=$(setting POSTGRES_SSLMODE)
export PGPASSWORD PGSSLMODE
exec docker run --rm -i --network host -e PGPASSWORD -e PGSSLMODE "$(setting POSTGRES_CLIENT_IMAGE)" \
  "$tool" -h "$host" -p "$(setting POSTGRES_PORT)" -U "$(setting POSTGRES_USER)" -d "$(setting POSTGRES_DB)" "$@"

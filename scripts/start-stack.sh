#!/bin/sh
# `make up`'s start: the stack's long-running services up, then back once every one is
# healthy. A service that restarts START_RESTARTS times, turns unhealthy, stops, or is
# still not healthy after START_SECONDS ends it with one line naming the service and its
# restart count, then its last log lines. Compose alone would wait forever on a crash loop:
# Docker resets a restarting container's health to "starting", never "unhealthy".
#
#   scripts/start-stack.sh docker compose        (the compose command, as the Makefile has it)
set -u
restarts_allowed=${START_RESTARTS:-3}
seconds_allowed=${START_SECONDS:-900}

"$@" up -d --scale register=0 &
up=$!
deadline=$(($(date +%s) + seconds_allowed))

# Prints "id service restarts status health" for each long-running container of the
# stack; health "none" where it has no healthcheck (.State then has no Health key). One
# compose is replacing may be gone by the time it is inspected: it is left out.
containers() {
  for id in $("$@" ps -a -q 2>/dev/null); do
    line=$(docker inspect -f '{{.Id}} {{index .Config.Labels "com.docker.compose.service"}} {{.RestartCount}} {{.State.Status}} {{with index .State "Health"}}{{.Status}}{{else}}none{{end}}' "$id" 2>/dev/null) \
      && printf '%s\n' "$line"
  done | grep -v ' register '
}

stop() {  # container, what is wrong with it
  kill "$up" 2>/dev/null
  echo "make up: $2; its last log lines:" >&2
  docker logs --tail 15 "$1" 2>&1 | sed 's/^/  /' >&2
  echo "make up: stopped (see make ps, make logs)" >&2
  exit 1
}

# Stops on a broken service: restarted too often, unhealthy, or (`strict`: compose has
# given up) restarted at all or stopped; the most restarted first. Containers compose only
# created (their dependency never became healthy) are not to blame.
check() {  # strict
  containers "$@" | sort -k3,3nr > "$listing"
  while read -r id service count status health; do
    [ "$status" != created ] || continue
    if [ "$count" -ge "$restarts_allowed" ] || { [ "$strict" = 1 ] && [ "$count" -gt 0 ]; }; then
      stop "$id" "$service restarted $count times ($status)"
    elif [ "$health" = unhealthy ] && [ "$status" = running ]; then  # not one being replaced
      stop "$id" "$service is unhealthy (restarted $count times)"
    elif [ "$strict" = 1 ] && [ "$status" != running ]; then
      stop "$id" "$service is $status (restarted $count times)"
    fi
  done < "$listing"
}

# The services of the last check that are not healthy yet, on one line; fails if none.
waiting() {
  awk '$5 != "healthy" && $5 != "none" {print $2}' "$listing" | sort -u | tr '\n' ' ' | grep .
}

listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
late() {
  [ "$(date +%s)" -ge "$deadline" ] || return 1
  kill "$up" 2>/dev/null
  echo "make up: not healthy after ${seconds_allowed} s: $(waiting || echo 'none created yet')" \
    "(START_SECONDS allows longer; see make ps, make logs)" >&2
}

while kill -0 "$up" 2>/dev/null; do
  strict=0; check "$@"
  ! late || exit 1
  sleep 1
done
if ! wait "$up"; then
  strict=1; check "$@"
  exit 1  # compose's own error is above
fi
# Up, but not all healthy yet (services without dependants are not waited for).
while :; do
  strict=0; check "$@"
  waiting > /dev/null || exit 0
  ! late || exit 1
  sleep 2
done

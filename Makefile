# The project's commands; `make` alone lists them.
PYTHON ?= python3
VENV ?= .venv
N_USERS ?= 10
SMOKE_TIMEOUT ?= 600
# Compose v2 (`docker compose`) where there is one, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# The stack's commands and its .env (written once, read as Compose reads it, the modes
# OFFLINE=1, DASK=1, PUBLIC=1 recorded in it; =0 takes one out again): scripts/stack.py.
STACK := $(PYTHON) -m scripts.stack

BIN := $(VENV)/bin
READY := $(VENV)/.installed
# A setting as Compose sees it: the shell's, else .env's, else .env.example's default.
setting = $$($(STACK) setting $(1)$(if $(2), "$(2)"))

.DEFAULT_GOAL := help
.PHONY: help check up down clean register logs ps smoke run test lint e2e bench agent agent-down backup restore upgrade-db ca user users audit

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.env:
	@$(STACK) create

check: .env ## check every setting in .env and the environment, before anything starts
	@$(STACK) check

# The modes and settings checked first (make check); everything but the one-shot register
# step, waited for until healthy (a crash loop stops it, naming the service); the services
# of a mode taken out removed; then register.
up: .env ## start Prefect Server and the agent, register the flows (OFFLINE=1, DASK=1, PUBLIC=1: README)
	@$(STACK) up -- $(COMPOSE)

# Flow containers are the agent's, not compose's: stop the agent so that it starts no more,
# then remove those on the stack's network (one just created, or running: its run goes on
# in a new container after `make up`, docs/pipeline.md), then the stack.
define stop_flow_runs
$(COMPOSE) stop agent
@ids=$$(docker ps -aq --filter label=io.prefect.flow-run-id \
  --filter network=$(call setting,PREFECT_NETWORK)); \
if [ -n "$$ids" ]; then docker rm --force $$ids >/dev/null; echo "Stopped the flow runs that were running."; fi
endef

down: ## stop the stack; the database (flows, runs, logs) is kept
	$(stop_flow_runs)
	$(COMPOSE) down

clean: ## stop the stack and delete its database volume (an external database is left alone)
	$(stop_flow_runs)
	$(COMPOSE) down --volumes
	@if [ -n "$(call setting,POSTGRES_HOST)" ]; then \
	  echo "Left the external database at $(call setting,POSTGRES_HOST) alone: its registrations, runs and logs are kept. Reports on the host are kept."; \
	else echo "Removed the Postgres volume: registrations, runs and logs are gone. Reports on the host are kept."; fi

# The agent goes onto the new image before anything is registered: it admits a flow's runs
# only at the version its own image has (agent/admission.py). Registering runs in its
# container, which has the new code, the engine and the server: no container of its own.
register: .env ## rebuild the image, register the changed flows (FLOW=<folder>: only that one)
	@$(STACK) check
	$(COMPOSE) build
	$(COMPOSE) up -d --no-deps agent
	$(COMPOSE) exec -T agent python register.py $(if $(FLOW),--flow "$(FLOW)")

# An agent alone, on a host other than the server's: its own compose project and network;
# with certs/ca.crt (`make ca` on the server), trusting the server's proxy too.
agent: .env ## start only an agent, for a server elsewhere (docs/scaling.md)
	@$(STACK) agent -- $(COMPOSE)

agent-down: ## stop the agent `make agent` started
	@$(STACK) agent-down -- $(COMPOSE)

# The server's database, dumped while the stack runs (scripts/database-client.sh: by its
# postgres container, or a client container for an external one). The dump drops and
# re-creates what it holds, so restoring it into the live database works.
backup: SHELL := /bin/bash
backup: ## write the server's database to backups/prefect-<UTC time>.sql.gz
	@set -o pipefail; mkdir -p backups; umask 077; \
	file=backups/prefect-$$(date -u +%Y%m%dT%H%M%SZ).sql.gz; \
	COMPOSE="$(COMPOSE)" sh scripts/database-client.sh pg_dump --clean --if-exists \
	  | gzip > "$$file.partial" && mv "$$file.partial" "$$file" \
	  || { rm -f "$$file.partial"; echo "error: backup failed: is the stack up? (make ps)" >&2; exit 1; }; \
	echo "$$file ($$(du -h "$$file" | cut -f1))"

# All or nothing (scripts/restore-database.sh): the file checked whole first, then asked,
# then the writers stopped, the dump run as one transaction, the writers started again.
# Runs whose containers are running meanwhile lose their state updates.
restore: ## replace the server's database with FILE=backups/...sql.gz (asks first; YES=1 does not)
	@[ -f "$(FILE)" ] || { echo "error: FILE=$(FILE) is not a file: make restore FILE=backups/prefect-<time>.sql.gz" >&2; exit 2; }
	@YES=$(YES) RESTORE_LOCK_SECONDS=$(call setting,RESTORE_LOCK_SECONDS) sh scripts/restore-database.sh "$(FILE)" $(COMPOSE)

# A backup first; the new cluster in the database's other volume; switched to only when every
# table's rows match; the old volume kept (scripts/upgrade_database.py).
upgrade-db: .env ## move the database to POSTGRES_IMAGE's PostgreSQL version (UNDO=1 goes back, FINISH=1 drops the old)
	@$(PYTHON) -m scripts.upgrade_database -- $(COMPOSE)

# People and the record are the door's (door/people.py), in the database: run in its
# container. The password is made there and printed once, never on a command line.
user: ## add a person or change their role, with a new password: make user NAME=ana ROLE=operator (ROLE=none removes)
	@$(COMPOSE) exec -T door python -m door user "$(NAME)" "$(ROLE)"

users: ## list the people who may log in: name, role, created, last seen
	@$(COMPOSE) exec -T door python -m door users

audit: ## the last 50 changes and refusals at the door: when, who, role, what, allowed or not
	@$(COMPOSE) exec -T door python -m door audit

ca: ## write the CA of the proxy (make up PUBLIC=1) to certs/ca.crt, for browsers and agents
	@mkdir -p certs; \
	$(COMPOSE) exec -T proxy cat /data/caddy/pki/authorities/local/root.crt > certs/ca.crt.new && \
	  mv certs/ca.crt.new certs/ca.crt || { rm -f certs/ca.crt.new; \
	  echo "make ca: the proxy has no CA of its own: is the stack up with PUBLIC=1 and PUBLIC_TLS=internal?" >&2; exit 1; }; \
	echo "Wrote certs/ca.crt: trust it in browsers, and copy it to agents' checkouts (docs/scaling.md)"

logs: ## follow the stack's logs
	$(COMPOSE) logs --follow --tail=100

ps: ## show the stack's services and their health
	$(COMPOSE) ps

smoke: $(READY) ## one ad-hoc run through the running stack, checked: make smoke N_USERS=50
	@bind=$(call setting,APOLLO_BIND); [ "$$bind" != 0.0.0.0 ] || bind=127.0.0.1; \
	PREFECT__BACKEND=server PREFECT__SERVER__HOST="http://$$bind" \
	PREFECT__SERVER__PORT=$(call setting,APOLLO_PORT) \
	HOST_REPORTS_DIR="$(call setting,HOST_REPORTS_DIR,reports)" \
	$(BIN)/python -m tests.programs.smoke --n-users "$(N_USERS)" --timeout "$(SMOKE_TIMEOUT)"

# The virtual environment is made on first use and again when the requirements change, with
# a Python the pins have wheels for: numpy 1.24 (pandas 1.x, for prefect 0.15.9's dask) stops
# at 3.11.
PYTHON_VERSIONS := 3.9 to 3.11
$(READY): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' || { \
	  echo "error: the tests need Python $(PYTHON_VERSIONS) (numpy 1.24, pinned for prefect 0.15.9, has no wheel for $$($(PYTHON) -V)): make test PYTHON=python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(READY) ## run the flow once here, no server: make run N_USERS=50 (OFFLINE=1: the offline users API)
	@$(BIN)/python -m flows.users_report --n-users "$(N_USERS)"$(if $(filter 1,$(OFFLINE)), --offline)

# The fast unit layer first, stopping there on a failure; then the scenarios, four at a
# time: they mostly wait on the subprocesses and local servers they start.
test: $(READY) ## run the whole test suite (no internet, server or Docker engine needed)
	$(BIN)/python -m pytest tests/unit
	$(BIN)/python -m pytest -n 4 --ignore=tests/unit

lint: $(READY) ## check formatting and lint (ruff.toml); ruff format . fixes the formatting
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

e2e: $(READY) ## the stack's own services and real flow containers on this Docker engine: make e2e HOPS=housekeeping
	$(BIN)/python -m pytest tests/e2e -v $(if $(HOPS),-k "$(HOPS)")

bench: $(READY) ## measure speed and memory against the local fake users API
	$(BIN)/python -m tests.programs.bench

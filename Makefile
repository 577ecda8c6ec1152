# The project's commands; `make` alone lists them.
PYTHON ?= python3
VENV ?= .venv
N_USERS ?= 10
SMOKE_TIMEOUT ?= 600
# Compose v2 (`docker compose`) where there is one, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# OFFLINE=1 records the offline demo in .env, so that every later command (make register,
# make down, docker compose up -d agent) keeps it: its compose profile, its address, and no
# limit to pace to. OFFLINE=0 takes those lines out again: runs go to randomuser.me.
OFFLINE_SETTINGS := COMPOSE_PROFILES=offline RANDOMUSER_URL=http://users-api:8999/api/ USERS_API_LIMIT=0
define record_offline
umask 077; awk -v settings="$(OFFLINE_SETTINGS)" -v keep="$(OFFLINE)" \
  'BEGIN { n = split(settings, wanted, " "); for (i = 1; i <= n; i++) { split(wanted[i], kv, "="); mine[kv[1]] = 1 } } \
   { split($$0, kv, "="); if (!(kv[1] in mine)) print } \
   END { if (keep == 1) for (i = 1; i <= n; i++) print wanted[i] }' .env > .env.new && mv .env.new .env
endef

BIN := $(VENV)/bin
READY := $(VENV)/.installed
# A setting as Compose sees it: the shell's, else .env's, else the default given:
# $(call setting,UI_PORT,8080)
setting = $${$(1):-$$(sed -n 's/^$(1)=//p' .env | tail -n 1 | grep . || echo "$(2)")}

.DEFAULT_GOAL := help
.PHONY: help up down clean register logs ps smoke run test e2e bench

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Written once, from .env.example, never overwritten: each empty secret gets 24 random bytes
# in hex, the reports folder its absolute path (the agent binds it from the host), APP_UID
# your uid (1000 when root: flow runs never run as root). umask 077: only you read it.
.env:
	@secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }; \
	uid=$$(id -u); [ "$$uid" != 0 ] || uid=1000; \
	umask 077; awk -v pg="$$(secret)" -v hs="$$(secret)" -v dir="$(CURDIR)/reports" -v uid="$$uid" \
	  '/^POSTGRES_PASSWORD=$$/ {$$0 = $$0 pg} /^HASURA_ADMIN_SECRET=$$/ {$$0 = $$0 hs} \
	   /^HOST_REPORTS_DIR=$$/ {$$0 = $$0 dir} /^APP_UID=$$/ {$$0 = $$0 uid} {print}' \
	  .env.example > $@
	@echo "Wrote .env with fresh secrets (private to you, ignored by git)."

# Everything but the one-shot register step, then register in the foreground: `run` waits
# for the agent to be healthy and exits with register's own exit code.
up: .env ## start Prefect Server and the agent, register the flow (OFFLINE=1: demo users API)
ifneq ($(OFFLINE),)
	@$(record_offline)
endif
	@dir=$(call setting,HOST_REPORTS_DIR,); uid=$(call setting,APP_UID,1000); \
	mkdir -p "$$dir" && { [ "$$(id -u)" != 0 ] || chown "$$uid" "$$dir"; }
	$(COMPOSE) build
	$(COMPOSE) up -d --scale register=0
	$(COMPOSE) run --rm register
	@echo; echo "Prefect UI:  http://localhost:$(call setting,UI_PORT,8080)  (flow \"Users report\", project \"$(call setting,PREFECT_PROJECT,Data office)\")"; \
	echo "Reports:     $(call setting,HOST_REPORTS_DIR,)"; \
	echo "Next:        make smoke (one checked run), or start runs from the UI (README: Ad-hoc runs)"

down: ## stop the stack; the database (flows, runs, logs) is kept
	$(COMPOSE) down

clean: ## stop the stack and delete its database volume
	$(COMPOSE) down --volumes
	@echo "Removed the Postgres volume: registrations, runs and logs are gone. Reports on the host are kept."

register: ## rebuild the image and register the flow again (after changing the code)
	$(COMPOSE) build
	$(COMPOSE) run --rm register

logs: ## follow the stack's logs
	$(COMPOSE) logs --follow --tail=100

ps: ## show the stack's services and their health
	$(COMPOSE) ps

smoke: $(READY) ## one ad-hoc run through the running stack, checked: make smoke N_USERS=50
	@PREFECT__BACKEND=server PREFECT__SERVER__HOST=http://localhost \
	PREFECT__SERVER__PORT=$(call setting,APOLLO_PORT,4200) \
	HOST_REPORTS_DIR="$(call setting,HOST_REPORTS_DIR,reports)" \
	$(BIN)/python -m tests.programs.smoke --n-users "$(N_USERS)" --timeout "$(SMOKE_TIMEOUT)"

# The virtual environment is made on first use and again when the requirements change.
$(READY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(READY) ## run the flow once here, no server: make run N_USERS=50
	@$(BIN)/python -m flows.users_report --n-users "$(N_USERS)"

test: $(READY) ## run the whole test suite (no internet, server or Docker engine needed)
	$(BIN)/python -m pytest

e2e: $(READY) ## the stack's own services and real flow containers on this Docker engine
	$(BIN)/python -m tests.programs.e2e

bench: $(READY) ## measure speed and memory against the local fake users API
	$(BIN)/python -m tests.programs.bench

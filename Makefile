# The project's commands; `make` alone lists them.
PYTHON ?= python3
VENV ?= .venv
N_USERS ?= 10
SMOKE_TIMEOUT ?= 600
# Compose v2 (`docker compose`) where there is one, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# OFFLINE=1 and DASK=1 record their compose profile and settings in .env, so that every
# later command (make register, make down, docker compose up -d agent) keeps them; =0
# takes them out again. OFFLINE: the demo users API, with no limit to pace to (runs go to
# randomuser.me without it). DASK: a Dask scheduler and DASK_WORKERS workers for flow runs.
OFFLINE_SETTINGS := RANDOMUSER_URL=http://users-api:8999/api/ USERS_API_LIMIT=0
DASK_SETTINGS = DASK_ADDRESS=tcp://dask-scheduler:8786 DASK_WORKERS=$(or $(DASK_WORKERS),2)
# $(call record,PROFILE,ON,SETTINGS): the profile, if any, joins COMPOSE_PROFILES (the last line).
define record
umask 077; awk -v profile="$(1)" -v on="$(2)" -v settings="$(3)" \
  'BEGIN { n = split(settings, wanted, " "); for (i = 1; i <= n; i++) { split(wanted[i], kv, "="); mine[kv[1]] = 1 } } \
   { split($$0, kv, "=") } \
   kv[1] == "COMPOSE_PROFILES" { m = split(kv[2], old, ","); \
     for (i = 1; i <= m; i++) if (old[i] != profile && old[i] != "") kept = kept (kept ? "," : "") old[i]; next } \
   !(kv[1] in mine) { print } \
   END { if (on == 1) { for (i = 1; i <= n; i++) print wanted[i]; if (profile != "") kept = kept (kept ? "," : "") profile } \
         if (kept) print "COMPOSE_PROFILES=" kept }' .env > .env.new && mv .env.new .env
endef

# 24 random bytes in hex: every secret `make up` generates.
SECRET = head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'
# PUBLIC=1: the proxy is published as one HTTPS port (COMPOSE_FILE: docker-compose.public.yml
# instead of docker-compose.override.yml, the loopback ports) and the UI and alert links
# use its address; =0 goes back.
define public_settings
COMPOSE_FILE=docker-compose.yml:docker-compose.public.yml PUBLIC_HOST=$$host PUBLIC_PORT=$$port PUBLIC_BIND=$$bind APOLLO_PUBLIC_URL=https://$$host:$$port/graphql UI_PUBLIC_URL=https://$$host:$$port
endef
# The proxy's secrets, each made once: API_TOKEN, and a UI password printed now and kept
# in .env only as its bcrypt hash (base64: .env values must not hold `$`).
define public_secrets
umask 077; \
if ! grep -q '^API_TOKEN=.' .env; then \
  { grep -v '^API_TOKEN=' .env; echo "API_TOKEN=$$($(SECRET))"; } > .env.new && mv .env.new .env; fi; \
if ! grep -q '^UI_PASSWORD_HASH=.' .env; then \
  image=$(call setting,PROXY_IMAGE,caddy:2); user=$(call setting,UI_USER,prefect); \
  password=$$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
  hash=$$(printf '%s\n' "$$password" | docker run --rm -i "$$image" caddy hash-password 2>/dev/null | tail -n 1); \
  case "$$hash" in '$$2'*) ;; *) echo "make up: $$image could not hash the UI password" >&2; exit 1;; esac; \
  { grep -v '^UI_PASSWORD_HASH=' .env; echo "UI_PASSWORD_HASH=$$(printf %s "$$hash" | base64 | tr -d '\n')"; } > .env.new && mv .env.new .env; \
  echo "UI login at https://$$host:$$port/  user $$user, password $$password"; \
  echo "  (shown only now: .env keeps only its hash; delete UI_PASSWORD_HASH there for a new one)"; fi
endef

BIN := $(VENV)/bin
READY := $(VENV)/.installed
# A setting as Compose sees it: the shell's, else .env's, else the default given:
# $(call setting,UI_PORT,8080)
setting = $${$(1):-$$(sed -n 's/^$(1)=//p' .env | tail -n 1 | grep . || echo "$(2)")}

# The reports folder and the flows' secrets file (mode 600, empty at first), made before
# compose binds them: Docker would make a root-owned folder of each.
define reports_folder
dir=$(call setting,HOST_REPORTS_DIR,); uid=$(call setting,APP_UID,1000); \
mkdir -p "$$dir" && { [ "$$(id -u)" != 0 ] || chown "$$uid" "$$dir"; }; \
secrets=$(call setting,FLOW_SECRETS_FILE,); [ -z "$$secrets" ] || [ -e "$$secrets" ] || \
  (umask 077; echo "# The flows' secrets: NAME=value lines (docs/flows.md)" > "$$secrets")
endef

.DEFAULT_GOAL := help
.PHONY: help up down clean register logs ps smoke run test lint e2e bench agent agent-down backup restore ca

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Written once, from .env.example, never overwritten: the empty secret gets 24 random bytes
# in hex, the reports folder and the flows' secrets file their absolute paths (the agent
# binds them from the host), APP_UID your uid (1000 when root: flow runs never run as
# root). umask 077: only you read it. The secret reaches awk in its environment, which
# other users cannot read (`ps` shows argv).
.env:
	@uid=$$(id -u); [ "$$uid" != 0 ] || uid=1000; \
	umask 077; NEW_SECRET="$$($(SECRET))" awk -v dir="$(CURDIR)" -v uid="$$uid" \
	  '/^POSTGRES_PASSWORD=$$/ {$$0 = $$0 ENVIRON["NEW_SECRET"]} \
	   /^HOST_REPORTS_DIR=$$/ {$$0 = $$0 dir "/reports"} /^APP_UID=$$/ {$$0 = $$0 uid} \
	   /^FLOW_SECRETS_FILE=$$/ {$$0 = $$0 dir "/flow-secrets.env"} {print}' \
	  .env.example > $@
	@echo "Wrote .env with fresh secrets (private to you, ignored by git)."

# Everything but the one-shot register step, waited for until healthy (a crash loop stops
# it, naming the service), then register in the foreground with its own exit code.
up: .env ## start Prefect Server and the agent, register the flows (OFFLINE=1, DASK=1, PUBLIC=1: README)
ifneq ($(OFFLINE),)
	@$(call record,offline,$(OFFLINE),$(OFFLINE_SETTINGS))
endif
ifneq ($(DASK),)
	@$(call record,dask,$(DASK),$(DASK_SETTINGS))
endif
ifneq ($(PUBLIC),)
	@host=$(call setting,PUBLIC_HOST,localhost); port=$(call setting,PUBLIC_PORT,8443); \
	bind=$(call setting,PUBLIC_BIND,0.0.0.0); \
	$(call record,,$(PUBLIC),$(public_settings)); \
	if [ "$(PUBLIC)" = 1 ]; then $(public_secrets); fi
endif
	@$(reports_folder)
	$(COMPOSE) build
	@START_SECONDS=$(call setting,START_SECONDS,) START_RESTARTS=$(call setting,START_RESTARTS,) \
	  sh scripts/start-stack.sh $(COMPOSE)
	$(COMPOSE) run --rm register
	@ui=$(call setting,UI_PUBLIC_URL,); \
	echo; echo "Prefect UI:  $${ui:-http://localhost:$(call setting,UI_PORT,8080)}  (flow \"Users report\", project \"$(call setting,PREFECT_PROJECT,Data office)\")"; \
	echo "Reports:     $(call setting,HOST_REPORTS_DIR,)"; \
	echo "Next:        make smoke (one checked run), or start runs from the UI (docs/pipeline.md)"

# Flow containers are the agent's, not compose's: stop the agent so that it starts no more,
# then remove those on the stack's network (one just created, or running: its run goes on
# in a new container after `make up`, docs/pipeline.md), then the stack.
define stop_flow_runs
$(COMPOSE) stop agent
@ids=$$(docker ps -aq --filter label=io.prefect.flow-run-id \
  --filter network=$(call setting,PREFECT_NETWORK,prefect-server)); \
if [ -n "$$ids" ]; then docker rm --force $$ids >/dev/null; echo "Stopped the flow runs that were running."; fi
endef

down: ## stop the stack; the database (flows, runs, logs) is kept
	$(stop_flow_runs)
	$(COMPOSE) down

clean: ## stop the stack and delete its database volume
	$(stop_flow_runs)
	$(COMPOSE) down --volumes
	@echo "Removed the Postgres volume: registrations, runs and logs are gone. Reports on the host are kept."

register: ## rebuild the image, register the changed flows (FLOW=<folder>: only that one)
	$(COMPOSE) build
	$(COMPOSE) run --rm register python register.py $(if $(FLOW),--flow "$(FLOW)")

# An agent alone, on a host other than the server's: its own compose project and network.
AGENT_COMPOSE = $(COMPOSE) --project-directory . -f agent/docker-compose.yml \
	-p $(call setting,AGENT_PROJECT,users-report-agent)

# With certs/ca.crt (the CA of the server's proxy: `make ca` there), the agent and its flow
# runs trust it besides the public CAs: certs/ca-bundle.pem, from the image's own bundle.
agent: .env ## start only an agent, for a server elsewhere (docs/scaling.md)
	@$(reports_folder)
	$(AGENT_COMPOSE) build
	@bundle=; if [ -f certs/ca.crt ]; then bundle="$(CURDIR)/certs/ca-bundle.pem"; \
	  $(AGENT_COMPOSE) run --rm --no-deps -T agent python -c \
	    'import certifi, sys; sys.stdout.write(open(certifi.where()).read())' > "$$bundle" && \
	  cat certs/ca.crt >> "$$bundle" || exit 1; fi; \
	HOST_CA_BUNDLE="$$bundle" $(AGENT_COMPOSE) up -d

agent-down: ## stop the agent `make agent` started
	$(AGENT_COMPOSE) down

# The server's database, dumped by its own postgres container while the stack runs. The
# dump drops and re-creates what it holds, so restoring it into the live database works.
backup: SHELL := /bin/bash
backup: ## write the server's database to backups/prefect-<UTC time>.sql.gz
	@set -o pipefail; mkdir -p backups; umask 077; \
	file=backups/prefect-$$(date -u +%Y%m%dT%H%M%SZ).sql.gz; \
	$(COMPOSE) exec -T postgres pg_dump --clean --if-exists -U prefect prefect_server \
	  | gzip > "$$file.partial" && mv "$$file.partial" "$$file" \
	  || { rm -f "$$file.partial"; echo "error: backup failed: is the stack up? (make ps)" >&2; exit 1; }; \
	echo "$$file ($$(du -h "$$file" | cut -f1))"

# All or nothing (scripts/restore-database.sh): the file checked whole first, then the
# writers stopped, the dump run as one transaction, the writers started again. Runs whose
# containers are running meanwhile lose their state updates.
restore: ## replace the server's database with FILE=backups/...sql.gz (asks first; YES=1 does not)
	@[ -f "$(FILE)" ] || { echo "error: FILE=$(FILE) is not a file: make restore FILE=backups/prefect-<time>.sql.gz" >&2; exit 2; }
	@[ "$(YES)" = 1 ] || { printf "Replace every flow, run and log on the server with $(FILE)? [y/N] "; read -r answer; \
	  [ "$$answer" = y ] || { echo "Nothing restored."; exit 1; }; }
	@RESTORE_LOCK_SECONDS=$(call setting,RESTORE_LOCK_SECONDS,) sh scripts/restore-database.sh "$(FILE)" $(COMPOSE)

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
	@bind=$(call setting,APOLLO_BIND,127.0.0.1); [ "$$bind" != 0.0.0.0 ] || bind=127.0.0.1; \
	PREFECT__BACKEND=server PREFECT__SERVER__HOST="http://$$bind" \
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

lint: $(READY) ## check formatting and lint (ruff.toml); ruff format . fixes the formatting
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

e2e: $(READY) ## the stack's own services and real flow containers on this Docker engine
	$(BIN)/python -m tests.programs.e2e

bench: $(READY) ## measure speed and memory against the local fake users API
	$(BIN)/python -m tests.programs.bench

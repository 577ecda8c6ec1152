# The project's commands; `make` alone lists them.
PYTHON ?= python3
VENV ?= .venv
N_USERS ?= 10

BIN := $(VENV)/bin
READY := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test bench

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The virtual environment is made on first use and again when the requirements change.
$(READY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(READY) ## run the flow once here, no server: make run N_USERS=50
	@$(BIN)/python -m flows.users_report --n-users "$(N_USERS)"

test: $(READY) ## run the whole test suite (no internet needed)
	$(BIN)/python -m pytest

bench: $(READY) ## measure speed and memory against the local fake users API
	$(BIN)/python -m tests.bench

# EduSphere: `make run` starts the whole platform locally, `make test` runs every test tier.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Local servers (override on the command line or in the environment).
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432
DATABASE_URL ?= $(POSTGRES_URL)/edusphere
AMQP_URI ?= amqp://guest:guest@127.0.0.1:5672/
GATEWAY_HOST ?= 127.0.0.1
GATEWAY_PORT ?= 8000
MEDIA_ROOT ?= var/media
SERVICES := users rooms messages
comma := ,
empty :=
space := $(empty) $(empty)
# The gateway reports ready once every one of these answers.
GATEWAY_SERVICES ?= $(subst $(space),$(comma),$(SERVICES))
export DATABASE_URL AMQP_URI GATEWAY_HOST GATEWAY_PORT GATEWAY_SERVICES MEDIA_ROOT

# Tests make their own database and virtual host on these servers.
export EDUSPHERE_TEST_DATABASE_URL ?= $(POSTGRES_URL)/postgres
export EDUSPHERE_TEST_AMQP_URI ?= $(AMQP_URI)

PYTEST_ARGS ?=

.PHONY: install check-servers migrate run test test-services test-gateway clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

check-servers: install
	@$(BIN)/python deploy/local/check_servers.py --postgres "$(DATABASE_URL)" --rabbit "$(AMQP_URI)"

migrate: check-servers
	@$(BIN)/python deploy/local/check_servers.py --postgres "$(DATABASE_URL)" --create-database
	$(BIN)/python -m common.migrations $(SERVICES)

run: migrate
	@echo "EduSphere GraphQL API: http://$(GATEWAY_HOST):$(GATEWAY_PORT)/graphql/  (Ctrl-C stops every process)"
	$(BIN)/honcho --procfile deploy/local/Procfile --app-root . start

# Service tests run nameko containers under eventlet's monkey-patching; gateway and end-to-end tests
# run on asyncio. Each tier gets its own pytest process so the two never share one interpreter.
test: check-servers
	@$(BIN)/python deploy/local/check_servers.py --postgres "$(EDUSPHERE_TEST_DATABASE_URL)" --rabbit "$(EDUSPHERE_TEST_AMQP_URI)"
	$(BIN)/pytest services common $(PYTEST_ARGS)
	$(BIN)/pytest gateway tests $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Benchmarks (bench/README.md): the same bootstrap, then the whole stack on its own database and virtual
# host, loaded from separate processes; prints a table, writes bench-results/*.json. Options go in
# BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick` (about a minute) or `BENCH_ARGS="--workloads readmix"`.
BENCH_ARGS ?=
.PHONY: bench
bench: check-servers
	@$(BIN)/python deploy/local/check_servers.py --postgres "$(EDUSPHERE_TEST_DATABASE_URL)" --rabbit "$(EDUSPHERE_TEST_AMQP_URI)"
	$(BIN)/python -m bench $(BENCH_ARGS)

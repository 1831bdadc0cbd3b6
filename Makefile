# Two commands on a fresh machine:  `make prepare && docker compose up`  and  `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
BASE_IMAGES := python:3.13-slim-trixie postgres:17-trixie nginx:1.29-trixie
PREPARE_DOCKER := ../shared/tools/prepare-docker
PROJECT ?= $(or $(COMPOSE_PROJECT_NAME),flights)
LOCATION ?=
# The location commands (platform_core.cli) need only the standard library: a bare python3 runs
# them before any venv exists (make prepare on a fresh clone).
PLATFORM_CLI := PYTHONPATH=deploy/platform_core/src python3 -m platform_core.cli
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: prepare
prepare: .env locations ## one-time: Docker engine + base images where needed (no-op elsewhere), .env, compose.locations.yaml
	@if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 \
	    && for i in $(BASE_IMAGES); do docker image inspect $$i >/dev/null 2>&1 || exit 1; done; then \
	  echo "prepare: docker, compose and base images present"; \
	elif [ -x $(PREPARE_DOCKER) ]; then $(PREPARE_DOCKER) $(BASE_IMAGES); \
	else echo "prepare: docker compose is not usable and $(PREPARE_DOCKER) is absent: install Docker with Compose v2" >&2; exit 1; fi
	@$(MAKE) -s docker-gid

# Generated once, never overwritten: random passwords and the Docker socket's group (docker-gid keeps
# that one line current: on a fresh machine .env is written before prepare-docker starts dockerd,
# and a restarted engine may own its socket with another group).
.env:
	@umask 077; { \
	  echo "# written by make prepare on $$(date -u +%F); see .env.example for every setting"; \
	  for v in POSTGRES_PASSWORD DAGSTER_PG_PASSWORD WAREHOUSE_PASSWORD; do \
	    echo "$$v=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"; done; \
	  echo "DOCKER_GID=$$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)"; \
	} > .env; echo "prepare: wrote .env with generated passwords"

.PHONY: docker-gid
docker-gid: .env
	@gid=$$(stat -c %g /var/run/docker.sock 2>/dev/null) || exit 0; \
	have=$$(sed -n 's/^DOCKER_GID=//p' .env | tail -n 1); \
	if [ "$$have" != "$$gid" ]; then \
	  if grep -q '^DOCKER_GID=' .env; then sed -i "s/^DOCKER_GID=.*/DOCKER_GID=$$gid/" .env; else echo "DOCKER_GID=$$gid" >> .env; fi; \
	  echo "prepare: DOCKER_GID in .env was '$$have' but /var/run/docker.sock belongs to group $$gid: updated that line"; \
	fi

.PHONY: locations
locations: ## regenerate compose.locations.yaml from the registry (dg.toml); make prepare/up/location do it
	@$(PLATFORM_CLI) compose

.PHONY: up
up: .env docker-gid locations ## build and start the stack in the background, wait until healthy (also after adding or removing a location)
	docker compose up -d --build --wait --remove-orphans
	@$(MAKE) -s workspace-sync

.PHONY: down
down: ## stop the stack (volumes, i.e. history and warehouse, are kept)
	docker compose down

.PHONY: browser
browser: ## Debian's Chromium for the browser tests (tests/e2e/test_browser.py); apt-get as root or via sudo
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	else echo "browser: /usr/bin/chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2; exit 1; fi
	@/usr/bin/chromium --version 2>/dev/null

# Compose does not recreate a container when only a `configs` content changes (docker/compose#11900),
# so a webserver or daemon that mounts an older workspace (a location added or removed since) is
# recreated here; one whose workspace is current is left alone.
.PHONY: workspace-sync
workspace-sync:
	@want=$$($(PLATFORM_CLI) workspace); stale=; \
	for service in webserver webserver-viewer daemon; do \
	  have=$$(docker compose exec -T $$service cat /opt/dagster/workspace.yaml 2>/dev/null) || continue; \
	  [ "$$have" = "$$want" ] || stale="$$stale $$service"; \
	done; \
	if [ -n "$$stale" ]; then echo "workspace changed: recreating$$stale"; docker compose up -d --no-deps --force-recreate --wait $$stale; fi

.PHONY: venv
venv:
	@command -v uv >/dev/null || python3 -m pip install -q uv
	@$(UV) sync --frozen --all-packages --quiet

.PHONY: test
# Two workers: each module on one of them, the end-to-end suite in order on one (conftest.py).
TEST_WORKERS ?= 2
test: browser venv locations ## every test: unit, integration (throwaway Postgres) and the compose end-to-end suite
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# One pytest worker per core (pytest-xdist): many of the slow tests wait on a subprocess (the
# dagster CLI, make), which one process would run in turn. --dist loadfile keeps a file's tests in
# one worker, so a module-scoped fixture (a code server, say) is paid once.
FAST_WORKERS ?= 2
.PHONY: test-fast
test-fast: venv ## what needs no Docker: unit tests, in-memory asset tests, definitions, snapshots, templates (under a minute)
	$(UV) run --frozen pytest -m "not compose and not postgres and not docker" -q -p no:cacheprovider \
	  -n $(FAST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: check
check: venv ## Dagster's own check of every location's definitions (dg check defs), with placeholder settings
	@mkdir -p .dagster_dev/check
	DAGSTER_HOME=$(CURDIR)/.dagster_dev/check WAREHOUSE_HOST=placeholder WAREHOUSE_PORT=5432 WAREHOUSE_DB=placeholder \
	  WAREHOUSE_USER=placeholder WAREHOUSE_PASSWORD=placeholder LANDING_ZONE_DIR=/tmp REPORTS_DIR=/tmp \
	  $(UV) run --frozen dg check defs --use-active-venv

# --- your own locations (README "Add your own location") ---

.PHONY: location
location: ## scaffold and register a new code location: make location NAME=sales
	@[ -n "$(NAME)" ] || { echo "usage: make location NAME=sales" >&2; exit 2; }
	@$(PLATFORM_CLI) new '$(NAME)'
	@command -v uv >/dev/null || python3 -m pip install -q uv
	@$(UV) lock --quiet && $(UV) sync --frozen --all-packages --quiet
	@$(PLATFORM_CLI) compose
	@# Its first snapshot of asset specs (code_locations/$(NAME)/asset_specs.json): a changed graph is a visible diff.
	@UPDATE_SNAPSHOTS=1 $(UV) run --frozen pytest tests/code_locations/test_definitions.py -q -p no:cacheprovider \
	  -k 'snapshot and $(NAME)' >/dev/null || { echo "could not write the snapshot of $(NAME): run make test-fast" >&2; exit 1; }
	@echo "next: make dev LOCATION=$(NAME) (develop), make test-fast / make test, then make up (the stack starts its code server and loads it)"

.PHONY: location-remove
location-remove: venv ## unregister and delete a location (refuses while another depends on its assets): make location-remove NAME=sales [FORCE=1]
	@[ -n "$(NAME)" ] || { echo "usage: make location-remove NAME=sales [FORCE=1]" >&2; exit 2; }
	@$(UV) run --frozen python -m platform_core.cli remove '$(NAME)' $(if $(FORCE),--force)
	@$(UV) lock --quiet && $(UV) sync --frozen --all-packages --quiet
	@$(PLATFORM_CLI) compose
	@echo "on a running stack: make up (stops its code server and drops it from the workspace; its runs and warehouse tables are kept)"

.PHONY: dev
dev: venv ## `dagster dev` for one location on this machine, local instance and warehouse: make dev LOCATION=ingestion
	@$(UV) run --frozen python -m platform_core.dev_server '$(LOCATION)'

.PHONY: redeploy
redeploy: ## rebuild and restart one code location, then reload it: make redeploy LOCATION=ingestion
	@$(PLATFORM_CLI) names | grep -qx '$(LOCATION)' || { echo "LOCATION must be one of: $$($(PLATFORM_CLI) names | tr '\n' ' ')" >&2; exit 1; }
	@$(PLATFORM_CLI) compose
	docker compose up -d --build --no-deps --wait $(subst _,-,$(LOCATION))
	@# A location new to the running stack: the webserver and daemon load it once their workspace has it.
	@$(MAKE) -s workspace-sync
	@# Inside the editors' webserver (not published; the gateway needs a login). The read-only
	@# viewer webserver notices the restarted code server by itself.
	@docker compose exec -T webserver python -c 'import json, sys, urllib.request; \
	  q = {"query": "mutation { reloadRepositoryLocation(repositoryLocationName: \"$(LOCATION)\") { __typename } }"}; \
	  r = urllib.request.Request("http://127.0.0.1:3000/graphql", json.dumps(q).encode(), {"Content-Type": "application/json"}); \
	  t = json.load(urllib.request.urlopen(r, timeout=180))["data"]["reloadRepositoryLocation"]["__typename"]; \
	  sys.exit(t != "WorkspaceLocationEntry" and f"reload of $(LOCATION) failed: {t}")' && echo "reloaded $(LOCATION)"

.PHONY: user
user: ## add a UI user or change password/role: make user NAME=ana ROLE=viewer [PASSWORD=…] (else prompts)
	@[ -n "$(NAME)" ] && [ -n "$(ROLE)" ] || { echo "usage: make user NAME=ana ROLE=editor|viewer [PASSWORD=...]" >&2; exit 2; }
	@PASSWORD='$(subst ','\'',$(PASSWORD))' deploy/gateway/users.sh set '$(NAME)' '$(ROLE)'

.PHONY: admin-password
admin-password: ## print the first editor's generated password (kept 0600 in the users volume until changed with make user)
	@deploy/gateway/users.sh admin-password

.PHONY: users
users: ## list the UI users and their roles
	@deploy/gateway/users.sh list

.PHONY: user-delete
user-delete: ## remove a UI user: make user-delete NAME=ana
	@[ -n "$(NAME)" ] || { echo "usage: make user-delete NAME=ana" >&2; exit 2; }
	@deploy/gateway/users.sh delete '$(NAME)'

.PHONY: backfill
backfill: ## backfill the daily pipeline: make backfill [FROM=2013-01-01] [TO=2013-12-31] (files must have landed)
	docker compose exec -T webserver python - $(or $(FROM),2013-01-01) $(or $(TO),2013-12-31) < deploy/ops/launch_backfill.py

.PHONY: prune-runs
prune-runs: ## remove exited run containers of this project (kept until then for post-mortems)
	@ids=$$(docker ps -aq --filter label=io.flights-platform.project=$(PROJECT) --filter label=io.flights-platform.role=run --filter status=exited); \
	if [ -n "$$ids" ]; then docker rm $$ids >/dev/null && echo "removed $$(wc -w <<<"$$ids") run container(s)"; else echo "no exited run containers"; fi

.PHONY: backup
backup: ## dump Dagster's database, the warehouse and the UI users into BACKUP_DIR (./backups)/<stamp>
	@python3 deploy/ops/backup.py backup '$(or $(BACKUP_DIR),backups)'

.PHONY: restore
restore: ## restore a backup into the running stack: make restore FROM=backups/<stamp>
	@python3 deploy/ops/backup.py restore '$(FROM)'

.PHONY: status
status: ## platform health: daemon heartbeats, run queue, stuck runs (exit 0 healthy, 1 unhealthy, 2 no storage); JSON=1 for JSON
	@# In the running watchdog if there is one, else in a one-off container of its image (needs postgres up).
	@if [ -n "$$(docker compose ps -q --status running watchdog 2>/dev/null)" ]; then \
	  docker compose exec -T watchdog python /opt/dagster/ops/platform_status.py $(if $(JSON),--json); \
	else \
	  docker compose run --rm --no-deps -T watchdog python /opt/dagster/ops/platform_status.py $(if $(JSON),--json); \
	fi

.PHONY: psql
psql: ## psql shell on the warehouse
	docker compose exec postgres psql -U postgres -d $${WAREHOUSE_DB:-warehouse}

.PHONY: sizes
sizes: ## image sizes
	@docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^flights-platform/' | sort

.PHONY: bench
bench: ## every benchmark on a throwaway stack (~25 min): table + benchmarks/results/<date>.{json,md}
	uv run --frozen python benchmarks/run.py $(BENCH_ARGS)

.PHONY: soak
soak: ## the live demo for SOAK_MINUTES (60) with the watchdog on: failed runs, memory slopes, connections, exited run containers
	uv run --frozen python benchmarks/soak.py --minutes $(or $(SOAK_MINUTES),60) $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: ## the benchmarks with fewer repetitions and a two-week backfill (~6 min), for development
	uv run --frozen python benchmarks/run.py --quick $(BENCH_ARGS)

# --- Kubernetes with Dagster's Helm chart (README "Outgrowing one host") ---

.PHONY: helm-values
helm-values: ## write deploy/helm/values.locations.yaml (+ volumes.locations.yaml) from the registry: make helm-values [REGISTRY=…] [TAG=…]
	@$(PLATFORM_CLI) helm --registry '$(REGISTRY)' --tag '$(TAG)'

.PHONY: images
# The Kubernetes images are the compose images plus platform-core's `kubernetes` extra (dagster-k8s
# for the K8sRunLauncher, dagster-aws for compute logs on S3), built under their own local tag so
# the compose stack's images stay as they are.
K8S_IMAGE_TAG ?= kubernetes
images: locations ## build the Kubernetes variant of the instance, gateway and location images and tag them for a registry (no push): make images REGISTRY=registry.example.com/flights [TAG=…]
	@[ -n "$(REGISTRY)" ] || { echo "usage: make images REGISTRY=registry.example.com/flights [TAG=<dagster version>-<git rev>]" >&2; exit 2; }
	@plan=$$(IMAGE_TAG=$(K8S_IMAGE_TAG) $(PLATFORM_CLI) images --registry '$(REGISTRY)' --tag '$(TAG)') || exit 1; \
	IMAGE_TAG=$(K8S_IMAGE_TAG) PLATFORM_EXTRAS=kubernetes docker compose build --quiet || exit 1; \
	while read -r source target; do \
	  docker image inspect "$$source" >/dev/null 2>&1 || { echo "images: $$source was not built" >&2; exit 1; }; \
	  docker tag "$$source" "$$target" && echo "tagged $$target"; \
	done <<<"$$plan"; \
	echo "push with: $$(awk '{printf "docker push %s; ", $$2}' <<<"$$plan")"

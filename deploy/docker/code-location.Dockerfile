# One image per code location; compose.locations.yaml (generated from dg.toml) passes the build
# args. The same image serves the location's gRPC code server and every run container the daemon
# launches for it (and any service the location brings along, such as the demo replay).
ARG PYTHON_IMAGE=python:3.13-slim-trixie

# Only the workspace's pyproject.toml files: the dependency layer below is rebuilt when a manifest
# or uv.lock changes, not when code does (COPY of a glob would flatten the folders).
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY code_locations code_locations
COPY deploy/platform_core deploy/platform_core
RUN find code_locations deploy -type f ! -name pyproject.toml -delete \
    && find code_locations deploy -depth -type d -empty -delete

FROM ${PYTHON_IMAGE} AS uv
ARG UV_VERSION=0.13.9
# uv finds the build machine's CA bundle through the system store (UV_SYSTEM_CERTS), so the
# same file works behind a corporate proxy and on a normal machine; nothing is baked in.
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN python3 -m pip install --no-cache-dir --break-system-packages "uv==${UV_VERSION}" \
    || python3 -m pip install --no-cache-dir "uv==${UV_VERSION}"

# The location's third-party requirements, pinned and hashed from the lock. Only this file goes on
# to the install below, and COPY compares content: a location whose requirements did not change
# keeps its installed layer when uv.lock changes for another one (a location added or removed).
FROM uv AS requirements
ARG PACKAGE
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/ ./
RUN test -n "${PACKAGE}" || { echo "build arg PACKAGE (the location's distribution name) is required; compose.locations.yaml passes it" >&2; exit 1; }; \
    uv export --frozen --no-dev --package "${PACKAGE}" --no-emit-workspace --quiet --output-file /requirements.txt

FROM uv AS build
ARG PACKAGE
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --quiet --python python3 /opt/venv \
    && uv pip install --quiet --python /opt/venv/bin/python -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/ ./
COPY deploy/platform_core deploy/platform_core
COPY code_locations code_locations
# A location holding a dbt project gets its manifest here, when the image is built, never at run
# time: each `dbt_project.py` module in its source declares its DbtProject(s), and dagster-dbt's
# prepare-and-package runs `dbt parse` into the project folder, which the install below ships as
# package data. dbt packages (packages.yml, dependencies.yml) would be fetched from the dbt hub at
# build time, so they are refused. Locations without a dbt project skip all of this.
RUN set -eu; export PATH=/opt/venv/bin:${PATH}; \
    location=$(python3 -c 'import sys, tomllib, pathlib; print(*[p.parent for p in sorted(pathlib.Path("code_locations").glob("*/pyproject.toml")) if tomllib.loads(p.read_text()).get("project", {}).get("name") == sys.argv[1]])' "${PACKAGE}"); \
    projects=$(find "${location}" -name dbt_project.yml -not -path "*/target/*" -not -path "*/dbt_packages/*"); \
    for yml in ${projects}; do \
      dir=$(dirname "${yml}"); \
      for deps in packages.yml dependencies.yml; do \
        if [ -e "${dir}/${deps}" ]; then echo "${dir}/${deps}: dbt packages would be downloaded from the dbt hub at build time; copy the macros you need into the project instead" >&2; exit 1; fi; \
      done; \
      rm -rf "${dir}/target" "${dir}/logs"; \
    done; \
    for module in $(find "${location}" -name dbt_project.py -not -path "*/target/*"); do \
      dagster-dbt project prepare-and-package --file "${module}"; \
    done; \
    for yml in ${projects}; do \
      test -s "$(dirname "${yml}")/target/manifest.json" || { echo "$(dirname "${yml}"): no manifest after preparing; declare its DbtProject in a module named dbt_project.py" >&2; exit 1; }; \
    done
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "${PACKAGE}" --no-editable --python python3
# The Kubernetes images (`make images`) add platform-core's extras named here, from the lock
# (uv export pins and hashes them): dagster-k8s and dagster-aws. Compose builds leave it empty.
ARG PLATFORM_EXTRAS=""
RUN --mount=type=cache,target=/root/.cache/uv \
    if [ -n "${PLATFORM_EXTRAS}" ]; then \
      uv export --frozen --no-dev --package platform-core --no-emit-project \
        $(for extra in ${PLATFORM_EXTRAS}; do printf -- '--extra %s ' "${extra}"; done) -o /tmp/extras.txt \
      && uv pip install --python /opt/venv/bin/python --no-deps -r /tmp/extras.txt; \
    fi

FROM ${PYTHON_IMAGE}
ARG LOCATION
ARG MODULE
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster dagster \
    && mkdir -p /opt/dagster/home /opt/dagster/compute_logs /opt/dagster/landing /opt/dagster/reports \
    && chown -R dagster:dagster /opt/dagster
COPY --from=build /opt/venv /opt/venv
# Run containers inherit the label: the watchdog, tests and `docker ps` tell locations apart by it.
LABEL io.flights-platform.location=${LOCATION}
ENV PATH=/opt/venv/bin:${PATH} \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_LOCATION=${LOCATION} \
    DAGSTER_MODULE=${MODULE} \
    PYTHONUNBUFFERED=1
USER dagster
WORKDIR /opt/dagster/home
EXPOSE 4000
# Run containers get `dagster api execute_run ...` as their command: the entrypoint runs it with the
# platform's patches (a pooled storage connection); every other command is exec'd unchanged.
ENTRYPOINT ["python", "-m", "platform_core.location_entrypoint"]
# One process, as Dagster's deploy_docker example runs it: `dagster code-server start` would add a
# proxy process (~100 MiB, and its own import of Dagster at every start) whose only job is to
# re-import code on Reload, and code baked into this image only changes with a new image
# (`make redeploy`). --lazy-load-user-code: a location that fails to import keeps serving its
# error to the UI instead of exiting (it still loads before it answers health checks).
CMD ["sh", "-c", "exec dagster api grpc -h 0.0.0.0 -p 4000 -m \"${DAGSTER_MODULE}.definitions\" --location-name \"${DAGSTER_LOCATION}\" --lazy-load-user-code"]

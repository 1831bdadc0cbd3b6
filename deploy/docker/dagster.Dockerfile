# Webserver and daemon: the Dagster instance only. No pipeline code lives here; it is served
# by the code-location images over gRPC.
ARG PYTHON_IMAGE=python:3.13-slim-trixie

# Only the workspace's pyproject.toml files, so the dependency layer survives code changes.
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY code_locations code_locations
COPY deploy/platform_core deploy/platform_core
RUN find code_locations deploy -type f ! -name pyproject.toml -delete \
    && find code_locations deploy -depth -type d -empty -delete

FROM ${PYTHON_IMAGE} AS uv
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN python3 -m pip install --no-cache-dir --break-system-packages "uv==${UV_VERSION}" \
    || python3 -m pip install --no-cache-dir "uv==${UV_VERSION}"

# The instance's third-party requirements, pinned and hashed from the lock; only this file goes on
# to the install, so a uv.lock change that does not touch them (a location added) keeps that layer.
FROM uv AS requirements
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/ ./
RUN uv export --frozen --no-dev --no-emit-workspace --quiet --output-file /requirements.txt

FROM uv AS build
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --quiet --python python3 /opt/venv \
    && uv pip install --quiet --python /opt/venv/bin/python -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/ ./
# The platform's own package (settings, daemon health, Dagster patches); no location code.
COPY deploy/platform_core deploy/platform_core
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --python python3
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
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster dagster \
    && mkdir -p /opt/dagster/home /opt/dagster/compute_logs \
    && chown -R dagster:dagster /opt/dagster
COPY --from=build /opt/venv /opt/venv
COPY --chmod=755 deploy/docker/render_dagster_yaml.py /usr/local/bin/render-dagster-yaml
# Webserver entry with a short daemon-heartbeat tolerance; the status check and the watchdog loop.
COPY --chmod=755 deploy/docker/webserver_launcher.py /usr/local/bin/dagster-webserver-launcher
COPY --chmod=755 deploy/docker/daemon_launcher.py /usr/local/bin/dagster-daemon-launcher
COPY --chmod=755 deploy/docker/daemon_healthcheck.py /usr/local/bin/daemon-healthcheck
COPY --chmod=755 deploy/ops/platform_status.py deploy/ops/platform_watchdog.py /opt/dagster/ops/
# The monitoring profile's exporter runs from this image too (README "Monitoring").
COPY deploy/monitoring/control_plane_exporter.py /opt/dagster/monitoring/
ENV PATH=/opt/venv/bin:${PATH} \
    DAGSTER_HOME=/opt/dagster/home \
    PYTHONUNBUFFERED=1
USER dagster
WORKDIR /opt/dagster/home
ENTRYPOINT ["render-dagster-yaml"]

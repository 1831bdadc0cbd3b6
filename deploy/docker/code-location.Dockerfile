# One image per code location: `--build-arg LOCATION=ingestion|reporting`. The same image
# serves the location's gRPC code server and every run container the daemon launches for it.
ARG PYTHON_IMAGE=python:3.13-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ARG LOCATION
ARG UV_VERSION=0.13.9
# uv finds the build machine's CA bundle through the system store (UV_SYSTEM_CERTS), so the
# same file works behind a corporate proxy and on a normal machine; nothing is baked in.
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN python3 -m pip install --no-cache-dir --break-system-packages "uv==${UV_VERSION}" \
    || python3 -m pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first, from the lock only: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
COPY code_locations/shared/pyproject.toml code_locations/shared/
COPY code_locations/ingestion/pyproject.toml code_locations/ingestion/
COPY code_locations/reporting/pyproject.toml code_locations/reporting/
RUN --mount=type=cache,target=/root/.cache/uv \
    test -n "${LOCATION}" || { echo "build arg LOCATION (ingestion|reporting) is required" >&2; exit 1; }; \
    uv sync --frozen --no-dev --package "${LOCATION}" --no-install-workspace --python python3
COPY code_locations/shared code_locations/shared
COPY code_locations/${LOCATION} code_locations/${LOCATION}
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "${LOCATION}" --no-editable --python python3

FROM ${PYTHON_IMAGE}
ARG LOCATION
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster dagster \
    && mkdir -p /opt/dagster/home /opt/dagster/compute_logs /opt/dagster/landing /opt/dagster/reports \
    && chown -R dagster:dagster /opt/dagster
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:${PATH} \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_LOCATION=${LOCATION} \
    PYTHONUNBUFFERED=1
USER dagster
WORKDIR /opt/dagster/home
EXPOSE 4000
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["sh", "-c", "exec dagster code-server start -h 0.0.0.0 -p 4000 -m \"${DAGSTER_LOCATION}.definitions\" --location-name \"${DAGSTER_LOCATION}\""]

"""Every patch of Dagster internals the platform applies, in one module, so a Dagster upgrade has
one file to review; tests/deploy/test_dagster_patches.py fails by name when an upgrade moves a
patched function or changes its signature. Each patch names its upstream issue: when that is
fixed, delete the patch.

Dagster is imported inside the functions: platform_core must import without it."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping

from platform_core import daemon_health

# Marks our replacements, so applying twice (tests, a re-imported launcher) never wraps a wrapper.
_PATCHED = "__platform_core_patch__"
# The dagster_postgres storages that bind create_pg_engine by name at import.
STORAGE_MODULES = (
    "dagster_postgres.event_log.event_log",
    "dagster_postgres.run_storage.run_storage",
    "dagster_postgres.schedule_storage.schedule_storage",
)
# dagster_docker.docker_run_launcher.DOCKER_CONTAINER_ID_TAG (a guard test compares them).
DOCKER_CONTAINER_ID_TAG = "docker/container_id"


def patch_daemon_statuses(thresholds: daemon_health.Thresholds) -> None:
    """The UI's daemon health (GraphQL `daemonHealth`, the Daemons page, the "daemon not running"
    banners) comes from DagsterInstance.get_daemon_statuses, which tolerates a silent daemon type
    for a hard-coded DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS = 1800 (+ 30 s interval): a stopped
    daemon looks healthy for half an hour. Here it is judged like `make status` and the watchdog
    (platform_core.daemon_health), so the UI goes red within the same minute."""
    # Upstream: no upstream issue found for making this tolerance configurable (searched
    # dagster-io/dagster issues and PRs for the 1800 s daemon heartbeat tolerance).
    from dagster import DagsterInstance
    from dagster._daemon.types import DaemonStatus

    def get_daemon_statuses(self, daemon_types=None):
        # Same shape as Dagster's (heartbeat errors ignored, as it does): a type that is not
        # required has healthy=None; a required one without a heartbeat is unhealthy.
        required = list(self.get_required_daemon_types())
        heartbeats = self.get_daemon_heartbeats()
        now = time.time()
        ages = {t: now - heartbeats[t].timestamp for t in required if t in heartbeats}
        verdict = daemon_health.judge(ages, required, thresholds)
        return {
            t: DaemonStatus(daemon_type=t, required=True, healthy=verdict.type_healthy(t),
                            last_heartbeat=heartbeats.get(t))
            if t in required else
            DaemonStatus(daemon_type=t, required=False, healthy=None, last_heartbeat=None)
            for t in (daemon_types or required)
        }  # fmt: skip

    setattr(get_daemon_statuses, _PATCHED, True)
    DagsterInstance.get_daemon_statuses = get_daemon_statuses


def patch_pool_pre_ping() -> list[str]:
    """The webserver (only it) keeps pooled storage connections (`optimize_for_webserver`) without
    a liveness check: after a Postgres restart each pooled connection failed one request with
    "server closed the connection unexpectedly" (a failed launch, a 500 in the UI) before the
    pool replaced it. pool_pre_ping tests a connection on checkout and reconnects transparently.
    Returns the storage modules patched."""
    # Upstream: dagster-io/dagster#3812 (dagster_postgres not reconnecting after DB restart);
    # dagster-io/dagster#33879 asks to expose pre-ping, PR #33961 would add
    # `dagster-webserver --db-pool-pre-ping`. Once released, pass that flag instead.
    import importlib

    from dagster_postgres import utils

    original = utils.create_pg_engine

    def create_pg_engine(postgres_url, token_provider=None, **engine_kwargs):
        if "pool_size" in engine_kwargs:  # pooled; NullPool engines connect per use anyway
            engine_kwargs.setdefault("pool_pre_ping", True)
        return original(postgres_url, token_provider, **engine_kwargs)

    setattr(create_pg_engine, _PATCHED, True)
    patched = []
    for name in STORAGE_MODULES:
        module = importlib.import_module(name)
        current = getattr(module, "create_pg_engine", None)
        if current is original:
            module.create_pg_engine = create_pg_engine
            patched.append(name)
        elif getattr(current, _PATCHED, False):
            patched.append(name)
        else:  # a Dagster upgrade changed how storages build engines; the webserver still works
            print(f"dagster_patches: {name} no longer uses dagster_postgres.utils.create_pg_engine; "
                  "pool_pre_ping NOT applied (revisit platform_core.dagster_patches)", file=sys.stderr)
    return patched


# A STARTING run's container in one of these states may still come up: "created" between the
# launcher's container-id tag and its start(), "paused"/"restarting" are Docker's own.
STARTING_CONTAINER_MAY_COME_UP = ("created", "paused", "restarting")
# DockerRunLauncher.check_run_worker_health's message for a container that is not running.
_CONTAINER_STATUS = re.compile(r"^Container status is (\w+)\.")


def starting_worker_is_gone(result, run_tags: Mapping[str, str]) -> bool:
    """Whether a STARTING run's worker cannot come up any more, from the launcher's
    check_run_worker_health result: its container ended (exited, dead, removing) or was removed
    after the launcher recorded its id. No id yet means the launcher is still creating it."""
    from dagster._core.launcher import WorkerStatus

    if result.status == WorkerStatus.NOT_FOUND:
        return bool(run_tags.get(DOCKER_CONTAINER_ID_TAG))
    if result.status != WorkerStatus.FAILED:
        return False
    state = _CONTAINER_STATUS.match(result.msg or "")
    return not (state and state.group(1) in STARTING_CONTAINER_MAY_COME_UP)


def patch_starting_run_worker_health() -> None:
    """Run monitoring checks the worker (the run container) of STARTED runs only; a STARTING run
    whose container died waited out start_timeout_seconds (180 s) before it was failed and
    retried. Here STARTING runs get the same check on every monitoring pass (10 s): a dead or
    removed container fails the run at once (UNEXPECTED_TERMINATION, so run retries relaunch it),
    while a slow but live start (a cold container importing Dagster on a loaded host) is left to
    the start timeout as before. Applied in the daemon (daemon_launcher.py), which runs monitoring."""
    # Upstream: no upstream issue found (searched dagster-io/dagster for run monitoring of
    # STARTING runs / check_run_worker_health before STARTED).
    from dagster._core.events import JobFailureData, RunFailureReason
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._daemon.monitoring import run_monitoring

    original = run_monitoring.monitor_starting_run
    if getattr(original, _PATCHED, False):
        return

    def monitor_starting_run(instance, run_record, logger):
        run = run_record.dagster_run
        launcher = instance.run_launcher
        if run.status == DagsterRunStatus.STARTING and launcher.supports_check_run_worker_health:
            result = launcher.check_run_worker_health(run)
            if starting_worker_is_gone(result, run.tags):
                current = instance.get_run_by_id(run.run_id)
                if current is None or current.status != DagsterRunStatus.STARTING:
                    return  # it moved on (started, ended) between the listing and the check
                msg = (f"Run worker of STARTING run {run.run_id} is gone ({result}): marking the run "
                       "as failed without waiting for the start timeout.")
                logger.info(msg)
                instance.report_run_failed(current, msg, JobFailureData(
                    error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
                return
        original(instance, run_record, logger)

    setattr(monitor_starting_run, _PATCHED, True)
    run_monitoring.monitor_starting_run = monitor_starting_run


def apply_daemon_patches() -> None:
    """The daemon (its run-monitoring thread)."""
    patch_starting_run_worker_health()


def apply_webserver_patches(env: Mapping[str, str] | None = None) -> None:
    """Both webservers (editor and read-only); SettingError if a threshold is malformed."""
    patch_daemon_statuses(daemon_health.Thresholds.from_env(env))
    patch_pool_pre_ping()

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


def _rebind_create_pg_engine(wrap, patch_name: str) -> list[str]:
    """Replaces dagster_postgres.utils.create_pg_engine, as each storage module bound it at import,
    with wrap(original). Returns the storage modules patched; one a Dagster upgrade changed is
    named on stderr and left alone (the process still works, without the patch)."""
    import importlib

    from dagster_postgres import utils

    original = utils.create_pg_engine
    patched = []
    for name in STORAGE_MODULES:
        module = importlib.import_module(name)
        current = getattr(module, "create_pg_engine", None)
        if current is original:
            replacement = wrap(original)
            setattr(replacement, _PATCHED, True)
            module.create_pg_engine = replacement
            patched.append(name)
        elif getattr(current, _PATCHED, False):
            patched.append(name)
        else:
            print(f"dagster_patches: {name} no longer uses dagster_postgres.utils.create_pg_engine; "
                  f"{patch_name} NOT applied (revisit platform_core.dagster_patches)", file=sys.stderr)
    return patched


def patch_pool_pre_ping() -> list[str]:
    """The webserver (only it) keeps pooled storage connections (`optimize_for_webserver`) without
    a liveness check: after a Postgres restart each pooled connection failed one request with
    "server closed the connection unexpectedly" (a failed launch, a 500 in the UI) before the
    pool replaced it. pool_pre_ping tests a connection on checkout and reconnects transparently.
    Returns the storage modules patched."""
    # Upstream: dagster-io/dagster#3812 (dagster_postgres not reconnecting after DB restart);
    # dagster-io/dagster#33879 asks to expose pre-ping, PR #33961 would add
    # `dagster-webserver --db-pool-pre-ping`. Once released, pass that flag instead.
    def wrap(original):
        def create_pg_engine(postgres_url, token_provider=None, **engine_kwargs):
            if "pool_size" in engine_kwargs:  # pooled; NullPool engines connect per use anyway
                engine_kwargs.setdefault("pool_pre_ping", True)
            return original(postgres_url, token_provider, **engine_kwargs)

        return create_pg_engine

    return _rebind_create_pg_engine(wrap, "pool_pre_ping")


# Connections each of a process's three storages (runs, event log, schedules) keeps open.
DAEMON_POOL_SIZE = 2  # the daemon: eight daemon threads and their workers
RUN_WORKER_POOL_SIZE = 1  # a run worker: one thread writes its events
# Well under Postgres' idle_session_timeout (1 h, docker-compose.yml), which would close them.
POOL_RECYCLE_SECONDS = 600


def patch_storage_pool(pool_size: int) -> list[str]:
    """Outside the webserver Dagster's storages connect per query (NullPool): on an idle stack the
    daemon's threads opened ~30 Postgres connections a second, and every run one per event it
    wrote, each a backend fork and a SCRAM handshake, most of Postgres' CPU. Here the process's
    storages share a small pool: `pool_size` connections per storage stay open, more open on demand
    exactly as before (no overflow cap, so the peak is still the number of concurrent queries, the
    budget in README.md) and close when returned to a full pool; pre-ping replaces one a restarted
    Postgres closed. Applied in the daemon and in run workers. Returns the storage modules patched."""
    # Upstream: no upstream setting found for a pool outside the webserver (dagster-io/dagster#33879
    # asks for pool options on the webserver only).
    from sqlalchemy.pool import NullPool, QueuePool

    def wrap(original):
        def create_pg_engine(postgres_url, token_provider=None, **engine_kwargs):
            if engine_kwargs.get("poolclass") is NullPool:
                engine_kwargs.update(poolclass=QueuePool, pool_size=pool_size, max_overflow=-1,
                                     pool_recycle=POOL_RECYCLE_SECONDS, pool_pre_ping=True)
            return original(postgres_url, token_provider, **engine_kwargs)

        return create_pg_engine

    return _rebind_create_pg_engine(wrap, "the storage pool")


# How often the daemon looks for queued runs (Dagster's dequeue_interval_seconds takes whole
# seconds; dagster.yaml keeps 1 for a daemon without this patch, such as the Helm chart's).
DEQUEUE_INTERVAL_SECONDS = 0.25


class _CappedWaits:
    """The shutdown event as IntervalDaemon.core_loop sees it: waits of at most `cap` seconds."""

    def __init__(self, event, cap: float):
        self._event, self._cap = event, cap

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(self._cap if timeout is None else min(timeout, self._cap))

    def __getattr__(self, name):
        return getattr(self._event, name)


def patch_dequeue_interval(seconds: float = DEQUEUE_INTERVAL_SECONDS) -> None:
    """A queued run waited for the run-queue daemon's next pass: dequeue_interval_seconds is an
    int (1 at least) and IntervalDaemon.core_loop sleeps in steps of 0.5 s, so a pass came every
    1-1.5 s and the queue phase of a launch took 0.64 s at the median. Here the queue daemon passes
    every `seconds`: two indexed reads of the runs table (in-progress, queued) on pooled
    connections (patch_storage_pool)."""
    # Upstream: no upstream issue found for sub-second dequeue intervals (searched
    # dagster-io/dagster for dequeue_interval_seconds float / IntervalDaemon 0.5 s wait).
    from dagster._daemon.daemon import IntervalDaemon
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    if getattr(QueuedRunCoordinatorDaemon.core_loop, _PATCHED, False):
        return
    original_init = QueuedRunCoordinatorDaemon.__init__

    def __init__(self, interval_seconds, *args, **kwargs):
        original_init(self, seconds, *args, **kwargs)

    def core_loop(self, workspace_process_context, shutdown_event):
        return IntervalDaemon.core_loop(self, workspace_process_context, _CappedWaits(shutdown_event, seconds))

    for fn in (__init__, core_loop):
        setattr(fn, _PATCHED, True)
    QueuedRunCoordinatorDaemon.__init__ = __init__
    QueuedRunCoordinatorDaemon.core_loop = core_loop


# How often the backfill daemon passes (Dagster: DEFAULT_DAEMON_INTERVAL_SECONDS, 30 s).
BACKFILL_INTERVAL_SECONDS = 2.0


def patch_backfill_interval(seconds: float = BACKFILL_INTERVAL_SECONDS) -> None:
    """The backfill daemon passes every 30 s (execute_backfill_iteration_loop sleeps out
    DEFAULT_DAEMON_INTERVAL_SECONDS, which the asset daemon also reads), and an asset backfill
    submits the next runs (reporting's, once ingestion's have materialized) only on a pass, so
    they could wait up to 30 s for it. Here its waits are capped at `seconds`.
    A pass with no backfill in progress is one indexed read of the bulk-actions table."""
    # Upstream: no upstream setting found for the backfill daemon's interval (searched
    # dagster-io/dagster for DEFAULT_DAEMON_INTERVAL_SECONDS / backfill daemon interval).
    from dagster._daemon.daemon import BackfillDaemon

    original = BackfillDaemon.core_loop
    if getattr(original, _PATCHED, False):
        return

    def core_loop(self, workspace_process_context, shutdown_event):
        return original(self, workspace_process_context, _CappedWaits(shutdown_event, seconds))

    setattr(core_loop, _PATCHED, True)
    BackfillDaemon.core_loop = core_loop


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
    """The daemon: run monitoring, its storage pool, the run queue's and the backfills' intervals."""
    patch_starting_run_worker_health()
    patch_storage_pool(DAEMON_POOL_SIZE)
    patch_dequeue_interval()
    patch_backfill_interval()


def apply_run_worker_patches() -> None:
    """A run worker (`dagster api execute_run`/`resume_run` in a run container)."""
    patch_storage_pool(RUN_WORKER_POOL_SIZE)


def apply_webserver_patches(env: Mapping[str, str] | None = None) -> None:
    """Both webservers (editor and read-only); SettingError if a threshold is malformed."""
    patch_daemon_statuses(daemon_health.Thresholds.from_env(env))
    patch_pool_pre_ping()

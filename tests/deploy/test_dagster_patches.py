"""platform_core.dagster_patches and the webserver launcher that applies them.

The first tests per patch are upgrade guards: they fail loudly, naming the patch to revisit, when
a Dagster upgrade moves a patched function or changes the signature or shape the patch relies
on (a patch that silently stops applying is worse than none). Then each patch's behaviour."""

import importlib
import importlib.util
import inspect
import sys
import time
from pathlib import Path

import pytest

from platform_core import dagster_patches, daemon_health

REPO_ROOT = Path(__file__).resolve().parents[2]
DAEMON_PATCH = "revisit platform_core.dagster_patches.patch_daemon_statuses (UI daemon health)"
POOL_PATCH = "revisit platform_core.dagster_patches.patch_pool_pre_ping (webserver storage pool)"
STARTING_PATCH = "revisit platform_core.dagster_patches.patch_starting_run_worker_health (run monitoring)"
STORAGE_POOL_PATCH = "revisit platform_core.dagster_patches.patch_storage_pool (daemon and run worker storage pool)"
DEQUEUE_PATCH = "revisit platform_core.dagster_patches.patch_dequeue_interval (run queue interval)"
BACKFILL_PATCH = "revisit platform_core.dagster_patches.patch_backfill_interval (backfill daemon interval)"


def signature(obj) -> str:
    return str(inspect.signature(obj))


# --- upgrade guards: daemon health ------------------------------------------------------------


def test_guard_get_daemon_statuses_is_where_we_patch_it():
    from dagster import DagsterInstance

    method = getattr(DagsterInstance, "get_daemon_statuses", None)
    assert method is not None, f"DagsterInstance.get_daemon_statuses is gone: {DAEMON_PATCH}"
    assert not hasattr(method, "__platform_core_patch__"), "a test left the patch applied"
    assert signature(method) == (
        "(self, daemon_types: collections.abc.Sequence[str] | None = None)"
        " -> collections.abc.Mapping[str, 'DaemonStatus']"
    ), f"DagsterInstance.get_daemon_statuses changed its signature: {DAEMON_PATCH}"
    assert signature(DagsterInstance.get_daemon_heartbeats) == (
        "(self) -> collections.abc.Mapping[str, 'DaemonHeartbeat']"
    ), f"DagsterInstance.get_daemon_heartbeats changed: {DAEMON_PATCH}"
    assert signature(DagsterInstance.get_required_daemon_types) == "(self) -> collections.abc.Sequence[str]", (
        f"DagsterInstance.get_required_daemon_types changed: {DAEMON_PATCH}"
    )


def test_guard_daemon_status_and_heartbeat_shapes():
    from dagster._daemon.types import DaemonHeartbeat, DaemonStatus

    assert DaemonStatus._fields == ("daemon_type", "required", "healthy", "last_heartbeat"), (
        f"dagster._daemon.types.DaemonStatus changed its fields: {DAEMON_PATCH}"
    )
    assert "timestamp" in DaemonHeartbeat._fields, f"DaemonHeartbeat.timestamp is gone: {DAEMON_PATCH}"


def test_guard_the_ui_reads_daemon_health_through_the_patched_method():
    """If the GraphQL schema stopped calling instance.get_daemon_statuses, the patch would apply
    and change nothing the UI shows."""
    from dagster_graphql.schema import instance as graphql_instance

    source = inspect.getsource(graphql_instance)
    assert source.count("self._instance.get_daemon_statuses(") >= 2, (
        f"dagster_graphql.schema.instance no longer calls instance.get_daemon_statuses: {DAEMON_PATCH}"
    )


def test_guard_the_tolerance_we_replace_is_still_hard_coded():
    from dagster._daemon import controller

    assert controller.DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS == 1800, (
        "Dagster's daemon heartbeat tolerance changed from 1800 s; is the patch still needed? "
        + DAEMON_PATCH
    )


# --- upgrade guards: pool pre-ping ------------------------------------------------------------


def test_guard_create_pg_engine_is_where_we_patch_it():
    from dagster_postgres import utils

    assert hasattr(utils, "create_pg_engine"), f"dagster_postgres.utils.create_pg_engine is gone: {POOL_PATCH}"
    assert signature(utils.create_pg_engine) == (
        "(postgres_url: str, token_provider: 'PgTokenProvider | None' = None, **engine_kwargs: Any)"
        " -> sqlalchemy.engine.base.Engine"
    ), f"dagster_postgres.utils.create_pg_engine changed its signature: {POOL_PATCH}"
    for name in dagster_patches.STORAGE_MODULES:
        module = importlib.import_module(name)
        assert getattr(module, "create_pg_engine", None) is utils.create_pg_engine, (
            f"{name} no longer binds create_pg_engine by name (or a test left it patched): {POOL_PATCH}"
        )


def test_guard_webserver_storages_still_pool_with_pool_size():
    """The patch recognises the webserver's pooled engines by `pool_size`."""
    for name in dagster_patches.STORAGE_MODULES:
        module = importlib.import_module(name)
        storage = next(c for c in vars(module).values()
                       if inspect.isclass(c) and c.__module__ == name and hasattr(c, "optimize_for_webserver"))
        assert signature(storage.optimize_for_webserver) == (
            "(self, statement_timeout: int, pool_recycle: int, max_overflow: int) -> None"
        ), f"{storage.__name__}.optimize_for_webserver changed: {POOL_PATCH}"
        source = inspect.getsource(storage.optimize_for_webserver)
        assert '"pool_size"' in source and "create_pg_engine(" in source, (
            f"{storage.__name__}.optimize_for_webserver no longer builds a pooled engine with "
            f"create_pg_engine(pool_size=...): {POOL_PATCH}"
        )


def test_guard_daemon_storages_connect_per_use_with_nullpool():
    """The daemon's pool replaces the NullPool each storage asks create_pg_engine for."""
    for name in dagster_patches.STORAGE_MODULES:
        module = importlib.import_module(name)
        storage = next(c for c in vars(module).values()
                       if inspect.isclass(c) and c.__module__ == name and hasattr(c, "optimize_for_webserver"))
        source = inspect.getsource(storage.__init__)
        assert "create_pg_engine(" in source and "poolclass=db_pool.NullPool" in source, (
            f"{storage.__name__}.__init__ no longer builds a NullPool engine with create_pg_engine: {STORAGE_POOL_PATCH}")


# --- upgrade guards: run queue interval -------------------------------------------------------


def test_guard_queue_daemon_loop_is_interval_daemons_with_half_second_waits():
    from dagster._daemon import controller
    from dagster._daemon.daemon import IntervalDaemon
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    assert not hasattr(QueuedRunCoordinatorDaemon.core_loop, "__platform_core_patch__"), "a test left the patch applied"
    assert QueuedRunCoordinatorDaemon.core_loop is IntervalDaemon.core_loop, (
        f"QueuedRunCoordinatorDaemon has its own core_loop now: {DEQUEUE_PATCH}")
    loop = inspect.getsource(IntervalDaemon.core_loop)
    assert "shutdown_event.wait(0.5)" in loop and loop.count("shutdown_event") == 2, (
        f"IntervalDaemon.core_loop waits differently (the patch caps shutdown_event.wait): {DEQUEUE_PATCH}")
    assert signature(QueuedRunCoordinatorDaemon.__init__) == "(self, interval_seconds, page_size=100) -> None", (
        f"QueuedRunCoordinatorDaemon.__init__ changed: {DEQUEUE_PATCH}")
    assert "QueuedRunCoordinatorDaemon(\n            interval_seconds=" in inspect.getsource(
        controller.create_daemon_of_type), f"the controller builds the queue daemon differently: {DEQUEUE_PATCH}"


# --- upgrade guards: backfill daemon interval --------------------------------------------------


def test_guard_backfill_loop_sleeps_out_the_default_interval_on_the_shutdown_event():
    from dagster._daemon import backfill, controller
    from dagster._daemon.daemon import BackfillDaemon

    assert not hasattr(BackfillDaemon.core_loop, "__platform_core_patch__"), "a test left the patch applied"
    assert list(inspect.signature(BackfillDaemon.core_loop).parameters) == [
        "self", "workspace_process_context", "shutdown_event"], f"BackfillDaemon.core_loop changed: {BACKFILL_PATCH}"
    core = inspect.getsource(BackfillDaemon.core_loop)
    assert "execute_backfill_iteration_loop(" in core and "shutdown_event," in core, (
        f"BackfillDaemon.core_loop no longer hands its shutdown event to the loop: {BACKFILL_PATCH}")
    loop = inspect.getsource(backfill.execute_backfill_iteration_loop)
    assert "shutdown_event.wait(sleep_time)" in loop and "DEFAULT_DAEMON_INTERVAL_SECONDS - loop_duration" in loop, (
        f"the backfill loop waits differently (the patch caps shutdown_event.wait): {BACKFILL_PATCH}")
    assert controller.DEFAULT_DAEMON_INTERVAL_SECONDS > dagster_patches.BACKFILL_INTERVAL_SECONDS, (
        f"Dagster's backfill interval is already shorter than ours: {BACKFILL_PATCH}")


# --- upgrade guards: worker health of STARTING runs -------------------------------------------


def test_guard_monitoring_calls_monitor_starting_run_by_module_name():
    from dagster._daemon.monitoring import run_monitoring

    fn = run_monitoring.monitor_starting_run
    assert not hasattr(fn, "__platform_core_patch__"), "a test left the patch applied"
    assert signature(fn) == "(instance: dagster._core.instance.instance.DagsterInstance, run_record: dagster._core.storage.dagster_run.RunRecord, logger: logging.Logger) -> None", (
        f"run_monitoring.monitor_starting_run changed its signature: {STARTING_PATCH}")
    source = inspect.getsource(run_monitoring.execute_run_monitoring_iteration)
    assert "monitor_starting_run(instance, run_record, logger)" in source, (
        f"execute_run_monitoring_iteration no longer calls monitor_starting_run: {STARTING_PATCH}")
    assert "supports_check_run_worker_health" not in inspect.getsource(fn), (
        f"Dagster now checks worker health of STARTING runs itself; is the patch still needed? {STARTING_PATCH}")


def test_guard_docker_launcher_health_result_is_what_the_patch_reads():
    from dagster_docker import docker_run_launcher

    assert docker_run_launcher.DOCKER_CONTAINER_ID_TAG == dagster_patches.DOCKER_CONTAINER_ID_TAG, STARTING_PATCH
    assert docker_run_launcher.DockerRunLauncher.supports_check_run_worker_health, STARTING_PATCH
    health = inspect.getsource(docker_run_launcher.DockerRunLauncher.check_run_worker_health)
    assert 'f"Container status is {container.status}."' in health and "WorkerStatus.NOT_FOUND" in health, (
        f"DockerRunLauncher.check_run_worker_health changed its result: {STARTING_PATCH}")
    launch = inspect.getsource(docker_run_launcher.DockerRunLauncher._launch_container_with_command)
    # The id tag is written before start(): a "created" container may still come up.
    assert launch.index("DOCKER_CONTAINER_ID_TAG") < launch.index("container.start()"), STARTING_PATCH


# --- behaviour --------------------------------------------------------------------------------


@pytest.fixture
def restore_patch_targets(monkeypatch):
    """Every patched attribute is put back after the test, so the guards above see Dagster's own."""
    from dagster import DagsterInstance

    from dagster._daemon.monitoring import run_monitoring

    monkeypatch.setattr(DagsterInstance, "get_daemon_statuses", DagsterInstance.get_daemon_statuses)
    monkeypatch.setattr(run_monitoring, "monitor_starting_run", run_monitoring.monitor_starting_run)
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    monkeypatch.setattr(QueuedRunCoordinatorDaemon, "__init__", QueuedRunCoordinatorDaemon.__init__)
    monkeypatch.setattr(QueuedRunCoordinatorDaemon, "core_loop", QueuedRunCoordinatorDaemon.core_loop)
    from dagster._daemon.daemon import BackfillDaemon

    monkeypatch.setattr(BackfillDaemon, "core_loop", BackfillDaemon.core_loop)
    for name in dagster_patches.STORAGE_MODULES:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "create_pg_engine", module.create_pg_engine)


def test_patched_daemon_statuses_go_unhealthy_at_the_thresholds(restore_patch_targets):
    from dagster._core.test_utils import instance_for_test
    from dagster._daemon.types import DaemonHeartbeat

    thresholds = daemon_health.Thresholds()
    with instance_for_test() as instance:
        required = instance.get_required_daemon_types()
        sensor, backfill = "SENSOR", "BACKFILL"
        assert {sensor, backfill} <= set(required)

        def beat(ages: dict[str, float], default: float = 5.0) -> None:
            now = time.time()
            for daemon_type in required:
                age = ages.get(daemon_type, default)
                instance.add_daemon_heartbeat(DaemonHeartbeat(now - age, daemon_type, "d", []))

        beat({}, default=55)  # the process stopped 55 s ago
        stock = instance.get_daemon_statuses([sensor, backfill])
        assert stock[sensor].healthy and stock[backfill].healthy  # Dagster's 1800 s

        dagster_patches.patch_daemon_statuses(thresholds)
        assert not any(s.healthy for s in instance.get_daemon_statuses().values())
        assert set(instance.get_daemon_statuses()) == set(required)

        beat({}, default=thresholds.heartbeat_seconds - 3)  # silent just under the threshold
        assert all(s.healthy for s in instance.get_daemon_statuses().values())
        beat({}, default=thresholds.heartbeat_seconds + 3)
        assert not any(s.healthy for s in instance.get_daemon_statuses().values())

        beat({sensor: 200})  # alive; one thread late on a busy host: not a flap
        assert all(s.healthy for s in instance.get_daemon_statuses().values())
        beat({sensor: thresholds.thread_seconds + 10})  # one thread stuck
        statuses = instance.get_daemon_statuses()
        assert not statuses[sensor].healthy and statuses[backfill].healthy
        assert statuses[sensor].last_heartbeat.daemon_type == sensor
        assert not instance.get_daemon_statuses([sensor])[sensor].healthy
        assert instance.get_daemon_statuses(daemon_types=[backfill])[backfill].healthy  # GraphQL's call

        not_required = instance.get_daemon_statuses(["FRESHNESS_DAEMON_NOT_REQUIRED"])
        status = not_required["FRESHNESS_DAEMON_NOT_REQUIRED"]
        assert status.required is False and status.healthy is None


def test_pool_pre_ping_on_pooled_engines_only(restore_patch_targets):
    """Pooled webserver connections are checked on checkout, so a restarted Postgres costs no
    failed request; per-use (NullPool) engines are left as they are. Never connects."""
    from dagster_postgres.event_log.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage.schedule_storage import PostgresScheduleStorage
    from sqlalchemy.pool import NullPool

    assert sorted(dagster_patches.patch_pool_pre_ping()) == sorted(dagster_patches.STORAGE_MODULES)
    assert sorted(dagster_patches.patch_pool_pre_ping()) == sorted(dagster_patches.STORAGE_MODULES)  # idempotent
    url = "postgresql+psycopg2://127.0.0.1:1/none"  # never connected to
    for storage_class in (PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage):
        storage = storage_class(url, should_autocreate_tables=False)
        assert isinstance(storage._engine.pool, NullPool) and storage._engine.pool._pre_ping is False
        storage.optimize_for_webserver(statement_timeout=5000, pool_recycle=3600, max_overflow=20)
        assert storage._engine.pool._pre_ping is True, storage_class.__name__
        explicit = importlib.import_module(storage_class.__module__).create_pg_engine(
            url, None, pool_size=1, pool_pre_ping=False)
        assert explicit.pool._pre_ping is False  # an explicit choice is kept


def test_daemon_pool_replaces_nullpool_and_keeps_the_peak_uncapped(restore_patch_targets):
    """Never connects: the engines are inspected, not used."""
    from dagster_postgres.event_log.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage.schedule_storage import PostgresScheduleStorage
    from sqlalchemy.pool import QueuePool

    assert sorted(dagster_patches.patch_storage_pool(2)) == sorted(dagster_patches.STORAGE_MODULES)
    assert sorted(dagster_patches.patch_storage_pool(2)) == sorted(dagster_patches.STORAGE_MODULES)
    url = "postgresql+psycopg2://127.0.0.1:1/none"
    for storage_class in (PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage):
        pool = storage_class(url, should_autocreate_tables=False)._engine.pool
        assert isinstance(pool, QueuePool), storage_class.__name__
        assert pool.size() == 2 and pool._max_overflow == -1
        assert pool._pre_ping is True and pool._recycle == dagster_patches.POOL_RECYCLE_SECONDS
    explicit = importlib.import_module(dagster_patches.STORAGE_MODULES[0]).create_pg_engine(url, None, pool_size=5)
    assert explicit.pool.size() == 5  # a pooled engine (the webserver's kind) is left as asked


@pytest.mark.postgres
def test_daemon_pool_reuses_connections_against_real_postgres(restore_patch_targets, postgres_url):
    """The point of the pool: ten queries of the run storage, one backend."""
    import sqlalchemy as db
    from dagster_postgres.run_storage.run_storage import PostgresRunStorage

    dagster_patches.patch_storage_pool(1)
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    storage = PostgresRunStorage(url, should_autocreate_tables=False)
    pids = set()
    for _ in range(10):
        with storage.connect() as conn:
            pids.add(conn.execute(db.text("select pg_backend_pid()")).scalar())
    storage._engine.dispose()
    assert len(pids) == 1


def drive_for(loop, seconds: float) -> None:
    """Pulls a daemon's core loop for `seconds`; it yields only None and span markers."""
    from dagster._daemon.daemon import SpanMarker

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        item = next(loop)
        assert item is None or isinstance(item, SpanMarker)


def test_dequeue_interval_patch_passes_every_quarter_second(restore_patch_targets):
    """The loop of a patched queue daemon, driven with a no-op iteration: passes come every
    `seconds`, not every 1-1.5 s."""
    import threading

    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    dagster_patches.patch_dequeue_interval(0.1)
    dagster_patches.patch_dequeue_interval(0.1)  # idempotent
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    assert daemon.interval_seconds == 0.1
    passes = []
    daemon.run_iteration = lambda context: iter(passes.append(time.monotonic()) or ())
    drive_for(daemon.core_loop(None, threading.Event()), 1.05)
    gaps = [b - a for a, b in zip(passes, passes[1:])]
    assert len(passes) >= 8 and max(gaps) < 0.2, gaps


def test_backfill_interval_patch_passes_every_interval_not_every_30_s(restore_patch_targets, monkeypatch):
    """The backfill daemon's own loop, driven with a no-op iteration: passes come every `seconds`."""
    import threading

    from dagster._daemon import backfill
    from dagster._daemon.daemon import BackfillDaemon

    passes = []

    def iteration(*args, **kwargs):
        passes.append(time.monotonic())
        yield None

    monkeypatch.setattr(backfill, "execute_backfill_iteration", iteration)
    dagster_patches.patch_backfill_interval(0.1)
    dagster_patches.patch_backfill_interval(0.1)  # idempotent
    daemon = BackfillDaemon(settings={"use_threads": False})
    drive_for(daemon.core_loop(None, threading.Event()), 1.05)
    gaps = [b - a for a, b in zip(passes, passes[1:])]
    assert len(passes) >= 8 and max(gaps) < 0.2, gaps


def test_starting_worker_is_gone_only_when_its_container_cannot_come_up():
    from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

    tagged = {dagster_patches.DOCKER_CONTAINER_ID_TAG: "abc"}

    def gone(status, msg=None, tags=tagged):
        return dagster_patches.starting_worker_is_gone(CheckRunHealthResult(status, msg), tags)

    assert not gone(WorkerStatus.RUNNING)
    assert not gone(WorkerStatus.NOT_FOUND, "No container ID tag for run.", tags={})  # not created yet
    assert gone(WorkerStatus.NOT_FOUND, "Could not find container with ID abc.")  # removed
    for state in ("exited", "dead", "removing"):
        assert gone(WorkerStatus.FAILED, f'Container status is {state}. Container state: {{"Status": "{state}"}}')
    for state in dagster_patches.STARTING_CONTAINER_MAY_COME_UP:
        assert not gone(WorkerStatus.FAILED, f"Container status is {state}."), state
    assert gone(WorkerStatus.FAILED, "the pod failed")  # another launcher's failure


class _Launcher:
    """The launcher the patched monitoring sees: only the health check is replaced."""

    supports_check_run_worker_health = True

    def __init__(self, result):
        self.result = result

    def check_run_worker_health(self, run):
        return self.result


def _starting_run(instance, tags):
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.test_utils import create_run_for_test

    run = create_run_for_test(instance, job_name="job", tags=tags)
    instance.report_dagster_event(DagsterEvent(DagsterEventType.PIPELINE_STARTING.value, job_name="job"),
                                  run_id=run.run_id)
    return instance.get_run_record_by_id(run.run_id)


def test_patched_monitoring_fails_a_starting_run_whose_container_died(restore_patch_targets, monkeypatch):
    """Within one pass, with a reason run retries retry; a live slow start is left alone."""
    import logging

    from dagster import DagsterInstance
    from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
    from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG
    from dagster._core.test_utils import instance_for_test
    from dagster._daemon.monitoring import run_monitoring

    dagster_patches.patch_starting_run_worker_health()
    dagster_patches.patch_starting_run_worker_health()  # idempotent: never wraps the wrapper
    log = logging.getLogger("test")
    tags = {dagster_patches.DOCKER_CONTAINER_ID_TAG: "abc"}
    with instance_for_test() as instance:
        live = _starting_run(instance, tags)
        monkeypatch.setattr(DagsterInstance, "run_launcher", _Launcher(CheckRunHealthResult(WorkerStatus.RUNNING)))
        run_monitoring.monitor_starting_run(instance, live, log)
        assert instance.get_run_by_id(live.dagster_run.run_id).status.value == "STARTING"

        dead = _starting_run(instance, tags)
        monkeypatch.setattr(DagsterInstance, "run_launcher",
                            _Launcher(CheckRunHealthResult(WorkerStatus.FAILED, "Container status is exited.")))
        run_monitoring.monitor_starting_run(instance, dead, log)
        failed = instance.get_run_by_id(dead.dagster_run.run_id)
        assert failed.status.value == "FAILURE"
        assert failed.tags[RUN_FAILURE_REASON_TAG] == "UNEXPECTED_TERMINATION"
        assert instance.get_run_by_id(live.dagster_run.run_id).status.value == "STARTING"

        # Stock behaviour without the patch, for contrast: the dead run would wait for the timeout.
        monkeypatch.undo()
        stock = _starting_run(instance, tags)
        monkeypatch.setattr(DagsterInstance, "run_launcher",
                            _Launcher(CheckRunHealthResult(WorkerStatus.FAILED, "Container status is exited.")))
        run_monitoring.monitor_starting_run(instance, stock, log)
        assert instance.get_run_by_id(stock.dagster_run.run_id).status.value == "STARTING"


def test_launcher_applies_the_patches_then_runs_the_webserver(restore_patch_targets, monkeypatch):
    from dagster import DagsterInstance
    from dagster_postgres.run_storage import run_storage
    from dagster_webserver import cli

    ran = []
    monkeypatch.setattr(cli, "main", lambda: ran.append(sys.argv[0]) or 0)
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/dagster-webserver-launcher", "-p", "3000"])
    monkeypatch.delenv("DAEMON_HEARTBEAT_TOLERANCE_SECONDS", raising=False)
    launcher = _load_launcher()
    with pytest.raises(SystemExit) as exited:
        launcher.main()
    assert exited.value.code == 0 and ran == ["dagster-webserver"]
    assert getattr(DagsterInstance.get_daemon_statuses, "__platform_core_patch__", False)
    assert getattr(run_storage.create_pg_engine, "__platform_core_patch__", False)


def test_launcher_exits_naming_a_malformed_threshold(restore_patch_targets, monkeypatch):
    monkeypatch.setenv("DAEMON_HEARTBEAT_TOLERANCE_SECONDS", "soon")
    with pytest.raises(SystemExit) as exited:
        _load_launcher().main()
    assert "DAEMON_HEARTBEAT_TOLERANCE_SECONDS must be a duration" in str(exited.value.code)
    assert "'soon'" in str(exited.value.code)


def test_daemon_launcher_applies_the_patches_then_runs_the_daemon(restore_patch_targets, monkeypatch):
    from dagster._daemon import cli
    from dagster._daemon.monitoring import run_monitoring

    ran = []
    monkeypatch.setattr(cli, "main", lambda: ran.append(sys.argv[0]) or 0)
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/dagster-daemon-launcher", "run"])
    spec = importlib.util.spec_from_file_location("daemon_launcher", REPO_ROOT / "deploy/docker/daemon_launcher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0 and ran == ["dagster-daemon"]
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster_postgres.run_storage import run_storage

    assert getattr(run_monitoring.monitor_starting_run, "__platform_core_patch__", False)
    assert getattr(run_storage.create_pg_engine, "__platform_core_patch__", False)
    assert getattr(QueuedRunCoordinatorDaemon.core_loop, "__platform_core_patch__", False)


def _load_launcher():
    spec = importlib.util.spec_from_file_location("webserver_launcher", REPO_ROOT / "deploy/docker/webserver_launcher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

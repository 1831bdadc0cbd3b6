"""prune_old_runs (run retention) against a real Dagster instance on the throwaway Postgres: runs
are created by executing real jobs, aged by moving `runs.create_timestamp` back, then the
maintenance job runs in process on the same instance, as the platform location wires it."""

import secrets
from collections.abc import Iterator

import psycopg2
import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterRunStatus,
    job,
    op,
)
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from psycopg2 import sql

from platform_core.settings import SettingError
from platform_ops.defs.jobs import (
    DEFAULT_RETENTION_DAYS,
    RETENTION_DAYS,
    RETENTION_DAYS_ENV,
    prune_old_runs,
    retention_days_from_env,
)

pytestmark = pytest.mark.postgres

UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@op
def succeed() -> int:
    return 1


@op
def fail() -> None:
    raise RuntimeError("this run fails on purpose")


@job
def passing_job():
    succeed()


@job
def failing_job():
    fail()


@pytest.fixture(scope="module")
def dagster_db(postgres_server) -> dict:
    """A database of its own for Dagster's run/event storage, as deploy/postgres creates it."""
    dbname = f"dagster_test_{secrets.token_hex(4)}"
    conn = psycopg2.connect(**postgres_server)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    finally:
        conn.close()
    return {**postgres_server, "dbname": dbname}


@pytest.fixture(scope="module")
def instance(dagster_db, tmp_path_factory) -> Iterator[DagsterInstance]:
    """A DagsterInstance whose storage is dagster_postgres on that database (temp DAGSTER_HOME)."""
    home = tmp_path_factory.mktemp("dagster_home")
    db = dagster_db
    (home / "dagster.yaml").write_text(
        "storage:\n"
        "  postgres:\n"
        "    postgres_db:\n"
        f"      hostname: {db['host']}\n"
        f"      port: {db['port']}\n"
        f"      username: {db['user']}\n"
        f"      password: {db['password']}\n"
        f"      db_name: {db['dbname']}\n"
        # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3, as in the repo's dagster.yaml.
        "      scheme: postgresql+psycopg2\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    with DagsterInstance.from_config(str(home)) as inst:
        yield inst


@pytest.fixture
def fresh(instance) -> DagsterInstance:
    """The module's instance with no runs left over from earlier tests."""
    instance.wipe()
    return instance


@pytest.fixture
def storage_rows(dagster_db):
    """`storage_rows(sql, params)` -> rows of the Dagster storage database."""

    def rows(statement: str, params=()) -> list[tuple]:
        conn = psycopg2.connect(**dagster_db)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    return rows


@pytest.fixture
def age(storage_rows):
    """`age(run_ids, days)` moves those runs' creation time `days` days into the past."""

    def move_back(run_ids: list[str], days: float) -> None:
        storage_rows(
            "UPDATE runs SET create_timestamp = create_timestamp - make_interval(secs => %s) "
            "WHERE run_id = ANY(%s)",
            (days * 86400, list(run_ids)),
        )
        assert storage_rows(
            "SELECT count(*) FROM runs WHERE run_id = ANY(%s)", (list(run_ids),)
        ) == [(len(run_ids),)]

    return move_back


def finished_runs(instance: DagsterInstance, succeeded: int = 0, failed: int = 0) -> list[str]:
    ids = [passing_job.execute_in_process(instance=instance).run_id for _ in range(succeeded)]
    ids += [
        failing_job.execute_in_process(instance=instance, raise_on_error=False).run_id
        for _ in range(failed)
    ]
    return ids


def canceled_run(instance: DagsterInstance) -> str:
    run = instance.create_run_for_job(passing_job, status=DagsterRunStatus.NOT_STARTED)
    instance.report_run_canceled(run)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    return run.run_id


def quick_failed_runs(instance: DagsterInstance, count: int) -> list[str]:
    """Finished runs with a RUN_FAILURE event, without the ~seconds an executed run costs."""
    ids = []
    for _ in range(count):
        run = instance.create_run_for_job(passing_job, status=DagsterRunStatus.NOT_STARTED)
        instance.report_run_failed(run, "failed before it started")
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        ids.append(run.run_id)
    return ids


def unfinished_runs(instance: DagsterInstance) -> list[str]:
    """One run in each status the job must never touch, each with an event of its own. Queued
    runs need the origin the daemon would launch them from; this module's jobs serve as one."""
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=ManagedGrpcPythonEnvCodeLocationOrigin(
                LoadableTargetOrigin(python_file=__file__), location_name="maintenance-tests"
            ),
            repository_name="__repository__",
        ),
        job_name=passing_job.name,
    )
    ids = []
    for status in UNFINISHED:
        run = instance.create_run_for_job(passing_job, status=status, remote_job_origin=origin)
        instance.report_engine_event(f"still {status.value}", run)
        assert instance.get_run_by_id(run.run_id).status == status
        ids.append(run.run_id)
    return ids


def location_job():
    """prune_old_runs as the platform location wires it (its executor and resources)."""
    from platform_ops.definitions import defs

    return defs.resolve_job_def(prune_old_runs.name)


def prune(instance: DagsterInstance, **config):
    result = location_job().execute_in_process(
        instance=instance, run_config={"ops": {"delete_old_runs": {"config": config}}}
    )
    assert result.success
    metadata = output_metadata(result)
    return result, {k: metadata[k] for k in ("matched", "deleted", "runs_remaining")}


def event_count(storage_rows, run_ids: list[str]) -> int:
    return storage_rows("SELECT count(*) FROM event_logs WHERE run_id = ANY(%s)", (run_ids,))[0][0]


def existing(instance: DagsterInstance, run_ids: list[str]) -> set[str]:
    return {run_id for run_id in run_ids if instance.has_run(run_id)}


# --- behaviour --------------------------------------------------------------------------------


def test_dry_run_reports_the_old_finished_runs_and_deletes_nothing(fresh, age, storage_rows):
    old = finished_runs(fresh, succeeded=1, failed=1) + [canceled_run(fresh)]
    old += quick_failed_runs(fresh, 1)
    recent = quick_failed_runs(fresh, 1)
    age(old, days=40)
    events_before = event_count(storage_rows, old)
    assert events_before > 0

    result, counts = prune(fresh, retention_days=30, dry_run=True)

    assert counts == {"matched": 4, "deleted": 0, "runs_remaining": 6}  # 5 + the dry run itself
    assert existing(fresh, old + recent) == set(old + recent)
    assert event_count(storage_rows, old) == events_before
    metadata = output_metadata(result)
    assert (metadata["matched"], metadata["deleted"], metadata["dry_run"]) == (4, 0, True)
    assert metadata["retention_days"] == 30


def test_real_run_deletes_exactly_the_old_finished_runs_and_their_events(
    fresh, age, storage_rows
):
    old_finished = finished_runs(fresh, succeeded=1, failed=1) + [canceled_run(fresh)]
    old_finished += quick_failed_runs(fresh, 2)
    old_unfinished = unfinished_runs(fresh)
    recent = finished_runs(fresh, succeeded=1) + quick_failed_runs(fresh, 1)
    age(old_finished + old_unfinished, days=45)
    assert event_count(storage_rows, old_finished) > 0
    unfinished_events = event_count(storage_rows, old_unfinished)
    recent_events = event_count(storage_rows, recent)
    assert unfinished_events == len(UNFINISHED)

    result, counts = prune(fresh, retention_days=30)

    assert output_metadata(result)["deleted"] == len(old_finished)
    assert counts["matched"] == counts["deleted"] == len(old_finished)
    assert existing(fresh, old_finished) == set()
    assert storage_rows(
        "SELECT count(*) FROM runs WHERE run_id = ANY(%s)", (old_finished,)
    ) == [(0,)]
    assert event_count(storage_rows, old_finished) == 0
    assert storage_rows(
        "SELECT count(*) FROM run_tags WHERE run_id = ANY(%s)", (old_finished,)
    ) == [(0,)]
    # Unfinished runs keep their status and events however old; recent runs are untouched.
    assert existing(fresh, old_unfinished + recent) == set(old_unfinished + recent)
    assert [fresh.get_run_by_id(r).status for r in old_unfinished] == UNFINISHED
    assert event_count(storage_rows, old_unfinished) == unfinished_events
    assert event_count(storage_rows, recent) == recent_events
    assert fresh.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
    assert counts["runs_remaining"] == len(old_unfinished + recent) + 1


def test_the_cutoff_is_retention_days_before_now(fresh, age):
    just_older, just_younger = quick_failed_runs(fresh, 2)
    age([just_older], days=10.01)
    age([just_younger], days=9.99)

    _, counts = prune(fresh, retention_days=10)

    assert counts["deleted"] == 1
    assert existing(fresh, [just_older, just_younger]) == {just_younger}


def test_many_runs_are_deleted_in_batches(fresh, age):
    old = quick_failed_runs(fresh, 7)
    age(old, days=100)

    result, dry = prune(fresh, retention_days=30, dry_run=True, batch_size=3)
    assert dry["matched"] == 7
    assert output_metadata(result)["batches"] == 3
    assert "batch 3: would delete 1 run(s), 7 so far" in log_messages(fresh, result.run_id)
    assert existing(fresh, old) == set(old)

    result, counts = prune(fresh, retention_days=30, batch_size=3)
    assert counts["deleted"] == 7
    assert existing(fresh, old) == set()
    assert output_metadata(result)["batches"] == 3
    assert "batch 3: deleting 1 run(s), 7 so far" in log_messages(fresh, result.run_id)


def test_nothing_old_is_a_successful_no_op(fresh):
    recent = quick_failed_runs(fresh, 1)
    _, counts = prune(fresh)
    assert counts["matched"] == counts["deleted"] == 0
    assert existing(fresh, recent) == set(recent)


def output_metadata(result) -> dict:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def log_messages(instance: DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id) if not entry.is_dagster_event]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, -1, -30])
def test_non_positive_retention_is_refused_naming_the_field(fresh, age, days):
    old = quick_failed_runs(fresh, 1)
    age(old, days=400)
    result = location_job().execute_in_process(
        instance=fresh,
        run_config={"ops": {"delete_old_runs": {"config": {"retention_days": days}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "retention_days must be a whole number of days >= 1" in str(failure.to_string())
    assert f"got {days}" in failure.to_string()
    assert existing(fresh, old) == set(old)


def test_zero_batch_size_is_refused_naming_the_field(fresh):
    result = location_job().execute_in_process(
        instance=fresh,
        run_config={"ops": {"delete_old_runs": {"config": {"batch_size": 0}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "batch_size must be >= 1" in failure.to_string()


def test_sql_text_in_config_is_refused_by_the_config_type(fresh):
    with pytest.raises(DagsterInvalidConfigError, match="retention_days"):
        location_job().execute_in_process(
            instance=fresh,
            run_config={
                "ops": {"delete_old_runs": {"config": {"retention_days": "1; DROP TABLE runs; --"}}}
            },
        )


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, DEFAULT_RETENTION_DAYS), ("", DEFAULT_RETENTION_DAYS), ("  ", DEFAULT_RETENTION_DAYS), (" 7 ", 7)]
)
def test_default_retention_comes_from_env(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv(RETENTION_DAYS_ENV, raising=False)
    else:
        monkeypatch.setenv(RETENTION_DAYS_ENV, raw)
    assert retention_days_from_env() == expected


@pytest.mark.parametrize("raw", ["0", "-5", "thirty", "1.5"])
def test_bad_retention_env_is_refused_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(RETENTION_DAYS_ENV, raw)
    with pytest.raises(SettingError) as refused:
        retention_days_from_env()
    assert str(refused.value).startswith(f"{RETENTION_DAYS_ENV} must be a whole number")
    assert repr(raw) in str(refused.value)


def test_retention_is_declared_once_in_the_platform_settings():
    """platform_core.settings knows the variable (one default, one rule for every reader)."""
    assert RETENTION_DAYS.name == RETENTION_DAYS_ENV
    assert (RETENTION_DAYS.kind, RETENTION_DAYS.default, RETENTION_DAYS.minimum) == ("integer", 30, 1)
    assert RETENTION_DAYS.get({RETENTION_DAYS_ENV: "12"}) == 12


def test_the_config_default_is_the_setting_read_when_the_location_loads():
    from platform_ops.defs.jobs import RunRetentionConfig

    assert RunRetentionConfig.model_fields["retention_days"].default == retention_days_from_env()


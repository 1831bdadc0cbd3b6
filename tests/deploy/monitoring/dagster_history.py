"""A Dagster instance on a throwaway Postgres database and the history the exporter reads (runs
with their events, failed ticks, check evaluations, freshness changes), written through Dagster's
own instance API. Shared by the exporter's tests and benchmarks/monitoring_scrape.py."""

import importlib.util
import secrets
import time
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

REPO_ROOT = Path(__file__).resolve().parents[3]


def create_database(superuser: dict) -> dict:
    """A new role and database on the server; connection parameters of that role."""
    name, password = f"mon_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    conn = psycopg2.connect(**superuser)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
            cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
    finally:
        conn.close()
    return {**superuser, "dbname": name, "user": name, "password": password}


@pytest.fixture
def dagster_db(postgres_server) -> dict:
    return create_database(postgres_server)


def write_dagster_home(home: Path, pg: dict) -> dict[str, str]:
    """dagster.yaml as the stack renders it, in `home`; the environment it needs."""
    spec = importlib.util.spec_from_file_location("render_dagster_yaml", REPO_ROOT / "deploy/docker/render_dagster_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = {"PLATFORM_PROJECT": "flights-test", "DAGSTER_MAX_CONCURRENT_RUNS": "6",
           "DAGSTER_MAX_CONCURRENT_BACKFILL_RUNS": "4", "DAGSTER_MAX_CONCURRENT_AUTOMATION_RUNS": "4",
           "DAGSTER_CREATE_SCHEMA": "true"}  # a fresh database, as dagster-init sees it
    text = module.render((REPO_ROOT / "dagster.yaml").read_text(), env)
    text = text.replace("base_dir: /opt/dagster/compute_logs", f"base_dir: {home / 'compute_logs'}")
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(text)
    return {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": pg["host"], "DAGSTER_PG_PORT": str(pg["port"]),
            "DAGSTER_PG_DB": pg["dbname"], "DAGSTER_PG_USER": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"]}


def dagster_instance(tmp_path, monkeypatch, pg: dict):
    from dagster import DagsterInstance

    for key, value in write_dagster_home(tmp_path / "home", pg).items():
        monkeypatch.setenv(key, value)
    return DagsterInstance.get()


def _origin(location: str, job: str):
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

    return RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location), "__repository__"), job)


def _event(instance, run_id: str, job: str, event_type: str, specific=None, timestamp: float | None = None) -> None:
    from dagster import DagsterEvent, DagsterEventType, EventLogEntry

    event = DagsterEvent(event_type_value=DagsterEventType[event_type].value, job_name=job, event_specific_data=specific)
    instance.handle_new_event(EventLogEntry(error_info=None, level=20, user_message="", run_id=run_id,
                                       timestamp=time.time() if timestamp is None else timestamp,
                                       dagster_event=event))


def add_run(instance, location: str, job: str, status: str, duration: float = 0.0) -> str:
    """A run in `status`: QUEUED, STARTED, SUCCESS or FAILURE (these two lasting `duration` s)."""
    from dagster import DagsterRunStatus
    from dagster._core.storage.dagster_run import DagsterRun

    run = DagsterRun(job_name=job, run_id=secrets.token_hex(16), remote_job_origin=_origin(location, job),
                     status=DagsterRunStatus.QUEUED if status == "QUEUED" else DagsterRunStatus.NOT_STARTED)
    instance.add_run(run)
    if status == "QUEUED":
        return run.run_id
    start = time.time() - duration
    _event(instance, run.run_id, job, "RUN_START", timestamp=start)
    if status in ("SUCCESS", "FAILURE"):
        _event(instance, run.run_id, job, f"RUN_{status}", timestamp=start + duration)
    return run.run_id


def add_check_evaluation(instance, location: str, asset: str, check: str, passed: bool) -> None:
    from dagster import AssetCheckEvaluation, AssetKey

    run_id = add_run(instance, location, "__ASSET_JOB", "SUCCESS")
    _event(instance, run_id, "__ASSET_JOB", "ASSET_CHECK_EVALUATION",
           AssetCheckEvaluation(asset_key=AssetKey(asset), check_name=check, passed=passed, metadata={}))


def add_freshness_change(instance, asset: str, state: str) -> None:
    from dagster import AssetKey
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    change = FreshnessStateChange(key=AssetKey(asset), new_state=FreshnessState(state),
                                  previous_state=FreshnessState.UNKNOWN, state_change_timestamp=time.time())
    _event(instance, "", "", "FRESHNESS_STATE_CHANGE", change)


def add_failed_tick(instance, location: str, sensor: str) -> None:
    """A sensor tick that starts and then fails, as the daemon writes it."""
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteInstigatorOrigin, RemoteRepositoryOrigin
    from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, InstigatorType, TickData, TickStatus
    from dagster._utils.error import SerializableErrorInfo

    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location), "__repository__"), sensor)
    state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.RUNNING)
    if instance.get_instigator_state(origin.get_id(), state.selector_id) is None:
        instance.add_instigator_state(state)
    tick = instance.create_tick(TickData(instigator_origin_id=origin.get_id(), instigator_name=sensor,
                                         instigator_type=InstigatorType.SENSOR, status=TickStatus.STARTED,
                                         timestamp=time.time(), selector_id=state.selector_id))
    instance.update_tick(tick.with_status(TickStatus.FAILURE, error=SerializableErrorInfo("boom", [], "Exception")))

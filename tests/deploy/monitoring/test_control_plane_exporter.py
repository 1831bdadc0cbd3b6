"""The control-plane exporter (deploy/monitoring/control_plane_exporter.py) against a real Dagster
instance on a throwaway Postgres: every metric the issue asks for moves when the storage does,
counters count each event once however often it collects, and labels never carry run ids."""

import importlib.util
import re
import sys
import time
from pathlib import Path

import psycopg2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "ops"))  # as PYTHONPATH in the container


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


status = _load("platform_status", REPO_ROOT / "deploy/ops/platform_status.py")
exporter = _load("control_plane_exporter", REPO_ROOT / "deploy/monitoring/control_plane_exporter.py")
from tests.deploy.monitoring.dagster_history import (  # noqa: E402
    dagster_instance, dagster_db, add_check_evaluation, add_freshness_change, add_failed_tick, add_run)

__all__ = ["dagster_db"]


def value(metrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def samples(metrics, name: str) -> list:
    return [s for family in metrics.registry.collect() for s in family.samples if s.name == name]


@pytest.mark.postgres
def test_metrics_follow_the_storage(dagster_db, tmp_path, monkeypatch):
    from dagster._daemon.types import DaemonHeartbeat

    instance = dagster_instance(tmp_path, monkeypatch, dagster_db)
    kwargs = {k: dagster_db[k] for k in ("host", "port", "dbname", "user", "password")}
    probes = {"ingestion": True, "reporting": False}
    now = [time.time()]
    metrics = exporter.Metrics()
    collector = exporter.ControlPlaneCollector(
        instance.get_required_daemon_types(), lambda: psycopg2.connect(**kwargs), metrics,
        servers=lambda: [("ingestion", "ingestion", 4000), ("reporting", "reporting", 4000)],
        probe=lambda host, port: probes[host], env={}, clock=lambda: now[0])
    try:
        # History before the exporter starts is counted once, at its first collection.
        add_run(instance, "ingestion", "load_flights", "SUCCESS", duration=42)
        add_run(instance, "ingestion", "load_flights", "FAILURE", duration=7)
        add_run(instance, "reporting", "report", "QUEUED")
        for daemon_type in instance.get_required_daemon_types():
            instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - 5, daemon_type, "d1", []))
        collector.collect()
        assert samples(metrics, "platform_exporter_collect_errors_total") == []
        assert value(metrics, "dagster_runs_started_total", location="ingestion", dagster_job="load_flights") == 2
        assert value(metrics, "dagster_runs_succeeded_total", location="ingestion", dagster_job="load_flights") == 1
        assert value(metrics, "dagster_runs_failed_total", location="ingestion", dagster_job="load_flights") == 1
        assert value(metrics, "dagster_run_duration_seconds_count", location="ingestion") == 2
        assert value(metrics, "dagster_run_duration_seconds_bucket", location="ingestion", le="30.0") == 1
        assert 48 <= value(metrics, "dagster_run_duration_seconds_sum", location="ingestion") <= 51
        assert value(metrics, "dagster_run_queue_depth") == 1
        assert value(metrics, "dagster_run_queue_oldest_age_seconds") >= 0
        assert value(metrics, "dagster_runs_in_progress", status="STARTED") == 0
        assert value(metrics, "dagster_daemon_up", daemon_type="QUEUED_RUN_COORDINATOR") == 1
        assert 4 <= value(metrics, "dagster_daemon_heartbeat_age_seconds", daemon_type="SENSOR") <= 30
        assert value(metrics, "dagster_platform_healthy") == 1
        assert value(metrics, "dagster_code_location_up", location="ingestion") == 1
        assert value(metrics, "dagster_code_location_up", location="reporting") == 0
        assert value(metrics, "postgres_max_connections") == 100  # the fixture's Postgres default
        assert value(metrics, "postgres_connections", database=dagster_db["dbname"]) >= 1

        # Collecting again without news changes no counter.
        collector.collect()
        assert value(metrics, "dagster_runs_started_total", location="ingestion", dagster_job="load_flights") == 2

        # New runs, ticks, checks and freshness changes: counted once each.
        add_run(instance, "reporting", "report", "FAILURE", duration=3)
        add_run(instance, "reporting", "report", "STARTED")
        add_failed_tick(instance, "reporting", "report_sensor")
        add_check_evaluation(instance, "ingestion", "flights", "rows_present", passed=False)
        add_check_evaluation(instance, "ingestion", "airlines", "unique", passed=True)
        add_freshness_change(instance, "report", "FAIL")
        for daemon_type in instance.get_required_daemon_types():
            instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - 100, daemon_type, "d1", []))
        now[0] += 30
        collector.collect()
        collector.collect()
        assert samples(metrics, "platform_exporter_collect_errors_total") == []
        assert value(metrics, "dagster_runs_failed_total", location="reporting", dagster_job="report") == 1
        assert value(metrics, "dagster_runs_started_total", location="reporting", dagster_job="report") == 2
        assert value(metrics, "dagster_runs_in_progress", status="STARTED") == 1
        assert value(metrics, "dagster_ticks_failed_total", location="reporting", instigator_type="sensor",
                     instigator="report_sensor") == 1
        assert value(metrics, "dagster_asset_check_failures_total", location="ingestion") == 1
        assert value(metrics, "dagster_asset_checks_failing") == 1
        assert value(metrics, "dagster_freshness_violations_total") == 1
        assert value(metrics, "dagster_assets_freshness_failing") == 1
        assert value(metrics, "dagster_daemon_up", daemon_type="SENSOR") == 0  # the process is down
        assert value(metrics, "dagster_platform_healthy") == 0
        assert value(metrics, "dagster_code_location_down_seconds", location="reporting") == 30

        # The check passes again, the asset is fresh again, the location serves again.
        add_check_evaluation(instance, "ingestion", "flights", "rows_present", passed=True)
        add_freshness_change(instance, "report", "PASS")
        probes["reporting"] = True
        collector.collect()
        assert value(metrics, "dagster_asset_checks_failing") == 0
        assert value(metrics, "dagster_assets_freshness_failing") == 0
        assert value(metrics, "dagster_freshness_violations_total") == 1
        assert value(metrics, "dagster_code_location_down_seconds", location="reporting") == 0

        # Bounded labels: no run id anywhere.
        run_ids = {r.dagster_run.run_id for r in instance.get_run_records()}
        for family in metrics.registry.collect():
            for sample in family.samples:
                assert not set(sample.labels.values()) & run_ids, sample
    finally:
        instance.dispose()


@pytest.mark.postgres
def test_a_broken_part_is_counted_and_the_rest_still_collected(dagster_db, tmp_path, monkeypatch):
    instance = dagster_instance(tmp_path, monkeypatch, dagster_db)
    kwargs = {k: dagster_db[k] for k in ("host", "port", "dbname", "user", "password")}
    refused = [True]

    def connect():
        if refused[0]:
            raise psycopg2.OperationalError("connection refused")
        return psycopg2.connect(**kwargs)

    def no_workspace():
        raise FileNotFoundError("/opt/dagster/workspace.yaml")

    metrics = exporter.Metrics()
    collector = exporter.ControlPlaneCollector(instance.get_required_daemon_types(), connect, metrics, servers=no_workspace, env={})
    try:
        add_run(instance, "ingestion", "load_flights", "QUEUED")
        add_run(instance, "ingestion", "load_flights", "SUCCESS", duration=1)
        collector.collect()
        for part in ("status", "sql", "events", "code_locations"):
            assert value(metrics, "platform_exporter_collect_errors_total", part=part) == 1
        refused[0] = False  # the database is back: what was missed is caught up
        collector.collect()
        assert value(metrics, "platform_exporter_collect_errors_total", part="status") == 1
        assert value(metrics, "dagster_run_queue_depth") == 1
        # No heartbeat yet: unhealthy, but within the watchdog's startup grace, as a fresh stack.
        assert value(metrics, "dagster_platform_healthy") == 0
        assert value(metrics, "dagster_platform_startup_grace") == 1
        collector.started -= collector.grace_seconds  # WATCHDOG_STARTUP_GRACE_SECONDS passed
        collector.collect()
        assert value(metrics, "dagster_runs_succeeded_total", location="ingestion", dagster_job="load_flights") == 1
        assert value(metrics, "dagster_platform_startup_grace") == 0
    finally:
        instance.dispose()


def test_thresholds_are_the_watchdogs_settings():
    env = {"DAEMON_HEARTBEAT_TOLERANCE_SECONDS": "55", "QUEUED_RUN_ALERT_SECONDS": "10m",
           "STUCK_RUN_ALERT_SECONDS": "90", "RUN_FAILURE_RATE_ALERT": "0.25"}
    got = exporter.thresholds(env)
    watchdog = status.Thresholds.from_env(env)
    assert got[("seconds", "daemon_heartbeat")] == watchdog.heartbeat_seconds == 55
    assert got[("seconds", "queued_run")] == watchdog.queued_seconds == 600
    assert got[("seconds", "stuck_run")] == watchdog.stuck_seconds == 90
    assert got[("seconds", "daemon_thread")] == watchdog.thread_seconds
    assert got[("ratio", "run_failure_rate")] == 0.25


def test_a_bad_threshold_names_the_setting():
    from platform_core.settings import SettingError

    with pytest.raises(SettingError, match="POSTGRES_CONNECTIONS_ALERT_RATIO"):
        exporter.thresholds({"POSTGRES_CONNECTIONS_ALERT_RATIO": "80%"})


def test_workspace_servers_reads_the_generated_workspace(tmp_path):
    path = tmp_path / "workspace.yaml"
    path.write_text("load_from:\n  - grpc_server: {host: ingestion, port: 4000, location_name: ingestion}\n")
    assert exporter.workspace_servers(str(path)) == [("ingestion", "ingestion", 4000)]
    path.write_text("load_from:\n  - python_module: x\n")
    with pytest.raises(ValueError, match="only grpc_server entries"):
        exporter.workspace_servers(str(path))


def test_env_example_documents_the_exporters_defaults():
    """tests/deploy/test_env_documented.py reads the scripts it lists; this one's settings here."""
    documented = dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(\S*)", (REPO_ROOT / ".env.example").read_text(), re.M))
    for setting in (exporter.COLLECT_INTERVAL, exporter.CODE_LOCATION_DOWN_ALERT, exporter.RUN_FAILURE_RATE_ALERT,
                    exporter.POSTGRES_CONNECTIONS_ALERT):
        assert setting.name in documented, f"{setting.name} is not in .env.example"
        assert setting.get({setting.name: documented[setting.name]}) == setting.default, setting.name

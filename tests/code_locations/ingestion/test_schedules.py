"""reference_tables_nightly: keeps airlines, airports and planes current without anyone switching
it on."""

from datetime import datetime, timezone

from dagster import DefaultScheduleStatus, build_schedule_context

from flights_shared.asset_keys import AIRLINES, AIRPORTS, PLANES
from ingestion.definitions import defs
from ingestion.defs.schedules import reference_tables_nightly


def test_targets_the_reference_tables_job():
    """The nightly run must reload exactly the three reference tables, never the daily data."""
    assert reference_tables_nightly.job_name == "refresh_reference_tables"
    job = defs.resolve_job_def(reference_tables_nightly.job_name)
    assert set(job.asset_layer.executable_asset_keys) == {AIRLINES, AIRPORTS, PLANES}


def test_runs_by_default_once_a_night():
    """A schedule that starts stopped would never refresh anything on a fresh stack."""
    assert reference_tables_nightly.default_status == DefaultScheduleStatus.RUNNING
    assert reference_tables_nightly.cron_schedule == "0 4 * * *"
    assert reference_tables_nightly.execution_timezone == "UTC"


def test_evaluation_yields_one_run_request():
    """A tick must produce a run (an evaluation that skips or raises would silently do nothing)."""
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 2, 4, tzinfo=timezone.utc)
    )
    result = reference_tables_nightly.evaluate_tick(context)
    assert result.skip_message is None
    (request,) = result.run_requests
    assert request.partition_key is None
    assert request.tags["dagster/schedule_name"] == "reference_tables_nightly"

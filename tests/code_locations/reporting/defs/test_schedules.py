"""The weekly report schedule."""

import datetime as dt

from dagster import AssetKey, DefaultScheduleStatus, DagsterInstance, build_schedule_context

from reporting.definitions import defs
from reporting.defs.schedules import weekly_on_time_report


def test_weekly_schedule_requests_the_report_run():
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2024, 1, 8, 6, 0, tzinfo=dt.UTC),
        )
        data = weekly_on_time_report.evaluate_tick(context)
    assert len(data.run_requests) == 1
    assert weekly_on_time_report.job_name == "on_time_report_job"

    job_def = defs.resolve_job_def(weekly_on_time_report.job_name)
    assert set(job_def.asset_layer.selected_asset_keys) == {AssetKey(["reporting", "on_time_report"])}


def test_schedule_runs_mondays_at_six_and_starts_running():
    assert weekly_on_time_report.cron_schedule == "0 6 * * 1"
    assert weekly_on_time_report.execution_timezone == "UTC"
    assert weekly_on_time_report.default_status == DefaultScheduleStatus.RUNNING

"""Schedules of the reporting location."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from reporting.defs.assets import on_time_report

on_time_report_job = define_asset_job(
    "on_time_report_job",
    selection=AssetSelection.assets(on_time_report),
    description="Rebuilds the on-time report from the current reporting tables.",
)

# Weekly, so the report is refreshed (and its freshness policy satisfied) even in weeks where no
# new data arrived and automation had nothing to react to.
weekly_on_time_report = ScheduleDefinition(
    name="weekly_on_time_report",
    job=on_time_report_job,
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)

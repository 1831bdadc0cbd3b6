"""Schedules of the ingestion location."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from ingestion.defs.jobs import refresh_reference_tables

# Reference data changes rarely; a nightly reload keeps the labels current.
reference_tables_nightly = ScheduleDefinition(
    name="reference_tables_nightly",
    job=refresh_reference_tables,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)

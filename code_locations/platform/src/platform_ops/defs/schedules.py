"""Schedules of the platform location."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from platform_ops.defs.jobs import prune_old_runs

# Daily, at a quiet hour (UTC), after nothing else is scheduled.
MAINTENANCE_CRON = "15 3 * * *"

prune_old_runs_daily = ScheduleDefinition(
    name="prune_old_runs_daily",
    job=prune_old_runs,
    cron_schedule=MAINTENANCE_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)

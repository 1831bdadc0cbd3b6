"""prune_old_runs_daily: run retention every night without anyone switching it on."""

from datetime import UTC, datetime

from dagster import DagsterInstance, DefaultScheduleStatus, build_schedule_context

from platform_ops.definitions import defs
from platform_ops.defs.jobs import prune_old_runs
from platform_ops.defs.schedules import prune_old_runs_daily


def test_schedule_runs_the_job_daily_by_default():
    assert prune_old_runs_daily.job_name == prune_old_runs.name == "prune_old_runs"
    assert prune_old_runs_daily.cron_schedule == "15 3 * * *"
    assert prune_old_runs_daily.execution_timezone == "UTC"
    assert prune_old_runs_daily.default_status == DefaultScheduleStatus.RUNNING
    assert defs.resolve_job_def(prune_old_runs_daily.job_name).name == "prune_old_runs"


def test_evaluation_yields_one_run_with_the_job_defaults():
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 1, 2, 3, 15, tzinfo=UTC)
        )
        result = prune_old_runs_daily.evaluate_tick(context)
    assert result.skip_message is None
    (request,) = result.run_requests
    assert request.tags["dagster/schedule_name"] == "prune_old_runs_daily"
    # No dry_run in the scheduled run: the job's default (false) applies.
    assert "dry_run" not in str(request.run_config)

"""Run retention: Dagster keeps every run and its event log forever, so the runs and event_logs
tables grow without bound and the UI's run pages slow down until they time out. A daily job
(schedules.prune_old_runs_daily) deletes finished runs older than the retention period, with
their events. It touches the Dagster instance (context.instance) only, never a warehouse."""

from datetime import UTC, datetime, timedelta

from dagster import (
    Config,
    DagsterRunStatus,
    Failure,
    Nothing,
    OpExecutionContext,
    Out,
    RunsFilter,
    job,
    op,
)
from platform_core import settings
from pydantic import Field, field_validator

RETENTION_DAYS_ENV = "RUN_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
RETENTION_DAYS = settings.integer(
    RETENTION_DAYS_ENV,
    DEFAULT_RETENTION_DAYS,
    minimum=1,
    doc="prune_old_runs deletes finished runs (and their event logs) created more than this many "
    "days ago; the default of its retention_days config.",
)
# Only these are deleted: a queued, starting, running or cancelling run is still owned by the
# daemon or a run worker, and deleting it under them would orphan a container.
DELETABLE_STATUSES = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


def _positive_days(value: int, field: str) -> int:
    if value < 1:
        raise ValueError(f"{field} must be a whole number of days >= 1, got {value}")
    return value


def retention_days_from_env() -> int:
    """Default of `retention_days`, read when the location loads so a bad value fails loudly
    (platform_core.settings.SettingError, a ValueError naming RUN_RETENTION_DAYS); blank or unset
    means DEFAULT_RETENTION_DAYS."""
    return RETENTION_DAYS.get()


class RunRetentionConfig(Config):
    retention_days: int = Field(
        default=retention_days_from_env(),
        description=f"Delete finished runs created more than this many days ago "
        f"(default: {RETENTION_DAYS_ENV}, else {DEFAULT_RETENTION_DAYS}).",
    )
    dry_run: bool = Field(
        default=False, description="Only count and log what would be deleted; delete nothing."
    )
    batch_size: int = Field(
        default=200, description="Run ids fetched and deleted per round trip (bounds memory)."
    )

    @field_validator("retention_days")
    @classmethod
    def _retention_days_positive(cls, value: int) -> int:
        return _positive_days(value, "retention_days")

    @field_validator("batch_size")
    @classmethod
    def _batch_size_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"batch_size must be >= 1, got {value}")
        return value


def _old_finished_runs(cutoff: datetime) -> RunsFilter:
    return RunsFilter(statuses=DELETABLE_STATUSES, created_before=cutoff)


@op(
    description="Delete finished runs (and their event logs) older than the retention period.",
    # Nothing to store: the counts are the output's metadata.
    out=Out(Nothing),
)
def delete_old_runs(context: OpExecutionContext, config: RunRetentionConfig) -> None:
    instance = context.instance
    cutoff = datetime.now(UTC) - timedelta(days=config.retention_days)
    filters = _old_finished_runs(cutoff)
    verb = "would delete" if config.dry_run else "deleting"
    context.log.info(
        f"{verb} runs finished with {[s.value for s in DELETABLE_STATUSES]} and created before "
        f"{cutoff.isoformat()} ({config.retention_days} days), {config.batch_size} per batch"
    )
    matched = deleted = batches = 0
    previous: set[str] = set()  # one batch of ids at most: memory stays bounded by batch_size
    cursor: str | None = None
    while True:
        # Deleting shrinks the result, so a real run always reads the first page again; a dry
        # run deletes nothing and pages on with the cursor instead.
        page = instance.get_run_ids(filters=filters, cursor=cursor, limit=config.batch_size)
        batch = [run_id for run_id in page if run_id != context.run_id]
        if not batch:
            break
        if not config.dry_run and previous.intersection(batch):
            raise Failure(
                f"run(s) {sorted(previous.intersection(batch))[:5]} still listed after "
                f"delete_run; stopping after {deleted} deletion(s) instead of looping"
            )
        batches += 1
        matched += len(batch)
        if config.dry_run:
            cursor = page[-1]
        else:
            for run_id in batch:
                instance.delete_run(run_id)
                deleted += 1
        previous = set(batch)
        context.log.info(f"batch {batches}: {verb} {len(batch)} run(s), {matched} so far")
    remaining = instance.get_runs_count()
    context.log.info(
        f"{'dry run: would delete' if config.dry_run else 'deleted'} {matched} run(s) in "
        f"{batches} batch(es); {remaining} run(s) remain"
    )
    context.add_output_metadata(
        {
            "matched": matched,
            "deleted": deleted,
            "runs_remaining": remaining,
            "dry_run": config.dry_run,
            "retention_days": config.retention_days,
            "cutoff": cutoff.isoformat(),
            "batches": batches,
        }
    )


@job(
    description="Delete finished runs and their event logs older than RUN_RETENTION_DAYS.",
    tags={"flights-platform/kind": "maintenance"},
)
def prune_old_runs():
    delete_old_runs()

"""The window of days a day-partitioned reporting run covers: one partition, or a range when a
backfill packs up to a month into one run. Every query filters `>= start AND < end`."""

import datetime as dt

from dagster import AssetExecutionContext, BackfillPolicy

# A year's backfill runs as ~12 runs of up to a month each instead of 365 single-day runs.
DAILY_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=31)


def partition_days(context: AssetExecutionContext) -> tuple[dt.date, dt.date, list[dt.date]]:
    """[start, end) of the run's partition window as dates, and the days it covers."""
    window = context.partition_time_window
    days = [dt.date.fromisoformat(key) for key in context.partition_keys]
    return window.start.date(), window.end.date(), days

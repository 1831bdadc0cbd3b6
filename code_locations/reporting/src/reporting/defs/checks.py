"""Checks that each summarised day still adds up to the flights it was built from. They run with
their asset (same day partitions) and are not blocking: a mismatch is flagged on the asset in the
UI, while the month and report keep going (they would only repeat the same numbers)."""

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue, asset_check
from psycopg2 import sql

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.daily import daily_delay_summary, weather_delay_link
from reporting.defs.assets.upstream import table_identifier

# Days in the window where the summary's flight / cancellation totals differ from the source.
SUMMARY_MISMATCH_SQL = sql.SQL(
    """
    WITH source AS (
        SELECT {date} AS day, count(*) AS flights, count(*) FILTER (WHERE dep_time IS NULL) AS cancelled
          FROM {flights} WHERE {date} >= %(start)s AND {date} < %(end)s GROUP BY {date}
    ), summary AS (
        SELECT {date} AS day, sum(flights)::bigint AS flights, sum(cancelled)::bigint AS cancelled
          FROM {summary} WHERE {date} >= %(start)s AND {date} < %(end)s GROUP BY {date}
    )
    SELECT day, source.flights, summary.flights, source.cancelled, summary.cancelled
      FROM source FULL JOIN summary USING (day)
     WHERE source.flights IS DISTINCT FROM summary.flights
        OR source.cancelled IS DISTINCT FROM summary.cancelled
     ORDER BY day
    """
)

# (day, origin, factor) whose condition buckets do not add up to the origin's flights that day:
# a duplicated weather observation would count a flight twice, a lost join would drop it.
WEATHER_MISMATCH_SQL = sql.SQL(
    """
    WITH source AS (
        SELECT {date} AS day, origin, count(*) AS flights
          FROM {flights} WHERE {date} >= %(start)s AND {date} < %(end)s GROUP BY {date}, origin
    ), linked AS (
        SELECT {date} AS day, origin, factor, sum(flights)::bigint AS flights
          FROM {link} WHERE {date} >= %(start)s AND {date} < %(end)s
         GROUP BY {date}, origin, factor
    )
    SELECT day, origin, factor, source.flights, linked.flights
      FROM source FULL JOIN linked USING (day, origin)
     WHERE source.flights IS DISTINCT FROM linked.flights
     ORDER BY day, origin, factor
    """
)


def _window(context: AssetCheckExecutionContext) -> dict[str, dt.date]:
    window = context.partition_time_window
    return {"start": window.start.date(), "end": window.end.date()}


def _tables() -> dict:
    return {
        "date": sql.Identifier(FLIGHT_DATE_COLUMN),
        "flights": table_identifier(FLIGHTS),
        "summary": table_identifier(daily_delay_summary.key),
        "link": table_identifier(weather_delay_link.key),
    }


@asset_check(asset=daily_delay_summary, partitions_def=DAYS_OF_2013)
def summary_matches_flights(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Flights and cancellations per day equal the counts in ingestion/flights."""
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(SUMMARY_MISMATCH_SQL.format(**_tables()), _window(context))
        rows = cursor.fetchall()
    mismatches = [
        {"day": str(day), "flights": [src, got], "cancelled": [src_c, got_c]}
        for day, src, got, src_c, got_c in rows
    ]
    return AssetCheckResult(
        passed=not mismatches,
        description="per-day totals match ingestion/flights" if not mismatches else
        f"{len(mismatches)} day(s) differ from ingestion/flights ([source, summary])",
        metadata={"mismatched_days": MetadataValue.json(mismatches[:50])},
    )  # fmt: skip


@asset_check(asset=weather_delay_link, partitions_def=DAYS_OF_2013)
def every_flight_counted_once_per_factor(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    """Each weather factor's buckets add up to the day's flights per origin."""
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(WEATHER_MISMATCH_SQL.format(**_tables()), _window(context))
        rows = cursor.fetchall()
    mismatches = [
        {"day": str(day), "origin": origin, "factor": factor, "flights": [src, got]}
        for day, origin, factor, src, got in rows
    ]
    return AssetCheckResult(
        passed=not mismatches,
        description="every flight is in exactly one bucket per factor" if not mismatches else
        f"{len(mismatches)} (day, origin, factor) bucket sums differ from ingestion/flights "
        "([source, linked]); duplicated weather observations?",
        metadata={"mismatches": MetadataValue.json(mismatches[:50])},
    )  # fmt: skip


REPORTING_CHECKS = [summary_matches_flights, every_flight_counted_once_per_factor]

"""Checks that each day of the weather link still adds up to the flights it was built from. They
run with their asset (same day partitions) and are not blocking: a mismatch is flagged on the
asset in the UI, while the report keeps going.

daily_delay_summary's reconciliation with ingestion/flights is a dbt test of that model
(reporting/dbt/tests/summary_matches_flights.sql, an asset check named summary_matches_flights,
severity warn), next to its other dbt tests."""

import datetime as dt

from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue, asset_check
from psycopg2 import sql

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.daily import weather_delay_link
from reporting.defs.assets.upstream import table_identifier

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
        "link": table_identifier(weather_delay_link.key),
    }


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


REPORTING_CHECKS = [every_flight_counted_once_per_factor]

"""Month-partitioned carrier ranking."""

import datetime as dt

import pandas as pd
import pandera.pandas as pa
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MonthlyPartitionsDefinition,
    asset,
)
from pandera.engines import pandas_engine
from psycopg2 import sql

from flights_shared import table_schemas
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, REPORTING_PREFIX
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.daily import daily_delay_summary
from reporting.defs.assets.upstream import (
    UpstreamNotMaterializedError,
    fetch_frame,
    require_table,
    table_identifier,
)
from reporting.defs.automation import MONTHLY_MONTH_TO_DATE

MONTHS_OF_2013 = MonthlyPartitionsDefinition(start_date="2013-01-01", end_date="2014-01-01")
MONTH_COLUMN = "month_start"

COUNT = pa.Check.ge(0)
MONTHLY_CARRIER_RANKING_SCHEMA = pa.DataFrameSchema(
    {
        MONTH_COLUMN: pa.Column(pandas_engine.Date, description="first day of the month; the partition column"),
        "carrier": pa.Column("string", description="two-letter carrier code (ingestion/airlines)"),
        "days_covered": pa.Column("int64", pa.Check.in_range(1, 31), description="days of the month summarised so far"),
        "flights": pa.Column("int64", COUNT, description="scheduled departures from NYC"),
        "cancelled": pa.Column("int64", COUNT, description="flights that never departed"),
        "arrived": pa.Column("int64", COUNT, description="flights with a known arrival delay"),
        "on_time": pa.Column("int64", COUNT, description="arrivals at most 15 minutes late"),
        "on_time_rate": pa.Column("float64", pa.Check.in_range(0, 1), nullable=True, description="on_time / arrived"),
        "avg_arr_delay_min": pa.Column("float64", nullable=True, description="mean arrival delay, minutes"),
        "rank": pa.Column("int64", pa.Check.ge(1), description="1 = best on-time rate of the month; ties share a rank"),
    },
    name="reporting_monthly_carrier_ranking",
    description="Per month and carrier: flights, on-time rate, mean arrival delay and rank.",
    unique=[MONTH_COLUMN, "carrier"],
    strict=True,
    ordered=True,
)
MONTHLY_CARRIER_RANKING_COLUMNS = table_schemas.column_types(MONTHLY_CARRIER_RANKING_SCHEMA)

# Re-aggregated from the daily counts: the month's on-time rate is sum(on_time) / sum(arrived)
# and its mean delay the arrival-weighted mean of the daily means, i.e. exactly the values a
# query over the month's flights would give. Rank 1 = best on-time rate (ties share a rank).
# days_covered = days of the month summarised so far (the same for every carrier).
MONTHLY_CARRIER_RANKING_SQL = sql.SQL(
    """
    WITH days AS (
        SELECT {date}, date_trunc('month', {date})::date AS {month}
          FROM {summary}
         WHERE {date} >= %(start)s AND {date} < %(end)s
    ), coverage AS (
        SELECT {month}, count(DISTINCT {date}) AS days_covered FROM days GROUP BY {month}
    ), monthly AS (
        SELECT date_trunc('month', {date})::date AS {month},
               carrier,
               sum(flights)::bigint AS flights,
               sum(cancelled)::bigint AS cancelled,
               sum(arrived)::bigint AS arrived,
               sum(on_time)::bigint AS on_time,
               sum(avg_arr_delay_min * arrived) / nullif(sum(arrived), 0) AS avg_arr_delay_min
          FROM {summary}
         WHERE {date} >= %(start)s AND {date} < %(end)s
         GROUP BY 1, carrier
    ), rated AS (
        SELECT m.*, c.days_covered, m.on_time::float8 / nullif(m.arrived, 0) AS on_time_rate
          FROM monthly AS m JOIN coverage AS c USING ({month})
    )
    SELECT {month}, carrier, days_covered, flights, cancelled, arrived, on_time, on_time_rate,
           avg_arr_delay_min,
           rank() OVER (PARTITION BY {month} ORDER BY on_time_rate DESC NULLS LAST) AS rank
      FROM rated
     ORDER BY {month}, rank, carrier
    """
)


@asset(
    key_prefix=[REPORTING_PREFIX],
    group_name="reporting",
    partitions_def=MONTHS_OF_2013,
    deps=[daily_delay_summary],
    metadata={PARTITION_EXPR_METADATA: MONTH_COLUMN, **table_schemas.column_schema_metadata(MONTHLY_CARRIER_RANKING_SCHEMA)},
    dagster_type=table_schemas.dagster_type(MONTHLY_CARRIER_RANKING_SCHEMA),
    kinds={"postgres"},
    automation_condition=MONTHLY_MONTH_TO_DATE,
    backfill_policy=BackfillPolicy.single_run(),
)
def monthly_carrier_ranking(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Per month and carrier: flights, on-time rate, mean arrival delay and rank (1 = best
    on-time rate), month-to-date while a month is still being loaded (see days_covered).

    Built from daily_delay_summary rather than from ingestion/flights: it re-aggregates a few
    hundred summary rows instead of rescanning ~28k flights a month, the lineage shows the month
    as the sum of its days, and a re-summarised day re-ranks its month through automation."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    query = MONTHLY_CARRIER_RANKING_SQL.format(
        date=sql.Identifier(FLIGHT_DATE_COLUMN),
        month=sql.Identifier(MONTH_COLUMN),
        summary=table_identifier(daily_delay_summary.key),
    )
    with warehouse.connection() as conn, conn.cursor() as cursor:
        require_table(cursor, daily_delay_summary.key, f" for the days of {start}..{end}")
        frame = fetch_frame(cursor, query, {"start": start, "end": end}, MONTHLY_CARRIER_RANKING_COLUMNS)
    if frame.empty:
        raise UpstreamNotMaterializedError(
            f"no summarised days between {start} and {end - dt.timedelta(days=1)}: materialize "
            f"{daily_delay_summary.key.to_user_string()} for some of its days first"
        )
    months = sorted(frame[MONTH_COLUMN].unique())
    context.log.info(f"ranked {frame['carrier'].nunique()} carriers for {len(months)} month(s)")
    context.add_output_metadata(
        {
            "months": len(months),
            "days_covered": int(frame.groupby(MONTH_COLUMN)["days_covered"].first().sum()),
            **table_schemas.type_check_metadata(MONTHLY_CARRIER_RANKING_SCHEMA, frame),
        }
    )
    return frame

"""Reporting assets. Upstream ingestion assets are named by key only (the shared contract):
reporting never imports ingestion's code, and the UI draws the edge across locations."""

import pandas as pd
from dagster import AssetExecutionContext, asset
from psycopg2 import sql

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS, REPORTING_PREFIX, table_for
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.warehouse import WarehouseResource

# Arrivals up to 15 minutes late count as on time (the US DOT definition).
ON_TIME_MINUTES = 15

DAILY_CARRIER_DELAYS_SQL = sql.SQL(
    """
    SELECT {date} AS flight_date,
           carrier,
           count(*) AS flights,
           count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
           round(avg(dep_delay)::numeric, 2)::float8 AS avg_dep_delay_min,
           round(avg(arr_delay)::numeric, 2)::float8 AS avg_arr_delay_min,
           round((count(*) FILTER (WHERE arr_delay <= %(on_time)s))::numeric
                 / nullif(count(arr_delay), 0), 4)::float8 AS on_time_rate
      FROM {flights}
     WHERE {date} = %(day)s
     GROUP BY {date}, carrier
     ORDER BY carrier
    """
)


@asset(
    key_prefix=[REPORTING_PREFIX],
    group_name="reporting",
    partitions_def=DAYS_OF_2013,
    deps=[FLIGHTS],
    metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN},
    kinds={"postgres"},
)
def daily_carrier_delays(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Per carrier and day: flights, cancellations, mean delays and on-time rate."""
    schema, table = table_for(FLIGHTS)
    query = DAILY_CARRIER_DELAYS_SQL.format(
        date=sql.Identifier(FLIGHT_DATE_COLUMN),
        flights=sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)),
    )
    day = pd.Timestamp(context.partition_key).date()
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass(format('%%I.%%I', %s, %s))", (schema, table))
        if cursor.fetchone()[0] is None:
            raise ValueError(
                f"warehouse table {schema}.{table} does not exist yet: materialize "
                f"{FLIGHTS.to_user_string()} (partition {context.partition_key}) first"
            )
        cursor.execute(query, {"day": day, "on_time": ON_TIME_MINUTES})
        names = [d.name for d in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=names)
    if frame.empty:
        raise ValueError(
            f"no flights for {day} in {schema}.{table}: materialize "
            f"{FLIGHTS.to_user_string()} for partition {context.partition_key} first"
        )
    print(f"summarised {int(frame['flights'].sum())} flights of {day} for {len(frame)} carriers")
    return frame

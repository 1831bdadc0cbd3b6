"""Route performance over every day loaded so far."""

import pandas as pd
from dagster import AssetExecutionContext, asset
from psycopg2 import sql

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS, REPORTING_PREFIX
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.daily import ON_TIME_MINUTES
from reporting.defs.assets.upstream import (
    UpstreamNotMaterializedError,
    fetch_frame,
    require_table,
    table_identifier,
)
from reporting.defs.automation import hourly_after_upstream_change

ROUTE_PERFORMANCE_COLUMNS = {
    "origin": "string",
    "dest": "string",
    "flights": "int64",
    "cancelled": "int64",
    "arrived": "int64",
    "on_time": "int64",
    "on_time_rate": "float64",
    "avg_arr_delay_min": "float64",
    "distance": "float64",
    "first_date": "date",
    "last_date": "date",
    "days_covered": "int64",
}

ROUTE_PERFORMANCE_SQL = sql.SQL(
    """
    SELECT origin,
           dest,
           count(*) AS flights,
           count(*) FILTER (WHERE dep_time IS NULL) AS cancelled,
           count(arr_delay) AS arrived,
           count(*) FILTER (WHERE arr_delay <= %(on_time)s) AS on_time,
           (count(*) FILTER (WHERE arr_delay <= %(on_time)s))::float8
               / nullif(count(arr_delay), 0) AS on_time_rate,
           avg(arr_delay)::float8 AS avg_arr_delay_min,
           avg(distance)::float8 AS distance,
           min({date}) AS first_date,
           max({date}) AS last_date,
           count(DISTINCT {date}) AS days_covered
      FROM {flights}
     GROUP BY origin, dest
     ORDER BY origin, dest
    """
)


@asset(
    key_prefix=[REPORTING_PREFIX],
    group_name="reporting",
    deps=[FLIGHTS],
    kinds={"postgres"},
    automation_condition=hourly_after_upstream_change(),
)
def route_performance(context: AssetExecutionContext, warehouse: WarehouseResource) -> pd.DataFrame:
    """Per origin -> destination route over all days loaded so far: flights, cancellations,
    on-time rate, mean arrival delay and distance (miles). Unpartitioned because a route's
    standing is a whole-history figure; the table is replaced as a whole on each run."""
    query = ROUTE_PERFORMANCE_SQL.format(
        date=sql.Identifier(FLIGHT_DATE_COLUMN), flights=table_identifier(FLIGHTS)
    )
    with warehouse.connection() as conn, conn.cursor() as cursor:
        require_table(cursor, FLIGHTS)
        frame = fetch_frame(cursor, query, {"on_time": ON_TIME_MINUTES}, ROUTE_PERFORMANCE_COLUMNS)
    if frame.empty:
        raise UpstreamNotMaterializedError(
            f"{FLIGHTS.to_user_string()} has no rows yet: materialize some of its days first"
        )
    context.add_output_metadata(
        {
            "routes": len(frame),
            "flights": int(frame["flights"].sum()),
            "first_date": str(frame["first_date"].min()),
            "last_date": str(frame["last_date"].max()),
        }
    )
    return frame

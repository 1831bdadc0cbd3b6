"""Day-partitioned reporting assets. Each run covers a window of days (one partition, or a range
when a backfill packs up to a month into one run), so every query filters `>= start AND < end`
and the window is replaced exactly (the IO manager for Python assets, delete+insert in dbt).

daily_delay_summary is the dbt model reporting/dbt/models/daily/daily_delay_summary.sql."""

import pandas as pd
import pandera.pandas as pa
from dagster import AssetExecutionContext, asset
from pandera.engines import pandas_engine
from psycopg2 import sql

from flights_shared import table_schemas
from flights_shared.asset_keys import (
    FLIGHT_DATE_COLUMN,
    FLIGHTS,
    REPORTING_PREFIX,
    WEATHER,
    WEATHER_DATE_COLUMN,
)
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.dbt_models import dbt_model
from reporting.defs.assets.partition_window import DAILY_BACKFILL_POLICY, partition_days
from reporting.defs.assets.upstream import fetch_frame, require_days, table_identifier
from reporting.defs.automation import DAILY_AFTER_INGESTION
from reporting.defs.dbt_project import DBT_VARS

# Arrivals up to this many minutes late count as on time (the US DOT definition); defined once,
# in the dbt project's vars, for the models and the Python assets alike.
ON_TIME_MINUTES: int = DBT_VARS["on_time_minutes"]

daily_delay_summary = dbt_model("daily_delay_summary")

# Weather buckets: FAA "marginal VFR" starts below 3 statute miles; wind in mph.
LOW_VISIBILITY_MILES = 3.0
BREEZY_WIND_MPH = 10.0
WINDY_WIND_MPH = 20.0

COUNT = pa.Check.ge(0)
WEATHER_DELAY_LINK_SCHEMA = pa.DataFrameSchema(
    {
        FLIGHT_DATE_COLUMN: pa.Column(pandas_engine.Date, description="local NYC date of departure; the partition column"),
        "origin": pa.Column("string", description="NYC origin airport (FAA code)"),
        "factor": pa.Column("string", pa.Check.isin(["precipitation", "visibility", "wind"]), description="weather factor the flights are bucketed by"),
        "condition": pa.Column(
            "string",
            pa.Check.isin(["wet", "dry", "low", "clear", "calm", "breezy", "windy", "unknown"]),
            description="the factor's bucket at the origin in the scheduled departure hour (unknown: no observation)",
        ),
        "flights": pa.Column("int64", pa.Check.ge(1), description="scheduled departures in the bucket"),
        "cancelled": pa.Column("int64", COUNT, description="flights without a departure time"),
        "arrived": pa.Column("int64", COUNT, description="flights with a known arrival delay"),
        "on_time": pa.Column("int64", COUNT, description="arrivals at most on_time_minutes late"),
        "avg_dep_delay_min": pa.Column("float64", nullable=True, description="mean departure delay, minutes"),
        "avg_arr_delay_min": pa.Column("float64", nullable=True, description="mean arrival delay, minutes"),
        "on_time_rate": pa.Column("float64", pa.Check.in_range(0, 1), nullable=True, description="on_time / arrived"),
    },
    name="reporting_weather_delay_link",
    description="Per day, origin, weather factor and condition: delay statistics of the flights.",
    unique=[FLIGHT_DATE_COLUMN, "origin", "factor", "condition"],
    strict=True,
    ordered=True,
)
WEATHER_DELAY_LINK_COLUMNS = table_schemas.column_types(WEATHER_DELAY_LINK_SCHEMA)

# Each flight is matched to the weather observed at its origin in its scheduled departure hour,
# then counted once per factor (long format: factor + condition), so every factor's buckets add
# up to the day's flights. Flights without an observation land in "unknown", never dropped.
WEATHER_DELAY_LINK_SQL = sql.SQL(
    """
    WITH flight_weather AS (
        SELECT f.{date} AS flight_date,
               f.origin,
               f.dep_time,
               f.dep_delay,
               f.arr_delay,
               CASE WHEN w.precip IS NULL THEN 'unknown'
                    WHEN w.precip > 0 THEN 'wet'
                    ELSE 'dry' END AS precipitation,
               CASE WHEN w.visib IS NULL THEN 'unknown'
                    WHEN w.visib < %(low_visibility)s THEN 'low'
                    ELSE 'clear' END AS visibility,
               CASE WHEN w.wind_speed IS NULL THEN 'unknown'
                    WHEN w.wind_speed < %(breezy)s THEN 'calm'
                    WHEN w.wind_speed < %(windy)s THEN 'breezy'
                    ELSE 'windy' END AS wind
          FROM {flights} AS f
          LEFT JOIN {weather} AS w
            ON w.origin = f.origin AND w.time_hour = f.time_hour
         WHERE f.{date} >= %(start)s AND f.{date} < %(end)s
    )
    SELECT fw.flight_date,
           fw.origin,
           b.factor,
           b.condition,
           count(*) AS flights,
           count(*) FILTER (WHERE fw.dep_time IS NULL) AS cancelled,
           count(fw.arr_delay) AS arrived,
           count(*) FILTER (WHERE fw.arr_delay <= %(on_time)s) AS on_time,
           avg(fw.dep_delay)::float8 AS avg_dep_delay_min,
           avg(fw.arr_delay)::float8 AS avg_arr_delay_min,
           (count(*) FILTER (WHERE fw.arr_delay <= %(on_time)s))::float8
               / nullif(count(fw.arr_delay), 0) AS on_time_rate
      FROM flight_weather AS fw
     CROSS JOIN LATERAL (VALUES ('precipitation', fw.precipitation),
                                ('visibility', fw.visibility),
                                ('wind', fw.wind)) AS b(factor, condition)
     GROUP BY fw.flight_date, fw.origin, b.factor, b.condition
     ORDER BY fw.flight_date, fw.origin, b.factor, b.condition
    """
)



@asset(
    key_prefix=[REPORTING_PREFIX],
    group_name="reporting",
    partitions_def=DAYS_OF_2013,
    deps=[FLIGHTS, WEATHER],
    metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN, **table_schemas.column_schema_metadata(WEATHER_DELAY_LINK_SCHEMA)},
    dagster_type=table_schemas.dagster_type(WEATHER_DELAY_LINK_SCHEMA),
    kinds={"postgres"},
    automation_condition=DAILY_AFTER_INGESTION,
    backfill_policy=DAILY_BACKFILL_POLICY,
)
def weather_delay_link(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> pd.DataFrame:
    """How weather at departure relates to delays: per day and origin, delay stats of the
    flights bucketed by precipitation (wet/dry), visibility (low < 3 mi / clear) and wind
    (calm < 10 / breezy < 20 / windy mph), each matched on origin + scheduled hour."""
    start, end, days = partition_days(context)
    query = WEATHER_DELAY_LINK_SQL.format(
        date=sql.Identifier(FLIGHT_DATE_COLUMN),
        flights=table_identifier(FLIGHTS),
        weather=table_identifier(WEATHER),
    )
    with warehouse.connection() as conn, conn.cursor() as cursor:
        require_days(cursor, FLIGHTS, FLIGHT_DATE_COLUMN, days)
        require_days(cursor, WEATHER, WEATHER_DATE_COLUMN, days)
        frame = fetch_frame(
            cursor,
            query,
            {
                "start": start,
                "end": end,
                "on_time": ON_TIME_MINUTES,
                "low_visibility": LOW_VISIBILITY_MILES,
                "breezy": BREEZY_WIND_MPH,
                "windy": WINDY_WIND_MPH,
            },
            WEATHER_DELAY_LINK_COLUMNS,
        )
    precipitation = frame[frame["factor"] == "precipitation"]
    flights = int(precipitation["flights"].sum())
    unknown = int(precipitation.loc[precipitation["condition"] == "unknown", "flights"].sum())
    context.log.info(f"linked weather to {flights} flights of {len(days)} day(s) {start}..{days[-1]}")
    context.add_output_metadata(
        {
            "days": len(days),
            "flights": flights,
            "flights_without_precipitation_data": unknown,
            **table_schemas.type_check_metadata(WEATHER_DELAY_LINK_SCHEMA, frame),
        }
    )
    return frame

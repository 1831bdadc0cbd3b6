"""route_performance (a dbt model) over all loaded days, against pandas."""

import numpy as np
import pandas as pd
import pytest
from psycopg2 import sql

from reporting.defs.assets.daily import ON_TIME_MINUTES
from reporting.defs.assets.routes import route_performance
from reporting.defs.assets.upstream import UpstreamNotMaterializedError

pytestmark = pytest.mark.postgres

# The dbt model's columns (reporting/dbt/models/whole_history/route_performance.sql).
ROUTE_PERFORMANCE_COLUMNS = [
    "origin", "dest", "flights", "cancelled", "arrived", "on_time", "on_time_rate",
    "avg_arr_delay_min", "distance", "first_date", "last_date", "days_covered",
]  # fmt: skip


def test_routes_over_all_loaded_days_match_source(
    loaded_warehouse, run_reporting, sql_rows, expected_flights
):
    assert route_performance.partitions_def is None
    assert run_reporting([route_performance]).success
    assert run_reporting([route_performance]).success  # whole table replaced, not appended

    grouped = expected_flights.groupby(["origin", "dest"])
    expected = pd.DataFrame(
        {
            "flights": grouped.size(),
            "arrived": grouped["arr_delay"].count(),
            "on_time": grouped["arr_delay"].apply(lambda s: int((s <= ON_TIME_MINUTES).sum())),
            "avg_arr_delay_min": grouped["arr_delay"].apply(lambda s: s.astype("float64").mean()),
            "distance": grouped["distance"].apply(lambda s: s.astype("float64").mean()),
            "days_covered": grouped["flight_date"].nunique(),
        }
    )
    expected["on_time_rate"] = expected["on_time"] / expected["arrived"].replace(0, np.nan)

    query = sql.SQL("SELECT {} FROM reporting.route_performance ORDER BY origin, dest").format(
        sql.SQL(", ").join(map(sql.Identifier, ROUTE_PERFORMANCE_COLUMNS))
    )
    rows = sql_rows(loaded_warehouse, query)
    actual = pd.DataFrame(rows, columns=ROUTE_PERFORMANCE_COLUMNS).set_index(["origin", "dest"])
    assert list(actual.index) == list(expected.index)
    for column in ["flights", "arrived", "on_time", "days_covered"]:
        assert actual[column].tolist() == expected[column].tolist(), column
    for column in ["on_time_rate", "avg_arr_delay_min", "distance"]:
        np.testing.assert_allclose(
            actual[column].astype(float), expected[column], atol=1e-6, err_msg=column
        )
    assert int(actual["flights"].sum()) == len(expected_flights)
    assert str(actual["first_date"].min()) == "2013-01-11"
    assert str(actual["last_date"].max()) == "2013-01-13"


def test_routes_before_ingestion_name_the_upstream(warehouse_env, run_reporting):
    with pytest.raises(UpstreamNotMaterializedError, match=r"ingestion\.flights does not exist yet"):
        run_reporting([route_performance])

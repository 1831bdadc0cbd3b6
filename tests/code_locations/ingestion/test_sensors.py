"""landing_zone_sensor: one run per newly landed day, each dataset/day requested exactly once across
ticks and restarts (the cursor), bounded per tick; and the reference-table automation."""

import json
from datetime import date, timedelta
from pathlib import Path

import dagster
import pytest
from dagster import DagsterInstance, DefaultSensorStatus, build_sensor_context, materialize

from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from ingestion.definitions import defs
from ingestion.defs.assets import REFERENCE_ASSETS
from ingestion.defs.landing_zone import LandingZone
from ingestion.defs.sensors import MAX_RUNS_PER_TICK, landing_zone_sensor, reference_automation

BOTH = {FLIGHTS, WEATHER}


def tick(root: Path, cursor: str | None = None):
    """One evaluation as the daemon does it: run requests validated against the location's job."""
    context = build_sensor_context(
        resources={"landing_zone": LandingZone(root=str(root))}, cursor=cursor, definitions=defs
    )
    return landing_zone_sensor.evaluate_tick(context)


def requested(result) -> dict[str, set]:
    """{partition_key: asset keys} of a tick's run requests (each partition at most once)."""
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == len(set(keys)), keys
    return {r.partition_key: set(r.asset_selection) for r in result.run_requests}


def test_first_tick_requests_one_run_per_landed_day(landing):
    """Each landed day becomes a run of ingest_landed_day for that partition, both datasets
    together, with a run key that makes a repeated request a no-op."""
    landing.add("2013-01-02", "2013-01-01")
    result = tick(landing.root)

    assert [r.partition_key for r in result.run_requests] == ["2013-01-01", "2013-01-02"]
    for request in result.run_requests:
        assert request.run_key == f"flights+weather-{request.partition_key}"
        assert set(request.asset_selection) == BOTH
        assert request.tags["dagster/partition"] == request.partition_key
    assert json.loads(result.cursor) == [
        "flights/2013-01-01",
        "flights/2013-01-02",
        "weather/2013-01-01",
        "weather/2013-01-02",
    ]


def test_returned_cursor_makes_the_next_tick_skip(landing):
    """Without new files a tick must request nothing (it runs every few seconds)."""
    landing.add("2013-01-01")
    first = tick(landing.root)
    second = tick(landing.root, first.cursor)

    assert second.run_requests == []
    assert "no new landed file" in second.skip_message
    assert second.cursor == first.cursor


def test_restart_with_the_saved_cursor_requests_only_the_new_day(landing):
    """After a daemon restart (cursor read back from storage) nothing is requested twice and the
    day that landed meanwhile is picked up."""
    landing.add("2013-01-01", "2013-01-02")
    saved = json.loads(json.dumps(tick(landing.root).cursor))  # as stored by the daemon

    landing.add("2013-01-03")
    after_restart = tick(landing.root, saved)

    assert requested(after_restart) == {"2013-01-03": BOTH}
    assert tick(landing.root, after_restart.cursor).run_requests == []


def test_weather_landing_before_flights_gives_two_runs_each_with_its_dataset(landing):
    """The replay lands weather first: a tick in between must load only weather, and the later
    flights file only flights (not weather again)."""
    landing.add("2013-01-01", datasets=("weather",))
    weather_tick = tick(landing.root)
    assert requested(weather_tick) == {"2013-01-01": {WEATHER}}
    assert weather_tick.run_requests[0].run_key == "weather-2013-01-01"

    landing.add("2013-01-01", datasets=("flights",))
    flights_tick = tick(landing.root, weather_tick.cursor)
    assert requested(flights_tick) == {"2013-01-01": {FLIGHTS}}
    assert flights_tick.run_requests[0].run_key == "flights-2013-01-01"


def test_last_day_requests_flights_only(landing):
    """2013-12-31 has no weather file; a weather run for it could only fail."""
    landing.add("2013-12-31")
    assert requested(tick(landing.root)) == {"2013-12-31": {FLIGHTS}}


def test_files_outside_2013_and_temp_files_are_ignored(landing):
    """A file dated outside the partitions cannot become a run (the run request would be invalid
    and fail the whole tick); a file still being written must wait until it is in place."""
    landing.add("2013-12-31")
    real = landing.path("flights", "2013-12-31").read_bytes()
    landing.write_bytes("flights", "2014-01-01", real)
    landing.write_bytes("weather", "2012-12-31", real)
    (landing.root / "flights" / ".2013-12-30.csv.77.tmp").write_bytes(real)

    result = tick(landing.root)
    assert requested(result) == {"2013-12-31": {FLIGHTS}}
    assert json.loads(result.cursor) == ["flights/2013-12-31"]

    landing.path("flights", "2013-12-31").unlink()
    only_outside = tick(landing.root)
    assert only_outside.run_requests == []
    assert only_outside.skip_message


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("flights/2013-01-01", "cursor is not JSON: 'flights/2013-01-01'"),
        ('{"flights": ["2013-01-01"]}', "cursor must be a JSON list"),
        ('[{"day": "2013-01-01"}]', "cursor must be a JSON list"),
    ],
)
def test_corrupt_cursor_raises_a_clear_error(landing, cursor, message):
    """A corrupt cursor must stop the sensor with a message, not silently re-request the year."""
    landing.add("2013-01-01")
    with pytest.raises(ValueError, match="landing sensor " + message.replace("[", r"\[")):
        tick(landing.root, cursor)


def test_a_tick_is_bounded_and_the_rest_follows_without_gaps(replayed_year):
    """The whole year landed at once (a restored volume) must not become one giant tick; the next
    ticks take the rest, in order, until every day is requested exactly once."""
    cursor, ticks, seen = None, [], {}
    while True:
        result = tick(replayed_year, cursor)
        if not result.run_requests:
            break
        ticks.append(len(result.run_requests))
        for partition, keys in requested(result).items():
            assert partition not in seen, partition
            seen[partition] = keys
        cursor = result.cursor
        assert len(ticks) <= 10

    days = [(date(2013, 1, 1) + timedelta(days=n)).isoformat() for n in range(365)]
    assert ticks == [MAX_RUNS_PER_TICK] * 7 + [365 - 7 * MAX_RUNS_PER_TICK]
    assert list(seen) == days
    assert seen["2013-12-31"] == {FLIGHTS}
    assert all(keys == BOTH for day, keys in seen.items() if day != "2013-12-31")


def test_landing_sensor_targets_the_daily_job_and_runs_by_default():
    """Off by default would mean a fresh stack never ingests anything."""
    assert landing_zone_sensor.job_name == "ingest_landed_day"
    assert landing_zone_sensor.default_status == DefaultSensorStatus.RUNNING


def test_reference_tables_are_requested_on_a_fresh_stack_once():
    """Reporting joins airlines: on a fresh stack the reference tables must be requested on the
    first evaluation (not wait for the nightly schedule), and not again while they are pending."""
    assert reference_automation.default_status == DefaultSensorStatus.RUNNING
    selection = reference_automation.asset_selection.resolve(defs.resolve_asset_graph())
    assert selection == {AIRLINES, AIRPORTS, PLANES}

    instance = DagsterInstance.ephemeral()
    first = dagster.evaluate_automation_conditions(defs=REFERENCE_ASSETS, instance=instance)
    assert {key: first.get_num_requested(key) for key in selection} == dict.fromkeys(selection, 1)
    second = dagster.evaluate_automation_conditions(
        defs=REFERENCE_ASSETS, instance=instance, cursor=first.cursor
    )
    assert second.total_requested == 0


def test_only_missing_reference_tables_are_requested(tmp_path):
    """A table that is already loaded is left to the nightly schedule."""
    instance = DagsterInstance.ephemeral()
    airlines = next(a for a in REFERENCE_ASSETS if a.key == AIRLINES)
    materialize(
        [airlines],
        instance=instance,
        resources={"io_manager": dagster.FilesystemIOManager(base_dir=str(tmp_path))},
    )

    result = dagster.evaluate_automation_conditions(defs=REFERENCE_ASSETS, instance=instance)
    assert {key for key in (AIRLINES, AIRPORTS, PLANES) if result.get_num_requested(key)} == {
        AIRPORTS,
        PLANES,
    }

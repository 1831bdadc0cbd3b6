"""The table schemas' rules on real landed days: real days pass all of them, and each rule fails
on exactly the kind of corruption it exists for, naming the column, the rule and the values."""

from datetime import date

import pytest

from flights_shared import table_schemas as ts
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS, WEATHER, WEATHER_DATE_COLUMN
from ingestion.defs.assets import FLIGHT_DTYPES, WEATHER_DTYPES, load_days, reference_table
from ingestion.defs.table_schemas import (
    AIRLINES_SCHEMA,
    AIRPORTS_SCHEMA,
    FLIGHTS_SCHEMA,
    PLANES_SCHEMA,
    WEATHER_SCHEMA,
)

SETUP = {
    "flights": (FLIGHTS, FLIGHT_DTYPES, FLIGHT_DATE_COLUMN, FLIGHTS_SCHEMA),
    "weather": (WEATHER, WEATHER_DTYPES, WEATHER_DATE_COLUMN, WEATHER_SCHEMA),
}
DAY = "2013-01-01"


def evaluate(landing, dataset: str, *days: str) -> dict:
    """Results by check name for these landed days, read the way the asset reads them."""
    key, dtypes, date_column, schema = SETUP[dataset]
    frame = load_days(
        landing.zone, dataset, dtypes, date_column, [date.fromisoformat(d) for d in days]
    )
    results = ts.check_results(key, schema, frame)
    assert [r.check_name for r in results] == list(ts.CHECK_NAMES)
    assert {r.asset_key for r in results} == {key}
    return {r.check_name: r for r in results}


def failed(results: dict) -> set[str]:
    return {name for name, r in results.items() if not r.passed}


def edit(landing, dataset: str, day: str, change) -> None:
    lines = landing.lines(dataset, day)
    landing.write_lines(dataset, day, change(lines))


def set_field(lines: list[str], data_row: int, column: str, value: str) -> list[str]:
    header = lines[0].rstrip("\n").split(",")
    fields = lines[data_row].rstrip("\n").split(",")
    fields[header.index(column)] = value
    return [*lines[:data_row], ",".join(fields) + "\n", *lines[data_row + 1 :]]


def drop_column(lines: list[str], column: str) -> list[str]:
    index = lines[0].rstrip("\n").split(",").index(column)
    return [
        ",".join(f for i, f in enumerate(line.rstrip("\n").split(",")) if i != index) + "\n"
        for line in lines
    ]


# --- real data --------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["flights", "weather"])
@pytest.mark.parametrize(
    "days",
    [("2013-01-01",), ("2013-03-10",), ("2013-11-03",), ("2013-01-01", "2013-01-02", "2013-01-03")],
    ids=["new-year", "dst-starts", "dst-ends", "three-day-range"],
)
def test_real_days_pass_every_check(landing, dataset, days):
    """A rule that blocks clean real data would stall ingestion; DST days have 23/25 hours and a
    backfill range loads several days in one frame."""
    landing.add(*days)
    results = evaluate(landing, dataset, *days)
    assert failed(results) == set()
    assert all(r.description is None for r in results.values())


def test_real_2013_02_12_weather_is_held_back_for_its_impossible_wind_speed(landing):
    """The source reports 1048 mph at EWR on 2013-02-12 03:00; that day must not be loaded."""
    landing.add("2013-02-12")
    [reading] = [line for line in landing.lines("weather", "2013-02-12") if ",1048." in line]
    assert reading.startswith("EWR,")
    results = evaluate(landing, "weather", "2013-02-12")
    assert failed(results) == {ts.VALUES_IN_RANGE}
    result = results[ts.VALUES_IN_RANGE]
    speed = reading.split(",")[9]  # origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed
    assert result.description == f"column 'wind_speed' breaks in_range(0, 300) in 1 row(s), e.g. {speed}"
    assert result.metadata["failing_rows"].value == 1
    # Its flights are fine.
    assert failed(evaluate(landing, "flights", "2013-02-12")) == set()


# --- each rule on its corruption --------------------------------------------------------------


def test_no_null_keys_names_the_empty_key_column_and_count(landing):
    """A row without carrier or origin cannot be attributed; report how many and where."""
    landing.add(DAY)
    edit(
        landing,
        "flights",
        DAY,
        lambda ls: set_field(set_field(ls, 3, "carrier", ""), 9, "carrier", "NA"),
    )
    edit(landing, "weather", DAY, lambda ls: set_field(ls, 2, "origin", ""))

    flights = evaluate(landing, "flights", DAY)
    assert failed(flights) == {ts.NO_NULL_KEYS}
    assert flights[ts.NO_NULL_KEYS].description == "column 'carrier' breaks not_nullable in 2 row(s), e.g. <null>"
    assert flights[ts.NO_NULL_KEYS].metadata["failing_rows"].value == 2

    weather = evaluate(landing, "weather", DAY)
    assert failed(weather) == {ts.NO_NULL_KEYS}
    assert weather[ts.NO_NULL_KEYS].description == "column 'origin' breaks not_nullable in 1 row(s), e.g. <null>"


def test_no_duplicate_rows_counts_rows_delivered_twice(landing):
    """A row delivered twice would double-count flights in every report."""
    landing.add(DAY)
    edit(landing, "flights", DAY, lambda ls: [*ls, ls[5]])
    edit(landing, "weather", DAY, lambda ls: [*ls[:10], ls[9], *ls[10:]])
    flight = landing.lines("flights", DAY)[5].split(",")  # year,month,day,dep_time,sched_dep_time,..

    flights = evaluate(landing, "flights", DAY)
    assert failed(flights) == {ts.NO_DUPLICATES}
    assert flights[ts.NO_DUPLICATES].description == (
        "columns ['flight_date', 'carrier', 'flight', 'origin', 'sched_dep_time'] break "
        f"multiple_fields_uniqueness in 2 row(s), e.g. ({DAY}, '{flight[9]}', {flight[10]}, "
        f"'{flight[12]}', {flight[4]})"
    )
    assert flights[ts.NO_DUPLICATES].metadata["failing_rows"].value == 2

    weather = evaluate(landing, "weather", DAY)
    assert failed(weather) == {ts.NO_DUPLICATES}
    assert weather[ts.NO_DUPLICATES].description.startswith(
        "columns ['origin', 'time_hour'] break multiple_fields_uniqueness in 2 row(s), e.g. ('EWR', 2013-01-01 "
    )


@pytest.mark.parametrize(
    ("dataset", "column", "value", "rule"),
    [
        ("flights", "dep_delay", "5000", "in_range(-240, 2880)"),
        ("flights", "distance", "0", "in_range(1, 10000)"),
        ("flights", "origin", "BOS", "isin(['EWR', 'JFK', 'LGA'])"),
        ("weather", "humid", "150.5", "in_range(0, 100)"),
        ("weather", "pressure", "-3.5", "in_range(900, 1100)"),
        ("weather", "origin", "ZZZ", "isin(['EWR', 'JFK', 'LGA'])"),
    ],
)
def test_values_in_physical_range_names_the_column_rule_and_value(landing, dataset, column, value, rule):
    """Impossible values (or a non-NYC origin) must stop the day, naming what to look at."""
    landing.add(DAY)
    edit(landing, dataset, DAY, lambda ls: set_field(ls, 4, column, value))

    results = evaluate(landing, dataset, DAY)
    assert failed(results) == {ts.VALUES_IN_RANGE}
    shown = repr(value) if column == "origin" else value
    assert results[ts.VALUES_IN_RANGE].description == f"column {column!r} breaks {rule} in 1 row(s), e.g. {shown}"


@pytest.mark.parametrize("key", [FLIGHTS, WEATHER])
def test_every_check_is_declared_blocking_and_partitioned_by_day(key):
    """Blocking is what keeps a failed day out of the warehouse and its downstream from running."""
    from ingestion.defs.assets import flights, weather

    specs = {flights.key: flights, weather.key: weather}[key].check_specs
    specs = sorted(specs, key=lambda s: ts.CHECK_NAMES.index(s.name))
    assert [s.name for s in specs] == list(ts.CHECK_NAMES)
    assert all(s.blocking and s.asset_key == key and s.description and s.partitions_def for s in specs)


@pytest.mark.parametrize(
    ("name", "schema", "rows"),
    [("airlines", AIRLINES_SCHEMA, 16), ("airports", AIRPORTS_SCHEMA, 1458), ("planes", PLANES_SCHEMA, 3322)],
)
def test_the_shipped_reference_tables_fit_their_schemas(name, schema, rows):
    """Their rules must not refuse the real tables (the nightly refresh would stop)."""
    frame = reference_table(name)
    assert len(frame) == rows
    assert ts.violations(schema, frame) == []

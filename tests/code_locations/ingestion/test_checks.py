"""The blocking quality rules: real days pass all of them, and each rule fails on exactly the kind
of corruption it exists for, saying which column and how many rows."""

from datetime import date

import pytest
from dagster import AssetCheckSeverity

from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS, WEATHER, WEATHER_DATE_COLUMN
from ingestion.defs import checks
from ingestion.defs.assets import FLIGHT_DTYPES, WEATHER_DTYPES, load_days
from ingestion.defs.landing_files import LandingFileError

SETUP = {
    "flights": (FLIGHTS, FLIGHT_DTYPES, FLIGHT_DATE_COLUMN, checks.FLIGHT_RULES),
    "weather": (WEATHER, WEATHER_DTYPES, WEATHER_DATE_COLUMN, checks.WEATHER_RULES),
}
DAY = "2013-01-01"


def evaluate(landing, dataset: str, *days: str) -> dict:
    """Results by check name for these landed days, read the way the asset reads them."""
    key, dtypes, date_column, rules = SETUP[dataset]
    frame = load_days(
        landing.zone, dataset, dtypes, date_column, [date.fromisoformat(d) for d in days]
    )
    results = checks.evaluate(key, frame, rules)
    assert [r.check_name for r in results] == list(checks.CHECK_NAMES)
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
    assert any(
        ",1048." in line and line.startswith("EWR,")
        for line in landing.lines("weather", "2013-02-12")
    )
    results = evaluate(landing, "weather", "2013-02-12")
    assert failed(results) == {checks.VALUES_IN_RANGE}
    result = results[checks.VALUES_IN_RANGE]
    assert result.description == "rows outside physical ranges: {'wind_speed': 1}"
    assert result.metadata["rows_out_of_range"].value == 1
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
    assert failed(flights) == {checks.NO_NULL_KEYS}
    assert flights[checks.NO_NULL_KEYS].description == "empty key values: {'carrier': 2}"
    assert flights[checks.NO_NULL_KEYS].metadata["null_keys"].value == 2

    weather = evaluate(landing, "weather", DAY)
    assert failed(weather) == {checks.NO_NULL_KEYS}
    assert weather[checks.NO_NULL_KEYS].description == "empty key values: {'origin': 1}"


def test_no_duplicate_rows_counts_rows_delivered_twice(landing):
    """A row delivered twice would double-count flights in every report."""
    landing.add(DAY)
    edit(landing, "flights", DAY, lambda ls: [*ls, ls[5]])
    edit(landing, "weather", DAY, lambda ls: [*ls[:10], ls[9], *ls[10:]])

    flights = evaluate(landing, "flights", DAY)
    assert failed(flights) == {checks.NO_DUPLICATES}
    assert flights[checks.NO_DUPLICATES].description == (
        "2 rows share ['flight_date', 'carrier', 'flight', 'origin', 'sched_dep_time'] "
        "with another row"
    )
    assert flights[checks.NO_DUPLICATES].metadata["duplicate_rows"].value == 2

    weather = evaluate(landing, "weather", DAY)
    assert failed(weather) == {checks.NO_DUPLICATES}
    assert (
        weather[checks.NO_DUPLICATES].description
        == "2 rows share ['origin', 'time_hour'] with another row"
    )


@pytest.mark.parametrize(
    ("dataset", "column", "value", "named"),
    [
        ("flights", "dep_delay", "5000", "{'dep_delay': 1}"),
        ("flights", "distance", "0", "{'distance': 1}"),
        ("flights", "origin", "BOS", "{'origin': 1}"),
        ("weather", "humid", "150.5", "{'humid': 1}"),
        ("weather", "pressure", "-3", "{'pressure': 1}"),
        ("weather", "origin", "ZZZ", "{'origin': 1}"),
    ],
)
def test_values_in_physical_range_names_the_column(landing, dataset, column, value, named):
    """Impossible values (or a non-NYC origin) must stop the day, naming the column to look at."""
    landing.add(DAY)
    edit(landing, dataset, DAY, lambda ls: set_field(ls, 4, column, value))

    results = evaluate(landing, dataset, DAY)
    assert failed(results) == {checks.VALUES_IN_RANGE}
    assert results[checks.VALUES_IN_RANGE].description == f"rows outside physical ranges: {named}"


def test_required_columns_result_names_the_missing_columns(landing, label):
    """A dropped column is found while reading; its failed check must still name the column."""
    landing.add(DAY)
    edit(landing, "flights", DAY, lambda ls: drop_column(ls, "dep_delay"))
    key, dtypes, date_column, _ = SETUP["flights"]
    with pytest.raises(LandingFileError) as raised:
        load_days(landing.zone, "flights", dtypes, date_column, [date(2013, 1, 1)])

    result = checks.missing_columns_result(FLIGHTS, raised.value.missing_columns, str(raised.value))
    assert (result.check_name, result.passed, result.severity) == (
        checks.REQUIRED_COLUMNS,
        False,
        AssetCheckSeverity.ERROR,
    )
    assert result.metadata["missing_columns"].value == "dep_delay"
    assert "['dep_delay']" in result.description and label("flights", DAY) in result.description
    assert result.description.count("dep_delay") == 1, result.description


@pytest.mark.parametrize("key", [FLIGHTS, WEATHER])
def test_every_check_is_declared_blocking(key):
    """Blocking is what keeps a failed day out of the warehouse and its downstream from running."""
    specs = checks.check_specs(key)
    assert [s.name for s in specs] == list(checks.CHECK_NAMES)
    assert all(s.blocking and s.asset_key == key and s.description for s in specs)

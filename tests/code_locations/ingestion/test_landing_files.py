"""read_landing_csv: a real landed file becomes typed rows; every way a file can be bad ends in a
LandingFileError that names the file and what is wrong with it (column, value, row)."""

from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from ingestion.defs.assets import FLIGHT_DTYPES, WEATHER_DTYPES
from ingestion.defs.landing_files import LandingFileError, read_landing_csv

DTYPES = {"flights": FLIGHT_DTYPES, "weather": WEATHER_DTYPES}
DAY = "2013-01-01"


def read(landing, label, dataset: str, day: str = DAY) -> pd.DataFrame:
    return read_landing_csv(
        landing.path(dataset, day), label(dataset, day), DTYPES[dataset], date.fromisoformat(day)
    )


def set_field(lines: list[str], data_row: int, column: str, value: str) -> list[str]:
    """Copy of `lines` with one field replaced (data row 1 is the line after the header)."""
    header = lines[0].rstrip("\n").split(",")
    fields = lines[data_row].rstrip("\n").split(",")
    fields[header.index(column)] = value
    return [*lines[:data_row], ",".join(fields) + "\n", *lines[data_row + 1 :]]


def drop_columns(lines: list[str], *columns: str) -> list[str]:
    header = lines[0].rstrip("\n").split(",")
    keep = [i for i, name in enumerate(header) if name not in columns]
    return [",".join(line.rstrip("\n").split(",")[i] for i in keep) + "\n" for line in lines]


# --- real files -------------------------------------------------------------------------------


def test_real_flights_file_is_typed_and_complete(landing, label, source_rows):
    """Types are what the warehouse columns are made from (bigint, text, timestamptz); every source
    row of the day arrives, NA as NULL."""
    landing.add(DAY)
    frame = read(landing, label, "flights")

    assert list(frame.columns) == list(FLIGHT_DTYPES)
    expected_types = {
        c: ("string" if k == "string" else "Int64")
        for c, k in FLIGHT_DTYPES.items()
        if k != "datetime"
    }
    assert {c: str(frame[c].dtype) for c in expected_types} == expected_types
    assert isinstance(frame["time_hour"].dtype, pd.DatetimeTZDtype)
    assert str(frame["time_hour"].dt.tz) == "UTC"

    source = source_rows("flights", DAY)
    assert len(frame) == len(source) == 842
    first = frame.iloc[0]
    assert tuple(first[["dep_time", "dep_delay", "carrier", "flight", "tailnum"]]) == (
        517, 2, "UA", 1545, "N14228"
    )  # fmt: skip
    assert first["time_hour"] == pd.Timestamp("2013-01-01T10:00:00Z")
    header = list(landing.lines("flights", DAY)[0].rstrip("\n").split(","))
    na_dep_time = sum(row[header.index("dep_time")] == "NA" for row in source)
    assert na_dep_time > 0 and int(frame["dep_time"].isna().sum()) == na_dep_time


def test_real_weather_file_is_typed_and_complete(landing, label, source_rows):
    """Weather measurements are decimals (Float64), the hour is an absolute UTC instant."""
    landing.add(DAY)
    frame = read(landing, label, "weather")

    assert list(frame.columns) == list(WEATHER_DTYPES)
    assert str(frame["origin"].dtype) == "string"
    measures = [c for c, k in WEATHER_DTYPES.items() if k == "Float64"]
    assert {str(frame[c].dtype) for c in measures} == {"Float64"}
    assert (
        isinstance(frame["time_hour"].dtype, pd.DatetimeTZDtype)
        and str(frame["time_hour"].dt.tz) == "UTC"
    )

    assert len(frame) == len(source_rows("weather", DAY))
    first = frame.iloc[0]
    assert (first["origin"], first["temp"], first["time_hour"]) == (
        "EWR",
        39.02,
        pd.Timestamp("2013-01-01T06:00Z"),
    )
    assert first["wind_gust"] is pd.NA
    assert set(frame["origin"]) == {"EWR", "JFK", "LGA"}


def test_duplicate_rows_and_blank_keys_parse_for_the_checks_to_judge(landing, label):
    """Reading is about shape and types; duplicates and empty keys must reach the checks, which
    report them as failed checks in the UI (not as a parse error)."""
    landing.add(DAY)
    lines = landing.lines("flights", DAY)
    lines = set_field([*lines, lines[5]], 7, "carrier", "")
    landing.write_lines("flights", DAY, lines)

    frame = read(landing, label, "flights")
    assert len(frame) == 843
    assert frame["carrier"].isna().sum() == 1 and frame.iloc[6]["carrier"] is pd.NA


# --- bad files --------------------------------------------------------------------------------


def truncate_last_row(lines: list[str]) -> bytes:
    text = "".join(lines)
    last = lines[-1]
    return text[: len(text) - len(last) // 2].encode()


def latin1_in_row(lines: list[str], data_row: int) -> bytes:
    head = "".join(lines[:data_row]).encode()
    return (
        head
        + lines[data_row].replace(",", ",Montr\xe9al ", 1).encode("latin-1")
        + "".join(lines[data_row + 1 :]).encode()
    )


BAD_FILES: dict[str, tuple[str, Callable[[list[str]], list[str] | bytes], list[str]]] = {
    "non-numeric-integer": (
        "flights",
        lambda lines: set_field(lines, 10, "dep_delay", "late"),
        ["'dep_delay'", "not a Int64", "'late'", "data row 10"],
    ),
    "fraction-in-integer-column-after-a-null": (
        # arr_delay is NA in earlier rows: the message must still point at the fraction's row.
        "flights",
        lambda lines: set_field(lines, 800, "arr_delay", "12.5"),
        ["'arr_delay'", "whole numbers", "'12.5'", "data row 800"],
    ),
    "not-a-timestamp": (
        "flights",
        lambda lines: set_field(lines, 5, "time_hour", "2013-01-01 25:00"),
        ["'time_hour'", "not a datetime", "'2013-01-01 25:00'", "data row 5"],
    ),
    "non-numeric-measure": (
        "weather",
        lambda lines: set_field(lines, 3, "temp", "warm"),
        ["'temp'", "not a Float64", "'warm'", "data row 3"],
    ),
    "latin-1-bytes": (
        "flights",
        lambda lines: latin1_in_row(lines, 20),
        ["not UTF-8", "(line 21)"],
    ),
    "truncated-mid-row": (
        "flights",
        truncate_last_row,
        ["truncated", "data row 842", "of 19 fields"],
    ),
    "truncated-mid-row-weather": ("weather", truncate_last_row, ["truncated", "of 15 fields"]),
    "row-with-an-extra-field": (
        "flights",
        lambda lines: [*lines[:7], lines[7].rstrip("\n") + ",extra\n", *lines[8:]],
        ["not valid CSV", "Expected 19 fields in line 8, saw 20"],
    ),
    "row-of-another-day": (
        "flights",
        lambda lines: set_field(lines, 100, "day", "2"),
        ["1 row(s) of another day", "2013-1-2"],
    ),
    "row-without-a-day": (
        "weather",
        lambda lines: set_field(lines, 4, "day", ""),
        ["1 row(s) of another day"],
    ),
    "empty-file": ("weather", lambda lines: b"", ["is empty"]),
    "header-only": ("flights", lambda lines: lines[:1], ["has a header but no rows"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_naming_file_and_problem(landing, label, case):
    """An operator reading the failed run must see which file and what in it to fix."""
    dataset, corrupt, fragments = BAD_FILES[case]
    landing.add(DAY)
    bad = corrupt(landing.lines(dataset, DAY))
    if isinstance(bad, bytes):
        landing.write_bytes(dataset, DAY, bad)
    else:
        landing.write_lines(dataset, DAY, bad)

    with pytest.raises(LandingFileError) as raised:
        read(landing, label, dataset)
    message = str(raised.value)
    assert label(dataset, DAY) in message
    for fragment in fragments:
        assert fragment in message
    assert raised.value.missing_columns == []


@pytest.mark.parametrize(
    ("dataset", "dropped", "missing"),
    [
        ("flights", ["dep_delay"], ["dep_delay"]),
        ("weather", ["wind_speed", "time_hour"], ["time_hour", "wind_speed"]),
        ("flights", ["day"], ["day"]),
    ],
)
def test_missing_columns_are_named_and_carried(landing, label, dataset, dropped, missing):
    """The asset turns .missing_columns into the failed `required_columns` check."""
    landing.add(DAY)
    landing.write_lines(dataset, DAY, drop_columns(landing.lines(dataset, DAY), *dropped))

    with pytest.raises(LandingFileError) as raised:
        read(landing, label, dataset)
    assert raised.value.missing_columns == missing
    assert f"{label(dataset, DAY)} lacks required column(s) {missing}" in str(raised.value)


def test_file_not_yet_landed(landing, label):
    """Weather of 2013-12-31 never lands: asking for it must say so, not crash in pandas."""
    landing.add("2013-12-31")
    assert read(landing, label, "flights", "2013-12-31").shape[0] > 0
    with pytest.raises(
        LandingFileError, match=r"landing file weather/2013-12-31\.csv has not landed yet"
    ):
        read(landing, label, "weather", "2013-12-31")

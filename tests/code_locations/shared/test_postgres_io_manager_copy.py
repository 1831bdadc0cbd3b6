"""The IO manager's COPY serialization (per-column, factorized) against a real Postgres: every
column type it formats itself must arrive exactly as pandas' own to_csv path delivers it, across
chunk boundaries; types it does not format fall back to to_csv."""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pytest
from dagster import asset, materialize

from flights_shared import postgres_io_manager
from flights_shared.postgres_io_manager import PostgresPandasIOManager

TRICKY_TEXT = ["", "plain", 'say "hi"', "a,b", "line\nbreak", "cr\rlf\r\n", "\\.", "\\N", "back\\slash", "ü ✈", None]


def mixed_frame() -> pd.DataFrame:
    """Every type the fast path formats, with missing values, repeated values and edge cases."""
    n = len(TRICKY_TEXT)
    new_york = pd.to_datetime(["2013-03-10 01:30", "2013-11-03 01:30", None] * 4, utc=False)[:n]
    return pd.DataFrame(
        {
            "int64": np.arange(n, dtype="int64") * 10**15,
            "uint8": np.arange(n, dtype="uint8"),
            "Int64": pd.array([1, None, -3, 1] * 3, dtype="Int64")[:n],
            "float64": [0.1, np.nan, np.inf, -np.inf, 1e300, -0.0, 1 / 3, 2.5, 1e-7, 123456789.123, 0.0],
            "float32": np.array([0.1, 1.5, np.nan, 3.25] * 3, dtype="float32")[:n],
            "Float64": pd.array([0.1, None, 2.0, 0.1] * 3, dtype="Float64")[:n],
            "bool": [True, False] * 5 + [True],
            "boolean": pd.array([True, None, False] * 4, dtype="boolean")[:n],
            "string": pd.array(TRICKY_TEXT, dtype="string"),
            "object_text": pd.Series(TRICKY_TEXT, dtype="object"),
            "default_str": pd.Series(TRICKY_TEXT),  # pandas' default string dtype
            "dates": pd.Series([dt.date(2013, 1, 1), None, dt.date(2013, 12, 31)] * 3 + [None, dt.date(2013, 1, 1)], dtype="object"),
            "tz": new_york.tz_localize("America/New_York", nonexistent="shift_forward", ambiguous=True),
            "utc_us": pd.Series(pd.to_datetime(["2013-01-01 05:00:00.123456+00:00", None] * 5 + ["2013-12-31 23:59:59+00:00"], utc=True, format="ISO8601")),
            "naive": pd.Series(pd.to_datetime(["2013-06-01 12:34:56.5", None] * 5 + ["2013-01-01"], format="ISO8601")),
            "mixed_objects": pd.Series([1, 1.0, True, "1", decimal.Decimal("1.10"), None] * 2, dtype="object")[:n],
        }
    )


def load(warehouse, name: str, frame: pd.DataFrame) -> None:
    @asset(key=["copytest", name])
    def table() -> pd.DataFrame:
        return frame

    materialize([table], resources={"io_manager": PostgresPandasIOManager(warehouse=warehouse)})


def table_rows(sql_rows, warehouse, name: str, columns: list[str]) -> list[tuple]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return sql_rows(warehouse, f"SELECT {quoted} FROM copytest.{name} ORDER BY int64")


@pytest.mark.postgres
def test_fast_path_stores_what_pandas_to_csv_stores(clean_warehouse, sql_rows, monkeypatch):
    """Same frame twice: through the fast path (tiny chunks, so values repeat across chunk
    boundaries) and through pandas' to_csv; the stored rows and column types must be equal."""
    frame = mixed_frame()
    assert postgres_io_manager._fast_path_supported(frame)
    monkeypatch.setattr(postgres_io_manager, "CHUNK_ROWS", 4)
    load(clean_warehouse, "fast", frame)
    monkeypatch.setattr(postgres_io_manager, "_fast_path_supported", lambda _: False)
    load(clean_warehouse, "pandas", frame)

    columns = list(frame.columns)
    fast = table_rows(sql_rows, clean_warehouse, "fast", columns)
    assert fast == table_rows(sql_rows, clean_warehouse, "pandas", columns)
    assert len(fast) == len(frame)
    types = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY 1"
    assert sql_rows(clean_warehouse, types, ("fast",)) == sql_rows(clean_warehouse, types, ("pandas",))


@pytest.mark.postgres
def test_fast_path_values_are_exact(clean_warehouse, sql_rows):
    """Spot checks against hand-written expectations (not just "same as before")."""
    frame = mixed_frame()
    load(clean_warehouse, "exact", frame)
    rows = table_rows(sql_rows, clean_warehouse, "exact",
                      ["string", "float64", "Int64", "boolean", "tz", "utc_us", "naive", "dates", "mixed_objects"])
    assert [r[0] for r in rows] == TRICKY_TEXT
    assert [r[1] for r in rows[:4]] == [0.1, None, float("inf"), float("-inf")]
    assert [r[2] for r in rows[:3]] == [1, None, -3]
    assert [r[3] for r in rows[:3]] == [True, None, False]
    # Non-UTC zones arrive as the same instant (pandas decides what the DST-gap time means).
    assert rows[0][4] == frame["tz"][0].tz_convert("UTC").to_pydatetime()
    assert rows[1][4] == dt.datetime(2013, 11, 3, 5, 30, tzinfo=dt.UTC)  # ambiguous=True: EDT
    assert rows[2][4] is None
    assert rows[0][5] == dt.datetime(2013, 1, 1, 5, 0, 0, 123456, tzinfo=dt.UTC)
    assert rows[0][6] == dt.datetime(2013, 6, 1, 12, 34, 56, 500000)
    assert [r[7] for r in rows[:3]] == [dt.date(2013, 1, 1), None, dt.date(2013, 12, 31)]
    assert [r[8] for r in rows[:6]] == ["1", "1.0", "True", "1", "1.10", None]


@pytest.mark.postgres
def test_unsupported_types_fall_back_to_to_csv(clean_warehouse, sql_rows):
    """A categorical (or any type without a fast formatter) still loads, via pandas."""
    frame = pd.DataFrame({"int64": [1, 2, 3], "cat": pd.Categorical(["x", "y", "x"]),
                          "span": pd.to_timedelta([1, 2, 3], unit="s")})
    assert not postgres_io_manager._fast_path_supported(frame)
    load(clean_warehouse, "fallback", frame)
    assert table_rows(sql_rows, clean_warehouse, "fallback", ["int64", "cat", "span"]) == [
        (1, "x", "0 days 00:00:01"), (2, "y", "0 days 00:00:02"), (3, "x", "0 days 00:00:03")]


@pytest.mark.postgres
def test_single_text_column_keeps_empty_strings_and_nulls_apart(clean_warehouse, sql_rows):
    """With one column an empty string is a whole line; it must still arrive as '', not NULL."""
    load(clean_warehouse, "single", pd.DataFrame({"s": pd.array(["", None, "x", ""], dtype="string")}))
    assert sql_rows(clean_warehouse, "SELECT s, count(*) FROM copytest.single GROUP BY s ORDER BY s NULLS LAST") == [
        ("", 2), ("x", 1), (None, 1)]


@pytest.mark.postgres
def test_empty_frame_creates_the_table_and_loads_nothing(clean_warehouse, sql_rows):
    load(clean_warehouse, "empty", pd.DataFrame({"int64": pd.Series([], dtype="int64"),
                                                 "s": pd.Series([], dtype="string")}))
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM copytest.empty") == [(0,)]

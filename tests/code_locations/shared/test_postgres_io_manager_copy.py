"""The IO manager's binary COPY load (pandas -> Arrow -> ADBC) against a real Postgres: every
column type arrives exactly, NULLs in every nullable type stay NULL, time zones keep the instant,
text arrives byte for byte, and a frame that does not fit its table is refused by name."""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pytest
from dagster import asset, materialize

from flights_shared import postgres_io_manager
from flights_shared.postgres_io_manager import PostgresPandasIOManager, SchemaMismatchError

TRICKY_TEXT = [
    "", "plain", 'say "hi"', "a,b", "line\nbreak", "cr\rlf\r\n", "\\.", "\\N", "back\\slash",
    "tab\there", "ü ✈ 日本語 🛫", "'; DROP TABLE x; --", None,
]  # fmt: skip
UTC = dt.UTC


def load(warehouse, name: str, frame: pd.DataFrame) -> None:
    @asset(key=["copytest", name])
    def table() -> pd.DataFrame:
        return frame

    materialize([table], resources={"io_manager": PostgresPandasIOManager(warehouse=warehouse)})


def column_types(sql_rows, warehouse, name: str) -> dict[str, str]:
    return dict(sql_rows(
        warehouse,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'copytest' AND table_name = %s",
        (name,),
    ))  # fmt: skip


def stored(sql_rows, warehouse, name: str, columns: list[str], order: str = "k") -> list[tuple]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return sql_rows(warehouse, f'SELECT {quoted} FROM copytest."{name}" ORDER BY "{order}"')


@pytest.mark.postgres
def test_every_nullable_type_stores_values_and_nulls(clean_warehouse, sql_rows):
    """One row of values, one row of NULLs, in every type the IO manager maps; the column types
    are the mapping's (dates stay dates, nullable ints bigint, aware timestamps timestamptz)."""
    frame = pd.DataFrame(
        {
            "k": [1, 2],
            "Int64": pd.array([-(2**62), None], dtype="Int64"),
            "Int32": pd.array([7, None], dtype="Int32"),
            "float64": [1 / 3, np.nan],
            "float32": np.array([0.1, np.nan], dtype="float32"),
            "Float64": pd.array([2.5, None], dtype="Float64"),
            "boolean": pd.array([True, None], dtype="boolean"),
            "string": pd.array(["x", None], dtype="string"),
            "object_text": pd.Series(["y", None], dtype="object"),
            "dates": pd.Series([dt.date(2013, 12, 31), None], dtype="object"),
            "aware": pd.to_datetime(["2013-01-01 05:00:00.123456+00:00", None], utc=True, format="ISO8601"),
            "naive": pd.to_datetime(["2013-06-01 12:34:56.5", None], format="ISO8601"),
            "all_missing": pd.Series([None, None], dtype="object"),
        }
    )
    load(clean_warehouse, "types", frame)
    columns = list(frame.columns)
    assert stored(sql_rows, clean_warehouse, "types", columns) == [
        (1, -(2**62), 7, 1 / 3, pytest.approx(0.1), 2.5, True, "x", "y", dt.date(2013, 12, 31),
         dt.datetime(2013, 1, 1, 5, 0, 0, 123456, tzinfo=UTC), dt.datetime(2013, 6, 1, 12, 34, 56, 500000), None),
        (2, *[None] * 12),
    ]  # fmt: skip
    assert column_types(sql_rows, clean_warehouse, "types") == {
        "k": "bigint", "Int64": "bigint", "Int32": "bigint", "float64": "double precision",
        "float32": "double precision", "Float64": "double precision", "boolean": "boolean",
        "string": "text", "object_text": "text", "dates": "date",
        "aware": "timestamp with time zone", "naive": "timestamp without time zone", "all_missing": "text",
    }  # fmt: skip


@pytest.mark.postgres
def test_special_floats_and_integer_extremes_are_exact(clean_warehouse, sql_rows):
    """Binary COPY sends the bits: no repr round trip to lose digits, and inf stays inf."""
    floats = [0.1, float("inf"), float("-inf"), 1e300, -0.0, 5e-324, 123456789.123]
    ints = [2**63 - 1, -(2**63), 0, 1, -1, 10**15, 42]
    load(clean_warehouse, "numbers", pd.DataFrame({"k": range(7), "f": floats, "i": ints}))
    rows = stored(sql_rows, clean_warehouse, "numbers", ["f", "i"])
    assert [r[0] for r in rows] == floats
    assert [r[1] for r in rows] == ints


@pytest.mark.postgres
@pytest.mark.parametrize("dtype", ["string", "object"])
def test_text_with_separators_quotes_newlines_backslashes_and_unicode(clean_warehouse, sql_rows, dtype):
    """CSV's special characters, COPY's own markers (\\. and \\N) and non-ASCII arrive byte for byte."""
    frame = pd.DataFrame({"k": range(len(TRICKY_TEXT)), "v": pd.Series(TRICKY_TEXT, dtype=dtype)})
    load(clean_warehouse, "text", frame)
    assert [v for (v,) in stored(sql_rows, clean_warehouse, "text", ["v"])] == TRICKY_TEXT


@pytest.mark.postgres
def test_single_text_column_keeps_empty_strings_and_nulls_apart(clean_warehouse, sql_rows):
    """NULL and '' are different facts (unknown vs. known-empty), in a one-column table too."""
    load(clean_warehouse, "single", pd.DataFrame({"s": pd.array(["", None, "x", ""], dtype="string")}))
    assert sql_rows(clean_warehouse, "SELECT s, count(*) FROM copytest.single GROUP BY s ORDER BY s NULLS LAST") == [
        ("", 2), ("x", 1), (None, 1)]  # fmt: skip


@pytest.mark.postgres
def test_time_zones_keep_the_instant(clean_warehouse, sql_rows):
    """Aware timestamps in any zone are stored as the same instant (timestamptz is UTC inside),
    around both DST changes; sub-microsecond digits are cut, as Postgres keeps microseconds."""
    local = pd.to_datetime(["2013-03-10 01:30", "2013-11-03 01:30", "2013-07-01 12:00:00.000001999"], format="ISO8601")
    new_york = local.tz_localize("America/New_York", ambiguous=[True, True, False])
    frame = pd.DataFrame({"k": range(3), "ny": new_york, "tokyo": new_york.tz_convert("Asia/Tokyo")})
    load(clean_warehouse, "zones", frame)
    rows = stored(sql_rows, clean_warehouse, "zones", ["ny", "tokyo"])
    assert [r[0] for r in rows] == [
        dt.datetime(2013, 3, 10, 6, 30, tzinfo=UTC),  # EST, -5
        dt.datetime(2013, 11, 3, 5, 30, tzinfo=UTC),  # ambiguous=True: EDT, -4
        dt.datetime(2013, 7, 1, 16, 0, 0, 1, tzinfo=UTC),
    ]
    assert [r[1] for r in rows] == [r[0] for r in rows]
    # The session's time zone changes how an instant is shown, never which instant it is.
    assert sql_rows(clean_warehouse, "SET TIME ZONE 'Asia/Kolkata'; SELECT ny::text FROM copytest.zones WHERE k = 0") == [
        ("2013-03-10 12:00:00+05:30",)]  # fmt: skip


@pytest.mark.postgres
def test_naive_and_aware_timestamps_do_not_mix(clean_warehouse, sql_rows):
    """Naive times into a timestamptz column would be read in the server's zone (and aware ones
    into a timestamp column lose theirs): both are refused, saying what to do."""
    aware = pd.to_datetime(["2013-01-01 10:00"]).tz_localize("UTC")
    load(clean_warehouse, "aware", pd.DataFrame({"t": aware}))
    with pytest.raises(SchemaMismatchError, match=r"copytest.aware.t is timestamptz.*tz_localize"):
        load(clean_warehouse, "aware", pd.DataFrame({"t": aware.tz_localize(None)}))
    load(clean_warehouse, "naive", pd.DataFrame({"t": aware.tz_localize(None)}))
    with pytest.raises(SchemaMismatchError, match=r"copytest.naive.t is timestamp\b"):
        load(clean_warehouse, "naive", pd.DataFrame({"t": aware}))
    assert sql_rows(clean_warehouse, "SELECT t::text FROM copytest.aware UNION ALL SELECT t::text FROM copytest.naive") == [
        ("2013-01-01 10:00:00+00",), ("2013-01-01 10:00:00",)]  # fmt: skip


@pytest.mark.postgres
def test_other_values_in_text_columns_are_stored_as_their_str(clean_warehouse, sql_rows):
    """Mixed Python objects, categoricals and timedeltas have no Arrow type of their own that
    COPY takes: they go to text, each value as str() prints it (1, 1.0 and True stay apart)."""
    frame = pd.DataFrame(
        {
            "k": range(6),
            "mixed": pd.Series([1, 1.0, True, "1", decimal.Decimal("1.10"), None], dtype="object"),
            "cat": pd.Categorical(["x", "y", "x", None, "y", "x"]),
            "span": pd.to_timedelta([1, 2, 3, None, 5, 6], unit="s"),
        }
    )
    load(clean_warehouse, "objects", frame)
    assert stored(sql_rows, clean_warehouse, "objects", ["mixed", "cat", "span"]) == [
        ("1", "x", "0 days 00:00:01"), ("1.0", "y", "0 days 00:00:02"), ("True", "x", "0 days 00:00:03"),
        ("1", None, None), ("1.10", "y", "0 days 00:00:05"), (None, "x", "0 days 00:00:06"),
    ]  # fmt: skip
    assert set(column_types(sql_rows, clean_warehouse, "objects").values()) == {"bigint", "text"}


@pytest.mark.postgres
def test_values_are_converted_to_an_existing_tables_narrower_types(clean_warehouse, sql_rows):
    """A table made by hand (or a migration) with integer/real/varchar columns takes the frame's
    int64/float64/str; a value that does not fit is refused naming the column."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA copytest; CREATE TABLE copytest.narrow "
                       "(k integer, r real, s smallint, v varchar(10), f double precision, extra text)")
    frame = pd.DataFrame({"k": [1, 2], "r": [0.5, None], "s": pd.array([3, None], dtype="Int64"),
                          "v": ["a", "b"], "f": [1, 2]})
    load(clean_warehouse, "narrow", frame)
    assert stored(sql_rows, clean_warehouse, "narrow", ["k", "r", "s", "v", "f", "extra"]) == [
        (1, 0.5, 3, "a", 1.0, None), (2, None, None, "b", 2.0, None)]  # fmt: skip
    with pytest.raises(SchemaMismatchError, match=r"copytest.narrow.s is int2.*int64.*1099511627776 not in range"):
        load(clean_warehouse, "narrow", frame.assign(s=[1, 2**40]))
    with pytest.raises(SchemaMismatchError, match=r"copytest.narrow.k is int4 but the frame's column is float64"):
        load(clean_warehouse, "narrow", frame.assign(k=[1.5, 2.0]))
    assert len(stored(sql_rows, clean_warehouse, "narrow", ["k"])) == 2  # refused before the DELETE


@pytest.mark.postgres
def test_column_of_a_type_the_load_does_not_write_is_refused_by_name(clean_warehouse, sql_rows):
    """Binary COPY has no server-side parse to fall back on, so an unmapped column type (here
    numeric) is named in the error instead of surfacing as a COPY format error."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA copytest; CREATE TABLE copytest.money (k bigint, amount numeric)")
    with pytest.raises(SchemaMismatchError, match=r"copytest.money.amount is numeric.*loads only columns of types"):
        load(clean_warehouse, "money", pd.DataFrame({"k": [1], "amount": [decimal.Decimal("1.10")]}))


@pytest.mark.postgres
def test_duplicate_column_names_are_refused(clean_warehouse):
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(SchemaMismatchError, match=r"duplicate column\(s\) \['a'\]"):
        load(clean_warehouse, "dupes", frame)


@pytest.mark.postgres
def test_empty_frame_creates_the_table_and_loads_nothing(clean_warehouse, sql_rows):
    load(clean_warehouse, "empty", pd.DataFrame({"k": pd.Series([], dtype="int64"),
                                                 "s": pd.Series([], dtype="string")}))
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM copytest.empty") == [(0,)]


@pytest.mark.postgres
def test_a_large_frame_arrives_whole(clean_warehouse, sql_rows):
    """200k rows (several COPY buffers' worth) with NULLs spread through: counts and sums match."""
    n = 200_000
    ints = pd.array(np.arange(n), dtype="Int64")
    ints[::7] = pd.NA
    frame = pd.DataFrame({"k": np.arange(n), "i": ints, "s": pd.array(np.arange(n).astype(str), dtype="string")})
    frame.loc[::11, "s"] = pd.NA
    load(clean_warehouse, "large", frame)
    i, s = frame["i"], frame["s"]
    assert sql_rows(clean_warehouse, "SELECT count(*), count(i), sum(i), count(s), sum(length(s)) FROM copytest.large") == [
        (n, int(i.notna().sum()), int(i.sum()), int(s.notna().sum()), int(s.str.len().sum()))]  # fmt: skip


@pytest.mark.postgres
def test_a_value_that_does_not_fit_in_a_later_batch_fails_by_name_and_rolls_back(clean_warehouse, sql_rows, monkeypatch):
    """Batches after the first are converted while COPY runs: a bad value there must still raise
    the SchemaMismatchError (not the driver's stream error) and leave the previous rows."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA copytest; CREATE TABLE copytest.late (k bigint, s smallint);"
                       "INSERT INTO copytest.late VALUES (0, 0)")
    monkeypatch.setattr(postgres_io_manager, "BATCH_ROWS", 2)
    with pytest.raises(SchemaMismatchError, match=r"copytest.late.s is int2 .*70000 not in range"):
        load(clean_warehouse, "late", pd.DataFrame({"k": [1, 2, 3, 4, 5], "s": [1, 2, 3, 4, 70_000]}))
    assert sql_rows(clean_warehouse, "SELECT k, s FROM copytest.late") == [(0, 0)]


@pytest.mark.postgres
def test_batches_with_different_inferred_types_load_into_one_column(clean_warehouse, sql_rows, monkeypatch):
    """An object column that is all missing in one batch and dates (or text) in the next."""
    monkeypatch.setattr(postgres_io_manager, "BATCH_ROWS", 2)
    frame = pd.DataFrame({"k": range(5),
                          "d": pd.Series([dt.date(2013, 1, 1), None, None, None, dt.date(2013, 1, 5)], dtype="object"),
                          "t": pd.Series(["a", None, None, None, "e"], dtype="object")})
    load(clean_warehouse, "batches", frame)
    assert stored(sql_rows, clean_warehouse, "batches", ["k", "d", "t"]) == [
        (0, dt.date(2013, 1, 1), "a"), (1, None, None), (2, None, None), (3, None, None), (4, dt.date(2013, 1, 5), "e")]  # fmt: skip

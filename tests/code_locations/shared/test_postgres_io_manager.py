"""PostgresPandasIOManager and WarehouseResource against a real (throwaway) Postgres, plus the
pandas -> Postgres type mapping."""

import datetime as dt

import adbc_driver_manager
import numpy as np
import pandas as pd
import psycopg2
import pytest
from dagster import AssetIn, asset, materialize

from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import (
    PARTITION_EXPR_METADATA,
    MissingTableError,
    PostgresPandasIOManager,
    SchemaMismatchError,
    postgres_type,
)
from flights_shared.warehouse import WarehouseConnectionError, WarehouseResource

DAY1, DAY2 = "2013-01-01", "2013-01-02"
PARTITIONED = {"partitions_def": DAYS_OF_2013, "metadata": {PARTITION_EXPR_METADATA: "flight_date"}}


def resources(warehouse: WarehouseResource) -> dict:
    return {"io_manager": PostgresPandasIOManager(warehouse=warehouse)}


def day_frame(partition_key: str, values: list[str]) -> pd.DataFrame:
    day = dt.date.fromisoformat(partition_key)
    return pd.DataFrame(
        {
            "flight_date": [day] * len(values),
            "n": pd.array(range(len(values)), dtype="Int64"),
            "label": pd.array(values, dtype="string"),
        }
    )


def partitioned_asset(rows_by_day: dict[str, list[str]], **overrides):
    """An `iotest/daily` asset emitting rows_by_day[partition] (mutable between runs)."""
    kwargs = {**PARTITIONED, **overrides}

    @asset(key=["iotest", "daily"], **kwargs)
    def daily(context) -> pd.DataFrame:
        return day_frame(context.partition_key, rows_by_day[context.partition_key])

    return daily


def labels_by_day(sql_rows, warehouse) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for day, label in sql_rows(
        warehouse, "SELECT flight_date, label FROM iotest.daily ORDER BY flight_date, n"
    ):
        out.setdefault(day.isoformat(), []).append(label)
    return out


# --- type mapping (no database) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([1, 2], dtype="int64"), "bigint"),
        (pd.Series([1, None], dtype="Int64"), "bigint"),
        (pd.Series([1.5, np.nan]), "double precision"),
        (pd.Series([True, False]), "boolean"),
        (pd.Series([True, None], dtype="boolean"), "boolean"),
        (pd.Series(pd.to_datetime(["2013-01-01T10:00:00Z"], utc=True)), "timestamptz"),
        (pd.Series(pd.to_datetime(["2013-01-01 10:00"])), "timestamp"),
        (pd.Series([dt.date(2013, 1, 1), None], dtype="object"), "date"),
        (pd.Series(["a", None], dtype="string"), "text"),
        (pd.Series(["a", "b"], dtype="object"), "text"),
        (pd.Series([None, None], dtype="object"), "text"),
    ],
    ids=lambda v: str(v.dtype) if isinstance(v, pd.Series) else v,
)
def test_postgres_type_mapping(series, expected):
    """Column types decide whether partition filters and numeric reports work; dates must stay dates."""
    assert postgres_type(series) == expected


# --- resource ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_wrong_password_names_user_host_and_database(warehouse):
    """An operator seeing the error must know which credentials and server were tried."""
    bad = WarehouseResource(
        host=warehouse.host,
        port=warehouse.port,
        dbname=warehouse.dbname,
        user=warehouse.user,
        password="definitely-wrong",
    )
    with pytest.raises(WarehouseConnectionError) as excinfo:
        with bad.connection():
            pass
    message = str(excinfo.value)
    assert warehouse.user in message
    assert f"{warehouse.host}:{warehouse.port}" in message
    assert warehouse.dbname in message
    assert "definitely-wrong" not in message
    assert isinstance(excinfo.value.__cause__, psycopg2.OperationalError)


@pytest.mark.postgres
def test_connection_rolls_back_on_error(clean_warehouse, sql_rows):
    """The IO manager's all-or-nothing replace relies on connection() rolling back on exceptions."""
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA iotest; CREATE TABLE iotest.t (v int)")
    with pytest.raises(RuntimeError, match="boom"):
        with clean_warehouse.connection() as conn, conn.cursor() as cursor:
            cursor.execute("INSERT INTO iotest.t VALUES (1)")
            raise RuntimeError("boom")
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM iotest.t") == [(0,)]


# --- IO manager -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_unpartitioned_write_replaces_all_rows(clean_warehouse, sql_rows):
    """Re-materializing an unpartitioned asset must replace the table's rows, not append."""
    frame = {"rows": ["a", "b", "c"]}

    @asset(key=["iotest", "plain"])
    def plain() -> pd.DataFrame:
        return pd.DataFrame({"label": frame["rows"]})

    materialize([plain], resources=resources(clean_warehouse))
    materialize([plain], resources=resources(clean_warehouse))
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM iotest.plain") == [(3,)]

    frame["rows"] = ["z"]
    result = materialize([plain], resources=resources(clean_warehouse))
    assert sql_rows(clean_warehouse, "SELECT label FROM iotest.plain") == [("z",)]
    metadata = result.asset_materializations_for_node("iotest__plain")[0].metadata
    assert metadata["rows_replaced"].value == 3
    assert metadata["row_count"].value == 1
    assert metadata["table"].value == "iotest.plain"


@pytest.mark.postgres
def test_rerunning_a_partition_replaces_only_that_day(clean_warehouse, sql_rows):
    """A re-run (or retry) of one day must neither duplicate its rows nor touch other days."""
    rows = {DAY1: ["d1-old-a", "d1-old-b"], DAY2: ["d2-a", "d2-b", "d2-c"]}
    daily = partitioned_asset(rows)
    materialize([daily], partition_key=DAY1, resources=resources(clean_warehouse))
    materialize([daily], partition_key=DAY2, resources=resources(clean_warehouse))

    rows[DAY1] = ["d1-new-a", "d1-new-b", "d1-new-c", "d1-new-d"]
    result = materialize([daily], partition_key=DAY1, resources=resources(clean_warehouse))

    assert labels_by_day(sql_rows, clean_warehouse) == {
        DAY1: ["d1-new-a", "d1-new-b", "d1-new-c", "d1-new-d"],
        DAY2: ["d2-a", "d2-b", "d2-c"],
    }
    metadata = result.asset_materializations_for_node("iotest__daily")[0].metadata
    assert metadata["rows_replaced"].value == 2


@pytest.mark.postgres
def test_extra_column_fails_naming_it_and_keeps_previous_rows(clean_warehouse, sql_rows):
    """Schema drift must fail loudly (naming the column) without losing the loaded partition."""
    rows = {DAY1: ["kept-a", "kept-b"]}
    materialize([partitioned_asset(rows)], partition_key=DAY1, resources=resources(clean_warehouse))

    @asset(key=["iotest", "daily"], **PARTITIONED)
    def drifted(context) -> pd.DataFrame:
        return day_frame(context.partition_key, ["new"]).assign(surprise_column=1)

    with pytest.raises(SchemaMismatchError, match="surprise_column"):
        materialize([drifted], partition_key=DAY1, resources=resources(clean_warehouse))
    assert labels_by_day(sql_rows, clean_warehouse) == {DAY1: ["kept-a", "kept-b"]}


@pytest.mark.postgres
def test_copy_failure_after_delete_rolls_back(clean_warehouse, sql_rows):
    """A load failing mid-COPY (after the DELETE ran, in the same transaction) must leave the
    partition's old rows, and the other days untouched."""
    rows = {DAY1: ["kept-a", "kept-b"], DAY2: ["other-day"]}
    daily = partitioned_asset(rows)
    for day in (DAY1, DAY2):
        materialize([daily], partition_key=day, resources=resources(clean_warehouse))
    # Only the server can refuse these rows: the frame converts fine, COPY then trips the check
    # on the second row, after the first was written and the window's old rows were deleted.
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("ALTER TABLE iotest.daily ADD CONSTRAINT no_bad CHECK (label <> 'bad')")

    rows[DAY1] = ["fine", "bad", "fine-too"]
    with pytest.raises(adbc_driver_manager.IntegrityError, match="no_bad"):
        materialize([daily], partition_key=DAY1, resources=resources(clean_warehouse))
    assert labels_by_day(sql_rows, clean_warehouse) == {DAY1: ["kept-a", "kept-b"], DAY2: ["other-day"]}


@pytest.mark.postgres
def test_wrong_value_type_fails_naming_column_and_types_and_keeps_rows(clean_warehouse, sql_rows):
    """Text in a bigint column is refused before anything is deleted, naming table, column and both types."""
    rows = {DAY1: ["kept-a", "kept-b"]}
    materialize([partitioned_asset(rows)], partition_key=DAY1, resources=resources(clean_warehouse))

    @asset(key=["iotest", "daily"], **PARTITIONED)
    def bad_types(context) -> pd.DataFrame:
        return day_frame(context.partition_key, ["new"]).assign(n="not-a-number")

    with pytest.raises(SchemaMismatchError) as excinfo:
        materialize([bad_types], partition_key=DAY1, resources=resources(clean_warehouse))
    message = str(excinfo.value)
    assert "iotest.daily.n is int8" in message
    assert "frame's column is object" in message
    assert "not-a-number" in message
    assert labels_by_day(sql_rows, clean_warehouse) == {DAY1: ["kept-a", "kept-b"]}


@pytest.mark.postgres
def test_partitioned_asset_without_partition_expr_is_refused(clean_warehouse, sql_rows):
    """Without partition_expr the manager cannot scope its DELETE, so it must refuse, not wipe."""
    rows = {DAY1: ["d1"], DAY2: ["d2"]}
    daily = partitioned_asset(rows)
    materialize([daily], partition_key=DAY1, resources=resources(clean_warehouse))
    materialize([daily], partition_key=DAY2, resources=resources(clean_warehouse))

    no_expr = partitioned_asset({DAY1: ["replacement"]}, metadata={})
    with pytest.raises(SchemaMismatchError, match=PARTITION_EXPR_METADATA) as excinfo:
        materialize([no_expr], partition_key=DAY1, resources=resources(clean_warehouse))
    assert "iotest/daily" in str(excinfo.value)
    assert labels_by_day(sql_rows, clean_warehouse) == {DAY1: ["d1"], DAY2: ["d2"]}


@pytest.mark.postgres
def test_frame_missing_partition_column_is_refused(clean_warehouse, sql_rows):
    """A frame without the partition column would be loaded outside its window; refuse it."""
    rows = {DAY1: ["d1"]}
    materialize([partitioned_asset(rows)], partition_key=DAY1, resources=resources(clean_warehouse))

    @asset(key=["iotest", "daily"], **PARTITIONED)
    def no_date(context) -> pd.DataFrame:
        return day_frame(context.partition_key, ["x"]).drop(columns="flight_date")

    with pytest.raises(SchemaMismatchError, match="flight_date"):
        materialize([no_date], partition_key=DAY1, resources=resources(clean_warehouse))
    assert labels_by_day(sql_rows, clean_warehouse) == {DAY1: ["d1"]}


@pytest.mark.postgres
def test_nulls_and_empty_strings_round_trip(clean_warehouse, sql_rows):
    """NULL and '' are different facts (unknown vs. known-empty); COPY must keep them apart."""

    @asset(key=["iotest", "nulls"])
    def nulls() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "i": pd.array([1, None, 3], dtype="Int64"),
                "f": [1.5, np.nan, 2.25],
                "s": pd.array(["", None, "x"], dtype="string"),
                "o": pd.Series(["", None, "\\N"], dtype="object"),
                "b": pd.array([True, None, False], dtype="boolean"),
                "d": pd.Series([dt.date(2013, 1, 1), None, dt.date(2013, 12, 31)], dtype="object"),
            }
        )

    materialize([nulls], resources=resources(clean_warehouse))
    assert sql_rows(clean_warehouse, "SELECT i, f, s, o, b, d FROM iotest.nulls ORDER BY f NULLS LAST") == [
        (1, 1.5, "", "", True, dt.date(2013, 1, 1)),
        (3, 2.25, "x", "\\N", False, dt.date(2013, 12, 31)),
        (None, None, None, None, None, None),
    ]
    column_types = dict(
        sql_rows(
            clean_warehouse,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'iotest' AND table_name = 'nulls'",
        )
    )
    assert column_types == {
        "i": "bigint",
        "f": "double precision",
        "s": "text",
        "o": "text",
        "b": "boolean",
        "d": "date",
    }


@pytest.mark.postgres
def test_load_input_returns_only_the_requested_partition(clean_warehouse):
    """A downstream partition must see exactly its day, not the whole upstream table."""
    rows = {DAY1: ["d1-a", "d1-b"], DAY2: ["d2-a", "d2-b", "d2-c"]}
    daily = partitioned_asset(rows)
    seen: list[pd.DataFrame] = []

    @asset(key=["iotest", "consumer"], partitions_def=DAYS_OF_2013, ins={"up": AssetIn(["iotest", "daily"])})
    def consumer(up: pd.DataFrame) -> None:
        seen.append(up)

    for day in (DAY1, DAY2):
        materialize([daily], partition_key=day, resources=resources(clean_warehouse))
    # Upstream is not re-run here: the input comes from the warehouse, as across runs in production.
    materialize(
        [daily, consumer],
        selection=[consumer],
        partition_key=DAY2,
        resources=resources(clean_warehouse),
    )
    (frame,) = seen
    assert sorted(frame["label"]) == ["d2-a", "d2-b", "d2-c"]
    assert set(frame["flight_date"]) == {dt.date(2013, 1, 2)}


@pytest.mark.postgres
def test_hostile_strings_are_stored_literally(clean_warehouse, sql_rows):
    """Data is never spliced into SQL: quotes, separators and SQL text arrive byte for byte."""
    hostile = [
        "'; DROP TABLE iotest.victim; --",
        'Robert"); DROP TABLE iotest.victim;--',
        "comma, \"quoted\", and\nnewline\r\n",
        "back\\slash \\. end-of-copy marker",
        "\\.",
        "tab\there; semicolon",
        "unicodé ✈",
    ]
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA iotest; CREATE TABLE iotest.victim (v int)")

    @asset(key=["iotest", "hostile"])
    def hostile_asset() -> pd.DataFrame:
        return pd.DataFrame({"v": pd.array(hostile, dtype="string"), "weird; \"name": range(len(hostile))})

    materialize([hostile_asset], resources=resources(clean_warehouse))
    stored = sql_rows(clean_warehouse, 'SELECT v FROM iotest.hostile ORDER BY "weird; ""name"')
    assert [v for (v,) in stored] == hostile
    assert sql_rows(clean_warehouse, "SELECT to_regclass('iotest.victim') IS NOT NULL") == [(True,)]


@pytest.mark.postgres
def test_concurrent_first_loads_into_a_new_schema_all_succeed(clean_warehouse, sql_rows):
    """Runs of different assets start together on a fresh warehouse (the reference tables and the
    first landed day did, in the stack): racing CREATE SCHEMA/TABLE must not fail any of them."""
    import threading

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def load(name: str) -> None:
        @asset(key=["racetest", name])
        def table() -> pd.DataFrame:
            barrier.wait(timeout=30)
            return pd.DataFrame({"name": [name] * 3})

        try:
            materialize([table], resources=resources(clean_warehouse))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    counts = sql_rows(
        clean_warehouse,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'racetest' ORDER BY 1",
    )
    assert [c[0] for c in counts] == [f"t{i}" for i in range(6)]


@pytest.mark.postgres
def test_load_input_returns_the_frame_with_the_types_it_was_stored_with(clean_warehouse):
    """Read back through Arrow: nullable ints stay Int64 (not float64 with NaN), booleans with
    NULLs stay boolean, text is the string dtype, dates stay dates, aware times stay UTC."""
    stored = pd.DataFrame(
        {
            "i": pd.array([1, None], dtype="Int64"),
            "f": [1.5, np.nan],
            "b": pd.array([True, None], dtype="boolean"),
            "s": pd.array(["a,\"b\"\n", None], dtype="string"),
            "d": pd.Series([dt.date(2013, 1, 1), None], dtype="object"),
            "t": pd.to_datetime(["2013-01-01T10:00:00-05:00", None], utc=True),
        }
    )
    seen: list[pd.DataFrame] = []

    @asset(key=["iotest", "typed"])
    def typed() -> pd.DataFrame:
        return stored

    @asset(key=["iotest", "reader"], ins={"up": AssetIn(["iotest", "typed"])})
    def reader(up: pd.DataFrame) -> None:
        seen.append(up)

    materialize([typed], resources=resources(clean_warehouse))
    materialize([typed, reader], selection=[reader], resources=resources(clean_warehouse))
    (frame,) = seen
    assert dict(frame.dtypes.astype(str)) == {
        "i": "Int64", "f": "float64", "b": "boolean", "s": "string", "d": "object", "t": "datetime64[us, UTC]",
    }  # fmt: skip
    pd.testing.assert_frame_equal(frame, stored.assign(t=stored["t"].dt.as_unit("us")))
    assert frame["t"][0] == pd.Timestamp("2013-01-01 15:00", tz="UTC")


@pytest.mark.postgres
def test_load_input_of_a_missing_table_names_it(clean_warehouse):
    @asset(key=["iotest", "never_loaded"])
    def never_loaded() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    @asset(key=["iotest", "reader"], ins={"up": AssetIn(["iotest", "never_loaded"])})
    def reader(up: pd.DataFrame) -> None:
        pass

    with pytest.raises(MissingTableError, match=r"iotest/never_loaded has no table iotest.never_loaded"):
        materialize([never_loaded, reader], selection=[reader], resources=resources(clean_warehouse))


@pytest.mark.postgres
def test_load_input_keeps_numeric_digits_as_decimal(clean_warehouse):
    """A table the IO manager did not create (a migration, dbt) may hold numeric: every digit."""
    import decimal

    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA iotest; CREATE TABLE iotest.money (n numeric); "
                       "INSERT INTO iotest.money VALUES (1.10), (NULL), (12345678901234567890.123456789)")
    seen: list[pd.DataFrame] = []

    @asset(key=["iotest", "money"])
    def money() -> pd.DataFrame:
        raise AssertionError("not run: read only")

    @asset(key=["iotest", "reader"], ins={"up": AssetIn(["iotest", "money"])})
    def reader(up: pd.DataFrame) -> None:
        seen.append(up)

    materialize([money, reader], selection=[reader], resources=resources(clean_warehouse))
    assert seen[0]["n"].tolist() == [
        decimal.Decimal("1.10"), None, decimal.Decimal("12345678901234567890.123456789")]  # fmt: skip

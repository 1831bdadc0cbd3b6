"""pandas <-> Postgres IO manager for the warehouse.

A partition is replaced, never appended to: in one transaction the rows of the partition's
window are deleted and the new frame is streamed in with COPY, so re-running a partition (or a
retry after a crash) cannot duplicate rows and a failed load leaves the previous data intact."""

import io
import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    InputContext,
    OutputContext,
    ResourceDependency,
    TimeWindowPartitionsDefinition,
)
from psycopg2 import sql

from flights_shared.asset_keys import table_for
from flights_shared.warehouse import WarehouseResource

PARTITION_EXPR_METADATA = "partition_expr"
DDL_LOCK = "flights_shared.postgres_io_manager.ddl"


class SchemaMismatchError(ValueError):
    """A frame does not fit the table it would replace rows of."""


def postgres_type(series: pd.Series) -> str:
    """Column type for a pandas series; dates stay dates so partition filters are exact."""
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(series.dtype):
        return "double precision"
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return "timestamp"
    if kind == "date":
        return "date"
    return "text"


def _existing_columns(cursor, schema: str, table: str) -> set[str]:
    """Column names of schema.table; empty when it does not exist (pg_attribute, not the far
    slower information_schema view: this runs on every load)."""
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I.%%I', %s, %s)) "
        "AND attnum > 0 AND NOT attisdropped",
        (schema, table),
    )
    return {row[0] for row in cursor.fetchall()}


def _ensure_table(cursor, schema: str, table: str, frame: pd.DataFrame) -> None:
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(str(name)), sql.SQL(postgres_type(frame[name])))
        for name in frame.columns
    ]
    # Concurrent first loads race on CREATE SCHEMA/TABLE (unique violations in the catalog).
    # One advisory lock serialises this short DDL transaction only; loads commit separately.
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cursor.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
            sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(columns)
        )
    )
    _check_columns(_existing_columns(cursor, schema, table), schema, table, frame)


def _check_columns(existing: set[str], schema: str, table: str, frame: pd.DataFrame) -> None:
    unknown = [str(c) for c in frame.columns if str(c) not in existing]
    if unknown:
        raise SchemaMismatchError(
            f"{schema}.{table} has no column(s) {unknown}; existing columns are "
            f"{sorted(existing)}. Migrate the table or drop it before loading this frame."
        )


def _csv_buffer(frame: pd.DataFrame, null_marker: str) -> io.StringIO:
    """pandas' own CSV writer: the fallback for column types the fast path does not format."""
    buffer = io.StringIO()
    # An explicit NULL marker keeps empty strings empty strings; it is random per load so that
    # no real value (not even the conventional \N) can collide with it and turn into NULL.
    frame.to_csv(buffer, index=False, header=False, na_rep=null_marker)
    buffer.seek(0)
    return buffer


# Rows per chunk of the fast path: bounds the Python strings alive at once (~15 columns x 64k).
CHUNK_ROWS = 65_536
_CSV_SPECIAL = ("\"", ",", "\n", "\r")


def _fast_path_supported(frame: pd.DataFrame) -> bool:
    for dtype in frame.dtypes:
        if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.PeriodDtype):
            return False
        if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
            continue
        if dtype.kind not in "biufOU" and not isinstance(dtype, pd.StringDtype):
            return False
    return True


def _quoted(values: list[str]) -> list[str]:
    """CSV quoting where needed; one C-level scan of the joined column decides whether any value
    needs it. A lone \\. would end COPY's input, so it is quoted too."""
    joined = "\x00".join(values)
    if not any(char in joined for char in _CSV_SPECIAL) and "\\." not in joined:
        return values
    return [
        '"' + v.replace('"', '""') + '"' if v == "\\." or any(c in v for c in _CSV_SPECIAL) else v
        for v in values
    ]


def _csv_column(series: pd.Series, null_marker: str) -> list[str]:
    """One column as CSV fields. Each distinct value is formatted once (factorize), then fields
    are picked by code: a day's flights have a few thousand distinct values per column, and
    pandas' to_csv formats every cell in Python."""
    dtype = series.dtype
    if dtype.kind == "f":
        # Python's str(float) is the shortest repr, as pandas writes it; float32 is printed at
        # its own width by numpy (a float64 repr would add digits pandas does not write).
        numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
        values = series.to_numpy(dtype=numpy_dtype, na_value=np.nan)
        texts = list(map(repr, values.tolist())) if numpy_dtype == np.float64 else values.astype(str).tolist()
        fields = np.array(texts, dtype=object)
        fields[np.isnan(values)] = null_marker
        return fields.tolist()
    if dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in ("string", "date", "empty"):
        # Mixed Python objects: 1, 1.0 and True are equal as dict keys but print differently.
        fields = np.array([v if isinstance(v, str) else str(v) for v in series.tolist()], dtype=object)
        fields[:] = _quoted(fields.tolist())
        fields[series.isna().to_numpy(dtype=bool)] = null_marker
        return fields.tolist()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if isinstance(dtype, pd.DatetimeTZDtype):
        texts = [t.isoformat() for t in uniques.tz_convert("UTC")]  # the same instant, timestamptz
    elif pd.api.types.is_datetime64_dtype(dtype):
        texts = [t.isoformat() for t in uniques]
    else:  # ints, bools, text, dates: str() of each, as the csv module writes them
        texts = _quoted([v if isinstance(v, str) else str(v) for v in uniques])
    # Code -1 (missing) picks the last entry: the NULL marker.
    return np.array([*texts, null_marker], dtype=object)[codes].tolist()


def _csv_chunks(frame: pd.DataFrame, null_marker: str) -> Iterator[bytes]:
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        columns = [_csv_column(chunk.iloc[:, i], null_marker) for i in range(chunk.shape[1])]
        yield ("\n".join(map(",".join, zip(*columns))) + "\n").encode("utf-8")


class _ChunkReader(io.RawIOBase):
    """File-like view of the chunks for copy_expert, which reads until an empty result."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")


def _copy_source(frame: pd.DataFrame, null_marker: str) -> io.IOBase:
    if frame.shape[1] and _fast_path_supported(frame):
        return _ChunkReader(_csv_chunks(frame, null_marker))
    return _csv_buffer(frame, null_marker)


class PostgresPandasIOManager(ConfigurableIOManager):
    """Stores each asset in table `<key prefix>.<key name>` of the warehouse."""

    warehouse: ResourceDependency[WarehouseResource]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "the warehouse IO manager stores pandas DataFrames only"
            )
        schema, table = table_for(context.asset_key)
        window = _time_window(context)
        partition_column = _partition_column(context) if window else None
        if window and partition_column is None:
            raise SchemaMismatchError(
                f"{context.asset_key.to_user_string()} is time-partitioned but has no "
                f"{PARTITION_EXPR_METADATA!r} metadata naming its partition column; without it "
                "a partition cannot be replaced without touching the others"
            )
        if partition_column is not None and partition_column not in obj.columns:
            raise SchemaMismatchError(
                f"{schema}.{table} is partitioned by {partition_column!r}, "
                "which the frame does not have"
            )
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            existing = _existing_columns(cursor, schema, table)
            if not existing or any(str(c) not in existing for c in obj.columns):
                _ensure_table(cursor, schema, table, obj)  # first load (or drift: it raises)
            conn.commit()  # DDL, if any, is done; the replace below is its own transaction
            if partition_column is None:
                cursor.execute(sql.SQL("DELETE FROM {}").format(target))
            else:
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(
                        target, sql.Identifier(partition_column), sql.Identifier(partition_column)
                    ),
                    window,
                )
            deleted = cursor.rowcount
            columns = sql.SQL(", ").join(sql.Identifier(str(c)) for c in obj.columns)
            # Short on purpose: pandas cuts na_rep in float columns to 32 characters.
            null_marker = f"\\N{secrets.token_hex(8)}"
            cursor.copy_expert(
                sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL {})")
                .format(target, columns, sql.Literal(null_marker))
                .as_string(cursor),
                _copy_source(obj, null_marker),
            )
        context.add_output_metadata(
            {"table": f"{schema}.{table}", "row_count": len(obj), "rows_replaced": deleted}
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        schema, table = table_for(context.asset_key)
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        query = sql.SQL("SELECT * FROM {}").format(target)
        params: Sequence[datetime] = ()
        if context.has_asset_partitions:
            column = _partition_column(context.upstream_output) if context.upstream_output else None
            if not column:
                raise SchemaMismatchError(
                    f"cannot load partitions of {context.asset_key.to_user_string()}: its "
                    f"definition has no {PARTITION_EXPR_METADATA!r} metadata, so the whole "
                    "table would be returned"
                )
            query = sql.SQL("{} WHERE {} >= %s AND {} < %s").format(
                query, sql.Identifier(column), sql.Identifier(column)
            )
            params = _naive_window(context)
        with self.warehouse.connection() as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            names = [d.name for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=names)


def _partition_column(context: OutputContext) -> str | None:
    metadata = context.definition_metadata or {}
    value = metadata.get(PARTITION_EXPR_METADATA)
    return getattr(value, "value", value)


def _time_window(context: OutputContext) -> tuple[datetime, datetime] | None:
    if not context.has_asset_partitions:
        return None
    return _naive_window(context)


def _naive_window(context: OutputContext | InputContext) -> tuple[datetime, datetime]:
    """The partition's [start, end) as naive datetimes, the way the partition column stores them."""
    if not isinstance(context.asset_partitions_def, TimeWindowPartitionsDefinition):
        raise SchemaMismatchError(
            f"{context.asset_key.to_user_string()} is partitioned by "
            f"{type(context.asset_partitions_def).__name__}; the warehouse IO manager replaces "
            "time-window partitions only"
        )
    window = context.asset_partitions_time_window
    return window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)

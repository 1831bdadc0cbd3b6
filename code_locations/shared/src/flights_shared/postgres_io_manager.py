"""pandas <-> Postgres IO manager for the warehouse.

A partition is replaced, never appended to: in one transaction the rows of the partition's
window are deleted and the new frame is loaded by binary COPY (Arrow's ADBC PostgreSQL driver
encodes it), so re-running a partition (or a retry after a crash) cannot duplicate rows and a
failed load leaves the previous data intact."""

from datetime import datetime
from decimal import Decimal

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


class MissingTableError(LookupError):
    """An input's table is not in the warehouse (never materialized, or dropped)."""


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


# Column name -> type name (pg_type.typname) of a table; no rows when it does not exist
# (pg_attribute, not the far slower information_schema view: this runs on every load).
_COLUMNS_SQL = (
    "SELECT attname, typname FROM pg_attribute JOIN pg_type ON pg_type.oid = atttypid "
    "WHERE attrelid = to_regclass(format('%I.%I', {}::text, {}::text)) "
    "AND attnum > 0 AND NOT attisdropped"
)
# The replace's DELETE (with the count of rows it removed), its identifiers quoted by the server
# (format's %I, i.e. quote_ident) from bound parameters: the load's connection is ADBC's, which
# psycopg2.sql cannot render for. The $1/$2 inside the literal are the DELETE's own parameters.
_WINDOW_DELETE_SQL = (
    "SELECT format('WITH gone AS (DELETE FROM %1$I.%2$I WHERE %3$I >= $1 AND %3$I < $2 "
    "RETURNING 1) SELECT count(*) FROM gone', $1::text, $2::text, $3::text)"
)
_TABLE_DELETE_SQL = (
    "SELECT format('WITH gone AS (DELETE FROM %1$I.%2$I RETURNING 1) SELECT count(*) FROM gone', "
    "$1::text, $2::text)"
)
# load_input's SELECT, composed the same way, and whether its table exists at all.
_TABLE_SELECT_SQL = (
    "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL, "
    "format('SELECT * FROM %I.%I', $1::text, $2::text)"
)
_WINDOW_SELECT_SQL = (
    "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL, "
    "format('SELECT * FROM %1$I.%2$I WHERE %3$I >= $1 AND %3$I < $2', $1::text, $2::text, $3::text)"
)


def _existing_columns(cursor, schema: str, table: str) -> dict[str, str]:
    """On a psycopg2 cursor (the DDL path)."""
    cursor.execute(_COLUMNS_SQL.replace("%", "%%").format("%s", "%s"), (schema, table))
    return dict(cursor.fetchall())


def _existing_columns_arrow(cursor, schema: str, table: str) -> dict[str, str]:
    """On an ADBC cursor (the load's own transaction)."""
    cursor.execute(_COLUMNS_SQL.format("$1", "$2"), (schema, table))
    return dict(cursor.fetchall())


def _ensure_table(cursor, schema: str, table: str, frame: pd.DataFrame) -> dict[str, str]:
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
    existing = _existing_columns(cursor, schema, table)
    _check_columns(existing, schema, table, frame)
    return existing


def _check_columns(existing: dict[str, str], schema: str, table: str, frame: pd.DataFrame) -> None:
    unknown = [str(c) for c in frame.columns if str(c) not in existing]
    if unknown:
        raise SchemaMismatchError(
            f"{schema}.{table} has no column(s) {unknown}; existing columns are "
            f"{sorted(existing)}. Migrate the table or drop it before loading this frame."
        )


# Column types the load writes, as Postgres names them (pg_type.typname), and the Arrow type ADBC
# encodes as each in binary COPY. Other column types are refused by name: binary input must match
# the column's type exactly, there is no server-side parse to fall back on.
_ARROW_TYPES = {
    "int8": "int64",
    "int4": "int32",
    "int2": "int16",
    "float8": "float64",
    "float4": "float32",
    "bool": "bool_",
    "text": "string",
    "varchar": "string",
    "date": "date32",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
}


# Rows per Arrow batch: the next batch is converted while the server parses the previous one.
BATCH_ROWS = 65_536


def _arrow_type(pa, pg_type: str):
    name = _ARROW_TYPES[pg_type]
    if name == "timestamp":
        return pa.timestamp("us")
    if name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)()


def _text_array(pa, series: pd.Series):
    """Text as it is; any other value as its str() (1.0, True, Decimal('1.10') keep their look)."""
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage != "python":
        return pa.array(series, from_pandas=True).cast(pa.string())  # Arrow already
    try:  # the object array directly: pandas' own conversion scans for missing values first
        return pa.array(np.asarray(series, dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    missing = series.isna().to_numpy(dtype=bool)
    values = series.astype(object).tolist()
    return pa.array(
        [None if gone else (v if isinstance(v, str) else str(v)) for v, gone in zip(values, missing)],
        type=pa.string(),
    )


def _arrow_column(pa, series: pd.Series, name: str, pg_type: str, where: str):
    """One frame column as the Arrow array ADBC writes into a column of pg_type, or a
    SchemaMismatchError naming the column, its dtype and the table's type."""

    def mismatch(why: str) -> SchemaMismatchError:
        return SchemaMismatchError(f"{where}.{name} is {pg_type} but the frame's column is {series.dtype}: {why}")

    if pg_type not in _ARROW_TYPES:
        raise mismatch(f"the IO manager loads only columns of types {sorted(_ARROW_TYPES)}")
    target = _arrow_type(pa, pg_type)
    if target == pa.string():
        return _text_array(pa, series)
    try:
        array = pa.array(series, from_pandas=True)  # NaN/NA/None/NaT -> NULL
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise mismatch(f"its values do not convert ({exc})") from exc
    if pa.types.is_timestamp(array.type) and pa.types.is_timestamp(target):
        if (array.type.tz is None) != (target.tz is None):
            raise mismatch(
                "naive and timezone-aware timestamps do not mix (tz_localize the column, or "
                "tz_convert(None) it, to match the table)"
            )
        return array.cast(target, safe=False)  # ns -> us: Postgres keeps microseconds
    if array.type == target:
        return array
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise mismatch(f"its values do not convert ({exc})") from exc


class _ArrowRows:
    """The frame as Arrow record batches typed by the table's columns, converted one batch at a
    time as COPY pulls them. The first batch is converted up front, before anything is deleted,
    so a column that does not fit at all fails with nothing touched; a value that does not fit
    further on fails the load mid-COPY, which rolls back, and is kept to be raised as itself."""

    def __init__(self, frame: pd.DataFrame, pg_types: dict[str, str], where: str):
        import pyarrow as pa  # only where a load runs; see WarehouseResource.arrow_connection

        self._pa, self._frame, self._where = pa, frame, where
        self._names = [str(c) for c in frame.columns]
        self._pg_types = [pg_types[name] for name in self._names]
        self.failure: SchemaMismatchError | None = None
        self._first = self._batch(0) if len(frame) else None

    def _batch(self, start: int):
        chunk = self._frame.iloc[start : start + BATCH_ROWS]
        arrays = [
            _arrow_column(self._pa, chunk.iloc[:, i], name, pg_type, self._where)
            for i, (name, pg_type) in enumerate(zip(self._names, self._pg_types))
        ]
        return self._pa.RecordBatch.from_arrays(arrays, names=self._names)

    def _batches(self):
        yield self._first
        for start in range(BATCH_ROWS, len(self._frame), BATCH_ROWS):
            try:
                yield self._batch(start)
            except SchemaMismatchError as exc:
                self.failure = exc
                raise

    def reader(self):
        """A stream of the batches, or None when there are no rows to load."""
        if self._first is None:
            return None
        return self._pa.RecordBatchReader.from_batches(self._first.schema, self._batches())


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
        if obj.shape[1] == 0 and len(obj):
            raise SchemaMismatchError(f"the frame for {schema}.{table} has rows but no columns")
        names = [str(c) for c in obj.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SchemaMismatchError(f"the frame for {schema}.{table} has duplicate column(s) {duplicated}")
        with self.warehouse.arrow_connection() as conn, conn.cursor() as cursor:
            existing = _existing_columns_arrow(cursor, schema, table)
            if not existing or any(name not in existing for name in names):
                # First load (or drift: it raises), in a short transaction of its own.
                with self.warehouse.connection() as ddl, ddl.cursor() as ddl_cursor:
                    existing = _ensure_table(ddl_cursor, schema, table, obj)
            # Converted (and checked against the table's types) before anything is deleted.
            rows = _ArrowRows(obj, existing, f"{schema}.{table}")
            if partition_column is None:
                cursor.execute(_TABLE_DELETE_SQL, (schema, table))
            else:
                cursor.execute(_WINDOW_DELETE_SQL, (schema, table, partition_column))
            (delete,) = cursor.fetchone()
            cursor.execute(delete, window)
            (deleted,) = cursor.fetchone()
            reader = rows.reader()
            if reader is not None:
                try:
                    cursor.adbc_ingest(table, reader, mode="append", db_schema_name=schema)
                except Exception as exc:
                    if rows.failure is not None:  # the driver reports it as a stream error
                        raise rows.failure from exc
                    raise
        context.add_output_metadata(
            {"table": f"{schema}.{table}", "row_count": len(obj), "rows_replaced": deleted}
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        schema, table = table_for(context.asset_key)
        compose, names, window = _TABLE_SELECT_SQL, (schema, table), None
        if context.has_asset_partitions:
            column = _partition_column(context.upstream_output) if context.upstream_output else None
            if not column:
                raise SchemaMismatchError(
                    f"cannot load partitions of {context.asset_key.to_user_string()}: its "
                    f"definition has no {PARTITION_EXPR_METADATA!r} metadata, so the whole "
                    "table would be returned"
                )
            compose, names, window = _WINDOW_SELECT_SQL, (schema, table, column), _naive_window(context)
        with self.warehouse.arrow_connection() as conn, conn.cursor() as cursor:
            cursor.execute(compose, names)
            exists, query = cursor.fetchone()
            if not exists:
                raise MissingTableError(
                    f"{context.asset_key.to_user_string()} has no table {schema}.{table} in the "
                    "warehouse: materialize it first"
                )
            cursor.execute(query, window)
            return _to_pandas(cursor.fetch_arrow_table())


# Nullable pandas types for what Arrow reads, so a frame comes back as it was stored: Int64
# stays Int64 (not float64 with NaN), text comes back as the string dtype.
_PANDAS_TYPES = {
    "int64": pd.Int64Dtype(),
    "int32": pd.Int32Dtype(),
    "int16": pd.Int16Dtype(),
    "bool": pd.BooleanDtype(),
    "string": pd.StringDtype(),
    "large_string": pd.StringDtype(),
}


def _to_pandas(rows) -> pd.DataFrame:
    frame = rows.to_pandas(types_mapper=lambda t: _PANDAS_TYPES.get(str(t)))
    for field in rows.schema:  # numeric arrives as text; Decimal keeps every digit, as psycopg2 did
        if (field.metadata or {}).get(b"ADBC:postgresql:typname") == b"numeric":
            frame[field.name] = [None if v is None else Decimal(v) for v in rows.column(field.name).to_pylist()]
    return frame


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

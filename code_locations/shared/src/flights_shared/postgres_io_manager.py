"""pandas <-> Postgres IO manager for the warehouse.

A partition is replaced, never appended to: in one transaction the rows of the partition's
window are deleted and the new frame is streamed in with COPY, so re-running a partition (or a
retry after a crash) cannot duplicate rows and a failed load leaves the previous data intact."""

import io
import secrets
from collections.abc import Sequence
from datetime import datetime

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
    cursor.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    )
    existing = {row[0] for row in cursor.fetchall()}
    unknown = [str(c) for c in frame.columns if str(c) not in existing]
    if unknown:
        raise SchemaMismatchError(
            f"{schema}.{table} has no column(s) {unknown}; existing columns are "
            f"{sorted(existing)}. Migrate the table or drop it before loading this frame."
        )


def _csv_buffer(frame: pd.DataFrame, null_marker: str) -> io.StringIO:
    buffer = io.StringIO()
    # An explicit NULL marker keeps empty strings empty strings; it is random per load so that
    # no real value (not even the conventional \N) can collide with it and turn into NULL.
    frame.to_csv(buffer, index=False, header=False, na_rep=null_marker)
    buffer.seek(0)
    return buffer


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
            _ensure_table(cursor, schema, table, obj)
            conn.commit()  # DDL is done; the replace below is its own transaction
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
                _csv_buffer(obj, null_marker),
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

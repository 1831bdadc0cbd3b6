"""An example asset to replace with your own: once a day, how big the warehouse is.

It shows the platform's conventions: a key prefixed with the location's name (its warehouse
schema), a daily partition the IO manager replaces as a whole, the warehouse resource injected,
a freshness policy and an automation condition that keeps it current, and a typed output: one
pandera schema is the asset's Dagster type and the column list the UI shows (a frame breaking it
fails the step, naming column, rule and values, and nothing is written)."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pandera.pandas as pa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    DailyPartitionsDefinition,
    Failure,
    FreshnessPolicy,
    asset,
)
from pandera.engines import pandas_engine

from flights_shared import table_schemas
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.warehouse import WarehouseResource

WAREHOUSE_SIZE = AssetKey(["__LOCATION__", "warehouse_size"])
DAY_COLUMN = "stats_date"
# end_offset=1: today's partition exists, the day the size is measured.
DAYS = DailyPartitionsDefinition(start_date="__START_DATE__", end_offset=1)

SIZE_SQL = """
    SELECT pg_database_size(current_database()),
           (SELECT count(*) FROM pg_stat_user_tables),
           (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables)
"""
COLUMNS = ["database_bytes", "tables", "live_rows"]
WAREHOUSE_SIZE_SCHEMA = pa.DataFrameSchema(
    {
        DAY_COLUMN: pa.Column(pandas_engine.Date, description="day of the measurement; the partition column"),
        "database_bytes": pa.Column("int64", pa.Check.gt(0), description="size of the warehouse database on disk, bytes"),
        "tables": pa.Column("int64", pa.Check.ge(0), description="user tables in the warehouse"),
        "live_rows": pa.Column("int64", pa.Check.ge(0), description="live rows of all user tables (planner statistics)"),
    },
    name="__LOCATION___warehouse_size",
    description="One row per day: how big the warehouse is.",
    unique=[DAY_COLUMN],
    strict=True,
    ordered=True,
)


def size_frame(row: tuple, day: date) -> pd.DataFrame:
    """The partition's one row, stamped with the day it describes."""
    frame = pd.DataFrame([row], columns=COLUMNS).astype("int64")
    frame.insert(0, DAY_COLUMN, [day])
    return frame


@asset(
    key=WAREHOUSE_SIZE,
    partitions_def=DAYS,
    group_name="__LOCATION__",
    kinds={"postgres", "pandas"},
    metadata={PARTITION_EXPR_METADATA: DAY_COLUMN, **table_schemas.column_schema_metadata(WAREHOUSE_SIZE_SCHEMA)},
    dagster_type=table_schemas.dagster_type(WAREHOUSE_SIZE_SCHEMA),
    automation_condition=AutomationCondition.on_cron("0 1 * * *", "UTC"),
    freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=26)),
)
def warehouse_size(context: AssetExecutionContext, warehouse: WarehouseResource) -> pd.DataFrame:
    """Size on disk, tables and live rows of the warehouse database, as of the partition's day."""
    day = date.fromisoformat(context.partition_key)
    today = datetime.now(UTC).date()
    if day != today:
        # Statistics describe the moment they are read: a past day cannot be measured again.
        raise Failure(f"warehouse_size can only be measured for today ({today}), not for {day}")
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(SIZE_SQL)
        frame = size_frame(cursor.fetchone(), day)
    size = {column: int(frame[column].iloc[0]) for column in COLUMNS}
    context.log.info(f"warehouse is {size['database_bytes']} bytes, {size['tables']} tables, {size['live_rows']} live rows on {day}")
    context.add_output_metadata({**size, **table_schemas.type_check_metadata(WAREHOUSE_SIZE_SCHEMA, frame)})
    return frame

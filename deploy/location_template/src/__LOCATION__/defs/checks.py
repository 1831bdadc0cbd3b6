"""Checks on the example asset, read back from the warehouse: what a table holds is only as good
as what is checked after it was written."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, asset_check
from psycopg2 import sql

from flights_shared.asset_keys import table_for
from flights_shared.warehouse import WarehouseResource

from __LOCATION__.defs.assets import DAY_COLUMN, WAREHOUSE_SIZE


@asset_check(asset=WAREHOUSE_SIZE, blocking=True,
             description="The newest day has exactly one measurement, and a database is never empty.")
def warehouse_size_is_measured(context: AssetCheckExecutionContext,
                              warehouse: WarehouseResource) -> AssetCheckResult:
    schema, table = table_for(WAREHOUSE_SIZE)
    query = sql.SQL(
        "SELECT {day}, count(*), min(database_bytes) FROM {t} "
        "WHERE {day} = (SELECT max({day}) FROM {t}) GROUP BY {day}"
    ).format(day=sql.Identifier(DAY_COLUMN), t=sql.Identifier(schema, table))
    with warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute(query)
        newest, rows, smallest = cursor.fetchone() or (None, 0, 0)
    return AssetCheckResult(
        passed=rows == 1 and smallest > 0,
        metadata={"newest_day": str(newest), "rows_that_day": rows, "database_bytes": smallest},
    )

"""Reading upstream tables inside the warehouse. Reporting aggregates in SQL next to the data and
pulls back only the small result; when an upstream table or day is not there yet the error names
the asset (and partitions) to materialize instead of surfacing a raw SQL error or publishing an
empty report."""

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd
from dagster import AssetKey
from psycopg2 import sql

from flights_shared.asset_keys import table_for


class UpstreamNotMaterializedError(ValueError):
    """An upstream asset (or some of its partitions) has not been written to the warehouse."""


def table_identifier(key: AssetKey) -> sql.Composed:
    """`schema.table` of an asset, quoted as identifiers."""
    schema, table = table_for(key)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def require_table(cursor, key: AssetKey, what_to_run: str = "") -> None:
    schema, table = table_for(key)
    cursor.execute("SELECT to_regclass(format('%%I.%%I', %s, %s))", (schema, table))
    if cursor.fetchone()[0] is None:
        raise UpstreamNotMaterializedError(
            f"warehouse table {schema}.{table} does not exist yet: materialize "
            f"{key.to_user_string()}{what_to_run} first"
        )


def require_days(
    cursor, key: AssetKey, date_column: str, days: Iterable[dt.date]
) -> None:
    """Fail naming every day of `days` for which the upstream table has no row."""
    days = sorted(set(days))
    if not days:
        return
    require_table(cursor, key, f" (partitions {days[0]}..{days[-1]})")
    cursor.execute(
        sql.SQL("SELECT DISTINCT {col} FROM {table} WHERE {col} >= %s AND {col} <= %s").format(
            col=sql.Identifier(date_column), table=table_identifier(key)
        ),
        (days[0], days[-1]),
    )
    present = {row[0] for row in cursor.fetchall()}
    missing = [d.isoformat() for d in days if d not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        schema, table = table_for(key)  # named as in the "does not exist yet" message
        raise UpstreamNotMaterializedError(
            f"warehouse table {schema}.{table} has no rows for {len(missing)} day(s): {shown}; "
            f"materialize {key.to_user_string()} for those partitions first"
        )


def fetch_frame(
    cursor, query: sql.Composable, params: Mapping[str, object], dtypes: Mapping[str, str]
) -> pd.DataFrame:
    """Run a parameterized query; the frame gets exactly `dtypes`' columns and types, so the
    warehouse table's column types never depend on what one batch of rows happened to contain
    (an all-NULL average would otherwise become a text column)."""
    cursor.execute(query, params)
    names = [d.name for d in cursor.description]
    if list(names) != list(dtypes):
        raise RuntimeError(f"query returned columns {names}, expected {list(dtypes)}")
    frame = pd.DataFrame(cursor.fetchall(), columns=names)
    return frame.astype({name: kind for name, kind in dtypes.items() if kind != "date"})

"""dagster-init: Dagster's schema created or upgraded before anything else touches it.

`dagster instance migrate` imports Dagster and loads every alembic revision (~2.5 s on the start's
critical path) even when the schema is current, which it is at every start but the first and the
first after a Dagster upgrade. So a successful migrate is recorded in Dagster's own key-value table
(`kvs`, key MARKER_KEY) with the Dagster version that ran it, and a start that finds the same
version recorded skips it. A restored backup carries the marker of the version that wrote it, so
an older one is migrated as before.

Usage: python -m platform_core.schema_init (the dagster-init service; DAGSTER_PG_* as dagster.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib import metadata

MARKER_KEY = "flights-platform/schema-migrated-by"
MIGRATE = ["dagster", "instance", "migrate"]


def marker() -> str:
    """What this image's Dagster writes: its version (read from its metadata, no import)."""
    return f"dagster=={metadata.version('dagster')}"


def connect(env: Mapping[str, str]):
    import psycopg2

    return psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=env.get("DAGSTER_PG_PORT", "5432"),
                            dbname=env["DAGSTER_PG_DB"], user=env["DAGSTER_PG_USER"],
                            password=env["DAGSTER_PG_PASSWORD"], connect_timeout=10,
                            application_name="dagster-init")


def recorded_marker(conn) -> str | None:
    """The marker of the last successful migrate; None on a database without Dagster's tables."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass('kvs') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT value FROM kvs WHERE key = %s", (MARKER_KEY,))
        row = cursor.fetchone()
    return row[0] if row else None


def record_marker(conn, value: str) -> None:
    with conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO kvs (key, value) VALUES (%s, %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (MARKER_KEY, value))


def init_schema(env: Mapping[str, str], migrate: Callable[[], int]) -> int:
    """Runs `migrate` unless this Dagster version already migrated this database; its exit code."""
    want = marker()
    conn = connect(env)
    try:
        have = recorded_marker(conn)
        if have == want:
            print(f"dagster-init: schema already migrated by {want}; nothing to do")
            return 0
        print(f"dagster-init: schema last migrated by {have or 'nothing (empty database)'}; "
              f"running `dagster instance migrate` ({want})", flush=True)
        code = migrate()
        if code == 0:
            record_marker(conn, want)
        return code
    finally:
        conn.close()


def main() -> None:
    sys.exit(init_schema(os.environ, lambda: subprocess.call(MIGRATE)))


if __name__ == "__main__":
    main()

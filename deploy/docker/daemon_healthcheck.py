#!/usr/bin/env python3
"""The daemon service's healthcheck: healthy while every daemon loop's newest heartbeat in Postgres
is younger than DAGSTER_DAEMON_HEARTBEAT_TOLERANCE (default 1800 s, Dagster's own default).

Same verdict as `dagster-daemon liveness-check`, without importing Dagster: that import alone
took 38 s (the whole check 92 s) on a loaded 2-core host, so the check timed out, Docker marked a
live daemon unhealthy and `docker compose up --wait` gave up on the stack. psycopg2 imports in a
fraction of that and the query is one index-free scan of a handful of rows."""

import os
import sys

import psycopg2

DEFAULT_TOLERANCE_SECONDS = 1800


def main() -> int:
    tolerance = float(os.environ.get("DAGSTER_DAEMON_HEARTBEAT_TOLERANCE") or DEFAULT_TOLERANCE_SECONDS)
    try:
        conn = psycopg2.connect(
            host=os.environ["DAGSTER_PG_HOST"],
            port=os.environ.get("DAGSTER_PG_PORT", "5432"),
            dbname=os.environ["DAGSTER_PG_DB"],
            user=os.environ["DAGSTER_PG_USER"],
            password=os.environ["DAGSTER_PG_PASSWORD"],
            connect_timeout=5,
            application_name="daemon-healthcheck",
        )
    except psycopg2.Error as exc:
        print(f"daemon healthcheck: storage unreachable: {exc}".strip())
        return 1
    try:
        with conn.cursor() as cur:
            # Heartbeat timestamps are naive UTC.
            cur.execute(
                "SELECT daemon_type, EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - timestamp) "
                "FROM daemon_heartbeats"
            )
            ages = {daemon_type: float(age) for daemon_type, age in cur.fetchall()}
    finally:
        conn.close()
    stale = {daemon_type: round(age) for daemon_type, age in ages.items() if age > tolerance}
    if not ages or stale:
        print(f"daemon(s) not running: {stale or 'no heartbeat yet'} (tolerance {tolerance:g} s)")
        return 1
    print(f"daemon live: {len(ages)} loops heartbeating, oldest {max(ages.values()):.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())

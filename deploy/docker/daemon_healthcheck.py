#!/usr/bin/env python3
"""The daemon service's healthcheck: the verdict of platform_core.daemon_health (the one `make
status`, the watchdog and the UI use) on the heartbeats in Dagster's storage.

Without importing Dagster: that import alone took 38 s (the whole check 92 s) on a loaded 2-core
host, so `dagster-daemon liveness-check` timed out, Docker marked a live daemon unhealthy and
`docker compose up --wait` gave up on the stack. psycopg2 imports in a fraction of that, and the
query is one scan of a handful of rows. Without Dagster the check cannot ask which daemon types
the instance requires, so every type that has a heartbeat row counts as required."""

import sys

import psycopg2

from platform_core import daemon_health, dagster_storage
from platform_core.settings import SettingError

# Heartbeat timestamps are stored as naive UTC; ages by the database clock, like Dagster's writes.
AGES_SQL = ("SELECT daemon_type, EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - timestamp) "
            "FROM daemon_heartbeats")


def heartbeat_ages(connect_kwargs: dict) -> dict[str, float]:
    conn = psycopg2.connect(**connect_kwargs, connect_timeout=5, application_name="daemon-healthcheck")
    try:
        with conn.cursor() as cur:
            cur.execute(AGES_SQL)
            return {daemon_type: float(age) for daemon_type, age in cur.fetchall()}
    finally:
        conn.close()


def main() -> int:
    try:
        thresholds = daemon_health.Thresholds.from_env()
        connect_kwargs = dagster_storage.connect_kwargs()
    except SettingError as exc:
        print(f"daemon healthcheck: {exc}")
        return 1
    try:
        ages = heartbeat_ages(connect_kwargs)
    except psycopg2.Error as exc:
        print(f"daemon healthcheck: cannot read the heartbeats from {dagster_storage.describe()}: {exc}".strip())
        return 1
    verdict = daemon_health.judge(ages, None, thresholds)
    print(verdict.message)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main())

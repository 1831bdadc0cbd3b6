"""Warehouse load through the IO manager vs a raw `psql \\copy` of the same CSV, in one run.

A throwaway Postgres (postgres:17-trixie, published on 127.0.0.1 only; the stack's own Postgres
has a CPU limit and neighbours, which would blur the comparison). For one day (2013-07-15) and
the whole year of flights, alternating, each into an empty table:
  - floor: `psql -c "\\copy raw_flights FROM file CSV HEADER NULL 'NA'"` into a table of the
    source's own columns and types;
  - io_manager: PostgresPandasIOManager.handle_output of the typed frame the ingestion asset
    produces (DELETE of the window + COPY, one transaction), timed around handle_output only.
Parsing the landing files into that frame (read_landing_csv, once per day as the asset does)
is reported as its own rate."""

import datetime as dt
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg2
from dagster import PartitionKeyRange, build_output_context

from figures import Figure, Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code_locations" / "ingestion" / "src"))
from flights_shared import postgres_io_manager  # noqa: E402
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS  # noqa: E402
from flights_shared.partitions import DAYS_OF_2013  # noqa: E402
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager  # noqa: E402
from flights_shared.warehouse import WarehouseResource  # noqa: E402
from ingestion.defs.assets import FLIGHT_DTYPES  # noqa: E402
from ingestion.defs.landing_files import read_landing_csv  # noqa: E402
from ingestion.replay import source_lines_by_day  # noqa: E402

NAME = "warehouse_load"
DAY = "2013-07-15"
RAW_TABLE = """CREATE TABLE raw_flights (year int, month int, day int, dep_time int, sched_dep_time int,
  dep_delay int, arr_time int, sched_arr_time int, arr_delay int, carrier text, flight int, tailnum text,
  origin text, dest text, air_time int, distance int, hour int, minute int, time_hour timestamptz)"""


def start_postgres() -> tuple[str, dict]:
    password = secrets.token_urlsafe(16)
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--label", "flights-platform.bench=warehouse-load",
         "-e", f"POSTGRES_PASSWORD={password}", "-p", "127.0.0.1::5432", "postgres:17-trixie"],
        capture_output=True, text=True, check=True).stdout.strip()
    port = subprocess.run(["docker", "port", container, "5432/tcp"], capture_output=True, text=True,
                          check=True).stdout.split()[0].rsplit(":", 1)[1]
    dsn = {"host": "127.0.0.1", "port": int(port), "user": "postgres", "password": password, "dbname": "postgres"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(**dsn, connect_timeout=2).close()
            return container, dsn
        except psycopg2.OperationalError:
            time.sleep(0.5)
    subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    raise RuntimeError("throwaway Postgres did not start")


def psql_copy_s(dsn: dict, csv_path: Path) -> float:
    env = {"PGPASSWORD": dsn["password"], "PGOPTIONS": "-c client_min_messages=warning", "PATH": "/usr/bin:/bin"}
    base = ["psql", "-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"], "-d", dsn["dbname"], "-qAt",
            "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*base, "-c", "DROP TABLE IF EXISTS raw_flights", "-c", RAW_TABLE], env=env, check=True)
    begin = time.perf_counter()
    subprocess.run([*base, "-c", f"\\copy raw_flights FROM '{csv_path}' WITH (FORMAT csv, HEADER, NULL 'NA')"],
                   env=env, check=True)
    return time.perf_counter() - begin


def io_manager_load_s(manager: PostgresPandasIOManager, dsn: dict, frame: pd.DataFrame, first: str, last: str,
                      pandas_csv: bool = False) -> float:
    """Seconds of handle_output; pandas_csv forces the to_csv serialization the IO manager used
    before its per-column fast path (and still uses for types that path does not format)."""
    with psycopg2.connect(**dsn) as conn, conn.cursor() as cursor:  # an empty table, like the floor's
        cursor.execute("SELECT to_regclass('ingestion.flights')")
        if cursor.fetchone()[0]:
            cursor.execute("TRUNCATE ingestion.flights")
    conn.close()
    key_range = PartitionKeyRange(first, last)
    keys = DAYS_OF_2013.get_partition_keys_in_range(key_range)
    context = build_output_context(
        asset_key=FLIGHTS,
        definition_metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN},
        asset_partitions_def=DAYS_OF_2013,
        partition_key=keys[0] if len(keys) == 1 else None,
        asset_partition_key_range=None if len(keys) == 1 else key_range,
    )
    supported = postgres_io_manager._fast_path_supported
    if pandas_csv:
        postgres_io_manager._fast_path_supported = lambda _: False
    try:
        begin = time.perf_counter()
        manager.handle_output(context, frame)
        return time.perf_counter() - begin
    finally:
        postgres_io_manager._fast_path_supported = supported


def parse_days(tmp: Path, header: str, by_day: dict, days: list[str]) -> tuple[pd.DataFrame, float]:
    """The typed frame of these days, built as the asset builds it; and the parse time."""
    frames, seconds = [], 0.0
    for day in days:
        path = tmp / f"landing-{day}.csv"
        path.write_text(header + "".join(by_day[day]))
        begin = time.perf_counter()
        frame = read_landing_csv(path, day, FLIGHT_DTYPES, dt.date.fromisoformat(day))
        seconds += time.perf_counter() - begin
        frame.insert(0, FLIGHT_DATE_COLUMN, dt.date.fromisoformat(day))
        frames.append(frame)
        path.unlink()
    return pd.concat(frames, ignore_index=True), seconds


def run(ctx) -> list[Figure]:
    repeat = ctx.repeat or (2 if ctx.quick else 5)
    header, by_day = source_lines_by_day("flights.csv.zip")
    container, dsn = start_postgres()
    rows = []
    try:
        conn = psycopg2.connect(**dsn)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE bench")
        conn.close()
        dsn = {**dsn, "dbname": "bench"}
        manager = PostgresPandasIOManager(warehouse=WarehouseResource(
            host=dsn["host"], port=dsn["port"], dbname="bench", user=dsn["user"], password=dsn["password"]))
        with tempfile.TemporaryDirectory() as tmp:
            for case, days in {"day": [DAY], "year": sorted(by_day)}.items():
                csv_path = Path(tmp) / f"{case}.csv"
                csv_path.write_text(header + "".join(line for d in days for line in by_day[d]))
                frame, parse_s = parse_days(Path(tmp), header, by_day, days)
                n = len(frame)
                floor, load = [], []
                for _ in range(repeat):
                    floor.append(n / psql_copy_s(dsn, csv_path))
                    load.append(n / io_manager_load_s(manager, dsn, frame, days[0], days[-1]))
                rows.append(Figure(NAME, f"IO manager load, {case} ({n} rows)", "rows/s", load, floor,
                                   "psql \\copy of the same CSV", Target("min_ratio", 0.7)))
                if case == "year":  # before/after in one run: the same load through pandas' to_csv
                    legacy = [n / io_manager_load_s(manager, dsn, frame, days[0], days[-1], pandas_csv=True)
                              for _ in range(repeat)]
                    rows.append(Figure(NAME, f"IO manager load via pandas to_csv (before), {case}", "rows/s",
                                       legacy, floor, "psql \\copy of the same CSV"))
                rows.append(Figure(NAME, f"landing files -> typed frame, {case} ({len(days)} file(s))", "rows/s",
                                   [n / parse_s]))
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return rows

"""Warehouse load rate through the IO manager vs a raw `psql \\copy` of the same CSV, one run.

    uv run python benchmarks/warehouse_load.py [--repeat N]

Starts a throwaway Postgres (postgres:17-trixie, published on 127.0.0.1 only). For one day
(2013-07-15) and for the whole year of flights:
  - floor: `psql -c "\\copy raw FROM file CSV HEADER NULL 'NA'"` into a table of the source's
    own columns and types;
  - io_manager: PostgresPandasIOManager.handle_output of the typed frame the ingestion asset
    produces (DELETE of the window + COPY from an in-memory CSV, one transaction), timed
    around handle_output only; parse time (read_landing_csv) is reported separately.
Writes benchmarks/results/<date>-warehouse-load.json and prints a markdown table."""

import argparse
import datetime as dt
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg2
from dagster import PartitionKeyRange, build_output_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code_locations" / "ingestion" / "src"))
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS  # noqa: E402
from flights_shared.partitions import DAYS_OF_2013  # noqa: E402
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager  # noqa: E402
from flights_shared.warehouse import WarehouseResource  # noqa: E402
from ingestion.defs.assets import FLIGHT_DTYPES  # noqa: E402
from ingestion.defs.landing_files import read_landing_csv  # noqa: E402
from ingestion.replay import source_lines_by_day  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RAW_TABLE = """CREATE TABLE raw_flights (year int, month int, day int, dep_time int, sched_dep_time int,
  dep_delay int, arr_time int, sched_arr_time int, arr_delay int, carrier text, flight int, tailnum text,
  origin text, dest text, air_time int, distance int, hour int, minute int, time_hour timestamptz)"""


def start_postgres() -> tuple[str, dict]:
    password = secrets.token_urlsafe(16)
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "-e", f"POSTGRES_PASSWORD={password}", "-p", "127.0.0.1::5432",
         "postgres:17-trixie"], capture_output=True, text=True, check=True).stdout.strip()
    port = subprocess.run(["docker", "port", container, "5432/tcp"], capture_output=True, text=True,
                          check=True).stdout.split()[0].rsplit(":", 1)[1]
    dsn = {"host": "127.0.0.1", "port": int(port), "user": "postgres", "password": password, "dbname": "postgres"}
    for _ in range(120):
        try:
            psycopg2.connect(**dsn, connect_timeout=2).close()
            return container, dsn
        except psycopg2.OperationalError:
            time.sleep(0.5)
    raise SystemExit("throwaway Postgres did not start")


def psql_copy(dsn: dict, csv_path: Path) -> float:
    env = {"PGPASSWORD": dsn["password"], "PATH": "/usr/bin:/bin"}
    base = ["psql", "-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"], "-d", dsn["dbname"], "-qAt",
            "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*base, "-c", "DROP TABLE IF EXISTS raw_flights", "-c", RAW_TABLE], env=env, check=True)
    start = time.perf_counter()
    subprocess.run([*base, "-c", f"\\copy raw_flights FROM '{csv_path}' WITH (FORMAT csv, HEADER, NULL 'NA')"],
                   env=env, check=True)
    return time.perf_counter() - start


def io_manager_load(manager: PostgresPandasIOManager, frame: pd.DataFrame, first: str, last: str) -> float:
    key_range = PartitionKeyRange(first, last)
    keys = DAYS_OF_2013.get_partition_keys_in_range(key_range)
    context = build_output_context(
        asset_key=FLIGHTS,
        definition_metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN},
        asset_partitions_def=DAYS_OF_2013,
        partition_key=keys[0] if len(keys) == 1 else None,
        asset_partition_key_range=None if len(keys) == 1 else key_range,
    )
    start = time.perf_counter()
    manager.handle_output(context, frame)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    header, by_day = source_lines_by_day("flights.csv.zip")
    container, dsn = start_postgres()
    results = {}
    try:
        conn = psycopg2.connect(**dsn)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE bench")
        conn.close()
        dsn = {**dsn, "dbname": "bench"}
        manager = PostgresPandasIOManager(warehouse=WarehouseResource(
            host=dsn["host"], port=dsn["port"], dbname="bench", user=dsn["user"], password=dsn["password"]))
        with tempfile.TemporaryDirectory() as tmp:
            cases = {"day": ["2013-07-15"], "year": sorted(by_day)}
            for name, days in cases.items():
                csv_path = Path(tmp) / f"{name}.csv"
                csv_path.write_text(header + "".join(line for d in days for line in by_day[d]))
                parse_s, frames = [], []
                for d in days:
                    day_path = Path(tmp) / "day.csv"
                    day_path.write_text(header + "".join(by_day[d]))
                    t = time.perf_counter()
                    frame = read_landing_csv(day_path, d, FLIGHT_DTYPES, dt.date.fromisoformat(d))
                    parse_s.append(time.perf_counter() - t)
                    frame.insert(0, FLIGHT_DATE_COLUMN, dt.date.fromisoformat(d))
                    frames.append(frame)
                frame = pd.concat(frames, ignore_index=True)
                rows = len(frame)
                floor = [psql_copy(dsn, csv_path) for _ in range(args.repeat)]
                load = [io_manager_load(manager, frame, days[0], days[-1]) for _ in range(args.repeat)]
                results[name] = {
                    "rows": rows,
                    "psql_copy_rows_per_s": round(rows / statistics.median(floor)),
                    "io_manager_rows_per_s": round(rows / statistics.median(load)),
                    "ratio_io_manager_to_copy": round(statistics.median(floor) / statistics.median(load), 3),
                    "psql_copy_s": {"median": round(statistics.median(floor), 3), "min": round(min(floor), 3), "max": round(max(floor), 3)},
                    "io_manager_s": {"median": round(statistics.median(load), 3), "min": round(min(load), 3), "max": round(max(load), 3)},
                    "parse_s_total": round(sum(parse_s), 3),
                }
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    out = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "repeat": args.repeat, "cases": results}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{dt.date.today().isoformat()}-warehouse-load.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print("| case | rows | psql \\copy rows/s | IO manager rows/s | ratio | parse s |\n|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['rows']} | {r['psql_copy_rows_per_s']} | {r['io_manager_rows_per_s']} | "
              f"{r['ratio_io_manager_to_copy']} | {r['parse_s_total']} |")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

"""Warehouse load through the IO manager vs a raw `psql \\copy` of the same rows, in one run.

A throwaway Postgres (postgres:17-trixie, published on 127.0.0.1 only; the stack's own Postgres
has a CPU limit and neighbours, which would blur the comparison). For one day (2013-07-15) and
the whole year of flights, alternating, each into an empty table:
  - floor: `psql -c "\\copy raw_flights FROM file CSV HEADER NULL 'NA'"` into a table of the
    source's own columns and types;
  - floor (year only): `psql \\copy` of the typed frame's own rows (written once by pandas'
    to_csv) into a table of exactly the IO manager's columns and types;
  - io_manager: PostgresPandasIOManager.handle_output of the typed frame the ingestion asset
    produces (DELETE of the window + binary COPY through ADBC, one transaction), timed around
    handle_output only;
  - before (year only): the same, through the IO manager as it was at BEFORE_COMMIT (its own
    CSV encoder streamed by psycopg2's copy_expert), its source read from git, not the tree.
CPU (year only): client (this process, or psql) and server (the Postgres container's cgroup)
CPU seconds of each load, so the ratio can be told apart from a busy machine's noise.
Reading the year back (year only): PostgresPandasIOManager.load_input (ADBC, Arrow -> pandas)
against the way it read before (psycopg2 fetchall into a DataFrame, the same query).
Parsing the landing files into that frame (read_landing_csv, once per day as the asset does)
is reported as its own rate."""

import contextlib
import datetime as dt
import importlib.util
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg2
from dagster import PartitionKeyRange, build_input_context, build_output_context

from figures import Figure, Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code_locations" / "ingestion" / "src"))
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS  # noqa: E402
from flights_shared.partitions import DAYS_OF_2013  # noqa: E402
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager  # noqa: E402
from flights_shared.warehouse import WarehouseResource  # noqa: E402
from ingestion.defs.assets import FLIGHT_DTYPES  # noqa: E402
from ingestion.defs.landing_files import read_landing_csv  # noqa: E402
from ingestion.replay import source_lines_by_day  # noqa: E402

NAME = "warehouse_load"
DAY = "2013-07-15"
# The last commit whose IO manager encoded CSV itself (_csv_column, _ChunkReader).
BEFORE_COMMIT = "a5b01e8"
BEFORE_MODULE = "code_locations/shared/src/flights_shared/postgres_io_manager.py"
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


def container_cpu_s(container: str) -> float | None:
    """CPU seconds the container has used so far (cgroup v1 or v2), None where not readable."""
    for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage", 1e-9),
                        (f"/sys/fs/cgroup/system.slice/docker-{container}.scope/cpu.stat", 1e-6),
                        (f"/sys/fs/cgroup/docker/{container}/cpu.stat", 1e-6)):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("cpu.stat"):
            text = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
        return int(text) * scale
    return None


class CpuMeter:
    """Client and server CPU seconds around one load (client: this process and its children)."""

    def __init__(self, container: str):
        self.container, self.samples = container, []

    def _now(self) -> tuple[float, float | None]:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        client = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return client, container_cpu_s(self.container)

    def __enter__(self):
        self._start = self._now()

    def __exit__(self, *exc):
        (client0, server0), (client1, server1) = self._start, self._now()
        self.samples.append((client1 - client0, None if server0 is None else server1 - server0))


def psql(dsn: dict, *commands: str, cpu: CpuMeter | None = None) -> float:
    """Seconds of one psql process running these commands (a floor: the client does nothing else)."""
    env = {"PGPASSWORD": dsn["password"], "PGOPTIONS": "-c client_min_messages=warning", "PATH": "/usr/bin:/bin"}
    base = ["psql", "-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"], "-d", dsn["dbname"], "-qAt",
            "-v", "ON_ERROR_STOP=1"]
    meter = cpu or contextlib.nullcontext()
    with meter:
        begin = time.perf_counter()
        subprocess.run([*base, *(arg for c in commands for arg in ("-c", c))], env=env, check=True)
        elapsed = time.perf_counter() - begin
    return elapsed


def psql_copy_s(dsn: dict, csv_path: Path) -> float:
    psql(dsn, "DROP TABLE IF EXISTS raw_flights", RAW_TABLE)
    return psql(dsn, f"\\copy raw_flights FROM '{csv_path}' WITH (FORMAT csv, HEADER, NULL 'NA')")


def psql_copy_frame_s(dsn: dict, csv_path: Path, cpu: CpuMeter | None = None) -> float:
    """The typed frame's rows into a table shaped as the IO manager's (which must exist)."""
    psql(dsn, "DROP TABLE IF EXISTS frame_rows", "CREATE TABLE frame_rows (LIKE ingestion.flights)")
    return psql(dsn, f"\\copy frame_rows FROM '{csv_path}' WITH (FORMAT csv, NULL '')", cpu=cpu)


def before_io_manager_class():
    """PostgresPandasIOManager as of BEFORE_COMMIT, or None when git or that commit is missing."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:{BEFORE_MODULE}"], cwd=root,
                            capture_output=True, text=True)
    if source.returncode != 0:
        return None
    path = Path(tempfile.mkdtemp(prefix="warehouse-load-before-")) / "postgres_io_manager_before.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("postgres_io_manager_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PostgresPandasIOManager


def io_manager_load_s(manager, dsn: dict, frame: pd.DataFrame, first: str, last: str,
                      cpu: CpuMeter | None = None) -> float:
    """Seconds of handle_output into an emptied table."""
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
    with cpu or contextlib.nullcontext():
        begin = time.perf_counter()
        manager.handle_output(context, frame)
        elapsed = time.perf_counter() - begin
    return elapsed


def load_input_s(manager, first: str, last: str) -> float:
    """Seconds of load_input of the flights of [first, last] (the table must hold them)."""
    key_range = PartitionKeyRange(first, last)
    upstream = build_output_context(asset_key=FLIGHTS, definition_metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN})
    context = build_input_context(asset_key=FLIGHTS, upstream_output=upstream, asset_partitions_def=DAYS_OF_2013,
                                  asset_partition_key_range=key_range)
    begin = time.perf_counter()
    frame = manager.load_input(context)
    elapsed = time.perf_counter() - begin
    assert len(frame), "nothing read"
    return elapsed


def psycopg2_read_s(dsn: dict, first: str, last: str) -> float:
    """The read as load_input did it before: psycopg2 fetchall into a DataFrame."""
    begin = time.perf_counter()
    with psycopg2.connect(**dsn) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT * FROM ingestion.flights WHERE flight_date >= %s AND flight_date < %s",
                       (dt.date.fromisoformat(first), dt.date.fromisoformat(last) + dt.timedelta(days=1)))
        pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description])
    conn.close()
    return time.perf_counter() - begin


def cpu_figures(case: str, load: list, floor: list) -> list[Figure]:
    """Client, server and total CPU seconds per load, the IO manager's next to psql's."""
    floor_what = "psql \\copy of the frame's rows"
    out = [Figure(NAME, f"IO manager load, {case}, client CPU", "CPU s", [c for c, _ in load],
                  [c for c, _ in floor], floor_what)]
    if all(s is not None for _, s in load + floor):
        out += [Figure(NAME, f"IO manager load, {case}, server CPU (Postgres container)", "CPU s",
                       [s for _, s in load], [s for _, s in floor], floor_what),
                Figure(NAME, f"IO manager load, {case}, client + server CPU", "CPU s",
                       [c + s for c, s in load], [c + s for c, s in floor], floor_what)]
    return out


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
        warehouse = WarehouseResource(
            host=dsn["host"], port=dsn["port"], dbname="bench", user=dsn["user"], password=dsn["password"])
        manager = PostgresPandasIOManager(warehouse=warehouse)
        before_class = before_io_manager_class()
        with tempfile.TemporaryDirectory() as tmp:
            for case, days in {"day": [DAY], "year": sorted(by_day)}.items():
                csv_path = Path(tmp) / f"{case}.csv"
                csv_path.write_text(header + "".join(line for d in days for line in by_day[d]))
                frame, parse_s = parse_days(Path(tmp), header, by_day, days)
                n = len(frame)
                frame_csv = Path(tmp) / f"{case}-frame.csv"
                if case == "year":
                    frame.to_csv(frame_csv, index=False, header=False)
                floor, frame_floor, load, before = [], [], [], []
                load_cpu, floor_cpu = CpuMeter(container), CpuMeter(container)
                for _ in range(repeat):
                    floor.append(n / psql_copy_s(dsn, csv_path))
                    load.append(n / io_manager_load_s(manager, dsn, frame, days[0], days[-1],
                                                      cpu=load_cpu if case == "year" else None))
                    if case == "year":
                        frame_floor.append(n / psql_copy_frame_s(dsn, frame_csv, cpu=floor_cpu))
                        if before_class is not None:
                            before.append(n / io_manager_load_s(before_class(warehouse=warehouse), dsn, frame,
                                                                days[0], days[-1]))
                rows.append(Figure(NAME, f"IO manager load, {case} ({n} rows)", "rows/s", load, floor,
                                   "psql \\copy of the same CSV", Target("min_ratio", 1.0)))
                if frame_floor:
                    rows.append(Figure(NAME, f"IO manager load, {case}, vs its own rows", "rows/s", load,
                                       frame_floor, "psql \\copy of the frame's rows into the same columns",
                                       Target("min_ratio", 1.0)))
                if load_cpu.samples:
                    rows += cpu_figures(case, load_cpu.samples, floor_cpu.samples)
                if case == "year":  # the table holds the year now (the last load above)
                    new_read, old_read = [], []
                    for _ in range(repeat):
                        new_read.append(n / load_input_s(manager, days[0], days[-1]))
                        old_read.append(n / psycopg2_read_s(dsn, days[0], days[-1]))
                    rows.append(Figure(NAME, f"IO manager read (load_input), {case}", "rows/s", new_read, old_read,
                                       "psycopg2 fetchall into a DataFrame (the read before)"))
                if before:
                    rows.append(Figure(NAME, f"IO manager load, {case}, before (own CSV encoder, {BEFORE_COMMIT})",
                                       "rows/s", before, floor, "psql \\copy of the same CSV"))
                rows.append(Figure(NAME, f"landing files -> typed frame, {case} ({len(days)} file(s))", "rows/s",
                                   [n / parse_s]))
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    return rows

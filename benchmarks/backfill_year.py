"""Backfill of the daily pipeline (ingestion flights + weather, then the daily reports) over the
year (--quick: two weeks), on the harness's stack: the files are landed at once by the replay,
the sensors that would add runs are stopped, then `make backfill` launches it. Figures: wall
time from the launch to the last run's end, and the number of runs.

Floor: what the same work costs in Postgres alone, measured in the same run on the same
Postgres: `psql \\copy` of the range's raw flights and weather CSVs, plus the two daily
reports' SQL run directly over the whole range (the carrier summary is a dbt model: its SQL is read
from the model file with its few Jinja calls replaced by bound parameters)."""

import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

from figures import Figure, Target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code_locations" / "reporting" / "src"))
from flights_shared.asset_keys import FLIGHT_DATE_COLUMN, FLIGHTS, WEATHER  # noqa: E402
from ingestion.replay import source_lines_by_day  # noqa: E402
from reporting.defs.assets import daily  # noqa: E402
from reporting.defs.assets.upstream import table_identifier  # noqa: E402
from reporting.defs.dbt_project import DBT_PROJECT_DIR  # noqa: E402

NAME = "backfill"
RAW_TABLES = {
    "flights": """(year int, month int, day int, dep_time int, sched_dep_time int, dep_delay int, arr_time int,
      sched_arr_time int, arr_delay int, carrier text, flight int, tailnum text, origin text, dest text,
      air_time int, distance int, hour int, minute int, time_hour timestamptz)""",
    "weather": """(origin text, year int, month int, day int, hour int, temp float8, dewp float8, humid float8,
      wind_dir float8, wind_speed float8, wind_gust float8, precip float8, pressure float8, visib float8,
      time_hour timestamptz)""",
}
SOURCES = {"flights": "flights.csv.zip", "weather": "weather.csv"}


def land(stack, last: str) -> None:
    """The replay at full speed up to `last`, then stopped."""
    name = stack.compose("run", "-d", "--no-deps", "-e", "REPLAY_ENABLED=true", "-e", "REPLAY_SECONDS_PER_DAY=0",
                         "-e", f"REPLAY_END={last}", "replay").stdout.strip().splitlines()[-1]
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
            if "done, the last day" in logs:
                return
            time.sleep(1)
        raise RuntimeError(f"replay did not land up to {last} within 600 s")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def backfill(stack, first: str, last: str) -> tuple[float, list[dict], str, list[dict]]:
    begin = time.time()
    out = stack.make("backfill", f"FROM={first}", f"TO={last}").stdout
    backfill_id = re.search(r"backfill (\w+) launched", out).group(1)
    status = stack.client.wait_for(
        "the backfill", lambda: (b := stack.client.backfill(backfill_id))["status"] not in ("REQUESTED", "CANCELING") and b,
        timeout=3600, interval=2)["status"]
    runs = stack.client.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    timeline = sorted((run_timing(stack, r["runId"], begin) for r in runs), key=lambda t: t["created_s"])
    return max(t["ended_s"] for t in timeline if t["ended_s"] is not None), runs, status, timeline


RUN_TIMING = """query T($id: ID!) { runOrError(runId: $id) { ... on Run {
  creationTime startTime endTime assetSelection { path } tags { key value } } } }"""


def run_timing(stack, run_id: str, begin: float) -> dict:
    """When a backfill's run was created, started and ended (seconds after the launch), and what
    it covered: where a backfill's time goes (waits between runs, or the runs themselves)."""
    run = stack.client.query(RUN_TIMING, id=run_id)["runOrError"]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    since = lambda ts: None if ts is None else round(ts - begin, 2)  # noqa: E731
    return {"assets": sorted("/".join(a["path"]) for a in run["assetSelection"] or []),
            "partitions": (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")),
            "created_s": since(run["creationTime"]), "started_s": since(run["startTime"]),
            "ended_s": since(run["endTime"])}


def floor_s(stack, first: str, last: str) -> float:
    """Raw COPY of the range's CSVs + the daily reports' SQL over the range, same Postgres."""
    dsn = stack.postgres_dsn
    env = {"PGPASSWORD": dsn["password"], "PGOPTIONS": "-c client_min_messages=warning", "PATH": "/usr/bin:/bin"}
    base = ["psql", "-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"], "-d", dsn["dbname"], "-qAt",
            "-v", "ON_ERROR_STOP=1"]
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, filename in SOURCES.items():
            header, by_day = source_lines_by_day(filename)
            path = Path(tmp) / f"{dataset}.csv"
            path.write_text(header + "".join(line for d in sorted(by_day) if first <= d <= last for line in by_day[d]))
            table = f"bench_floor_{dataset}"
            subprocess.run([*base, "-c", f"DROP TABLE IF EXISTS {table}", "-c",
                            f"CREATE TABLE {table} {RAW_TABLES[dataset]}"], env=env, check=True)
            begin = time.perf_counter()
            subprocess.run([*base, "-c", f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER, NULL 'NA')"],
                           env=env, check=True)
            seconds += time.perf_counter() - begin
            subprocess.run([*base, "-c", f"DROP TABLE {table}"], env=env, check=True)
    params = {"start": dt.date.fromisoformat(first), "end": dt.date.fromisoformat(last) + dt.timedelta(days=1),
              "on_time": daily.ON_TIME_MINUTES,
              "low_visibility": daily.LOW_VISIBILITY_MILES, "breezy": daily.BREEZY_WIND_MPH,
              "windy": daily.WINDY_WIND_MPH}
    date = sql.Identifier(FLIGHT_DATE_COLUMN)
    queries = [daily_delay_summary_model_sql(),
               daily.WEATHER_DELAY_LINK_SQL.format(date=date, flights=table_identifier(FLIGHTS),
                                                   weather=table_identifier(WEATHER))]
    with psycopg2.connect(**dsn) as conn, conn.cursor() as cursor:
        for query in queries:
            begin = time.perf_counter()
            cursor.execute(query, params)
            cursor.fetchall()
            seconds += time.perf_counter() - begin
    conn.close()
    return seconds


def daily_delay_summary_model_sql() -> sql.Composable:
    """The dbt model's SELECT as psycopg2 SQL: comments dropped, its vars, source and window bounds
    bound as parameters. Refuses a model that grew Jinja this does not know."""
    text = (Path(DBT_PROJECT_DIR) / "models" / "daily" / "daily_delay_summary.sql").read_text()
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    for jinja, replacement in {
        "{{ var('on_time_minutes') }}": "%(on_time)s",
        "{{ source('ingestion', 'flights') }}": "{flights}",
        "{{ partition_window_bound('min_date') }}": "%(start)s",
        "{{ partition_window_bound('max_date') }}": "%(end)s",
    }.items():
        text = text.replace(jinja, replacement)
    if "{{" in text or "{%" in text:
        raise RuntimeError("daily_delay_summary.sql has Jinja the backfill floor does not render; update the benchmark")
    return sql.SQL(text).format(flights=table_identifier(FLIGHTS))


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    first, last = "2013-01-01", ("2013-01-14" if ctx.quick else "2013-12-31")
    stack.wait_quiet()
    stack.stop_sensor("ingestion", "landing_zone_sensor")
    stack.stop_sensor("reporting", "reporting_automation")
    land(stack, last)
    wall, runs, status, timeline = backfill(stack, first, last)
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    floor = [floor_s(stack, first, last) for _ in range(ctx.repeat or (1 if ctx.quick else 2))]
    extra = {"range": [first, last], "backfill_status": status, "runs_by_status": by_status, "runs": timeline}
    return [
        Figure(NAME, f"backfill {first}..{last}, launch -> last run ended", "s", [wall], floor,
               "raw COPY + reporting SQL, direct", Target("max_ratio", 3), extra=extra),
        Figure(NAME, f"backfill {first}..{last}, runs", "runs", [len(runs)], extra=extra),
    ]

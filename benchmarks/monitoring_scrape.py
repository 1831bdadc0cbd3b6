"""What the monitoring profile costs Postgres: the control-plane exporter
(deploy/monitoring/control_plane_exporter.py) against a Dagster instance with a history, on a
throwaway Postgres (postgres:17-trixie on 127.0.0.1; the stack's Postgres has neighbours).

History: RUNS finished runs (a fifth failed), a failed sensor tick per ten runs, written through
Dagster's instance API. Then:
  - first collection: the whole history, read once at the exporter's start (seconds);
  - steady collection: nothing new since the last one, what every MONITORING_COLLECT_INTERVAL_SECONDS
    costs on an idle platform; floor: the watchdog's own check (platform_status.evaluate), which
    runs as often;
  - collection after 10 new runs;
  - rows Postgres read (pg_stat_database tup_returned + tup_fetched) per steady collection, at the
    full history and at a quarter of it (incremental: it does not grow with the history), and
    against the watchdog's check (most of both is the catalog reads of the connections Dagster's
    storage opens per call);
  - a scrape (GET /metrics): Postgres transactions during 50 scrapes (0: scrapes read the cache)."""

import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg2

from figures import Figure, Target

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "deploy" / "ops"), str(REPO / "deploy" / "monitoring")]
import control_plane_exporter as exporter  # noqa: E402
import platform_status  # noqa: E402
from tests.deploy.monitoring import dagster_history as history  # noqa: E402

NAME = "monitoring_scrape"


def start_postgres() -> tuple[str, dict]:
    password = secrets.token_urlsafe(16)
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--label", "flights-platform.bench=monitoring",
         "-e", f"POSTGRES_PASSWORD={password}", "-p", "127.0.0.1::5432", "postgres:17-trixie"],
        capture_output=True, text=True, check=True).stdout.strip()
    port = subprocess.run(["docker", "port", container, "5432/tcp"], capture_output=True, text=True,
                          check=True).stdout.split()[0].rsplit(":", 1)[1]
    dsn = {"host": "127.0.0.1", "port": int(port), "user": "postgres", "password": password, "dbname": "postgres"}
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg2.connect(**dsn, connect_timeout=2).close()
            return container, dsn
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def db_stats(dsn: dict) -> tuple[int, int]:
    """(transactions, rows read) of the database so far, from a separate superuser connection."""
    conn = psycopg2.connect(**{**dsn, "dbname": "postgres"})
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT xact_commit + xact_rollback, tup_returned + tup_fetched FROM pg_stat_database "
                        "WHERE datname = %s", (dsn["dbname"],))
            return cur.fetchone()
    finally:
        conn.close()


def seed(instance, runs: int) -> None:
    for i in range(runs):
        location = ("ingestion", "reporting", "platform")[i % 3]
        history.add_run(instance, location, f"job_{i % 7}", "FAILURE" if i % 5 == 0 else "SUCCESS", duration=10 + i % 50)
        if i % 10 == 0:
            history.add_failed_tick(instance, location, f"sensor_{i % 4}")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def rows_per_call(fn, pg: dict, repeat: int = 5) -> float:
    """Rows Postgres read per call of fn (its statistics are flushed about once a second)."""
    time.sleep(1.5)
    before = db_stats(pg)[1]
    for _ in range(repeat):
        fn()
    time.sleep(1.5)
    return (db_stats(pg)[1] - before) / repeat


def run(ctx) -> list[Figure]:
    import os

    runs = 400 if ctx.quick else 2000
    repeat = ctx.repeat or (10 if ctx.quick else 30)
    container, superuser = start_postgres()
    saved = dict(os.environ)
    try:
        pg = history.create_database(superuser)
        with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as home:
            os.environ.update(history.write_dagster_home(Path(home) / "home", pg))
            from dagster import DagsterInstance

            instance = DagsterInstance.get()
            kwargs = {k: pg[k] for k in ("host", "port", "dbname", "user", "password")}

            def collector_for():
                return exporter.ControlPlaneCollector(instance, lambda: psycopg2.connect(**kwargs),
                                                      exporter.Metrics(), env={})

            seed(instance, runs // 4)
            quarter = collector_for()
            quarter.collect()
            rows_quarter = [rows_per_call(quarter.collect, pg) for _ in range(3)]
            seed(instance, runs - runs // 4)

            collector = collector_for()
            first = timed(collector.collect, 1)
            steady = timed(collector.collect, repeat)
            thresholds = platform_status.Thresholds.from_env({})
            watchdog = timed(lambda: platform_status.evaluate(instance, thresholds), repeat)
            rows_full = [rows_per_call(collector.collect, pg) for _ in range(3)]
            rows_watchdog = [rows_per_call(lambda: platform_status.evaluate(instance, thresholds), pg) for _ in range(3)]

            def ten_new_runs_then_collect():
                seed(instance, 10)
                start = time.perf_counter()
                collector.collect()
                return (time.perf_counter() - start) * 1000

            with_new = [ten_new_runs_then_collect() for _ in range(max(3, repeat // 3))]

            server, thread = exporter.start_http_server(0, addr="127.0.0.1", registry=collector.metrics.registry)
            port = server.server_address[1]
            url = f"http://127.0.0.1:{port}/metrics"
            time.sleep(1.5)
            xacts_before = db_stats(pg)[0]
            scrapes = timed(lambda: urllib.request.urlopen(url, timeout=5).read(), 50)
            time.sleep(1.5)
            # db_stats' own transaction is counted in the database "postgres", not this one.
            scrape_xacts = db_stats(pg)[0] - xacts_before
            server.shutdown()
            instance.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)

    extra = {"runs": runs, "events": 2 * runs}
    return [
        Figure(NAME, f"first collection ({runs} runs of history)", "ms", first, extra=extra),
        Figure(NAME, "steady collection, nothing new (p50)", "ms", steady, watchdog,
               "the watchdog's check (platform_status.evaluate)", Target("max_ratio", 3.0), extra=extra),
        Figure(NAME, "collection after 10 new runs (p50)", "ms", with_new, steady, "steady collection", extra=extra),
        Figure(NAME, "rows Postgres reads per steady collection", "rows", rows_full, rows_quarter,
               f"same with {runs // 4} runs of history", Target("max_ratio", 1.2), extra=extra),
        Figure(NAME, "rows Postgres reads per steady collection, vs the watchdog", "rows", rows_full, rows_watchdog,
               "the watchdog's check", Target("max_ratio", 1.5), extra=extra),
        Figure(NAME, "scrape of /metrics (p50)", "ms", scrapes, extra={**extra, "postgres_transactions_in_50_scrapes": scrape_xacts}),
        Figure(NAME, "Postgres transactions per scrape", "transactions", [scrape_xacts / 50], target=Target("max_abs", 0.01)),
    ]


if __name__ == "__main__":
    # On its own (no stack): `uv run --frozen python benchmarks/monitoring_scrape.py [--quick]`
    # writes results/<date>-monitoring-scrape.{json,md}; `make bench` runs it with the others.
    import datetime as dt
    import json
    import os
    from types import SimpleNamespace

    from figures import markdown

    quick = "--quick" in sys.argv
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rows = [f.as_dict() for f in run(SimpleNamespace(quick=quick, repeat=None))]
    stem = REPO / "benchmarks" / "results" / (dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") + "-monitoring-scrape")
    result = {"started": started, "quick": quick, "machine": {"cpus": os.cpu_count()}, "figures": rows}
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows)
    stem.with_suffix(".md").write_text(f"# Monitoring scrape cost {started}{' (--quick)' if quick else ''}\n\n"
                                       f"{os.cpu_count()} CPUs; medians of repetitions.\n\n{table}")
    print(table)

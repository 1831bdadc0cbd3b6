"""Load on a private copy of the stack: a backfill that keeps the run queue at its concurrency limit
while Postgres connections are sampled per role. Proves the connection budget holds (never `too
many clients`, never over a role's limit) and that a loaded queue drains cleanly: no run left
STARTING/STARTED/CANCELING, every partition materialized once, no concurrency slot kept."""

import re
import secrets
import subprocess
import threading
import time

import pytest

from tests.e2e.compose_stack import LOCATION_NAMES, ComposeStack
from tests.e2e.dagster_graphql import DagsterGraphQL
from tests.e2e.test_faults import bring_up

pytestmark = pytest.mark.compose

FIRST, LAST = "2013-01-01", "2013-02-11"  # six weeks: six week-runs of ingestion, before 02-12's bad weather
MAX_RUNS, MAX_BACKFILL_RUNS = 6, 4
ROLES = ("dagster", "warehouse", "postgres")
STUCK = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
FLIGHTS, WEATHER = ["ingestion", "flights"], ["ingestion", "weather"]
DAILY = [["reporting", "daily_delay_summary"], ["reporting", "weather_delay_link"]]


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    stack = ComposeStack(f"flights-e2e-{secrets.token_hex(3)}", tmp_path_factory.mktemp("load"))
    # Nothing lands until the sensors that would run each day on their own are stopped.
    stack.set_env(REPLAY_ENABLED="false", DAGSTER_MAX_CONCURRENT_RUNS=str(MAX_RUNS),
                  DAGSTER_MAX_CONCURRENT_BACKFILL_RUNS=str(MAX_BACKFILL_RUNS))
    failed_before = request.session.testsfailed
    try:
        bring_up(stack)
        yield stack
        if request.session.testsfailed > failed_before:
            print(f"\n===== compose logs of {stack.project} =====\n{stack.logs(300)}")
    except Exception:
        print(stack.logs(300))
        raise
    finally:
        stack.down()


@pytest.fixture(scope="module")
def dagster(stack) -> DagsterGraphQL:
    client = DagsterGraphQL(stack.base_url, auth=stack.admin, timeout=60)
    client.wait_locations_loaded(LOCATION_NAMES, timeout=300)
    return client


class Sampler(threading.Thread):
    """Connections per role (pg_stat_activity), runs in flight and the daemon's health, every 2 s."""

    def __init__(self, stack: ComposeStack, dagster: DagsterGraphQL, backfill_tag: str):
        super().__init__(daemon=True)
        self.stack, self.dagster, self.tag = stack, dagster, backfill_tag
        self.stop = threading.Event()
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.peak_running = 0
        self.seconds_at_limit = 0.0
        self.daemon_health: set[str] = set()
        self.errors: list[str] = []

    def run(self) -> None:
        last = time.monotonic()
        while not self.stop.is_set():
            try:
                out = self.stack.psql("postgres", "SELECT usename, count(*) FROM pg_stat_activity "
                                                  "WHERE usename IS NOT NULL GROUP BY 1")
                counts = {role: int(n) for role, n in (line.split("|") for line in out.splitlines())}
                for role, n in counts.items():
                    self.peak[role] = max(self.peak.get(role, 0), n)
                self.peak_total = max(self.peak_total, sum(counts.values()))
                running = [r for r in self.dagster.runs(tags=[{"key": "dagster/backfill", "value": self.tag}])
                           if r["status"] in ("STARTING", "STARTED")]
                now = time.monotonic()
                if len(running) >= MAX_BACKFILL_RUNS:
                    self.seconds_at_limit += now - last
                last = now
                self.peak_running = max(self.peak_running, len(running))
                health = subprocess.run(
                    ["docker", "inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}",
                     self.stack.compose("ps", "-q", "daemon").stdout.strip()],
                    text=True, capture_output=True).stdout.strip()
                self.daemon_health.add(health)
            except Exception as exc:  # a sample lost under load is reported, not fatal
                self.errors.append(str(exc)[:200])
            self.stop.wait(2)


def peak_overlap(runs: list[dict]) -> int:
    """The most runs executing at the same moment, from their start and end times (an end at the
    very moment another starts does not overlap it)."""
    started = [r for r in runs if r["startTime"] is not None]
    edges = sorted([(r["startTime"], 1) for r in started] + [(r["endTime"], -1) for r in started if r["endTime"] is not None])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_peak_overlap_counts_runs_executing_together():
    runs = [{"startTime": 0, "endTime": 10}, {"startTime": 1, "endTime": 3}, {"startTime": 3, "endTime": 5},
            {"startTime": 4, "endTime": 6}, {"startTime": 11, "endTime": None}]
    assert peak_overlap(runs) == 3


def test_backfill_at_the_concurrency_limit_keeps_postgres_and_slots_healthy(stack, dagster):
    for location, sensor in (("ingestion", "landing_zone_sensor"), ("reporting", "reporting_automation")):
        assert dagster.stop_sensor(location, sensor) == "STOPPED"
    stack.set_env(REPLAY_ENABLED="true", REPLAY_SECONDS_PER_DAY="0", REPLAY_END=LAST)
    stack.compose("up", "-d", "--no-deps", "replay")
    landed = dagster.wait_for(f"the replay landing {FIRST}..{LAST}",
                              lambda: LAST in (f := stack.landed("flights")) and LAST in stack.landed("weather") and f,
                              timeout=300, interval=3)
    days = sorted(landed)
    assert days[0] == FIRST and len(days) == 42, days
    limits = dict(line.split("|") for line in stack.psql(
        "postgres", "SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname IN ('dagster', 'warehouse')").splitlines())
    max_connections = int(stack.psql("postgres", "SHOW max_connections"))

    out = stack.make("backfill", f"FROM={FIRST}", f"TO={LAST}").stdout
    backfill_id = re.search(r"backfill (\w+) launched", out).group(1)
    sampler = Sampler(stack, dagster, backfill_id)
    started = time.monotonic()
    sampler.start()
    try:
        done = dagster.wait_for(
            f"backfill {backfill_id}",
            lambda: (b := dagster.backfill(backfill_id))["status"] not in ("REQUESTED", "CANCELING") and b,
            timeout=900, interval=3,
        )
    finally:
        sampler.stop.set()
        sampler.join(timeout=30)
    took = time.monotonic() - started
    ended_wall = time.time()
    runs = dagster.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    print(f"\nLOAD | backfill {FIRST}..{LAST}: {len(runs)} runs in {took:.0f} s, {done['status']}; "
          f"peak running {sampler.peak_running} (limit {MAX_BACKFILL_RUNS}), {sampler.seconds_at_limit:.0f} s at the limit; "
          f"peak connections {sampler.peak} total {sampler.peak_total}/{max_connections} (role limits {limits}); "
          f"daemon health seen {sorted(sampler.daemon_health)}; sampler errors {len(sampler.errors)}")

    pg_log = stack.compose("logs", "--no-color", "postgres", check=False).stdout
    assert "too many clients" not in pg_log and "remaining connection slots" not in pg_log
    assert not re.search(r"too many connections for role", pg_log), re.findall(r".*too many connections.*", pg_log)[:3]
    for role in ("dagster", "warehouse"):
        assert sampler.peak.get(role, 0) <= int(limits[role]), (role, sampler.peak, limits)
    assert sampler.peak_total < max_connections
    # From the runs' own start and end times: sampling every 2 s missed short overlaps on a quiet host.
    overlap = peak_overlap(runs)
    assert sampler.peak_running <= MAX_BACKFILL_RUNS and overlap == MAX_BACKFILL_RUNS, \
        f"the backfill never filled the queue to its limit: {overlap} runs at once at most"

    assert done["status"] == "COMPLETED_SUCCESS", done
    assert all(r["status"] == "SUCCESS" for r in runs), [(r["runId"], r["status"]) for r in runs]
    assert not [r for r in dagster.runs() if r["status"] in STUCK]
    for path in (FLIGHTS, WEATHER, *DAILY):
        found = dagster.materialized_partitions(path, days)
        backfilled = {d: [r for r in ids if r in {run["runId"] for run in runs}] for d, ids in found.items()}
        wrong = {d: backfilled.get(d) for d in days if len(backfilled.get(d, [])) != 1}
        assert not wrong, (path, wrong)
    counts = dict(line.split("|") for line in stack.psql(
        "warehouse", "SELECT flight_date, count(*) FROM ingestion.flights GROUP BY 1").splitlines())
    assert {d: int(counts.get(d, 0)) for d in days} == {d: n - 1 for d, n in landed.items()}

    def slots_free():
        claimed = {k: v for k, v in dagster.claimed_concurrency_slots().items() if v}
        in_db = stack.psql("dagster", "SELECT count(*) FROM concurrency_slots WHERE run_id IS NOT NULL")
        return (not claimed and in_db == "0") and {"graphql": claimed, "db": in_db}
    dagster.wait_for("every concurrency slot released", slots_free, timeout=120, interval=3)
    print(f"LOAD | slots all free {time.time() - ended_wall:.0f} s after the backfill ended")

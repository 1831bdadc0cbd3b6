#!/usr/bin/env python3
"""Health of the Dagster platform, read from the instance storage: daemon heartbeat age per
required daemon type, the run queue, and runs stuck in STARTING/CANCELING.

Dagster's own UI waits 1800 s before calling a silent daemon unhealthy; the daemon verdict here is
platform_core.daemon_health's, the same the patched UI and the daemon's healthcheck give, with
thresholds short enough to notice a stopped daemon within a minute. `make status` runs it once;
the `watchdog` service (platform_watchdog.py) runs it in a loop and alerts on transitions.

Exit codes: 0 healthy, 1 unhealthy (or a malformed setting), 2 the storage cannot be reached (or
its dagster.yaml cannot be read). `--json` prints the same report for machines. Runs in the
instance image (flights-platform/dagster), whose entrypoint renders $DAGSTER_HOME/dagster.yaml;
reads the storage with psycopg2 and never imports Dagster."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from platform_core import daemon_health, dagster_storage, settings

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_UNREACHABLE = 0, 1, 2

# Run monitoring fails runs stuck in STARTING/CANCELING after 180 s (dagster.yaml); warn before.
STUCK_RUN_ALERT = settings.seconds(
    "STUCK_RUN_ALERT_SECONDS", 120, doc="a run in STARTING/CANCELING longer than this is reported stuck")
# 0 = off: a backfill legitimately keeps runs queued for hours behind the concurrency limits.
QUEUED_RUN_ALERT = settings.seconds(
    "QUEUED_RUN_ALERT_SECONDS", 0, doc="the oldest QUEUED run waiting longer than this is reported; 0 = off")
DAGSTER_HOME = settings.text("DAGSTER_HOME", doc="the instance directory (read by Dagster; named in messages)")


@dataclass(frozen=True)
class Thresholds:
    heartbeat_seconds: float = daemon_health.Thresholds.heartbeat_seconds
    thread_seconds: float = daemon_health.Thresholds.thread_seconds
    stuck_seconds: float = STUCK_RUN_ALERT.default
    queued_seconds: float = QUEUED_RUN_ALERT.default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Thresholds:
        daemon = daemon_health.Thresholds.from_env(env)
        return cls(heartbeat_seconds=daemon.heartbeat_seconds, thread_seconds=daemon.thread_seconds,
                   stuck_seconds=STUCK_RUN_ALERT.get(env), queued_seconds=QUEUED_RUN_ALERT.get(env))

    @property
    def daemon(self) -> daemon_health.Thresholds:
        return daemon_health.Thresholds(self.heartbeat_seconds, self.thread_seconds)


@dataclass(frozen=True)
class InFlightRun:
    run_id: str
    job_name: str
    status: str  # STARTING or CANCELING
    since: float  # epoch seconds of the last status change


@dataclass(frozen=True)
class Snapshot:
    """The raw facts, read from storage in one go; classification is a pure function of it."""

    now: float
    required_daemons: list[str]
    heartbeats: dict[str, float]  # daemon type -> epoch seconds of its latest heartbeat
    queued_count: int
    oldest_queued: float | None  # epoch seconds the oldest QUEUED run was created
    in_flight: list[InFlightRun] = field(default_factory=list)


@dataclass
class Report:
    healthy: bool
    state: str  # healthy | unhealthy | unreachable
    reasons: list[str]
    daemons: list[dict]
    queue: dict
    stuck_runs: list[dict]
    thresholds: dict
    checked_at: float

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def exit_code(self) -> int:
        return {"healthy": EXIT_HEALTHY, "unhealthy": EXIT_UNHEALTHY}.get(self.state, EXIT_UNREACHABLE)

    @property
    def stale_daemons(self) -> list[str]:
        return [d["daemon_type"] for d in self.daemons if not d["healthy"]]


def classify(snapshot: Snapshot, thresholds: Thresholds) -> Report:
    """Healthy unless daemon_health says otherwise (the process silent, or one daemon type silent
    beyond the thread threshold), a run sits in STARTING/CANCELING beyond the stuck threshold, or
    (when switched on) the oldest queued run waits beyond the queued threshold."""
    now = snapshot.now
    reasons: list[str] = []

    ages = {t: max(0.0, now - snapshot.heartbeats[t]) for t in snapshot.required_daemons
            if snapshot.heartbeats.get(t) is not None}
    verdict = daemon_health.judge(ages, snapshot.required_daemons, thresholds.daemon)
    if not verdict.healthy:
        reasons.append(verdict.message)
    daemons = [{"daemon_type": t, "last_heartbeat": snapshot.heartbeats.get(t),
                "age_seconds": None if t not in ages else round(ages[t], 1),
                "healthy": verdict.type_healthy(t)}
               for t in snapshot.required_daemons]

    oldest_age = None if snapshot.oldest_queued is None else max(0.0, now - snapshot.oldest_queued)
    queue = {"depth": snapshot.queued_count,
             "oldest_age_seconds": None if oldest_age is None else round(oldest_age, 1)}
    if thresholds.queued_seconds and oldest_age is not None and oldest_age > thresholds.queued_seconds:
        reasons.append(
            f"run queue: {snapshot.queued_count} run(s) QUEUED, the oldest for {oldest_age:.0f}s "
            f"(threshold {thresholds.queued_seconds:.0f}s)"
        )

    stuck_runs = []
    for run in snapshot.in_flight:
        age = max(0.0, now - run.since)
        if age > thresholds.stuck_seconds:
            stuck_runs.append({"run_id": run.run_id, "job_name": run.job_name,
                               "status": run.status, "age_seconds": round(age, 1)})
            reasons.append(f"run {run.run_id} ({run.job_name}) {run.status} for {age:.0f}s "
                           f"(threshold {thresholds.stuck_seconds:.0f}s)")

    return Report(
        healthy=not reasons,
        state="healthy" if not reasons else "unhealthy",
        reasons=reasons,
        daemons=daemons,
        queue=queue,
        stuck_runs=stuck_runs,
        thresholds=asdict(thresholds),
        checked_at=now,
    )


def unreachable(problem: str, thresholds: Thresholds, now: float | None = None) -> Report:
    return Report(healthy=False, state="unreachable", reasons=[problem], daemons=[],
                  queue={"depth": None, "oldest_age_seconds": None}, stuck_runs=[],
                  thresholds=asdict(thresholds), checked_at=time.time() if now is None else now)


def storage_target(env: Mapping[str, str] | None = None) -> str:
    """Where the instance's storage is, for messages (never the password)."""
    return dagster_storage.describe(env)


def describe_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


# Dagster's storage, read with psycopg2: importing Dagster to ask the same cost the watchdog ~75
# MiB and ~1 CPU-s of every start. The tables and columns are Dagster's run storage
# (dagster/_core/storage/runs/schema.py: daemon_heartbeats, runs); timestamps are naive UTC.
# tests/deploy/test_platform_status.py writes through Dagster's own API and reads them back here.
HEARTBEATS_SQL = "SELECT daemon_type, EXTRACT(EPOCH FROM timestamp AT TIME ZONE 'UTC') FROM daemon_heartbeats"
QUEUED_SQL = ("SELECT count(*), EXTRACT(EPOCH FROM min(create_timestamp) AT TIME ZONE 'UTC') FROM runs "
              "WHERE status = 'QUEUED'")
IN_FLIGHT_SQL = ("SELECT run_id, pipeline_name, status, EXTRACT(EPOCH FROM update_timestamp AT TIME ZONE 'UTC') "
                 "FROM runs WHERE status = ANY(%s) ORDER BY update_timestamp")
IN_FLIGHT_STATUSES = ["STARTING", "CANCELING"]


def required_daemons() -> list[str]:
    """The daemon types this instance's dagster.yaml runs (platform_core.daemon_health's rule)."""
    home = DAGSTER_HOME.get()
    if not home:
        raise settings.SettingError("DAGSTER_HOME is not set: it names the directory holding dagster.yaml")
    return daemon_health.instance_required_daemon_types(home)


def connect(application_name: str = "platform-status"):
    import psycopg2

    conn = psycopg2.connect(**dagster_storage.connect_kwargs(), connect_timeout=5, application_name=application_name)
    conn.autocommit = True  # single reads: no transaction left open between checks
    return conn


def read_snapshot(conn, required: list[str]) -> Snapshot:
    now = time.time()
    with conn.cursor() as cur:
        cur.execute(HEARTBEATS_SQL)
        heartbeats = {daemon_type: float(epoch) for daemon_type, epoch in cur.fetchall()}
        cur.execute(QUEUED_SQL)
        queued_count, oldest = cur.fetchone()
        cur.execute(IN_FLIGHT_SQL, (IN_FLIGHT_STATUSES,))
        in_flight = [InFlightRun(run_id=run_id, job_name=job, status=status, since=float(since))
                     for run_id, job, status, since in cur.fetchall()]
    return Snapshot(
        now=now,
        required_daemons=list(required),
        heartbeats=heartbeats,
        queued_count=int(queued_count),
        oldest_queued=None if oldest is None else float(oldest),
        in_flight=in_flight,
    )


def storage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the storage is not there", as opposed to a bug in this script."""
    import psycopg2

    return (psycopg2.Error, OSError)


def unreachable_storage(exc: BaseException, thresholds: Thresholds) -> Report:
    return unreachable(f"cannot reach the Dagster storage ({storage_target()}): {describe_error(exc)}", thresholds)


class StatusReader:
    """Checks on one connection, opened on first use and again after the storage went away."""

    def __init__(self, application_name: str = "platform-status"):
        self.application_name = application_name
        self.conn = None
        self.required: list[str] | None = None

    def evaluate(self, thresholds: Thresholds) -> Report:
        """One check; a missing config or storage becomes an `unreachable` report, never an exception."""
        if self.required is None:
            try:
                self.required = required_daemons()
            except Exception as exc:  # noqa: BLE001 - no DAGSTER_HOME, bad dagster.yaml: "cannot check"
                return unreachable(f"cannot read the Dagster instance config (DAGSTER_HOME={DAGSTER_HOME.get()!r}): "
                                   f"{describe_error(exc)}", thresholds)
        # A connection kept from before a Postgres restart fails on its first query: one retry on
        # a new one, so a restart the storage already came back from is not reported.
        for _ in range(2 if self.conn is not None else 1):
            try:
                if self.conn is None:
                    self.conn = connect(self.application_name)
                return classify(read_snapshot(self.conn, self.required), thresholds)
            except storage_errors() as exc:
                self.close()
                error = exc
        return unreachable_storage(error, thresholds)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.conn = None


def check_once(thresholds: Thresholds) -> Report:
    reader = StatusReader()
    try:
        return reader.evaluate(thresholds)
    finally:
        reader.close()


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f}s ago"


def render_table(report: Report) -> str:
    lines = [f"Dagster platform: {report.state.upper()}"]
    if report.daemons:
        lines.append(f"  {'DAEMON':<26} {'LAST HEARTBEAT':<16} STATUS")
        for d in report.daemons:
            status = "ok" if d["healthy"] else "STALE"
            lines.append(f"  {d['daemon_type']:<26} {_age(d['age_seconds']):<16} {status}")
    if report.queue["depth"] is not None:
        oldest = report.queue["oldest_age_seconds"]
        lines.append(f"  run queue: {report.queue['depth']} QUEUED"
                     + (f", oldest waiting {oldest:.0f}s" if oldest is not None else ""))
        lines.append(f"  runs STARTING/CANCELING over {report.thresholds['stuck_seconds']:.0f}s: "
                     f"{len(report.stuck_runs)}")
    for reason in report.reasons:
        lines.append(f"  UNHEALTHY: {reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        thresholds = Thresholds.from_env()
    except settings.SettingError as exc:
        raise SystemExit(f"platform_status: {exc}") from None
    report = check_once(thresholds)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_table(report))
    if report.state == "unreachable" and not args.json:
        print(f"platform_status: {report.reasons[0]}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

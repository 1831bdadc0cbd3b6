#!/usr/bin/env python3
"""Health of the Dagster platform, read from the instance storage: daemon heartbeat age per
required daemon type, the run queue, and runs stuck in STARTING/CANCELING.

Dagster's own UI waits 1800 s before calling a silent daemon unhealthy; this check uses
thresholds short enough to notice a stopped daemon within a minute. `make status` runs it once;
the `watchdog` service (platform_watchdog.py) runs it in a loop and alerts on transitions.

Exit codes: 0 healthy, 1 unhealthy, 2 the storage cannot be reached (or the instance cannot be
loaded). `--json` prints the same report for machines. Runs in the instance image
(flights-platform/dagster), whose entrypoint renders $DAGSTER_HOME/dagster.yaml."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_UNREACHABLE = 0, 1, 2

# Each daemon type (thread) heartbeats every 30 s, after its next yield: under load one type can
# be a minute late while the process is fine. A stopped process silences all of them, so "down"
# is judged on the NEWEST heartbeat of any type: 40 s of that silence plus one watchdog interval
# (15 s) alerts a stopped daemon within 60 s even if it heartbeated just before it stopped, and a
# live daemon (8 types, staggered) never comes close. One silent type is a stuck thread, judged
# on its own heartbeat with a longer threshold.
DEFAULT_HEARTBEAT_SECONDS = 40.0
DEFAULT_THREAD_SECONDS = 300.0
# Run monitoring fails runs stuck in STARTING/CANCELING after 180 s (dagster.yaml); warn before.
DEFAULT_STUCK_SECONDS = 120.0
# 0 = off: a backfill legitimately keeps runs queued for hours behind the concurrency limits.
DEFAULT_QUEUED_SECONDS = 0.0


@dataclass(frozen=True)
class Thresholds:
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    thread_seconds: float = DEFAULT_THREAD_SECONDS
    stuck_seconds: float = DEFAULT_STUCK_SECONDS
    queued_seconds: float = DEFAULT_QUEUED_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Thresholds:
        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None
            if value < 0:
                raise SystemExit(f"{name} must not be negative, got {raw!r}")
            return value

        return cls(
            heartbeat_seconds=seconds("DAEMON_HEARTBEAT_ALERT_SECONDS", DEFAULT_HEARTBEAT_SECONDS),
            thread_seconds=seconds("DAEMON_THREAD_ALERT_SECONDS", DEFAULT_THREAD_SECONDS),
            stuck_seconds=seconds("STUCK_RUN_ALERT_SECONDS", DEFAULT_STUCK_SECONDS),
            queued_seconds=seconds("QUEUED_RUN_ALERT_SECONDS", DEFAULT_QUEUED_SECONDS),
        )


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
    """Healthy unless the daemon process is silent (no required type heartbeated within the
    heartbeat threshold), one daemon type is silent beyond the thread threshold, a run sits in
    STARTING/CANCELING beyond the stuck threshold, or (when switched on) the oldest queued run
    waits beyond the queued threshold."""
    now = snapshot.now
    reasons: list[str] = []

    ages = {t: (None if snapshot.heartbeats.get(t) is None else max(0.0, now - snapshot.heartbeats[t]))
            for t in snapshot.required_daemons}
    known = [a for a in ages.values() if a is not None]
    newest = min(known) if known else None
    process_alive = newest is not None and newest <= thresholds.heartbeat_seconds
    if snapshot.required_daemons and not process_alive:
        reasons.append(
            "dagster-daemon not heartbeating: "
            + ("no daemon type has ever heartbeated" if newest is None else
               f"the newest heartbeat of any daemon type is {newest:.0f}s old")
            + f" (threshold {thresholds.heartbeat_seconds:.0f}s); schedules, sensors and the run queue "
            f"are stalled (is the `daemon` service running?) [{', '.join(snapshot.required_daemons)}]"
        )

    daemons = []
    silent_threads: list[str] = []
    for daemon_type, age in ages.items():
        thread_ok = age is not None and age <= thresholds.thread_seconds
        daemons.append({"daemon_type": daemon_type, "last_heartbeat": snapshot.heartbeats.get(daemon_type),
                        "age_seconds": None if age is None else round(age, 1),
                        "healthy": process_alive and thread_ok})
        if process_alive and not thread_ok:
            silent_threads.append(daemon_type if age is None else f"{daemon_type} ({age:.0f}s)")
    if silent_threads:
        reasons.append(
            f"dagster-daemon thread(s) stuck: no heartbeat within {thresholds.thread_seconds:.0f}s from "
            f"{', '.join(silent_threads)} while the other daemon types are alive"
        )

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


def storage_target(env: Mapping[str, str] = os.environ) -> str:
    """Where the instance's storage is, for messages (never the password)."""
    return (f"Postgres {env.get('DAGSTER_PG_USER', '?')}@{env.get('DAGSTER_PG_HOST', '?')}:"
            f"{env.get('DAGSTER_PG_PORT', '5432')}/{env.get('DAGSTER_PG_DB', '?')}")


def describe_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def load_instance():
    from dagster import DagsterInstance

    return DagsterInstance.get()


def read_snapshot(instance) -> Snapshot:
    from dagster import DagsterRunStatus, RunsFilter

    now = time.time()
    required = list(instance.get_required_daemon_types())
    heartbeats = {t: hb.timestamp for t, hb in instance.get_daemon_heartbeats().items()}
    queued = RunsFilter(statuses=[DagsterRunStatus.QUEUED])
    queued_count = instance.get_runs_count(filters=queued)
    oldest = instance.get_run_records(filters=queued, limit=1, order_by="create_timestamp", ascending=True)
    in_flight = [
        InFlightRun(run_id=r.dagster_run.run_id, job_name=r.dagster_run.job_name,
                    status=r.dagster_run.status.value, since=r.update_timestamp.timestamp())
        for r in instance.get_run_records(
            filters=RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]))
    ]
    return Snapshot(
        now=now,
        required_daemons=required,
        heartbeats=heartbeats,
        queued_count=queued_count,
        oldest_queued=oldest[0].create_timestamp.timestamp() if oldest else None,
        in_flight=in_flight,
    )


def storage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the storage is not there", as opposed to a bug in this script."""
    import sqlalchemy.exc

    errors: list[type[BaseException]] = [sqlalchemy.exc.SQLAlchemyError, OSError]
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:
        pass
    try:
        from dagster_postgres.utils import DagsterPostgresException

        errors.append(DagsterPostgresException)
    except ImportError:
        pass
    return tuple(errors)


def evaluate(instance, thresholds: Thresholds) -> Report:
    """One check against an already loaded instance; storage failures become an
    `unreachable` report instead of an exception."""
    try:
        return classify(read_snapshot(instance), thresholds)
    except storage_errors() as exc:
        return unreachable(f"cannot reach the Dagster storage ({storage_target()}): {describe_error(exc)}",
                           thresholds)


def check_once(thresholds: Thresholds) -> Report:
    try:
        instance = load_instance()
    except storage_errors() as exc:
        return unreachable(f"cannot reach the Dagster storage ({storage_target()}): {describe_error(exc)}",
                           thresholds)
    except Exception as exc:  # noqa: BLE001 - no DAGSTER_HOME, bad dagster.yaml: also "cannot check"
        return unreachable(f"cannot load the Dagster instance (DAGSTER_HOME={os.environ.get('DAGSTER_HOME')!r}): "
                           f"{describe_error(exc)}", thresholds)
    try:
        return evaluate(instance, thresholds)
    finally:
        instance.dispose()


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
    report = check_once(Thresholds.from_env())
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_table(report))
    if report.state == "unreachable" and not args.json:
        print(f"platform_status: {report.reasons[0]}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""One verdict on the daemon's health, shared by the UI (the webserver patch), `make status` and
the watchdog, and the daemon container's healthcheck, so no two of them can disagree.

Every daemon type is a thread of the one `dagster-daemon` process and heartbeats every 30 s,
after its next yield: on a loaded host one type can be a minute late while the process is fine,
but a stopped process silences them all. So the process is judged on the NEWEST heartbeat of any
required type, and a single type on its own heartbeat against a longer threshold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from platform_core import settings

HEARTBEAT_TOLERANCE = settings.seconds(
    "DAEMON_HEARTBEAT_TOLERANCE_SECONDS", 40,
    doc="the daemon process is down when no required daemon type heartbeated for this long; with "
    "the watchdog's 15 s interval a stopped daemon is alerted and shown unhealthy within 60 s, "
    "while a live one (~8 types, every 30 s, staggered) never comes close",
)  # fmt: skip
THREAD_HEARTBEAT_TOLERANCE = settings.seconds(
    "DAEMON_THREAD_HEARTBEAT_TOLERANCE_SECONDS", 300,
    doc="one daemon type (thread) is stuck when its own heartbeat is this old while the process is alive",
)  # fmt: skip


@dataclass(frozen=True)
class Thresholds:
    heartbeat_seconds: float = HEARTBEAT_TOLERANCE.default
    thread_seconds: float = THREAD_HEARTBEAT_TOLERANCE.default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Thresholds:
        return cls(HEARTBEAT_TOLERANCE.get(env), THREAD_HEARTBEAT_TOLERANCE.get(env))


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    process_down: bool
    stale: tuple[str, ...]  # required types judged unhealthy: all of them while the process is down
    message: str
    newest_age: float | None  # seconds since the newest heartbeat of any required type

    def type_healthy(self, daemon_type: str) -> bool:
        return daemon_type not in self.stale


def judge(ages: Mapping[str, float | None], required: Iterable[str] | None, thresholds: Thresholds) -> Verdict:
    """`ages`: seconds since each daemon type's latest heartbeat (missing or None: never).
    `required=None` means every type in `ages` (the healthcheck cannot ask Dagster which are);
    then no heartbeat at all is a daemon that never started."""
    types = sorted(ages) if required is None else list(required)
    clean = {t: None if ages.get(t) is None else max(0.0, float(ages[t])) for t in types}
    known = [age for age in clean.values() if age is not None]
    newest = min(known) if known else None

    if (types or required is None) and (newest is None or newest > thresholds.heartbeat_seconds):
        silence = ("no daemon type has ever heartbeated" if newest is None
                   else f"the newest heartbeat of any daemon type is {newest:.0f}s old")
        message = (
            f"dagster-daemon not heartbeating: {silence} (threshold {thresholds.heartbeat_seconds:.0f}s); "
            "schedules, sensors and the run queue are stalled (is the `daemon` service running?)"
            + (f" [{', '.join(types)}]" if types else "")
        )
        return Verdict(False, True, tuple(types), message, newest)

    stuck = [t for t, age in clean.items() if age is None or age > thresholds.thread_seconds]
    if stuck:
        named = ", ".join(t if clean[t] is None else f"{t} ({clean[t]:.0f}s)" for t in stuck)
        message = (f"dagster-daemon thread(s) stuck: no heartbeat within {thresholds.thread_seconds:.0f}s "
                   f"from {named} while the other daemon types are alive")
        return Verdict(False, False, tuple(stuck), message, newest)

    oldest = max(known, default=0.0)
    return Verdict(True, False, (), f"dagster-daemon live: {len(known)} daemon type(s) heartbeating, "
                   f"the oldest {oldest:.0f}s ago", newest)


def required_daemon_types(instance_config: Mapping | None) -> list[str]:
    """The daemon types an instance with this dagster.yaml (parsed) runs, by Dagster's own rule
    (`DagsterInstance.get_required_daemon_types`, dagster/_core/instance/methods/daemon_methods.py,
    and the settings' defaults beside it), so the watchdog and `make status` can tell a type that
    never heartbeated without importing Dagster (~75 MiB and ~1 CPU-s a process).
    tests/deploy/platform_core/test_daemon_health.py compares it with Dagster's answer, so an upgrade that
    moves the rule fails there."""
    config = instance_config or {}

    def section(key: str) -> Mapping:
        value = config.get(key)
        return value if isinstance(value, Mapping) else {}

    def enabled(key: str, flag: str, default: bool) -> bool:
        return bool(section(key).get(flag, default))

    types = ["SENSOR", "BACKFILL"]
    if section("scheduler").get("class", "DagsterDaemonScheduler") == "DagsterDaemonScheduler":
        types.append("SCHEDULER")
    if section("run_coordinator").get("class", "QueuedRunCoordinator") == "QueuedRunCoordinator":
        types.append("QUEUED_RUN_COORDINATOR")
    if enabled("run_monitoring", "enabled", False):
        types.append("MONITORING")
    if enabled("run_retries", "enabled", False):
        types.append("EVENT_LOG_CONSUMER")
    if enabled("auto_materialize", "enabled", True) or enabled("auto_materialize", "use_sensors", True):
        types.append("ASSET")
    if enabled("freshness", "enabled", True):
        types.append("FRESHNESS_DAEMON")
    return types


def instance_required_daemon_types(dagster_home: str) -> list[str]:
    """required_daemon_types() of $DAGSTER_HOME/dagster.yaml; OSError or yaml.YAMLError when it
    cannot be read."""
    import os

    import yaml

    with open(os.path.join(dagster_home, "dagster.yaml"), encoding="utf-8") as handle:
        return required_daemon_types(yaml.safe_load(handle))

#!/usr/bin/env python3
"""The `monitoring-exporter` service: Prometheus metrics of the Dagster control plane, read from
the instance's storage as platform_status (the watchdog's check) reads it.

Dagster OSS exports no control-plane metrics, so this process collects them every
MONITORING_COLLECT_INTERVAL_SECONDS in a background thread and a scrape only reads the result:
a scrape costs Postgres nothing, and a collection reads only what is new. Run and check counters
follow Dagster's event log by storage id (indexed on event type and id), failed ticks follow the
tick table by id (plus the few ticks still in progress), so the steady-state cost does not grow
with history; the whole history is read once, at start, in pages.

Labels are bounded by the definitions (location, job, daemon type, instigator), never run ids.
The health verdicts are platform_status's and platform_core.daemon_health's, with the same
settings, and the alert thresholds are exported as metrics the alert rules compare against: the
watchdog and Prometheus' rules cannot disagree (tests/deploy/monitoring).

Runs in the instance image (its Python has Dagster, psycopg2 and prometheus-client); platform_status
is imported from /opt/dagster/ops."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from platform_core import daemon_health, dagster_storage, settings

import platform_status
from platform_watchdog import STARTUP_GRACE

COLLECT_INTERVAL = settings.seconds(
    "MONITORING_COLLECT_INTERVAL_SECONDS", 15, minimum=1,
    doc="time between two collections; a scrape only reads the last one")
CODE_LOCATION_DOWN_ALERT = settings.seconds(
    "CODE_LOCATION_DOWN_ALERT_SECONDS", 120,
    doc="a code location not serving for this long is alerted (a redeploy takes less)")
RUN_FAILURE_RATE_ALERT = settings.number(
    "RUN_FAILURE_RATE_ALERT", 0.5, minimum=0, maximum=1,
    doc="share of a location's runs finished in the last hour that failed, above which it is alerted")
POSTGRES_CONNECTIONS_ALERT = settings.number(
    "POSTGRES_CONNECTIONS_ALERT_RATIO", 0.8, minimum=0, maximum=1,
    doc="connections in use / max_connections above which Postgres is alerted")

# Inside the compose network only (prometheus.yml.template scrapes it there).
PORT = 9108
# The workspace the webserver and daemon load (compose's `workspace` config): its gRPC servers.
WORKSPACE_FILE = "/opt/dagster/workspace.yaml"
RUN_EVENTS = ("RUN_START", "RUN_SUCCESS", "RUN_FAILURE")
EVENTS = (*RUN_EVENTS, "ASSET_CHECK_EVALUATION", "FRESHNESS_STATE_CHANGE")
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")
# Run durations from seconds (a sensor's small run) to a day-long backfill step.
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
PAGE = 1000
RUN_CACHE = 20_000
UNKNOWN = "unknown"

log = logging.getLogger("monitoring-exporter")


def thresholds(env=None) -> dict[tuple[str, str], float]:
    """(unit, check) -> value: every threshold an alert rule compares against, from the settings
    the watchdog, `make status` and the daemon's healthcheck read (alert_rules.yml uses only these)."""
    status = platform_status.Thresholds.from_env(env)
    return {
        ("seconds", "daemon_heartbeat"): status.heartbeat_seconds,
        ("seconds", "daemon_thread"): status.thread_seconds,
        ("seconds", "stuck_run"): status.stuck_seconds,
        ("seconds", "queued_run"): status.queued_seconds,
        ("seconds", "code_location_down"): CODE_LOCATION_DOWN_ALERT.get(env),
        ("ratio", "run_failure_rate"): RUN_FAILURE_RATE_ALERT.get(env),
        ("ratio", "postgres_connections"): POSTGRES_CONNECTIONS_ALERT.get(env),
    }


class Metrics:
    """Every metric the exporter serves, in its own registry (no process/platform collectors)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.threshold_seconds = Gauge("platform_alert_threshold_seconds", "Alert threshold of a check, in seconds (from the platform settings; 0 = the check is off)", ["check"], registry=r)
        self.threshold_ratio = Gauge("platform_alert_threshold_ratio", "Alert threshold of a check, as a ratio (from the platform settings)", ["check"], registry=r)
        self.heartbeat_age = Gauge("dagster_daemon_heartbeat_age_seconds", "Seconds since the daemon type's latest heartbeat", ["daemon_type"], registry=r)
        self.daemon_up = Gauge("dagster_daemon_up", "1 if the daemon type is healthy by the platform's verdict (platform_core.daemon_health), else 0", ["daemon_type"], registry=r)
        self.platform_healthy = Gauge("dagster_platform_healthy", "1 if every watchdog check passes (platform_status), else 0", registry=r)
        self.startup_grace = Gauge("dagster_platform_startup_grace", "1 while the platform has not been healthy since the exporter started and WATCHDOG_STARTUP_GRACE_SECONDS has not passed (the watchdog holds its alerts back as long)", registry=r)
        self.queued = Gauge("dagster_run_queue_depth", "Runs waiting in the run queue (QUEUED)", registry=r)
        self.oldest_queued = Gauge("dagster_run_queue_oldest_age_seconds", "Seconds the oldest QUEUED run has waited (0 when the queue is empty)", registry=r)
        self.stuck = Gauge("dagster_runs_stuck", "Runs in STARTING/CANCELING beyond the stuck-run threshold", registry=r)
        self.in_progress = Gauge("dagster_runs_in_progress", "Runs in progress by status", ["status"], registry=r)
        self.started = Counter("dagster_runs_started", "Runs started", ["location", "dagster_job"], registry=r)
        self.succeeded = Counter("dagster_runs_succeeded", "Runs that succeeded", ["location", "dagster_job"], registry=r)
        self.failed = Counter("dagster_runs_failed", "Runs that failed", ["location", "dagster_job"], registry=r)
        self.duration = Histogram("dagster_run_duration_seconds", "Duration of finished runs (start to success or failure)", ["location"], buckets=DURATION_BUCKETS, registry=r)
        self.ticks_failed = Counter("dagster_ticks_failed", "Sensor and schedule ticks that failed", ["location", "instigator_type", "instigator"], registry=r)
        self.checks_failed = Counter("dagster_asset_check_failures", "Asset check evaluations that failed", ["location"], registry=r)
        self.checks_failing = Gauge("dagster_asset_checks_failing", "Asset checks whose latest evaluation failed", registry=r)
        self.freshness_violations = Counter("dagster_freshness_violations", "Assets turning stale (freshness state changed to FAIL)", registry=r)
        self.freshness_failing = Gauge("dagster_assets_freshness_failing", "Assets whose freshness state is FAIL", registry=r)
        self.location_up = Gauge("dagster_code_location_up", "1 if the code location's gRPC server serves its loaded code, else 0", ["location"], registry=r)
        self.location_down = Gauge("dagster_code_location_down_seconds", "Seconds the code location has not been serving (0 while it serves)", ["location"], registry=r)
        self.pg_connections = Gauge("postgres_connections", "Client connections to Postgres by database", ["database"], registry=r)
        self.pg_max = Gauge("postgres_max_connections", "Postgres' max_connections", registry=r)
        self.collect_seconds = Gauge("platform_exporter_collect_duration_seconds", "Wall time of the last collection", registry=r)
        self.collect_errors = Counter("platform_exporter_collect_errors", "Collections (or parts of one) that failed", ["part"], registry=r)
        self.last_collect = Gauge("platform_exporter_last_collect_timestamp_seconds", "When the last collection finished (Unix time)", registry=r)


@dataclass
class RunInfo:
    location: str
    job: str
    start_time: float | None


def grpc_serving(host: str, port: int, timeout: float = 5.0) -> bool:
    """The code server's gRPC health: SERVING only once its code is loaded (as compose's healthcheck)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=timeout).status
        return status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def workspace_servers(path: str) -> list[tuple[str, str, int]]:
    """(location, host, port) of every grpc_server in the workspace file."""
    import yaml

    with open(path) as handle:
        workspace = yaml.safe_load(handle) or {}
    servers = []
    for entry in workspace.get("load_from") or []:
        server = entry.get("grpc_server") if isinstance(entry, dict) else None
        if not server:
            raise ValueError(f"{path}: only grpc_server entries are supported, got {entry!r}")
        servers.append((server["location_name"], server["host"], int(server["port"])))
    return servers


class ControlPlaneCollector:
    """Reads the storage and updates Metrics. State (cursors, caches, the latest check and
    freshness states) lives here, so each collection reads only what changed."""

    def __init__(self, required_daemons: list[str], connect: Callable[[], object], metrics: Metrics,
                 servers: Callable[[], Iterable[tuple[str, str, int]]] = lambda: (),
                 probe: Callable[[str, int], bool] = grpc_serving, env=None,
                 clock: Callable[[], float] = time.time):
        self.required_daemons = list(required_daemons)
        self.connect = connect
        self.metrics = metrics
        self.servers = servers
        self.probe = probe
        self.clock = clock
        self.status_thresholds = platform_status.Thresholds.from_env(env)
        self.grace_seconds = STARTUP_GRACE.get(env)
        self.started = clock()
        self.seen_healthy = False
        self.conn = None
        self.event_cursor = 0
        self.runs: OrderedDict[str, RunInfo] = OrderedDict()
        self.tick_cursor = 0
        self.pending_ticks: set[int] = set()
        self.selector_locations: dict[str, str] = {}
        self.check_passed: dict[tuple[str, str], bool] = {}
        self.freshness: dict[str, str] = {}
        self.down_since: dict[str, float] = {}
        for (unit, check), value in thresholds(env).items():
            gauge = metrics.threshold_seconds if unit == "seconds" else metrics.threshold_ratio
            gauge.labels(check).set(value)

    # --- one collection ---

    def collect(self) -> None:
        started = time.monotonic()
        for part, step in (("status", self.collect_status), ("sql", self.collect_sql),
                           ("events", self.collect_events), ("code_locations", self.collect_code_locations)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - one broken part must not stop the others
                self.metrics.collect_errors.labels(part).inc()
                log.warning("collecting %s failed: %s", part, platform_status.describe_error(exc))
                if part in ("status", "sql", "events"):
                    self._close()
        self.metrics.collect_seconds.set(time.monotonic() - started)
        self.metrics.last_collect.set(self.clock())

    def collect_status(self) -> None:
        """The watchdog's own snapshot and verdict (platform_status), exported as numbers."""
        snapshot = platform_status.read_snapshot(self._connection(), self.required_daemons)
        report = platform_status.classify(snapshot, self.status_thresholds)
        m = self.metrics
        m.heartbeat_age.clear()
        m.daemon_up.clear()
        for daemon in report.daemons:
            if daemon["age_seconds"] is not None:
                m.heartbeat_age.labels(daemon["daemon_type"]).set(daemon["age_seconds"])
            m.daemon_up.labels(daemon["daemon_type"]).set(1 if daemon["healthy"] else 0)
        m.platform_healthy.set(1 if report.healthy else 0)
        self.seen_healthy = self.seen_healthy or report.healthy
        in_grace = not self.seen_healthy and self.clock() - self.started < self.grace_seconds
        m.startup_grace.set(1 if in_grace else 0)
        m.queued.set(report.queue["depth"] or 0)
        m.oldest_queued.set(report.queue["oldest_age_seconds"] or 0)
        m.stuck.set(len(report.stuck_runs))

    def _connection(self):
        if self.conn is None:
            self.conn = self.connect()
            self.conn.autocommit = True
        return self.conn

    def _cursor(self):
        return self._connection().cursor()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def collect_sql(self) -> None:
        """Runs in progress, failed ticks and Postgres connections: plain indexed SQL."""
        m = self.metrics
        with self._cursor() as cur:
            cur.execute("SELECT status, count(*) FROM runs WHERE status = ANY(%s) GROUP BY status", (list(IN_PROGRESS),))
            counts = dict(cur.fetchall())
            for status in IN_PROGRESS:
                m.in_progress.labels(status).set(counts.get(status, 0))

            cur.execute("SELECT coalesce(datname, ''), count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' GROUP BY 1")
            m.pg_connections.clear()
            for database, count in cur.fetchall():
                m.pg_connections.labels(database or "(none)").set(count)
            cur.execute("SELECT current_setting('max_connections')::int")
            m.pg_max.set(cur.fetchone()[0])

            self._collect_ticks(cur)

    def _collect_ticks(self, cur) -> None:
        """New ticks by id, plus those seen in progress before (a tick row is updated in place
        when it ends): primary-key lookups, however long the tick history."""
        while True:
            cur.execute("SELECT id, selector_id, status, type, tick_body FROM job_ticks "
                        "WHERE id > %s OR id = ANY(%s) ORDER BY id LIMIT %s",
                        (self.tick_cursor, sorted(self.pending_ticks), PAGE))
            rows = cur.fetchall()
            new = 0
            for tick_id, selector_id, status, tick_type, body in rows:
                if tick_id > self.tick_cursor:
                    new += 1
                self.tick_cursor = max(self.tick_cursor, tick_id)
                if status == "STARTED":
                    self.pending_ticks.add(tick_id)
                    continue
                self.pending_ticks.discard(tick_id)
                if status == "FAILURE":
                    location = self._selector_location(cur, selector_id)
                    self.metrics.ticks_failed.labels(location, (tick_type or UNKNOWN).lower(),
                                                     _instigator_name(body)).inc()
            if new < PAGE:
                return

    def _selector_location(self, cur, selector_id: str | None) -> str:
        if not selector_id:
            return UNKNOWN
        if selector_id not in self.selector_locations:
            from dagster._serdes import deserialize_value

            cur.execute("SELECT instigator_body FROM instigators WHERE selector_id = %s", (selector_id,))
            row = cur.fetchone()
            location = UNKNOWN
            if row and row[0]:
                try:
                    state = deserialize_value(row[0])
                    location = state.origin.repository_origin.code_location_origin.location_name
                except Exception:  # noqa: BLE001 - an instigator of an older shape: still counted
                    location = UNKNOWN
            self.selector_locations[selector_id] = location
        return self.selector_locations[selector_id]

    def _run_infos(self, cur, run_ids: Iterable[str]) -> dict[str, RunInfo]:
        """Location, job and start of each run, from the runs table (cached: they never change)."""
        from dagster._serdes import deserialize_value

        run_ids = list(dict.fromkeys(run_ids))
        wanted = [r for r in run_ids if r and r not in self.runs]
        for i in range(0, len(wanted), PAGE):
            cur.execute("SELECT run_id, pipeline_name, run_body, start_time FROM runs WHERE run_id = ANY(%s)",
                        (wanted[i:i + PAGE],))
            for run_id, job, body, start_time in cur.fetchall():
                location = UNKNOWN
                try:
                    origin = deserialize_value(body).remote_job_origin
                    location = origin.location_name if origin is not None else UNKNOWN
                except Exception:  # noqa: BLE001 - a run of an older shape: still counted
                    pass
                self.runs[run_id] = RunInfo(location, job or UNKNOWN, start_time)
        for run_id in wanted:  # deleted meanwhile (retention): counted, unattributed
            self.runs.setdefault(run_id, RunInfo(UNKNOWN, UNKNOWN, None))
        found = {r: self.runs[r] for r in run_ids if r in self.runs}
        while len(self.runs) > RUN_CACHE:
            self.runs.popitem(last=False)
        return found

    def _new_events(self, cur):
        """The events the metrics count, after the cursor, oldest first, a page at a time: one
        query on Dagster's (dagster_event_type, id) index over the exporter's one connection
        (Dagster's own storage calls open a connection each)."""
        from dagster import DagsterEventType, EventLogEntry
        from dagster._serdes import deserialize_value

        types = [DagsterEventType[name].value for name in EVENTS]
        while True:
            cur.execute("SELECT id, event FROM event_logs WHERE dagster_event_type = ANY(%s) AND id > %s "
                        "ORDER BY id LIMIT %s", (types, self.event_cursor, PAGE))
            rows = cur.fetchall()
            if rows:
                self.event_cursor = rows[-1][0]
                yield [deserialize_value(body, EventLogEntry) for _, body in rows]
            if len(rows) < PAGE:
                return

    def collect_events(self) -> None:
        m = self.metrics
        counters = {"RUN_START": m.started, "RUN_SUCCESS": m.succeeded, "RUN_FAILURE": m.failed}
        with self._cursor() as cur:
            for entries in self._new_events(cur):
                infos = self._run_infos(cur, (e.run_id for e in entries if e.run_id))
                for entry in entries:
                    kind = entry.dagster_event.event_type.name
                    info = infos.get(entry.run_id) or RunInfo(UNKNOWN, UNKNOWN, None)
                    if kind in counters:
                        counters[kind].labels(info.location, info.job).inc()
                        if kind != "RUN_START" and info.start_time is not None:
                            m.duration.labels(info.location).observe(max(0.0, entry.timestamp - info.start_time))
                    elif kind == "ASSET_CHECK_EVALUATION":
                        evaluation = entry.dagster_event.event_specific_data
                        self.check_passed[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = \
                            bool(evaluation.passed)
                        if not evaluation.passed:
                            m.checks_failed.labels(info.location).inc()
                    elif kind == "FRESHNESS_STATE_CHANGE":
                        change = entry.dagster_event.event_specific_data
                        state = getattr(change.new_state, "value", str(change.new_state))
                        self.freshness[change.key.to_user_string()] = state
                        if state == "FAIL":
                            m.freshness_violations.inc()
        m.checks_failing.set(sum(1 for passed in self.check_passed.values() if not passed))
        m.freshness_failing.set(sum(1 for state in self.freshness.values() if state == "FAIL"))

    def collect_code_locations(self) -> None:
        now = self.clock()
        servers = list(self.servers())
        m = self.metrics
        m.location_up.clear()
        m.location_down.clear()
        for location, host, port in servers:
            up = self.probe(host, port)
            if up:
                self.down_since.pop(location, None)
            else:
                self.down_since.setdefault(location, now)
            m.location_up.labels(location).set(1 if up else 0)
            m.location_down.labels(location).set(0 if up else now - self.down_since[location])


def _instigator_name(body: str | None) -> str:
    if not body:
        return UNKNOWN
    try:
        from dagster._serdes import deserialize_value

        return deserialize_value(body).instigator_name or UNKNOWN
    except Exception:  # noqa: BLE001 - a tick of an older shape: still counted
        return UNKNOWN


def run() -> int:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s monitoring-exporter %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    interval = COLLECT_INTERVAL.get()
    dagster_storage.connect_kwargs()  # a missing DAGSTER_PG_* setting stops the exporter here, named
    workspace = WORKSPACE_FILE
    metrics = Metrics()
    collector = ControlPlaneCollector(
        platform_status.required_daemons(),
        lambda: platform_status.connect("monitoring-exporter"),
        metrics, servers=lambda: workspace_servers(workspace))
    # Served only after a first full collection (bounded: every part has its timeouts), so the
    # healthcheck and a first scrape see every metric. The event part's first pass imports
    # Dagster's serdes and reads the history: tens of seconds on a loaded host, during which the
    # code locations would otherwise be missing from a scrape that already succeeds.
    collector.collect()
    start_http_server(PORT, registry=metrics.registry)
    log.info("serving /metrics on :%d, collecting every %.0fs from %s", PORT, interval,
             dagster_storage.describe())
    stop = threading.Event()
    while not stop.wait(interval):
        collector.collect()
    return 0


def main() -> int:
    try:
        daemon_health.Thresholds.from_env()
        return run()
    except settings.SettingError as exc:
        raise SystemExit(f"monitoring-exporter: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The `watchdog` service: every WATCHDOG_INTERVAL_SECONDS it evaluates platform_status, POSTs a
JSON alert to ALERT_WEBHOOK_URL when the platform turns unhealthy and again when it recovers,
and removes exited run containers of this project (PLATFORM_PROJECT, the compose project) once
they are RUN_CONTAINER_KEEP_MINUTES old. When the daemon is down and its container was killed
(`docker kill`, which Docker's restart policy counts as a manual stop), it starts it again. On
SIGTERM (`docker compose stop/down`) it removes every exited run container of the project, so they
do not outlive the stack; when the daemon is already stopped (`down` stops it first: it depends on
the watchdog), it first stops the runs still in flight, whose containers would otherwise exit after
the watchdog had gone.

Not named watchdog.py: Dagster imports the `watchdog` package, which a script of that name next
to it would shadow. Never imports Dagster (platform_status reads the storage with psycopg2): the
watchdog holds ~25 MiB instead of ~100. `--healthcheck` checks the loop's heartbeat file."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from urllib.parse import urlsplit

from platform_core import settings
from platform_core.project import PROJECT

PROJECT_LABEL = "io.flights-platform.project"
ROLE_LABEL = "io.flights-platform.role"
PRUNABLE_STATES = ("exited", "dead")
# A run container the daemon created but had not started when it stopped (`docker compose down`
# mid-launch): nothing will start it any more, so the shutdown sweep removes it too. Never while
# the stack runs: between the launcher's create and start every run container is "created".
NEVER_STARTED = ("created",)
# On shutdown a launch the daemon sent just before it stopped can still land (the socket proxy
# forwards it after the daemon is gone): the sweep looks again this long after each pass, until a
# look finds none (at most SHUTDOWN_SWEEPS passes, within the watchdog's stop_grace_period).
SHUTDOWN_SETTLE_SECONDS = 2.0
SHUTDOWN_SWEEPS = 4
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_ONEOFF_LABEL = "com.docker.compose.oneoff"
# Set by compose on the containers it creates, never on images. Compose labels the images it builds
# with the project and service, so a container merely run from the instance image (`docker run`)
# carries `service=daemon` too: only this label tells the service's own containers apart.
COMPOSE_CONTAINER_NUMBER_LABEL = "com.docker.compose.container-number"
DAEMON_SERVICE = "daemon"
# Run workers get this long to record their end after SIGTERM on shutdown; then they are killed.
# Within the watchdog's stop_grace_period (30 s, docker-compose.yml) with room for the last check.
RUN_STOP_GRACE_SECONDS = 15

HEARTBEAT_FILE = settings.text(
    "WATCHDOG_HEARTBEAT_FILE", "/tmp/watchdog.heartbeat", doc="the loop touches it; --healthcheck reads its age")
INTERVAL = settings.seconds("WATCHDOG_INTERVAL_SECONDS", 15, minimum=1, doc="time between two checks")
STARTUP_GRACE = settings.seconds(
    "WATCHDOG_STARTUP_GRACE_SECONDS", 300,
    doc="after start, no unhealthy alert until the platform was healthy once or this passed")
KEEP_MINUTES = settings.number(
    "RUN_CONTAINER_KEEP_MINUTES", 60, minimum=0, doc="exited run containers are removed after this many minutes")
WEBHOOK_URL = settings.text("ALERT_WEBHOOK_URL", doc="alerts are POSTed here as JSON; unset = alerting off")
# The count of exited run containers, for Prometheus (README "Monitoring"): the watchdog holds the
# Docker socket anyway, so the exporter needs none.
METRICS_PORT = settings.integer(
    "WATCHDOG_METRICS_PORT", 9109, minimum=0, maximum=65535,
    doc="serves dagster_run_containers_exited inside the compose network; 0 = off")
# Declared exactly as render_dagster_yaml.py does (it labels the run containers with it), so both
# read one setting: compose sets it for every instance service.

log = logging.getLogger("watchdog")


def parse_docker_time(value: str) -> float | None:
    """Docker's FinishedAt ("2026-11-24T03:31:02.123456789Z"; "0001-01-01T00:00:00Z" = never)
    as epoch seconds."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    frac = "".join(ch for ch in frac if ch.isdigit())[:6]
    parsed = datetime.fromisoformat(head + "+00:00")
    return parsed.timestamp() + (int(frac.ljust(6, "0")) / 1e6 if frac else 0.0)


def due_for_removal(containers: list[dict], now: float, keep_seconds: float) -> list[dict]:
    """Exited/dead containers whose end is at least keep_seconds ago (unknown end: due)."""
    due = []
    for c in containers:
        if c["state"] not in PRUNABLE_STATES:
            continue
        finished = c.get("finished_at")
        if finished is None or now - finished >= keep_seconds:
            due.append(c)
    return due


def was_killed(state: dict) -> bool:
    """A container that ended with a non-zero exit code and that Docker will not restart: killed
    (`docker kill`: 137) or crashed. `docker compose stop` ends dagster-daemon with exit code 0,
    so a daemon stopped on purpose is left stopped."""
    return (state.get("Status") in PRUNABLE_STATES and not state.get("Restarting")
            and state.get("ExitCode", 0) != 0)


def daemon_down(report) -> bool:
    """Every required daemon type is silent: the process is gone (one silent type is a stuck thread)."""
    return bool(report.daemons) and len(report.stale_daemons) == len(report.daemons)


def transition(last_alerted: bool | None, healthy: bool, seen_healthy: bool, since_start: float,
               grace_seconds: float) -> str | None:
    """Which alert to send now, if any: "unhealthy" or "recovered".

    last_alerted is the health state the webhook last heard about (None: nothing sent yet). Until
    the platform has been seen healthy once, unhealthy is held back for grace_seconds: on a fresh
    `up` the daemon has not heartbeated yet and old heartbeats in storage look stale."""
    if healthy:
        return "recovered" if last_alerted is False else None
    if last_alerted is False:
        return None
    if not seen_healthy and since_start < grace_seconds:
        return None
    return "unhealthy"


def alert_payload(kind: str, project: str, report) -> dict:
    """Same shape as the platform location's run-failure alerts: flat, short, with a UI link."""
    summary = ("; ".join(report.reasons) if kind == "unhealthy" else "all checks pass again")
    return {
        "source": "watchdog",
        "alert": f"platform_{kind}",
        "project": project,
        "state": report.state,
        "summary": f"{project}: Dagster platform {'UNHEALTHY' if kind == 'unhealthy' else 'recovered'}: {summary}",
        "reasons": report.reasons,
        "stale_daemons": report.stale_daemons,
        "queue_depth": report.queue.get("depth"),
        "oldest_queued_seconds": report.queue.get("oldest_age_seconds"),
        "stuck_runs": [r["run_id"] for r in report.stuck_runs],
        "link": "/health",
    }


def post_json(url: str, payload: dict, timeout: float = 10.0) -> int:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RuntimeError(f"ALERT_WEBHOOK_URL must be an http(s) URL, got {url!r}")
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "flights-platform-watchdog"})
    # Only the host goes into messages: the path of a webhook URL is often its secret.
    where = f"{parts.scheme}://{parts.netloc}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"alert webhook at {where} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RuntimeError(f"alert webhook at {where} unreachable: {getattr(exc, 'reason', exc)}") from exc


class RunContainerPruner:
    """Removes exited run containers carrying this project's labels, nothing else."""

    def __init__(self, project: str):
        self.project = project
        self._client = None

    def _docker(self):
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=30)
        return self._client

    def list(self) -> list[dict]:
        filters = {"label": [f"{PROJECT_LABEL}={self.project}", f"{ROLE_LABEL}=run"]}
        return [
            {"id": c.id, "name": c.name, "state": c.attrs["State"]["Status"],
             "finished_at": parse_docker_time(c.attrs["State"].get("FinishedAt", "")), "container": c}
            for c in self._docker().containers.list(all=True, filters=filters)
        ]

    def services(self, name: str) -> list:
        """The project's containers of a compose service (any state), one-off `compose run`
        containers and containers merely run from the service's image left out."""
        filters = {"label": [f"{COMPOSE_PROJECT_LABEL}={self.project}", f"{COMPOSE_SERVICE_LABEL}={name}",
                             COMPOSE_CONTAINER_NUMBER_LABEL]}
        return [c for c in self._docker().containers.list(all=True, filters=filters)
                if c.labels.get(COMPOSE_ONEOFF_LABEL, "False") != "True"]

    def service_running(self, name: str) -> bool:
        return any(c.status == "running" for c in self.services(name))

    def restart_killed(self, name: str) -> bool:
        """Start the service's container again if none of its containers runs and it was killed
        (was_killed); True if started."""
        try:
            containers = self.services(name)
            if any(c.status == "running" for c in containers):
                return False
            container = next((c for c in containers if was_killed(c.attrs["State"])), None)
            if container is None:
                seen = sorted((c.name, c.attrs["State"].get("Status"), c.attrs["State"].get("ExitCode"))
                              for c in containers)
                if seen != getattr(self, "_left_alone", None):  # logged once per state, not per check
                    log.info("%s is down; its container(s) %s were not killed: left as they are", name, seen)
                    self._left_alone = seen
                return False
            state = container.attrs["State"]
            container.start()
        except Exception as exc:  # noqa: BLE001 - no socket access must not stop the health checks
            log.warning("cannot check or start the %s container: %s", name, exc)
            return False
        log.warning("restarted the %s container %s: it had been killed (exit code %s at %s), which "
                    "Docker's restart policy does not undo", name, container.name, state.get("ExitCode"),
                    state.get("FinishedAt"))
        return True

    def stop_in_flight(self, grace_seconds: float) -> int:
        """SIGTERM every running run container of the project (the run worker records its end),
        SIGKILL those still running after grace_seconds. Returns how many needed the SIGKILL."""
        try:
            running = [c["container"] for c in self.list() if c["state"] == "running"]
            for container in running:
                container.kill(signal="SIGTERM")
                log.info("stopping in-flight run container %s (%s)", container.name, container.id[:12])
            deadline = time.monotonic() + grace_seconds
            while running and time.monotonic() < deadline:
                time.sleep(0.5)
                running = [c for c in running if self._status(c) == "running"]
            for container in running:
                log.warning("run container %s still running after %.0fs: killing it", container.name, grace_seconds)
                container.kill()
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the next start's pruning catches up
            log.warning("cannot stop in-flight run containers: %s", exc)
            return 0
        return len(running)

    def shutdown_sweep(self, grace_seconds: float, settle_seconds: float = SHUTDOWN_SETTLE_SECONDS,
                       sweeps: int = SHUTDOWN_SWEEPS) -> int:
        """With the daemon stopped: stop the in-flight run containers, remove every run container
        of the project (never-started ones too), and look again after settle_seconds until a look
        finds none (a create that was in flight lands late). Returns how many were removed."""
        removed = 0
        for _ in range(sweeps):
            self.stop_in_flight(grace_seconds)
            removed += self.prune(0, "shutdown", never_started=True)
            time.sleep(settle_seconds)
            try:
                if not self.list():
                    break
            except Exception as exc:  # noqa: BLE001 - shutdown goes on; the next start's pruning catches up
                log.warning("cannot list run containers: %s", exc)
                break
        return removed

    @staticmethod
    def _status(container) -> str:
        try:
            container.reload()
        except Exception:  # noqa: BLE001 - removed meanwhile
            return "removed"
        return container.status

    def prune(self, keep_seconds: float, why: str, never_started: bool = False) -> int:
        try:
            containers = self.list()
            due = due_for_removal(containers, time.time(), keep_seconds)
            if never_started:
                due += [c for c in containers if c["state"] in NEVER_STARTED]
        except Exception as exc:  # noqa: BLE001 - no socket access must not stop the health checks
            log.warning("cannot list run containers (docker socket?): %s", exc)
            return 0
        removed = []
        for c in due:
            try:
                c["container"].remove(v=False)
                removed.append(c["id"])
                log.info("removed %s run container %s (%s, %s)",
                         "never-started" if c["state"] in NEVER_STARTED else "exited", c["name"], c["id"][:12], why)
            except Exception as exc:  # noqa: BLE001 - e.g. removed meanwhile by `make prune-runs`
                log.warning("could not remove run container %s: %s", c["name"], exc)
        self.exited_left = sum(c["state"] in PRUNABLE_STATES and c["id"] not in removed for c in containers)
        return len(removed)


def write_heartbeat(iteration: int, report) -> None:
    path = HEARTBEAT_FILE.get()
    with open(f"{path}.tmp", "w") as handle:
        json.dump({"iteration": iteration, "time": time.time(), "state": report.state}, handle)
    os.replace(f"{path}.tmp", path)


def healthcheck() -> int:
    """Healthy while the loop keeps writing its heartbeat file (3 intervals + 30 s slack)."""
    limit = 3 * INTERVAL.get() + 30
    path = HEARTBEAT_FILE.get()
    try:
        age = time.time() - os.path.getmtime(path)
    except OSError:
        print(f"no heartbeat file {path}")
        return 1
    print(f"last loop {age:.0f}s ago (limit {limit:.0f}s)")
    return 0 if age <= limit else 1


def run() -> int:
    import platform_status

    # Own handler: the root logger stays at WARNING, so libraries' INFO chatter stays out.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s watchdog %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    interval = INTERVAL.get()
    keep_seconds = KEEP_MINUTES.get() * 60
    grace = STARTUP_GRACE.get()
    url = WEBHOOK_URL.get() or ""
    project = PROJECT.get()
    thresholds = platform_status.Thresholds.from_env()

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s: finishing the current check, then pruning run containers",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log.info("watching project %s every %.0fs: daemon heartbeat > %.0fs, STARTING/CANCELING > %.0fs%s; "
             "alerts %s; exited run containers kept %.1f min",
             project, interval, thresholds.heartbeat_seconds, thresholds.stuck_seconds,
             f", oldest QUEUED > {thresholds.queued_seconds:.0f}s" if thresholds.queued_seconds else "",
             "to " + urlsplit(url).netloc if url else "OFF (ALERT_WEBHOOK_URL empty)", keep_seconds / 60)

    pruner = RunContainerPruner(project)
    exited_gauge = None
    if METRICS_PORT.get():
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        registry = CollectorRegistry()
        exited_gauge = Gauge("dagster_run_containers_exited", "Exited run containers of this project "
                             "(kept RUN_CONTAINER_KEEP_MINUTES for post-mortems)", registry=registry)
        start_http_server(METRICS_PORT.get(), registry=registry)
    started = time.monotonic()
    reader = platform_status.StatusReader("watchdog")
    last_alerted: bool | None = None
    seen_healthy = False
    last_reasons: list[str] | None = None
    iteration = 0
    while not stop.is_set():
        iteration += 1
        report = reader.evaluate(thresholds)
        seen_healthy = seen_healthy or report.healthy
        # Logged when what is wrong changes, not every time an age in the message grows.
        signature = [re.sub(r"\d+s\b", "Ns", r) for r in report.reasons]
        if signature != last_reasons:
            log.info("platform %s%s", report.state.upper(),
                     "".join(f"\n  - {r}" for r in report.reasons))
            last_reasons = signature

        kind = transition(last_alerted, report.healthy, seen_healthy, time.monotonic() - started, grace)
        if kind is None and last_alerted is None and report.healthy:
            last_alerted = True  # the healthy baseline: the next unhealthy state is a transition
        if kind:
            payload = alert_payload(kind, project, report)
            if not url:
                log.info("platform %s (alerting off: ALERT_WEBHOOK_URL is empty)", kind)
                last_alerted = report.healthy
            else:
                try:
                    status = post_json(url, payload)
                    log.info("alert platform_%s sent to %s (HTTP %s)", kind, urlsplit(url).netloc, status)
                    last_alerted = report.healthy
                except RuntimeError as exc:  # retried on the next check: the state is unchanged
                    log.error("alert platform_%s NOT delivered, retrying next check: %s", kind, exc)

        if daemon_down(report):
            pruner.restart_killed(DAEMON_SERVICE)
        pruner.prune(keep_seconds, f"older than {keep_seconds / 60:g} min")
        if exited_gauge is not None and hasattr(pruner, "exited_left"):
            exited_gauge.set(pruner.exited_left)
        write_heartbeat(iteration, report)
        stop.wait(interval)

    try:
        daemon_stopped = not pruner.service_running(DAEMON_SERVICE)
    except Exception as exc:  # noqa: BLE001
        log.warning("cannot see the daemon container: %s", exc)
        daemon_stopped = False
    if daemon_stopped:  # the stack is going down: nothing launches runs any more
        removed = pruner.shutdown_sweep(RUN_STOP_GRACE_SECONDS)
    else:
        removed = pruner.prune(0, "shutdown")
    log.info("stopped: removed %d run container(s) of project %s on shutdown", removed, project)
    reader.close()
    return 0


def main(argv: list[str]) -> int:
    try:
        return healthcheck() if argv == ["--healthcheck"] else run()
    except settings.SettingError as exc:
        raise SystemExit(f"watchdog: {exc}") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The watchdog on a real stack: a killed daemon is reported within a minute by `make status`,
by a webhook alert and by the UI's daemon health, the watchdog starts it again and all three
recover; a run launched meanwhile waits QUEUED and then runs; a daemon stopped on purpose stays
stopped; exited run containers are removed after the keep
time, and all of them when the watchdog stops, without touching another project's containers.

Own stack (module scope): the watchdog's settings differ from the shared session stack's, and a
webhook sink container joins the stack's network under the alias `webhook-sink`."""

import json
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.compose_stack import docker as _docker
from tests.e2e.compose_stack import LOCATION_NAMES, RUN_LABEL, ComposeStack
from tests.e2e.dagster_graphql import DagsterGraphQL

pytestmark = pytest.mark.compose

# The requirement: a stopped daemon is visible everywhere within this many seconds.
DETECTION_DEADLINE = 60
KEEP_MINUTES = 1
AIRLINES = ["ingestion", "airlines"]
IMAGE = "flights-platform/dagster:dev"

# Appends every POST body to its stdout (read back with `docker logs`).
WEBHOOK_SINK = r"""
import http.server
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print(body.decode(), flush=True)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Sink).serve_forever()
"""

DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required lastHeartbeatTime } } } }
"""



@pytest.fixture(scope="module")
def wstack(request, tmp_path_factory):
    project = f"flights-e2e-{secrets.token_hex(3)}"
    stack = ComposeStack(project, tmp_path_factory.mktemp("watchdog"), extra_env={
        "ALERT_WEBHOOK_URL": "http://webhook-sink:8080/alerts",
        "WATCHDOG_INTERVAL_SECONDS": "5",
        "RUN_CONTAINER_KEEP_MINUTES": str(KEEP_MINUTES),
    })
    stack.sink = f"{project}-webhook-sink"
    failed_before = request.session.testsfailed
    try:
        try:
            stack.up()
        except Exception:
            print(stack.logs(400))
            raise
        # Labelled with the project (not role=run) so ComposeStack.down() removes it if we don't.
        _docker("run", "-d", "--name", stack.sink, "--network", f"{project}_platform",
                "--network-alias", "webhook-sink", "--label", f"{RUN_LABEL}={project}",
                "--entrypoint", "python", IMAGE, "-c", WEBHOOK_SINK)
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            print(f"\n===== compose logs of {project} =====\n{stack.logs(400)}")
        _docker("rm", "-f", stack.sink, check=False)
        stack.down()


@pytest.fixture(scope="module")
def ui(wstack) -> DagsterGraphQL:
    client = DagsterGraphQL(wstack.base_url, auth=wstack.admin)
    client.wait_locations_loaded(LOCATION_NAMES)
    return client


def poll(what: str, probe, timeout: float, interval: float = 2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}; last: {last}")


def status(stack: ComposeStack) -> tuple[int, dict | None, str]:
    """`make status JSON=1`: make's exit code, the parsed report, stderr."""
    result = stack.make("status", "JSON=1", check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = None
    return result.returncode, report, result.stderr


def alerts(stack: ComposeStack) -> list[dict]:
    lines = _docker("logs", stack.sink).stdout.splitlines()
    return [a for a in (json.loads(line) for line in lines if line.startswith("{")) if a.get("source") == "watchdog"]


def daemon_health(ui: DagsterGraphQL) -> dict[str, bool]:
    """Required daemon type -> healthy, as the UI shows it."""
    try:
        rows = ui.query(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
    except (requests.RequestException, AssertionError):
        return {}
    return {row["daemonType"]: row["healthy"] for row in rows if row["required"]}


def watchdog_log(stack: ComposeStack) -> list[str]:
    return stack.compose("logs", "--no-color", "--no-log-prefix", "watchdog").stdout.splitlines()


def watchdog_iteration(stack: ComposeStack) -> int:
    out = stack.compose("exec", "-T", "watchdog", "cat", "/tmp/watchdog.heartbeat", check=False).stdout
    return json.loads(out)["iteration"] if out.strip() else 0


def test_killed_daemon_is_reported_within_a_minute_and_restarted_by_the_watchdog(wstack, ui):
    """`docker kill` of the daemon (Docker's restart policy counts it as a manual stop and leaves it
    down): `make status`, a webhook alert and the UI all report it before one absolute deadline,
    DETECTION_DEADLINE s after the kill; the watchdog then starts the daemon again by itself, and
    the run launched meanwhile waits QUEUED, then runs."""
    poll("make status healthy", lambda: status(wstack)[0] == 0, 300, 3)
    poll("every required daemon healthy in the UI",
         lambda: (h := daemon_health(ui)) and all(h.values()), 300)
    before = alerts(wstack)
    assert before == [], f"alerts while the stack started and ran normally: {before}"

    daemon = wstack.compose("ps", "-q", "daemon").stdout.strip()
    # The watchdog restarts the daemon as soon as it judges it down, which can close the window
    # in which the slower probes (a Dagster import each) see it down: its Docker access (its
    # socket proxy) is stopped until every probe has seen it, then the restart is awaited. Stopped,
    # not paused: a refused connection fails at once, a paused proxy would hold each of the
    # watchdog's Docker calls (and its alerting) until the client's timeout.
    proxy = wstack.compose("ps", "-q", "socket-proxy-watchdog").stdout.strip()
    _docker("stop", proxy)
    _docker("kill", daemon)
    killed = time.monotonic()
    deadline = killed + DETECTION_DEADLINE
    killed_state = json.loads(_docker("inspect", "-f", "{{json .State}}", daemon).stdout)
    assert not killed_state["Running"] and killed_state["ExitCode"] == 137, killed_state
    run_id = ui.launch_asset_run("ingestion", AIRLINES)

    # All are polled at once, each in its own thread, against the one deadline: the watchdog
    # restarts the daemon as soon as it judges it down, so the window in which each shows it is short.
    def ui_down():
        return (h := daemon_health(ui)) and not any(h.values()) and h

    def alerted():
        return [a for a in alerts(wstack) if a["alert"] == "platform_unhealthy"]

    own = DagsterGraphQL(wstack.base_url, auth=wstack.admin)  # a session per thread

    def status_down():
        code, report, _ = status(wstack)
        return code != 0 and report and report["state"] == "unhealthy" and (report, own.run(run_id)["status"])

    def script_down():  # the script's own exit code (make turns every failure into 2)
        direct = wstack.compose("exec", "-T", "watchdog", "python", "/opt/dagster/ops/platform_status.py", check=False)
        return direct.returncode == 1 and direct.stdout

    def checks_down():
        """`make status`, then the script, one at a time: each imports Dagster inside the
        watchdog's container, whose memory limit two at once (beside the watchdog) can exceed."""
        for name, probe in (("status", status_down), ("script", script_down)):
            if name not in seen and (found := probe()):
                seen[name] = (time.monotonic() - killed, found)
        return "status" in seen and "script" in seen

    seen: dict[str, tuple[float, object]] = {}

    def watch(name, probe):
        while time.monotonic() < deadline:
            if found := probe():
                seen[name] = (time.monotonic() - killed, found)
                return
            time.sleep(1)

    try:
        with ThreadPoolExecutor(3) as pool:
            for future in [pool.submit(watch, n, p) for n, p in
                           (("ui", ui_down), ("alert", alerted), ("checks", checks_down))]:
                future.result()
    finally:
        _docker("start", proxy)
    seen.pop("checks", None)
    print(f"seen after the kill: { {k: round(v[0], 1) for k, v in seen.items()} }")
    assert set(seen) == {"ui", "alert", "status", "script"}, (
        f"not all within {DETECTION_DEADLINE} s of the kill: seen {sorted(seen)}")
    report, queued_while_down = seen["status"][1]
    assert "QUEUED_RUN_COORDINATOR" in report["reasons"][0] and "dagster-daemon" in report["reasons"][0]
    assert report["queue"]["depth"] >= 1
    assert queued_while_down == "QUEUED"  # nothing dequeued it while the daemon was down
    alert = seen["alert"][1][0]
    assert "QUEUED_RUN_COORDINATOR" in alert["stale_daemons"] and "dagster-daemon" in alert["summary"]
    assert alert["project"] == wstack.project
    assert "QUEUED_RUN_COORDINATOR" in seen["ui"][1]
    direct = seen["script"][1]
    assert "UNHEALTHY" in direct and "QUEUED_RUN_COORDINATOR" in direct and "run queue: " in direct

    # No `compose start`: the watchdog starts the killed daemon.
    poll("the watchdog restarting the killed daemon",
         lambda: any("restarted the daemon container" in line and "exit code 137" in line
                     for line in watchdog_log(wstack)), 120)
    poll("make status healthy again", lambda: status(wstack)[0] == 0, 300, 3)
    poll("a recovery alert", lambda: [a for a in alerts(wstack) if a["alert"] == "platform_recovered"], 120)
    poll("the UI shows the daemons healthy again", lambda: (h := daemon_health(ui)) and all(h.values()), 120)
    recovered = time.monotonic()
    print(f"healthy again {recovered - killed:.0f} s after the kill")

    # While the queued run now executes, and for longer than two heartbeat periods, nothing flaps.
    final = None
    while final is None or time.monotonic() - recovered < 75:
        health = daemon_health(ui)
        assert health and all(health.values()), f"UI daemon health flapped under load: {health}"
        if final is None and ui.run(run_id)["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            final = ui.run(run_id)["status"]
        time.sleep(3)
    assert final == "SUCCESS"
    assert [a["alert"] for a in alerts(wstack)] == ["platform_unhealthy", "platform_recovered"]


def test_a_daemon_stopped_on_purpose_stays_stopped(wstack, ui):
    """`docker compose stop daemon` (maintenance) ends it with exit code 0: the watchdog reports it
    but leaves it stopped until `docker compose start daemon`."""
    wstack.compose("stop", "daemon")
    try:
        poll("make status reports the stopped daemon", lambda: status(wstack)[0] != 0, 120, 3)
        seen = watchdog_iteration(wstack)
        poll("three more watchdog checks", lambda: watchdog_iteration(wstack) >= seen + 3, 60, 1)
        assert wstack.services()["daemon"]["State"] == "exited"
    finally:
        wstack.compose("start", "daemon")
    poll("make status healthy again", lambda: status(wstack)[0] == 0, 300, 3)


def test_exited_run_containers_are_removed_after_the_keep_time(wstack, ui):
    run_id = ui.launch_asset_run("ingestion", AIRLINES)
    assert ui.wait_run(run_id)[0] == "SUCCESS"
    containers = wstack.run_containers(f"label=dagster/run_id={run_id}")
    assert len(containers) == 1, "the run container is kept for post-mortems at first"
    name = _docker("inspect", "-f", "{{.Name}}", containers[0]).stdout.strip().lstrip("/")
    poll(f"run container {name} removed", lambda: not wstack.run_containers(f"label=dagster/run_id={run_id}"),
         KEEP_MINUTES * 60 + 180, 3)
    poll("the watchdog's log of the removal",
         lambda: any(f"removed exited run container {name} (" in line and f"older than {KEEP_MINUTES:g} min" in line
                     for line in watchdog_log(wstack)), 60)


def test_stopping_the_watchdog_removes_exited_run_containers_of_this_project_only(wstack):
    other_project = f"flights-e2e-other-{secrets.token_hex(3)}"
    mine, other = f"{wstack.project}-dummy-run", f"{other_project}-dummy-run"
    try:
        for name, project in ((mine, wstack.project), (other, other_project)):
            _docker("run", "--name", name, "--label", f"{RUN_LABEL}={project}",
                    "--label", "io.flights-platform.role=run", "--network", "none",
                    "--entrypoint", "true", IMAGE)
        # Younger than the keep time: the loop leaves it alone.
        seen = watchdog_iteration(wstack)
        poll("two more watchdog checks", lambda: watchdog_iteration(wstack) >= seen + 2, 60, 1)
        assert wstack.run_containers("name=" + mine), "a young exited run container was removed early"

        wstack.compose("stop", "watchdog")
        assert not wstack.run_containers("name=" + mine), "stopping the watchdog left this project's run container"
        assert _docker("ps", "-aq", "--filter", f"name={other}").stdout.strip(), "another project's container was removed"
        # Docker copies a container's output to its log asynchronously: poll, don't read once.
        poll("the watchdog's log of the shutdown removal",
             lambda: any(f"removed exited run container {mine} (" in line and "shutdown)" in line
                         for line in watchdog_log(wstack))
             and any("on shutdown" in line for line in watchdog_log(wstack)), 60)

        # `make status` still works without the watchdog running (one-off container).
        code, report, err = status(wstack)
        assert code == 0 and report["state"] == "healthy", (report, err)
    finally:
        _docker("rm", "-f", mine, other, check=False)

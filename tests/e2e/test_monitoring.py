"""The monitoring profile on a real stack: Prometheus (through the gateway, as a viewer) scrapes the
control-plane exporter; a failing run moves the failure counter; the dashboard shows in a real
browser (the README's screenshot, docs/monitoring-dashboard.png); a killed daemon makes the
heartbeat-age metric grow and the DagsterDaemonDown alert reach a webhook receiver within 60 s.

Own stack (module scope): the profile is on and the webhook is a sink container on the stack's
network, as in test_watchdog. Collection and scrape intervals are shortened so the 60 s budget is
the daemon-health threshold's (40 s) plus a few seconds of plumbing."""

import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.compose_stack import docker as _docker
from tests.e2e.compose_stack import LOCATION_NAMES, RUN_LABEL, ComposeStack
from tests.e2e.dagster_graphql import DagsterGraphQL
from tests.e2e.test_watchdog import WEBHOOK_SINK

pytestmark = pytest.mark.compose

DETECTION_DEADLINE = 60
IMAGE = "flights-platform/dagster:dev"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "monitoring-dashboard.png"



@pytest.fixture(scope="module")
def mstack(request, tmp_path_factory):
    project = f"flights-e2e-{secrets.token_hex(3)}"
    stack = ComposeStack(project, tmp_path_factory.mktemp("monitoring"), extra_env={
        "COMPOSE_PROFILES": "monitoring",
        "ALERT_WEBHOOK_URL": "http://webhook-sink:8080/alerts",
        "MONITORING_COLLECT_INTERVAL_SECONDS": "2",
        "MONITORING_SCRAPE_INTERVAL": "2s",
        "MONITORING_ALERT_GROUP_WAIT": "1s",
    })
    stack.sink = f"{project}-webhook-sink"
    failed_before = request.session.testsfailed
    try:
        try:
            stack.up()
        except Exception:
            print(stack.logs(400))
            raise
        _docker("run", "-d", "--name", stack.sink, "--network", f"{project}_platform",
                "--network-alias", "webhook-sink", "--label", f"{RUN_LABEL}={project}",
                "--entrypoint", "python", IMAGE, "-c", WEBHOOK_SINK)
        stack.viewer = ("vera.viewer", secrets.token_urlsafe(12))
        stack.add_user(stack.viewer[0], "viewer", stack.viewer[1])
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            print(f"\n===== compose logs of {project} =====\n{stack.logs(300)}")
        _docker("rm", "-f", stack.sink, check=False)
        stack.down()


@pytest.fixture(scope="module")
def ui(mstack) -> DagsterGraphQL:
    client = DagsterGraphQL(mstack.base_url, auth=mstack.admin)
    client.wait_locations_loaded(LOCATION_NAMES)
    return client


def promql(stack: ComposeStack, query: str) -> list[dict]:
    """An instant query through the gateway, logged in as the viewer."""
    response = requests.get(f"{stack.base_url}/prometheus/api/v1/query", params={"query": query},
                            auth=stack.viewer, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def scalar(stack: ComposeStack, query: str) -> float | None:
    result = promql(stack, query)
    return float(result[0]["value"][1]) if result else None


def poll(what: str, probe, timeout: float, interval: float = 2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (requests.RequestException, KeyError, ValueError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}; last: {last}")


def alertmanager_alerts(stack: ComposeStack) -> list[dict]:
    """Alerts Alertmanager posted to the sink (the watchdog posts there too, in its own shape)."""
    lines = _docker("logs", stack.sink).stdout.splitlines()
    posts = [json.loads(line) for line in lines if line.startswith("{")]
    return [alert for post in posts if "alerts" in post for alert in post["alerts"]]


def test_prometheus_scrapes_the_control_plane_behind_the_gateway(mstack, ui):
    unauthenticated = requests.get(f"{mstack.base_url}/prometheus/api/v1/query", params={"query": "up"}, timeout=10)
    assert unauthenticated.status_code == 401
    poll("every daemon type up", lambda: (r := promql(mstack, "dagster_daemon_up")) and all(x["value"][1] == "1" for x in r), 300)
    poll("every code location serving", lambda: {x["metric"]["location"] for x in promql(mstack, "dagster_code_location_up == 1")}
         >= set(LOCATION_NAMES), 300)
    up = {x["metric"]["job"]: x["value"][1] for x in promql(mstack, "up")}
    assert up == {"control-plane": "1", "watchdog": "1", "prometheus": "1"}, up
    assert scalar(mstack, "postgres_max_connections") == 200
    assert scalar(mstack, 'platform_alert_threshold_seconds{check="daemon_heartbeat"}') == 40
    assert scalar(mstack, "dagster_run_containers_exited") is not None
    classic = requests.get(f"{mstack.base_url}/prometheus/classic/graph", auth=mstack.viewer, timeout=10)
    assert classic.status_code == 200 and "Prometheus" in classic.text  # the query page the README names
    rules = requests.get(f"{mstack.base_url}/prometheus/api/v1/rules", auth=mstack.viewer, timeout=10).json()
    names = {rule["name"] for group in rules["data"]["groups"] for rule in group["rules"]}
    assert {"DagsterDaemonDown", "DagsterRunFailureRate", "PostgresConnectionsNearBudget"} <= names


def test_a_failing_run_increments_the_failure_counter(mstack, ui):
    query = 'sum(dagster_runs_failed_total{location="platform", dagster_job="prune_old_runs"})'
    before = scalar(mstack, query) or 0.0
    run_id = ui.launch_job_run("platform", "prune_old_runs", {"ops": {"delete_old_runs": {"config": {"retention_days": 0}}}})
    status, seen = ui.wait_run(run_id, timeout=300)
    assert status == "FAILURE", seen
    try:
        poll("the failure counter counts the run", lambda: (scalar(mstack, query) or 0.0) == before + 1, 30)
    except AssertionError as exc:
        seen = {q: promql(mstack, q) for q in ("dagster_runs_failed_total", "dagster_runs_started_total",
                                               "time() - platform_exporter_last_collect_timestamp_seconds",
                                               "platform_exporter_collect_errors_total")}
        raise AssertionError(f"{exc}\n{json.dumps(seen, indent=1)}") from None
    assert not [x for x in promql(mstack, "dagster_runs_failed_total") if run_id in json.dumps(x["metric"])]


def test_the_dashboard_in_a_browser_as_a_viewer(mstack, ui):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(http_credentials={"username": mstack.viewer[0], "password": mstack.viewer[1]},
                                          viewport={"width": 1400, "height": 1250})
            page = context.new_page()
            page.goto(f"{mstack.base_url}/prometheus/consoles/platform.html", wait_until="networkidle")
            expect(page.get_by_role("heading", name="Dagster control plane")).to_be_visible()
            expect(page.locator("#platform-healthy")).to_have_text("healthy")
            for location in LOCATION_NAMES:
                expect(page.locator("#locations")).to_contain_text(location)
            expect(page.locator("#daemons")).to_contain_text("QUEUED_RUN_COORDINATOR")
            # The failed run of the test before, counted for its location.
            expect(page.locator("#locations tr", has_text="platform")).to_contain_text(re.compile(r"/ [1-9]"))
            expect(page.locator("#queueGraph svg").first).to_be_visible()  # the graph library loaded
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))  # the viewport: the time control is fixed at its foot
        finally:
            browser.close()


def test_a_killed_daemon_is_alerted_within_a_minute(mstack, ui):
    age_query = "min(dagster_daemon_heartbeat_age_seconds)"
    poll("the daemon heartbeating", lambda: (a := scalar(mstack, age_query)) is not None and a < 40, 120)
    assert not [a for a in alertmanager_alerts(mstack) if a["labels"]["alertname"] == "DagsterDaemonDown"]
    daemon = mstack.compose("ps", "-q", "daemon").stdout.strip()
    _docker("kill", daemon)
    killed = time.monotonic()

    alert = poll("DagsterDaemonDown reaches the webhook",
                 lambda: next((a for a in alertmanager_alerts(mstack) if a["labels"]["alertname"] == "DagsterDaemonDown"
                               and a["status"] == "firing"), None),
                 DETECTION_DEADLINE, interval=1)
    took = time.monotonic() - killed
    print(f"DagsterDaemonDown reached the webhook {took:.0f}s after docker kill")
    assert took <= DETECTION_DEADLINE
    assert alert["labels"]["daemon_type"] and alert["annotations"]["summary"]
    # The heartbeat age grew to the threshold (40 s) while the daemon was gone: the alert can reach
    # the webhook on the collection that first judged it over, whose sample 2-s steps may see as 40.0.
    ages = promql(mstack, "max_over_time(min(dagster_daemon_heartbeat_age_seconds)[2m:2s])")
    assert float(ages[0]["value"][1]) >= 40, ages


def test_promtool_accepts_the_config_and_the_rules_fire_as_specified(mstack):
    """In the stack's own monitoring image: the rendered config and the rules check, and the rule
    cases of tests/deploy/monitoring/alert_rules.promtool.yml pass."""
    image = "flights-platform/monitoring:dev"
    cases = Path(__file__).resolve().parents[1] / "deploy" / "monitoring" / "alert_rules.promtool.yml"
    prometheus = mstack.compose("ps", "-q", "monitoring-prometheus").stdout.strip()
    checked = _docker("exec", prometheus, "promtool", "check", "config", "/tmp/prometheus.yml", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _docker("run", "--rm", "--network", "none", "-v", f"{cases}:/tests/rules.yml:ro",
                     "--entrypoint", "promtool", image, "test", "rules", "/tests/rules.yml", check=False)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    alertmanager = mstack.compose("ps", "-q", "monitoring-alertmanager").stdout.strip()
    checked = _docker("exec", alertmanager, "amtool", "check-config", "/tmp/alertmanager.yml", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

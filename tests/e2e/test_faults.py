"""Fault injection on a private copy of the stack: each fault is injected, then the platform must
recover by itself (no manual restart or reload) and lose nothing. Dagster's own compose example
leaves a killed run STARTED, a terminated one CANCELING and forgets everything on `down`/`up`.

The stack is module-scoped and private because these tests restart Postgres and the daemon. Each
test prints its row of the lead's table (fault | what happened | time to recover | data lost);
run with `-s` to see them, the module prints the whole table at the end."""

import json
import secrets
import subprocess
import threading
import time

import pytest
import requests

from tests.e2e.compose_stack import LOCATION_NAMES, LOCATION_SERVICES, RUN_LABEL, ComposeStack
from tests.e2e.dagster_graphql import TERMINAL, DagsterGraphQL

pytestmark = pytest.mark.compose

FLIGHTS = ["ingestion", "flights"]
WEATHER = ["ingestion", "weather"]
FIRST_END = "2013-01-05"  # what the replay lands before test_daemon_restart extends it
STREAM_END = "2013-01-12"
ACTIVE = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
STUCK = {"STARTING", "STARTED", "CANCELING"}
ROWS: list[tuple[str, str, str, str]] = []
INGEST_JOB = {"repositoryLocationName": "ingestion", "repositoryName": "__repository__", "pipelineName": "ingest_landed_day"}
# Built by the code server over gRPC (not from the webserver's cached snapshot), as a launch is.
EXECUTION_PLAN = """
query Plan($pipeline: PipelineSelector!) { executionPlanOrError(pipeline: $pipeline, mode: "default") {
    __typename ... on PythonError { message } ... on PipelineNotFoundError { message } } }
"""


def record(fault: str, happened: str, seconds: float | None, lost: str) -> None:
    row = (fault, happened, "n/a" if seconds is None else f"{seconds:.1f} s", lost)
    ROWS.append(row)
    print(f"\nFAULT | {' | '.join(row)}")


def bring_up(stack: ComposeStack) -> None:
    """`up --wait` gives up as soon as a healthcheck times out, which a loaded 2-core host makes
    happen during start-up; a second `up` waits for the same containers to turn healthy."""
    try:
        stack.up()
    except AssertionError as exc:
        print(f"first `up` failed, retrying once: {str(exc)[-300:]}")
        stack.up()


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    stack = ComposeStack(f"flights-e2e-{secrets.token_hex(3)}", tmp_path_factory.mktemp("faults"))
    stack.set_env(REPLAY_SECONDS_PER_DAY="3", REPLAY_END=FIRST_END)
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
        print("\n===== fault table =====\nfault | what happened | time to recover | data lost")
        for row in ROWS:
            print(" | ".join(row))
        stack.down()


@pytest.fixture(scope="module")
def dagster(stack) -> DagsterGraphQL:
    client = DagsterGraphQL(stack.base_url, auth=stack.admin, timeout=60)
    client.wait_locations_loaded(LOCATION_NAMES, timeout=900)
    return client


# --- probes -------------------------------------------------------------------------------------


def landed_days(stack: ComposeStack, dataset: str) -> list[str]:
    return sorted(stack.landed(dataset))


def expected_flights(stack: ComposeStack, day: str) -> int:
    text = stack.read_landing_file(f"flights/{day}.csv")
    assert text, f"flights/{day}.csv has not landed"
    return text.count("\n") - 1


def sql(stack: ComposeStack, database: str, query: str, **params: str) -> str:
    """A query as superuser with psql variables (:'name' quotes the value as a literal)."""
    cmd = ["docker", "exec", "-i", service_container(stack, "postgres"), "psql", "-U", "postgres", "-d", database,
           "-At", "-v", "ON_ERROR_STOP=1", *(a for k, v in params.items() for a in ("-v", f"{k}={v}"))]
    return subprocess.run(cmd, input=query, text=True, capture_output=True, check=True, timeout=120).stdout.strip()


def flights_rows(stack: ComposeStack, day: str) -> tuple[int, int]:
    """(rows, distinct rows) of one day in the warehouse."""
    out = sql(stack, "warehouse",
              "SELECT count(*), count(DISTINCT f) FROM ingestion.flights f WHERE flight_date = CAST(:'day' AS date)",
              day=day)
    total, distinct = out.split("|")
    return int(total), int(distinct)


def event_counts(stack: ComposeStack) -> dict[str, int]:
    out = stack.psql("dagster", "SELECT run_id, count(*) FROM event_logs WHERE run_id <> '' GROUP BY run_id")
    return {run_id: int(n) for run_id, n in (line.split("|") for line in out.splitlines() if line)}


def launch_to_started(stack: ComposeStack) -> list[float]:
    """Seconds from RUN_STARTING (the launcher created the container) to RUN_START (the run worker
    is up), for every run that got that far, sorted."""
    out = stack.psql("dagster", "SELECT extract(epoch FROM max(timestamp) - min(timestamp)) FROM event_logs "
                                "WHERE dagster_event_type IN ('PIPELINE_STARTING', 'PIPELINE_START') "
                                "GROUP BY run_id HAVING count(DISTINCT dagster_event_type) = 2")
    return sorted(float(line) for line in out.splitlines() if line)


def run_container(stack: ComposeStack, run_id: str, running: bool = True) -> str | None:
    filters = [f"label=dagster/run_id={run_id}", f"label={RUN_LABEL.rsplit('.', 1)[0]}.role=run"]
    if running:
        filters.append("status=running")
    ids = stack.run_containers(*filters)
    return ids[0] if ids else None


def service_container(stack: ComposeStack, service: str) -> str:
    out = stack.compose("ps", "-q", service).stdout.split()
    assert out, f"{service} has no container"
    return out[0]


def inspect_state(container: str) -> dict:
    out = subprocess.run(["docker", "inspect", "-f", "{{json .State}}|{{.RestartCount}}", container],
                         text=True, capture_output=True, check=True).stdout.strip()
    state, restarts = out.rsplit("|", 1)
    return {**json.loads(state), "RestartCount": int(restarts)}


def crash(container: str) -> dict:
    """Simulate a crash: SIGKILL the container's main process from the host. On this Docker
    (20.10) `docker kill` counts as a manual stop, so `restart: unless-stopped` would not apply."""
    before = inspect_state(container)
    assert before["Running"], before
    subprocess.run(["kill", "-9", str(before["Pid"])], check=True)
    return before


def wait_restarted(dagster: DagsterGraphQL, container: str, before: dict, timeout: float = 120) -> dict:
    return dagster.wait_for(
        f"container {container[:12]} restarted by its restart policy",
        lambda: (s := inspect_state(container))["Running"] and s["RestartCount"] > before["RestartCount"] and s,
        timeout=timeout, interval=0.5,
    )


def wait_started_with_container(stack, dagster, run_id: str, timeout: float = 900) -> str:
    """The run is STARTED and its container is running: the run worker is mid-flight."""
    def probe():
        status = dagster.run(run_id)["status"]
        if status in TERMINAL:
            raise AssertionError(f"run {run_id} ended ({status}) before the fault could be injected")
        return status == "STARTED" and run_container(stack, run_id)
    return dagster.wait_for(f"run {run_id} STARTED with a running container", probe, timeout=timeout, interval=0.2)


STEP_DONE = {"ExecutionStepSuccessEvent", "ExecutionStepFailureEvent", "MaterializationEvent", "RunSuccessEvent"}


def kill_mid_step(dagster: DagsterGraphQL, run_id: str, container: str, timeout: float = 900) -> float:
    """SIGKILL the run container while its step runs. The container stays frozen (`docker pause`)
    while its events are read and runs on only in 50 ms slices in between, so the kill lands at
    most one slice after the step started: an in-process step of a day takes well under a second.
    Returns the monotonic time of the kill."""
    deadline = time.monotonic() + timeout
    subprocess.run(["docker", "pause", container], check=True, capture_output=True)
    try:
        while time.monotonic() < deadline:
            kinds = {e["__typename"] for e in dagster.events(run_id)}
            assert "RunSuccessEvent" not in kinds, f"run {run_id} ended before it could be killed: {kinds}"
            if "ExecutionStepStartEvent" in kinds:
                if kinds & STEP_DONE:
                    print(f"note: run {run_id} had written its output within the last slice; killing it before it ends")
                subprocess.run(["docker", "kill", container], check=True, capture_output=True)
                return time.monotonic()
            subprocess.run(["docker", "unpause", container], check=True, capture_output=True)
            time.sleep(0.05)
            subprocess.run(["docker", "pause", container], check=True, capture_output=True)
    except BaseException:
        subprocess.run(["docker", "unpause", container], check=False, capture_output=True)
        raise
    subprocess.run(["docker", "unpause", container], check=False, capture_output=True)
    raise AssertionError(f"run {run_id} never reached its step within {timeout}s")


def sensor_ticked_since(dagster: DagsterGraphQL, location: str, name: str, since: float):
    ticks = dagster.sensor(location, name)["sensorState"]["ticks"]
    return [t for t in ticks if t["timestamp"] > since and t["status"] in ("SUCCESS", "SKIPPED")]


def retry_of(dagster: DagsterGraphQL, run_id: str) -> list[dict]:
    return dagster.runs(tags=[{"key": "dagster/parent_run_id", "value": run_id}])


def ends_in_success(dagster: DagsterGraphQL, run_id: str, timeout: float = 900) -> list[str]:
    """The run, or the retry chain run retries started for it, ends SUCCESS: each link's status."""
    chain = []
    while True:
        status, _ = dagster.wait_run(run_id, timeout=timeout)
        chain.append(f"{run_id[:8]} {status}")
        if status == "SUCCESS":
            return chain
        assert status == "FAILURE", chain  # CANCELED is nobody's retry
        run_id = dagster.wait_for(f"a retry of {run_id}", lambda r=run_id: retry_of(dagster, r),
                                  timeout=timeout)[0]["runId"]


def wait_day_ingested(stack, dagster, day: str, timeout: float = 900) -> None:
    """The sensor's own run for the day finished, so a test's run of that day races nothing."""
    def probe():
        runs = dagster.runs(pipelineName="ingest_landed_day", tags=[{"key": "dagster/partition", "value": day}])
        return runs and all(r["status"] in TERMINAL for r in runs) and runs
    dagster.wait_for(f"the landing sensor's run for {day}", probe, timeout=timeout)


def not_stuck(dagster: DagsterGraphQL, run_ids) -> dict[str, str]:
    statuses = {run_id: dagster.run(run_id)["status"] for run_id in run_ids}
    return statuses if not any(s in ACTIVE for s in statuses.values()) else {}


def tolerant(probe):
    """A probe for while a dependency comes back: an HTTP or GraphQL error counts as "not yet"."""
    def wrapped():
        try:
            return probe()
        except (requests.RequestException, AssertionError):
            return None
    return wrapped


def quiet(dagster: DagsterGraphQL) -> bool:
    return not [r for r in dagster.runs() if r["status"] in ACTIVE]


# --- faults -------------------------------------------------------------------------------------


def test_killed_run_container_is_failed_by_monitoring_and_retried(stack, dagster):
    day = "2013-01-03"
    dagster.wait_for(f"flights/{day} landed", lambda: stack.read_landing_file(f"flights/{day}.csv"), timeout=900)
    wait_day_ingested(stack, dagster, day)
    expected = expected_flights(stack, day)

    run_id = dagster.launch_asset_run("ingestion", FLIGHTS, day)
    container = wait_started_with_container(stack, dagster, run_id)
    killed_at = kill_mid_step(dagster, run_id, container)

    status, seen = dagster.wait_run(run_id, timeout=900)
    failed_after = time.monotonic() - killed_at
    assert status == "FAILURE", (status, seen)
    # Killed mid-flight (its events say so; polling may see FAILURE first when monitoring is quick).
    kinds = {e["__typename"] for e in dagster.events(run_id)}
    assert {"RunStartEvent", "ExecutionStepStartEvent", "RunFailureEvent"} <= kinds, kinds
    retries = dagster.wait_for(f"a retry of {run_id}", lambda: retry_of(dagster, run_id), timeout=900)
    assert len(retries) == 1, retries
    retry = retries[0]
    assert retry["tags"].get("dagster/root_run_id") == run_id, retry["tags"]
    retry_status, _ = dagster.wait_run(retry["runId"], timeout=900)
    recovered = time.monotonic() - killed_at
    assert retry_status == "SUCCESS", retry
    total, distinct = flights_rows(stack, day)
    assert total == distinct == expected, (total, distinct, expected)
    assert retry["runId"] in dagster.materialized_partitions(FLIGHTS, [day])[day]
    record("1 run container killed (docker kill)",
           f"killed mid-step (STEP_START logged, nothing written); monitoring marked FAILURE after "
           f"{failed_after:.0f} s; retry {retry['runId'][:8]} SUCCESS",
           recovered, f"none ({total} rows = landed, no duplicates)")


def wait_starting_with_container(stack, dagster, run_id: str, timeout: float = 900) -> str:
    """The run is STARTING and its container runs: the run worker is still starting up."""
    def probe():
        status = dagster.run(run_id)["status"]
        if status not in ("QUEUED", "NOT_STARTED", "STARTING"):
            raise AssertionError(f"run {run_id} went {status} before its container was seen STARTING")
        return status == "STARTING" and run_container(stack, run_id)
    return dagster.wait_for(f"run {run_id} STARTING with a running container", probe, timeout=timeout, interval=0.1)


# Run monitoring checks every 10 s (dagster.yaml poll_interval_seconds); the daemon's loop adds a few.
STARTING_FAILED_WITHIN = 30


def test_run_container_killed_while_starting_is_failed_within_30s_and_retried(stack, dagster):
    """Stock run monitoring checks the worker of STARTED runs only: a STARTING run whose
    container died waited out start_timeout_seconds (180 s). The daemon's patch
    (platform_core.dagster_patches.patch_starting_run_worker_health) checks STARTING runs too."""
    day = "2013-01-02"
    dagster.wait_for(f"flights/{day} landed", lambda: stack.read_landing_file(f"flights/{day}.csv"), timeout=900)
    wait_day_ingested(stack, dagster, day)
    expected = expected_flights(stack, day)

    run_id = dagster.launch_asset_run("ingestion", FLIGHTS, day)
    container = wait_starting_with_container(stack, dagster, run_id)
    subprocess.run(["docker", "kill", container], check=True, capture_output=True)
    killed_at = time.monotonic()
    kinds = {e["__typename"] for e in dagster.events(run_id)}
    assert "RunStartEvent" not in kinds, f"the run worker had started before the kill: {kinds}"

    status, seen = dagster.wait_run(run_id, timeout=900)
    failed_after = time.monotonic() - killed_at
    assert status == "FAILURE" and "STARTED" not in seen, (status, seen)
    assert failed_after <= STARTING_FAILED_WITHIN, f"failed {failed_after:.0f} s after the kill"
    failure = [e["message"] for e in dagster.events(run_id) if e["__typename"] == "RunFailureEvent"]
    assert failure and "Run worker of STARTING run" in failure[0], failure
    chain = ends_in_success(dagster, run_id)
    recovered = time.monotonic() - killed_at
    assert len(chain) == 2, chain  # the kill cost exactly one retry
    total, distinct = flights_rows(stack, day)
    assert total == distinct == expected, (total, distinct, expected)
    record("1b run container killed while STARTING (docker kill)",
           f"monitoring marked FAILURE after {failed_after:.0f} s (stock: start timeout, 180 s); "
           f"retry: {' -> '.join(chain)}", recovered, f"none ({total} rows = landed, no duplicates)")


def test_terminated_run_ends_canceled(stack, dagster):
    # Four days in one run, so its step is still loading when the terminate arrives (a one-day run
    # could finish first on an idle host).
    days = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]
    dagster.wait_for(f"flights/{days[-1]} landed", lambda: stack.read_landing_file(f"flights/{days[-1]}.csv"), timeout=900)
    for day in days:
        wait_day_ingested(stack, dagster, day)
    expected = {day: expected_flights(stack, day) for day in days}
    run_id = dagster.launch_asset_run("ingestion", FLIGHTS, partition_range=(days[0], days[-1]))
    container = wait_started_with_container(stack, dagster, run_id)
    asked = time.monotonic()
    dagster.terminate_run(run_id)  # returns once the launcher stopped the container (SIGTERM)
    status, seen = dagster.wait_run(run_id, timeout=900)
    ended = time.monotonic() - asked
    assert status == "CANCELED", (status, seen)
    dagster.wait_for(f"container of {run_id} stopped", lambda: not run_container(stack, run_id), timeout=60)
    assert inspect_state(container)["Status"] == "exited"
    # A cancel is not an infrastructure failure: nothing retries it.
    assert not retry_of(dagster, run_id)
    rows = {day: flights_rows(stack, day) for day in days}
    assert rows == {day: (n, n) for day, n in expected.items()}, (rows, expected)
    total = sum(n for n, _ in rows.values())
    # Monitoring's fallback after cancel_timeout_seconds adds a second RUN_CANCELED of its own.
    cancels = [e["message"] for e in dagster.events(run_id) if e["__typename"] == "RunCanceledEvent"]
    print(f"RUN_CANCELED events: {cancels}")
    record("7 run terminated (terminateRun)",
           f"statuses {' -> '.join(seen)}; {'recorded by the run itself' if len(cancels) == 1 else 'by monitoring fallback'}",
           ended,
           f"none (the days keep their {total} rows from the earlier runs)")


def test_daemon_restart_mid_stream_ingests_every_landed_day_once(stack, dagster):
    assert landed_days(stack, "flights")[-1] == FIRST_END
    stack.set_env(REPLAY_SECONDS_PER_DAY="20", REPLAY_END=STREAM_END)
    stack.compose("up", "-d", "--no-deps", "replay")  # resumes after FIRST_END: the stream goes on
    dagster.wait_for("the replay landing again", lambda: len(landed_days(stack, "flights")) >= 7, timeout=120, interval=1)

    def active_sensor_run():
        runs = dagster.runs(pipelineName="ingest_landed_day", statuses=["STARTED", "STARTING"])
        return runs
    active = dagster.wait_for("a sensor run in flight", active_sensor_run, timeout=600, interval=0.5)
    landed_before = landed_days(stack, "flights")
    assert landed_before[-1] < STREAM_END, f"the stream ended before the fault: {landed_before}"
    restarted_at = time.time()
    t0 = time.monotonic()
    stack.compose("restart", "daemon")
    dagster.wait_for("a landing sensor tick after the daemon restart",
                     lambda: sensor_ticked_since(dagster, "ingestion", "landing_zone_sensor", restarted_at),
                     timeout=900)
    ticking = time.monotonic() - t0
    for run in active:
        status, seen = dagster.wait_run(run["runId"], timeout=900)
        if status == "FAILURE":  # failed cleanly: a retry must have taken over
            retry = dagster.wait_for(f"a retry of {run['runId']}", lambda: retry_of(dagster, run["runId"]), timeout=900)
            assert dagster.wait_run(retry[0]["runId"], timeout=900)[0] == "SUCCESS", retry

    days = dagster.wait_for(
        "the replay to land the last day",
        lambda: (d := landed_days(stack, "flights"))[-1] == STREAM_END == landed_days(stack, "weather")[-1] and d,
        timeout=900,
    )
    assert days == landed_days(stack, "weather")

    def all_ingested():
        found = dagster.materialized_partitions(FLIGHTS, days)
        weather = dagster.materialized_partitions(WEATHER, days)
        return set(found) == set(days) == set(weather) and quiet(dagster) and found
    dagster.wait_for("every landed day materialized and no run active", all_ingested, timeout=1200, interval=3)
    recovered = time.monotonic() - t0

    problems = {}
    for day in days:
        expected = expected_flights(stack, day)
        total, distinct = flights_rows(stack, day)
        # Each dataset/day is requested once (flights and weather may land in different ticks).
        requested = sorted(
            dataset
            for r in dagster.runs(pipelineName="ingest_landed_day", tags=[{"key": "dagster/partition", "value": day}])
            if r["tags"].get("dagster/sensor_name") == "landing_zone_sensor" and "dagster/parent_run_id" not in r["tags"]
            for dataset in r["tags"]["dagster/run_key"].rsplit("-", 3)[0].split("+")
        )
        if not (total == distinct == expected) or requested != ["flights", "weather"]:
            problems[day] = {"rows": total, "distinct": distinct, "expected": expected, "requested": requested}
    assert not problems, problems
    record("2 daemon restarted (compose restart) mid-run, replay streaming",
           f"{len(active)} run(s) in flight finished; sensor ticked again after {ticking:.0f} s; "
           f"{len(days)} landed days each requested once", recovered, "none (rows per day = landed, no day skipped)")


def test_daemon_crash_comes_back_and_drains_the_queue(stack, dagster):
    container = service_container(stack, "daemon")
    before = crash(container)
    t0 = time.monotonic()
    run_id = dagster.launch_asset_run("ingestion", ["ingestion", "airlines"])  # queued while no daemon
    after = wait_restarted(dagster, container, before)
    status, seen = dagster.wait_run(run_id, timeout=900)
    recovered = time.monotonic() - t0
    assert status == "SUCCESS", (status, seen)
    assert seen[0] in ("QUEUED", "NOT_STARTED", "STARTING"), seen
    assert after["RestartCount"] == before["RestartCount"] + 1
    record("4 daemon crashed (kill -9 of its main process)",
           f"restart policy restarted it (RestartCount {after['RestartCount']}); queued run dequeued, SUCCESS",
           recovered, "none")


def test_code_server_crash_reloads_by_itself_and_sensors_resume(stack, dagster):
    container = service_container(stack, "ingestion")
    before = crash(container)
    crashed_wall, t0 = time.time(), time.monotonic()
    errors_seen: list[str] = []

    def reloaded():
        try:
            entry = dagster.locations()["ingestion"]
        except (requests.RequestException, AssertionError) as exc:
            errors_seen.append(f"workspace query failed: {str(exc)[:120]}")
            return None
        if entry["loadStatus"] != "LOADED" or entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
            errors_seen.append(f"{entry['loadStatus']} {entry['locationOrLoadError']['__typename']}: "
                               f"{(entry['locationOrLoadError'].get('message') or '')[:120]}")
            return None
        try:
            plan = dagster.query(EXECUTION_PLAN, pipeline=INGEST_JOB)["executionPlanOrError"]
        except (requests.RequestException, AssertionError) as exc:
            errors_seen.append(f"execution plan query failed: {str(exc)[:120]}")
            return None
        if plan["__typename"] != "ExecutionPlan":  # what launching from the UI would show now
            errors_seen.append(f"execution plan: {plan['__typename']}: {(plan.get('message') or '')[:120]}")
            return None
        try:
            state = inspect_state(container)
            if state["RestartCount"] == before["RestartCount"] or state.get("Health", {}).get("Status") != "healthy":
                errors_seen.append(f"container {state['Status']} health {state.get('Health', {}).get('Status')}")
                return None
        except subprocess.CalledProcessError as exc:
            errors_seen.append(f"container: inspect failed {exc}")
            return None
        return entry

    dagster.wait_for("the ingestion location loaded again without a reload", reloaded, timeout=900, interval=1)
    loaded = time.monotonic() - t0
    after = inspect_state(container)
    assert after["RestartCount"] == before["RestartCount"] + 1, after
    shown = [e for e in errors_seen if not e.startswith("container")]
    dagster.wait_for("a landing sensor tick after the crash",
                     lambda: sensor_ticked_since(dagster, "ingestion", "landing_zone_sensor", crashed_wall),
                     timeout=900)
    dagster.wait_for("a reference-automation tick after the crash",
                     lambda: sensor_ticked_since(dagster, "ingestion", "ingestion_reference_automation", crashed_wall),
                     timeout=900)
    recovered = time.monotonic() - t0
    run_id = dagster.launch_asset_run("ingestion", ["ingestion", "airports"])
    assert dagster.wait_run(run_id, timeout=900)[0] == "SUCCESS"
    print(f"while down the UI showed: {sorted(set(shown))[:5]}")
    assert shown, "the webserver never showed the ingestion location as failing while its server was down"
    record("5 ingestion code server crashed (kill -9)",
           f"UI showed '{shown[0][:70]}'; restarted, reloaded in {loaded:.0f} s without a manual reload; sensors ticked",
           recovered, "none")


RUNS_PROBE = {"query": "{ runsOrError(limit: 1) { __typename } }"}


class GatewayLoop(threading.Thread):
    """Requests through the gateway, as the admin, every 0.25 s until stopped: the webserver's own
    `/server_info` and a GraphQL query that reads the run storage. Records (seconds since start,
    what, HTTP status or the exception, GraphQL type)."""

    def __init__(self, stack: ComposeStack):
        super().__init__(daemon=True)
        self.stack, self.answers, self.halt = stack, [], threading.Event()

    def run(self):
        session, t0 = requests.Session(), time.monotonic()
        session.auth = self.stack.admin
        while not self.halt.is_set():
            for what in ("server_info", "runs"):
                try:
                    if what == "server_info":
                        response = session.get(f"{self.stack.base_url}/server_info", timeout=30)
                        kind = None
                    else:
                        response = session.post(f"{self.stack.base_url}/graphql", json=RUNS_PROBE, timeout=30)
                        kind = (response.json().get("data") or {}).get("runsOrError", {}).get("__typename") \
                            if response.status_code == 200 else None
                    self.answers.append((time.monotonic() - t0, what, response.status_code, kind))
                except requests.RequestException as exc:
                    self.answers.append((time.monotonic() - t0, what, f"{type(exc).__name__}: {exc}"[:160], None))
            self.halt.wait(0.25)


def test_postgres_restart_reconnects_everything_and_loses_no_history(stack, dagster):
    """A restart of Postgres with two runs in flight: every request through the gateway is
    answered 200 throughout; once the run storage answers again, no request fails (no stale pooled
    connection); each in-flight run, or its retry, ends SUCCESS and its rows are complete."""
    days = ("2013-01-04", "2013-01-05")  # landed at start (FIRST_END): no other test's replay needed
    for day in days:
        wait_day_ingested(stack, dagster, day)
    dagster.wait_for("no run active", lambda: quiet(dagster), timeout=900)
    finished_before = event_counts(stack)
    expected = {day: expected_flights(stack, day) for day in days}
    # Not loaded: the days' rows are removed, so only these runs (or their retries) can put them back.
    sql(stack, "warehouse", "DELETE FROM ingestion.flights WHERE flight_date IN (CAST(:'a' AS date), CAST(:'b' AS date))",
        a=days[0], b=days[1])
    assert {day: flights_rows(stack, day) for day in days} == {day: (0, 0) for day in days}
    active = [dagster.launch_asset_run("ingestion", FLIGHTS, day) for day in days]
    wait_started_with_container(stack, dagster, active[0])
    services = ("webserver", "webserver-viewer", "daemon", *LOCATION_SERVICES, "gateway")
    restarts_before = {s: inspect_state(service_container(stack, s))["RestartCount"] for s in services}
    loop = GatewayLoop(stack)
    loop.start()
    time.sleep(2)
    restarted_wall, t0 = time.time(), time.monotonic()
    try:
        stack.compose("restart", "postgres")
        dagster.wait_locations_loaded(LOCATION_NAMES, timeout=900)
        graphql_back = time.monotonic() - t0
        outcome = [" -> ".join(ends_in_success(dagster, run_id)) for run_id in active]
        time.sleep(5)  # a few more answers after the runs ended
    finally:
        loop.halt.set()
        loop.join(60)

    answers = loop.answers
    not_200 = [a for a in answers if a[2] != 200]
    assert not not_200, f"{len(not_200)} of {len(answers)} gateway requests not answered 200: {not_200[:10]}"
    runs = [a for a in answers if a[1] == "runs"]
    failed = [i for i, a in enumerate(runs) if a[3] != "Runs"]
    if failed:  # storage unreachable while Postgres was down: one block, then never again
        assert failed == list(range(failed[0], failed[-1] + 1)), f"run storage failed after it was back: {runs}"
        assert len(runs) - failed[-1] > 20, runs[-5:]
    print(f"gateway loop: {len(answers)} requests, all HTTP 200; run-storage query failed "
          f"{len(failed)} time(s), for {(runs[failed[-1]][0] - runs[failed[0]][0]) if failed else 0:.1f} s")
    assert {day: flights_rows(stack, day) for day in days} == {day: (n, n) for day, n in expected.items()}

    new_run = dagster.launch_asset_run("ingestion", ["ingestion", "planes"])
    assert dagster.wait_run(new_run, timeout=900)[0] == "SUCCESS"
    dagster.wait_for("a landing sensor tick after the Postgres restart",
                     tolerant(lambda: sensor_ticked_since(dagster, "ingestion", "landing_zone_sensor", restarted_wall)),
                     timeout=900)
    dagster.wait_for("a reporting automation tick after the Postgres restart",
                     tolerant(lambda: sensor_ticked_since(dagster, "reporting", "reporting_automation", restarted_wall)),
                     timeout=900)
    recovered = time.monotonic() - t0
    after = event_counts(stack)
    changed = {r: (n, after.get(r)) for r, n in finished_before.items() if after.get(r) != n}
    assert not changed, f"event history of finished runs changed: {changed}"
    restarted = {s: n for s in services if (n := inspect_state(service_container(stack, s))["RestartCount"]) != restarts_before[s]}
    print(f"services Docker restarted (crashed) during the Postgres restart: {restarted or 'none'}")
    record("3 Postgres restarted with 2 runs active",
           f"{len(answers)} gateway requests all 200 (run storage unavailable for {len(failed)}); GraphQL back "
           f"after {graphql_back:.0f} s; crashed+restarted: {sorted(restarted) or 'none'}; runs: {'; '.join(outcome)}; "
           "new run SUCCESS, sensors ticked", recovered,
           f"none (removed days re-ingested: {expected}; {len(finished_before)} finished runs' event counts unchanged)")


def test_down_and_up_keeps_every_record(stack, dagster):
    name, password = "fault-viewer", secrets.token_urlsafe(12)
    stack.add_user(name, "viewer", password)
    dagster.wait_for("no run active", lambda: quiet(dagster), timeout=900)
    runs_before = {r["runId"]: r["status"] for r in dagster.runs() if r["status"] in TERMINAL}
    events_before = {r: n for r, n in event_counts(stack).items() if r in runs_before}
    tables = "SELECT 'flights', count(*) FROM ingestion.flights UNION ALL SELECT 'weather', count(*) FROM ingestion.weather"
    rows_before = stack.psql("warehouse", tables)
    cursor_before = dagster.sensor("ingestion", "landing_zone_sensor")["sensorState"]["typeSpecificData"]["lastCursor"]
    landed_before = {d: landed_days(stack, d) for d in ("flights", "weather")}
    assert runs_before and cursor_before and landed_before["flights"]

    stack.compose("down", "--timeout", "20")
    t0 = time.monotonic()
    bring_up(stack)
    dagster.wait_locations_loaded(LOCATION_NAMES, timeout=900)
    recovered = time.monotonic() - t0

    runs_after = {r["runId"]: r["status"] for r in dagster.runs()}
    assert {r: runs_after.get(r) for r in runs_before} == runs_before
    events_after = event_counts(stack)
    assert {r: events_after.get(r) for r in events_before} == events_before
    assert stack.psql("warehouse", tables) == rows_before
    cursor_after = dagster.sensor("ingestion", "landing_zone_sensor")["sensorState"]["typeSpecificData"]["lastCursor"]
    assert set(json.loads(cursor_before)) <= set(json.loads(cursor_after)), (cursor_before, cursor_after)
    assert {d: landed_days(stack, d) for d in ("flights", "weather")} == landed_before
    response = requests.get(f"{stack.base_url}/server_info", auth=(name, password), timeout=30)
    assert response.status_code == 200, response.status_code
    wrong = requests.get(f"{stack.base_url}/server_info", auth=(name, password + "x"), timeout=30)
    assert wrong.status_code == 401, wrong.status_code
    record("6 compose down + up (volumes kept)",
           f"{len(runs_before)} runs, {sum(events_before.values())} events, warehouse rows, sensor cursor, "
           f"{len(landed_before['flights'])} landed days and the added user all intact", recovered, "none")


def test_no_run_left_stuck(stack, dagster):
    """After every fault, nothing is left STARTING/STARTED/CANCELING for good."""
    dagster.wait_for("every run ended", lambda: not [r for r in dagster.runs() if r["status"] in STUCK | {"QUEUED"}],
                     timeout=900)
    statuses = {}
    for run in dagster.runs():
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    print(f"run statuses at the end: {statuses}")


def test_down_with_the_demo_running_leaves_no_run_container(stack, dagster):
    """`docker compose down -v` while the demo streams left the in-flight runs' containers behind
    (they exited after the watchdog, which prunes on stop, had gone) and with them the volumes they
    mount. `down` now stops the daemon first (it depends on the watchdog), so nothing launches any
    more when the watchdog stops; it stops the in-flight run containers and removes them all."""
    stack.set_env(REPLAY_SECONDS_PER_DAY="2", REPLAY_END="2013-01-31")
    stack.compose("up", "-d", "--no-deps", "replay")

    def in_flight():
        runs = dagster.runs(statuses=["STARTING", "STARTED"])
        return [r["runId"] for r in runs if run_container(stack, r["runId"])]
    running = dagster.wait_for("sensor runs in flight with running containers", in_flight, timeout=600, interval=0.5)
    starts = launch_to_started(stack)
    print(f"launch -> STARTED over {len(starts)} runs of this module: min {starts[0]:.1f} s, median "
          f"{starts[len(starts) // 2]:.1f} s, 90th {starts[int(len(starts) * 0.9)]:.1f} s, max {starts[-1]:.1f} s")
    # The watchdog's log is gone with its container after `down`: follow it from now on.
    follow = subprocess.Popen(["docker", "logs", "-f", "--since", "1s", service_container(stack, "watchdog")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    down = stack.compose("down", "-v", check=False, timeout=600)
    took = time.monotonic() - t0
    log = follow.communicate(timeout=60)[0]
    leftovers = stack.run_containers()
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name=^{stack.project}_"],
                             capture_output=True, text=True, check=True).stdout.split()
    print(f"down with {len(running)} run(s) in flight took {took:.0f} s; watchdog:\n{log[-3000:]}")
    assert down.returncode == 0, down.stderr[-2000:]
    assert not leftovers, f"run containers left after down: {leftovers}"
    assert not volumes, f"volumes left after down -v: {volumes}"
    assert "stopping in-flight run container" in log, log[-2000:]
    record("8 compose down -v with the demo streaming",
           f"{len(running)} run(s) in flight stopped and removed by the watchdog; no container or volume left",
           took, "n/a (volumes removed on purpose)")

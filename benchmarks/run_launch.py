"""Run launch of the trivial `platform/canary` asset, one run at a time: from the launch
mutation to the first step start, and to SUCCESS. Floor: `docker run` of the same image doing
nothing but `python -c "import dagster"` (a run container can't start its step sooner).

The launch is also cut into phases, from the run's own events and its container's start time, so
the table shows where the time above the floor goes:
queue (mutation -> the daemon takes it off the queue: RUN_STARTING), launcher (-> Docker started the container), boot
(-> the container's RUN_START: Python, Dagster, the location's code, the instance) and plan
(-> the first step starts)."""

import subprocess
import time

from bench_stack import docker_time
from figures import Figure, Target

NAME = "run_launch"
# The canary lives in the platform location (code_locations/platform); its image is the floor's.
CANARY_LOCATION = "platform"
CANARY = [CANARY_LOCATION, "canary"]
CANARY_IMAGE = f"flights-platform/{CANARY_LOCATION}:dev"
CANARY_DEFINITIONS = "platform_ops.definitions"
RUN_TIMES = """query T($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { status startTime endTime } } }"""


def launch_and_time(stack) -> dict:
    """Launch one canary run; seconds from the mutation to the first step start and to the end."""
    begin = time.time()
    run_id = stack.client.launch_asset_run(CANARY_LOCATION, CANARY)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = stack.client.query(RUN_TIMES, runId=run_id)["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.25)
    else:
        raise RuntimeError(f"canary run {run_id} not finished within 300 s")
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"canary run {run_id} ended {run['status']}")
    events = stack.client.events(run_id)
    first_step = min(event_time(e) for e in events if e["__typename"] == "ExecutionStepStartEvent")
    return {"run_id": run_id, "first_step_s": first_step - begin, "success_s": run["endTime"] - begin,
            "phases": launch_phases(begin, events, container_started(run_id), first_step)}


def event_time(event: dict) -> float:
    return int(event["timestamp"]) / 1000


def container_started(run_id: str) -> float | None:
    """When Docker started the run's container (epoch s); None if it is gone already."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dagster/run_id={run_id}"],
                         capture_output=True, text=True, check=True).stdout.split()
    if not ids:
        return None
    return docker_time(subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", ids[0]],
                                      capture_output=True, text=True, check=True).stdout.strip())


def launch_phases(begin: float, events: list[dict], started: float | None, first_step: float) -> dict:
    """Seconds spent in each phase of one launch (see the module docstring)."""
    times = {e["__typename"]: event_time(e) for e in reversed(events) if "timestamp" in e}
    dequeued, run_start = times.get("RunStartingEvent"), times.get("RunStartEvent")
    if dequeued is None or run_start is None or started is None:
        return {}
    return {"queue": dequeued - begin, "launcher": started - dequeued, "boot": run_start - started,
            "plan": first_step - run_start}


def import_dagster_s(image: str, module: str = "dagster") -> float:
    begin = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", image,
                    "-c", f"import {module}"], capture_output=True, check=True)
    return time.monotonic() - begin


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    stack.wait_quiet()
    runs = ctx.repeat or (5 if ctx.quick else 20)
    launch_and_time(stack)  # warm-up: first launch pays for the image's page cache and the job snapshot
    timings = [launch_and_time(stack) for _ in range(runs)]
    floor = [import_dagster_s(CANARY_IMAGE) for _ in range(3 if ctx.quick else 5)]
    ctx.single_run_success_s = [t["success_s"] for t in timings]
    first = [t["first_step_s"] for t in timings]
    success = [t["success_s"] for t in timings]
    floor_name = "docker run python -c 'import dagster'"
    # What a run container must do at least, beyond the floor: import the location's code too.
    code_import = [import_dagster_s(CANARY_IMAGE, CANARY_DEFINITIONS) for _ in range(len(floor))]
    figures = [
        Figure(NAME, "launch -> first step start (p50)", "s", first, floor, floor_name, Target("max_ratio", 1.5)),
        Figure(NAME, "launch -> first step start (p95)", "s", first, floor, floor_name, stat="p95"),
        Figure(NAME, "launch -> SUCCESS, trivial asset (p50)", "s", success, floor, floor_name, Target("max_abs", 2.0)),
        Figure(NAME, "launch -> SUCCESS, trivial asset (p95)", "s", success, floor, floor_name, stat="p95"),
        Figure(NAME, f"docker run python -c 'import {CANARY_DEFINITIONS}'", "s", code_import, floor, floor_name),
    ]
    profiled = [t["phases"] for t in timings if t["phases"]]
    for phase in ("queue", "launcher", "boot", "plan"):
        if profiled:
            figures.append(Figure(NAME, f"launch phase: {phase} ({PHASES[phase]})", "s",
                                  [p[phase] for p in profiled]))
    return figures


PHASES = {
    "queue": "mutation -> RUN_STARTING (off the queue)",
    "launcher": "RUN_STARTING -> container started",
    "boot": "container started -> RUN_START",
    "plan": "RUN_START -> first step start",
}

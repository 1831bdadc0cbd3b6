"""Run launch of the trivial `platform/canary` asset, one run at a time: from the launch
mutation to the first step start, and to SUCCESS. Floor: `docker run` of the same image doing
nothing but `python -c "import dagster"` (a run container can't start its step sooner)."""

import subprocess
import time

from figures import Figure, Target

NAME = "run_launch"
# The canary lives in the platform location (code_locations/platform); its image is the floor's.
CANARY_LOCATION = "platform"
CANARY = [CANARY_LOCATION, "canary"]
CANARY_IMAGE = f"flights-platform/{CANARY_LOCATION}:dev"
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
    starts = [int(e["timestamp"]) / 1000 for e in stack.client.events(run_id)
              if e["__typename"] == "ExecutionStepStartEvent"]
    return {"run_id": run_id, "first_step_s": min(starts) - begin, "success_s": run["endTime"] - begin}


def import_dagster_s(image: str) -> float:
    begin = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", image,
                    "-c", "import dagster"], capture_output=True, check=True)
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
    return [
        Figure(NAME, "launch -> first step start (p50)", "s", first, floor, floor_name, Target("max_ratio", 1.5)),
        Figure(NAME, "launch -> first step start (p95)", "s", first, floor, floor_name, stat="p95"),
        Figure(NAME, "launch -> SUCCESS, trivial asset (p50)", "s", success, floor, floor_name, Target("max_abs", 3)),
        Figure(NAME, "launch -> SUCCESS, trivial asset (p95)", "s", success, floor, floor_name, stat="p95"),
    ]

"""Burst: 10 canary runs submitted at once. Makespan from the first submission to the last
SUCCESS, and the stack's peak memory meanwhile (services + run containers). Floor: one run
alone x 10 / the run queue's concurrency (what perfect parallelism would give)."""

import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench_stack import DagsterGraphQL
from figures import Figure
from run_launch import CANARY, CANARY_LOCATION, RUN_TIMES, launch_and_time

NAME = "burst"
BURST = 10


def concurrency(stack) -> int:
    match = re.search(r"^DAGSTER_MAX_CONCURRENT_RUNS=(\d+)$", stack.env_file.read_text(), re.M)
    return int(match.group(1)) if match else 6  # docker-compose.yml's default


def one_burst(stack) -> tuple[float, float]:
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(stack.memory_mib().values()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # One client (HTTP session) per submitter: requests' sessions are not meant to be shared by threads.
    clients = [DagsterGraphQL(stack.base_url, auth=stack.admin, timeout=120) for _ in range(BURST)]
    begin = time.time()
    with ThreadPoolExecutor(BURST) as pool:
        run_ids = list(pool.map(lambda c: c.launch_asset_run(CANARY_LOCATION, CANARY), clients))
    ends = []
    deadline = time.monotonic() + 600
    for run_id in run_ids:
        while time.monotonic() < deadline:
            run = stack.client.query(RUN_TIMES, runId=run_id)["runOrError"]
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(0.5)
        if run["status"] != "SUCCESS":
            raise RuntimeError(f"burst run {run_id} ended {run['status']}")
        ends.append(run["endTime"])
    done.set()
    sampler.join()
    return max(ends) - begin, peak[0]


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    stack.wait_quiet()
    single = getattr(ctx, "single_run_success_s", None) or [launch_and_time(stack)["success_s"] for _ in range(3)]
    slots = concurrency(stack)
    floor = [statistics.median(single) * BURST / slots]
    makespans, peaks = [], []
    for _ in range(ctx.repeat or (1 if ctx.quick else 3)):
        stack.wait_quiet()
        makespan, peak = one_burst(stack)
        makespans.append(makespan)
        peaks.append(peak)
    return [
        Figure(NAME, f"{BURST} canary runs at once, makespan", "s", makespans, floor,
               f"one run alone x {BURST} / {slots} concurrent", extra={"concurrency": slots}),
        Figure(NAME, f"{BURST} canary runs at once, peak memory", "MiB", peaks),
    ]

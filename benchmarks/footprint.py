"""Idle memory of the whole stack and per service (no runs in flight; run containers that are
still exiting are not counted), idle CPU (what sensors, the daemon's loops and the healthchecks
cost when nothing runs, from each container's cgroup over a minute), and image sizes.
Absolute figures without a floor: they are tracked as a trend across results files."""

import subprocess
import time

from bench_stack import LOCATIONS
from figures import Figure, Target

NAME = "footprint"
# The instance image, one image per code location (named after it), the gateway.
IMAGES = ["dagster", *LOCATIONS, "gateway"]
IDLE_CPU_WINDOW_S = 60


def image_size_mib(image: str) -> float:
    raw = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", f"flights-platform/{image}:dev"],
                         capture_output=True, text=True, check=True).stdout
    return int(raw) / 2**20


def run(ctx) -> list[Figure]:
    stack = ctx.stack
    stack.wait_quiet()
    samples = 3 if ctx.quick else 5
    by_service: dict[str, list[float]] = {}
    totals = []
    for i in range(samples):
        if i:
            time.sleep(2)  # spread the samples over the idle stack's periodic work (sensors, daemon)
        usage = {stack.service_name(name): mib for name, mib in stack.memory_mib(runs=False).items()}
        totals.append(sum(usage.values()))
        for service, mib in usage.items():
            by_service.setdefault(service, []).append(mib)
    rows = [Figure(NAME, "idle memory, whole stack", "MiB", totals, target=Target("max_abs", 700))]
    rows += [Figure(NAME, f"idle memory, {service}", "MiB", values,
                    target=Target("max_abs", 130) if service in LOCATIONS else None)
             for service, values in sorted(by_service.items())]
    rows += idle_cpu(stack)
    rows += [Figure(NAME, f"image size, flights-platform/{image}", "MiB", [image_size_mib(image)]) for image in IMAGES]
    return rows


def idle_cpu(stack) -> list[Figure]:
    """Cores each service uses with nothing running, averaged over IDLE_CPU_WINDOW_S."""
    before, begin = stack.cpu_seconds(), time.monotonic()
    time.sleep(IDLE_CPU_WINDOW_S)
    after, took = stack.cpu_seconds(), time.monotonic() - begin
    cores = {service: (after[service] - before[service]) / took for service in after if service in before}
    if not cores:
        return []  # no readable cgroup on this host
    return [Figure(NAME, "idle CPU, whole stack", "cores", [sum(cores.values())])] + [
        Figure(NAME, f"idle CPU, {service}", "cores", [value]) for service, value in sorted(cores.items())]

"""Idle memory of the whole stack and per service (no runs in flight; run containers that are
still exiting are not counted), and image sizes.
Absolute figures without a floor: they are tracked as a trend across results files."""

import subprocess
import time

from bench_stack import LOCATIONS
from figures import Figure

NAME = "footprint"
# The instance image, one image per code location (named after it), the gateway.
IMAGES = ["dagster", *LOCATIONS, "gateway"]


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
    rows = [Figure(NAME, "idle memory, whole stack", "MiB", totals)]
    rows += [Figure(NAME, f"idle memory, {service}", "MiB", values) for service, values in sorted(by_service.items())]
    rows += [Figure(NAME, f"image size, flights-platform/{image}", "MiB", [image_size_mib(image)]) for image in IMAGES]
    return rows

"""Start-up time, idle memory and image sizes of the compose stack, in one run.

    uv run python benchmarks/stack_footprint.py [--repeat N]

Cold: `up -d` on empty volumes (first-time migrate) to both locations LOADED in GraphQL.
Warm: `down` keeping volumes, then `up -d` to both loaded. Images are built beforehand so
build time is not counted. Writes benchmarks/results/<date>-footprint.json and prints a table."""

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.compose_stack import ComposeStack  # noqa: E402
from tests.e2e.dagster_graphql import DagsterGraphQL  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def time_to_loaded(stack: ComposeStack) -> float:
    start = time.monotonic()
    stack.compose("up", "-d")
    DagsterGraphQL(stack.base_url, timeout=5, auth=stack.admin).wait_locations_loaded(["ingestion", "reporting"], timeout=300)
    return time.monotonic() - start


def idle_memory_mib(stack: ComposeStack) -> dict[str, float]:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"],
                         capture_output=True, text=True, check=True).stdout
    usage = {}
    for line in out.splitlines():
        name, mem = line.split("\t")
        if not name.startswith(stack.project + "-"):
            continue
        value = mem.split("/")[0].strip()
        number, unit = float(value[:-3]), value[-3:]
        usage[name[len(stack.project) + 1:].rsplit("-", 1)[0]] = number * {"MiB": 1, "GiB": 1024, "KiB": 1 / 1024}[unit]
    return usage


def image_sizes_mib() -> dict[str, float]:
    sizes = {}
    for image in ("dagster", "ingestion", "reporting"):
        raw = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", f"flights-platform/{image}:dev"],
                             capture_output=True, text=True, check=True).stdout
        sizes[image] = round(int(raw) / 2**20, 1)
    return sizes


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stack = ComposeStack("flights-bench", RESULTS)
    stack.compose("build")
    cold, warm = [], []
    try:
        for _ in range(args.repeat):
            stack.down()
            stack = ComposeStack("flights-bench", RESULTS)
            cold.append(time_to_loaded(stack))
            stack.compose("down")
            warm.append(time_to_loaded(stack))
        time.sleep(30)
        memory = idle_memory_mib(stack)
    finally:
        stack.down()
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cold_start_to_loaded_s": summary(cold),
        "warm_start_to_loaded_s": summary(warm),
        "idle_memory_mib": {k: round(v, 1) for k, v in sorted(memory.items())},
        "idle_memory_total_mib": round(sum(memory.values()), 1),
        "image_size_mib": image_sizes_mib(),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.date.today().isoformat()}-footprint.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| figure | median | min | max |\n|---|---|---|---|")
    for key in ("cold_start_to_loaded_s", "warm_start_to_loaded_s"):
        s = result[key]
        print(f"| {key} | {s['median']} | {s['min']} | {s['max']} |")
    print("\n| service | idle MiB |\n|---|---|")
    for k, v in result["idle_memory_mib"].items():
        print(f"| {k} | {v} |")
    print(f"| total | {result['idle_memory_total_mib']} |")
    print("\n| image | MiB |\n|---|---|")
    for k, v in result["image_size_mib"].items():
        print(f"| {k} | {v} |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

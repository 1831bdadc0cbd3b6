"""A trivial asset that proves the platform end to end: launch -> queue -> run container ->
step -> event log. No IO manager, no warehouse, no landing files, so its timing is the
platform's own overhead (the benchmarks' run-launch and burst figures use it)."""

import time

from dagster import AssetKey, MaterializeResult, asset

PLATFORM_PREFIX = "platform"
PLATFORM_CANARY = AssetKey([PLATFORM_PREFIX, "canary"])


@asset(key=PLATFORM_CANARY, group_name="platform", kinds={"python"})
def canary() -> MaterializeResult:
    """End-to-end liveness probe: materialize it to check that runs launch, start and report
    back; it touches nothing else. The timestamp is when the step ran (Unix seconds)."""
    return MaterializeResult(metadata={"ran_at": time.time()})


PLATFORM_ASSETS = [canary]

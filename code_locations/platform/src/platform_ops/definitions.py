"""The platform code location: what belongs to the deployment rather than to a business
location. The canary asset (end-to-end liveness probe), run retention (prune_old_runs and its
daily schedule) and the run-failure alert for every location (alert_on_run_failure). It touches
the Dagster instance only: no warehouse, no volumes."""

from dagster import Definitions, in_process_executor

from platform_ops.defs.assets import PLATFORM_ASSETS
from platform_ops.defs.jobs import prune_old_runs
from platform_ops.defs.resources import build_resources
from platform_ops.defs.schedules import prune_old_runs_daily
from platform_ops.defs.sensors import alert_on_run_failure

# Steps run inside the run's own container process: every run already has a container to
# itself, and a second Python process per step (the multiprocess default) costs ~2 s of imports.
defs = Definitions(
    executor=in_process_executor,
    assets=PLATFORM_ASSETS,
    jobs=[prune_old_runs],
    schedules=[prune_old_runs_daily],
    sensors=[alert_on_run_failure],
    resources=build_resources(),
)

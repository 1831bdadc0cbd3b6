"""The reporting code location: summaries and reports built on ingestion's tables, joined only
by asset key."""

from dagster import Definitions, in_process_executor

from reporting.defs.assets import REPORTING_ASSETS
from reporting.defs.checks import REPORTING_CHECKS
from reporting.defs.resources import build_resources
from reporting.defs.schedules import on_time_report_job, weekly_on_time_report
from reporting.defs.sensors import reporting_automation

# Steps run inside the run's own container process: every run already has a container to
# itself, and a second Python process per step (the multiprocess default) costs ~2 s of imports
# for steps that mostly wait on Postgres.
defs = Definitions(
    executor=in_process_executor,
    assets=REPORTING_ASSETS,
    asset_checks=REPORTING_CHECKS,
    jobs=[on_time_report_job],
    schedules=[weekly_on_time_report],
    sensors=[reporting_automation],
    resources=build_resources(),
)

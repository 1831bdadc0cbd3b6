"""Sensors of the reporting location: the automation sensor that evaluates the reporting
assets' conditions. (The deployment-wide run-failure alert lives in the platform location.)"""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from reporting.defs.assets import REPORTING_ASSETS

# Every reporting run pays a fixed cost whatever the number of days it covers: a container that
# imports Dagster, dagster-dbt and the project, then a dbt subprocess (in the soak on 2 cores: 12 s
# to RUN_START, 22 s of dbt for one day). Evaluated once a minute, the days ingestion updated in
# that minute go to one run (a backfill with the assets' backfill policy) instead of one run each,
# so the live demo (a day every 10 s) makes a sixth of the reporting runs; a landed day reaches
# the reports at most a minute later.
BATCH_SECONDS = 60

# Declared explicitly because Dagster's implicit default automation sensor starts STOPPED, so
# nothing would ever be requested on a fresh deployment until someone flipped it in the UI.
reporting_automation = AutomationConditionSensorDefinition(
    "reporting_automation",
    target=AssetSelection.assets(*REPORTING_ASSETS),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=BATCH_SECONDS,
    description="Evaluates the reporting assets' automation conditions.",
)

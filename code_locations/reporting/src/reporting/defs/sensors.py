"""Sensors of the reporting location: the automation sensor that evaluates the reporting
assets' conditions. (The deployment-wide run-failure alert lives in the platform location.)"""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from reporting.defs.assets import REPORTING_ASSETS

# Declared explicitly because Dagster's implicit default automation sensor starts STOPPED, so
# nothing would ever be requested on a fresh deployment until someone flipped it in the UI.
reporting_automation = AutomationConditionSensorDefinition(
    "reporting_automation",
    target=AssetSelection.assets(*REPORTING_ASSETS),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    description="Evaluates the reporting assets' automation conditions.",
)

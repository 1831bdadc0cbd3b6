"""Declared explicitly: Dagster's implicit automation sensor starts stopped, so nothing would be
requested on a fresh deployment until someone turned it on in the UI."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

automation = AutomationConditionSensorDefinition(
    "__LOCATION___automation",
    target=AssetSelection.groups("__LOCATION__"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the __LOCATION__ assets' automation conditions.",
)

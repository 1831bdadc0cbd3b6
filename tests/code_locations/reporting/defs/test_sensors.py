"""The reporting automation sensor."""

from dagster import AssetKey, DefaultSensorStatus
from dagster._core.definitions.sensor_definition import SensorType

from reporting.defs.sensors import reporting_automation

REPORTING_KEYS = {
    AssetKey(["reporting", name])
    for name in (
        "daily_delay_summary",
        "weather_delay_link",
        "monthly_carrier_ranking",
        "route_performance",
        "on_time_report",
    )
}


def test_automation_sensor_targets_the_reporting_assets_and_runs_by_default():
    assert reporting_automation.default_status == DefaultSensorStatus.RUNNING
    assert reporting_automation.sensor_type == SensorType.AUTO_MATERIALIZE
    # Batches a minute of landed days into one run, and keeps a day's reports a minute behind at most.
    assert 30 <= reporting_automation.minimum_interval_seconds <= 60
    from reporting.definitions import defs

    selected = reporting_automation.asset_selection.resolve(defs.resolve_asset_graph())
    assert selected == REPORTING_KEYS


def test_reporting_defines_no_run_status_sensor():
    """The run-failure alert is the platform location's; a second one here would alert twice."""
    from reporting.definitions import defs

    assert [s.name for s in defs.get_repository_def().sensor_defs] == ["reporting_automation"]

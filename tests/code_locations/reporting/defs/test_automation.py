"""The reporting assets' automation conditions, evaluated with dagster.evaluate_automation_conditions
on an ephemeral instance. Ingestion's assets and its partitioned blocking check are stood in for
by test-only definitions with the contract keys (never part of the reporting location)."""

import datetime as dt
import warnings

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetMaterialization,
    AutomationCondition,
    DagsterInstance,
    Definitions,
    InMemoryIOManager,
    asset,
    asset_check,
    evaluate_automation_conditions,
    materialize,
)

from flights_shared.asset_keys import FLIGHTS, WEATHER
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.warehouse import WarehouseResource
from reporting.defs.assets import (
    daily_delay_summary,
    monthly_carrier_ranking,
    on_time_report,
    route_performance,
    weather_delay_link,
)
from reporting.defs.automation import DAILY_AFTER_INGESTION, MONTHLY_MONTH_TO_DATE
from reporting.defs.resources import ReportsDirectory, dbt_cli

START = dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.UTC)
REPLAYED_DAY, BAD_DAY = "2013-01-02", "2013-01-03"  # neither is the latest partition (2013-12-31)

failing_days: set[str] = set()


@asset(key=FLIGHTS, partitions_def=DAYS_OF_2013, io_manager_key="memory")
def flights_stub() -> int:
    return 1


@asset(key=WEATHER, partitions_def=DAYS_OF_2013, io_manager_key="memory")
def weather_stub() -> int:
    return 1


@asset_check(asset=FLIGHTS, name="no_duplicate_rows", blocking=True, partitions_def=DAYS_OF_2013)
def flights_blocking_check(context: AssetCheckExecutionContext) -> AssetCheckResult:
    """Stands in for ingestion's blocking, day-partitioned check."""
    return AssetCheckResult(passed=not set(context.partition_keys) & failing_days)


RESOURCES = {
    "memory": InMemoryIOManager(),
    # Never connected to: conditions are evaluated, assets are not executed.
    "warehouse": WarehouseResource(host="unused.invalid", dbname="x", user="x", password="x"),
    "reports_dir": ReportsDirectory(path="/nonexistent"),
    "dbt": dbt_cli(),
}


class Automation:
    """An instance plus a cursor, ticking the evaluation clock forward like the sensor does."""

    def __init__(self, *assets):
        self.instance = DagsterInstance.ephemeral()
        self.defs = Definitions(
            assets=[flights_stub, weather_stub, *assets],
            asset_checks=[flights_blocking_check],
            resources=RESOURCES,
        )
        self.now = START
        self.cursor = None
        self.tick()  # the first evaluation only initialises the cursor

    def tick(self, after: dt.timedelta = dt.timedelta(minutes=1)):
        self.now += after
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=self.now
            )
        self.cursor = result.cursor
        return result

    def land(self, asset_def, day: str, with_check: bool = True) -> None:
        """Materialize a stub partition (and its blocking check) the way a run would."""
        selection = [asset_def, flights_blocking_check] if with_check else [asset_def]
        materialize(
            selection, partition_key=day, instance=self.instance, resources=RESOURCES, raise_on_error=False
        )


@pytest.fixture(autouse=True)
def _reset_failing_days():
    failing_days.clear()
    yield
    failing_days.clear()


def test_daily_assets_use_the_any_day_condition_with_blocking_checks():
    for asset_def in (daily_delay_summary, weather_delay_link):
        spec = next(iter(asset_def.specs))
        assert spec.automation_condition == DAILY_AFTER_INGESTION
        assert asset_def.backfill_policy.max_partitions_per_run == 31
    assert next(iter(monthly_carrier_ranking.specs)).automation_condition == MONTHLY_MONTH_TO_DATE


def test_replayed_day_that_is_not_the_latest_partition_is_requested():
    automation = Automation(daily_delay_summary, weather_delay_link)
    automation.land(flights_stub, REPLAYED_DAY)
    result = automation.tick()
    assert result.get_requested_partitions(daily_delay_summary.key) == {REPLAYED_DAY}
    # The weather link also needs that day's weather: nothing yet.
    assert result.get_num_requested(weather_delay_link.key) == 0

    automation.land(weather_stub, REPLAYED_DAY, with_check=False)
    result = automation.tick()
    assert result.get_requested_partitions(weather_delay_link.key) == {REPLAYED_DAY}
    # Already requested once: not requested again on the next tick.
    assert automation.tick().get_num_requested(daily_delay_summary.key) == 0


def test_plain_eager_would_ignore_the_replayed_day():
    """Why the location drops in_latest_time_window(): with plain eager() the same update is
    never acted on, because only 2013-12-31 is considered."""
    plain = daily_delay_summary.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=AutomationCondition.eager())
    )
    automation = Automation(plain)
    automation.land(flights_stub, REPLAYED_DAY)
    assert automation.tick().get_num_requested(daily_delay_summary.key) == 0


def test_failed_blocking_check_holds_back_only_that_day():
    failing_days.add(BAD_DAY)
    automation = Automation(daily_delay_summary)
    automation.land(flights_stub, REPLAYED_DAY)
    automation.land(flights_stub, BAD_DAY)
    result = automation.tick()
    assert result.get_requested_partitions(daily_delay_summary.key) == {REPLAYED_DAY}
    assert automation.tick(dt.timedelta(hours=1)).get_num_requested(daily_delay_summary.key) == 0

    # The day is fixed upstream and re-ingested: now it follows.
    failing_days.clear()
    automation.land(flights_stub, BAD_DAY)
    assert automation.tick().get_requested_partitions(daily_delay_summary.key) == {BAD_DAY}


def test_days_ingested_in_one_multi_day_run_are_held_back():
    """Cross-location constraint (Dagster 1.13.27): a partitioned check executed in a run covering
    a partition RANGE records one evaluation without a partition, so no day of that range
    counts as "blocking checks passed" and reporting waits. Ingestion must therefore run its
    blocking-checked days one partition per run. If this starts failing, Dagster records
    per-day results for range runs and the constraint can go."""
    automation = Automation(daily_delay_summary)
    materialize(
        [flights_stub, flights_blocking_check],
        instance=automation.instance,
        resources=RESOURCES,
        tags={"dagster/asset_partition_range_start": "2013-01-02",
              "dagster/asset_partition_range_end": "2013-01-04"},
    )  # fmt: skip
    days = {"2013-01-02", "2013-01-03", "2013-01-04"}
    assert automation.instance.get_materialized_partitions(FLIGHTS) == days  # they did land
    assert automation.tick().get_num_requested(daily_delay_summary.key) == 0


def test_month_is_ranked_month_to_date_after_any_of_its_days():
    automation = Automation(daily_delay_summary, monthly_carrier_ranking)
    automation.land(flights_stub, REPLAYED_DAY)
    automation.tick()  # requests the day; its run is simulated by reporting the materialization
    _report_materialization(automation, daily_delay_summary.key, REPLAYED_DAY)
    # The summary's dbt tests (error severity: blocking checks) have not reported yet: the month
    # waits for them, as it would for a failed one.
    assert automation.tick().get_num_requested(monthly_carrier_ranking.key) == 0
    _report_blocking_checks_passed(automation, daily_delay_summary)
    result = automation.tick()
    # January has 30 days not summarised yet; the month is ranked anyway (days_covered says so).
    assert result.get_requested_partitions(monthly_carrier_ranking.key) == {"2013-01-01"}
    assert automation.tick().get_num_requested(monthly_carrier_ranking.key) == 0


def test_all_days_assets_refresh_at_most_hourly_and_only_after_changes():
    automation = Automation(daily_delay_summary, route_performance, on_time_report)
    automation.land(flights_stub, REPLAYED_DAY)
    assert automation.tick().get_num_requested(route_performance.key) == 0  # 00:32, no tick yet

    result = automation.tick(dt.timedelta(minutes=30))  # 01:02: the hourly tick has passed
    assert result.get_num_requested(route_performance.key) == 1
    # The report rides along in the same tick (its dependency will be requested), so both
    # end up in one run, route first.
    assert result.get_num_requested(on_time_report.key) == 1
    assert automation.tick().get_num_requested(route_performance.key) == 0  # handled

    # Another hour without upstream changes: nothing to refresh.
    result = automation.tick(dt.timedelta(hours=1))  # 02:03
    assert result.get_num_requested(route_performance.key) == 0
    assert result.get_num_requested(on_time_report.key) == 0

    # The 02:00 tick is still unused, so the first upstream change refreshes the report...
    _report_materialization(automation, daily_delay_summary.key, REPLAYED_DAY)
    assert automation.tick(dt.timedelta(minutes=5)).get_num_requested(on_time_report.key) == 1
    # ...and further changes in the same hour (a storm of daily runs) wait for the 03:00 tick.
    for _ in range(3):
        _report_materialization(automation, daily_delay_summary.key, REPLAYED_DAY)
        assert automation.tick(dt.timedelta(minutes=10)).get_num_requested(on_time_report.key) == 0
    assert automation.tick(dt.timedelta(minutes=30)).get_num_requested(on_time_report.key) == 1
    assert automation.tick(dt.timedelta(hours=1)).get_num_requested(on_time_report.key) == 0


def _report_blocking_checks_passed(automation: Automation, asset_def) -> None:
    """What `dbt build` records after the model: its tests' results, as asset check evaluations."""
    blocking = [spec for spec in asset_def.check_specs if spec.blocking]
    assert blocking, "the dbt model's error-severity tests are blocking checks"
    for spec in blocking:
        automation.instance.report_runless_asset_event(
            AssetCheckEvaluation(asset_key=spec.asset_key, check_name=spec.name, passed=True)
        )


def _report_materialization(automation: Automation, key, partition) -> None:
    automation.instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))

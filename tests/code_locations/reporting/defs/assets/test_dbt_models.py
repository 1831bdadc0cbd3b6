"""The dbt models as Dagster assets: keys and tables, sources mapped to ingestion's contract keys,
dbt tests as asset checks, the same partitions and automation as the Python reporting assets; and,
against a real warehouse, a day's window replaced exactly and a bad window refused by name."""

import datetime as dt
import json

import pytest
from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslatorSettings
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from flights_shared.asset_keys import FLIGHTS, INGESTION_PREFIX, REPORTING_PREFIX, table_for
from flights_shared.partitions import DAYS_OF_2013
from reporting.defs.assets import REPORTING_ASSETS
from reporting.defs.assets.dbt_models import DBT_MODELS, MANIFEST, TRANSLATOR, _partitioning_tag
from reporting.defs.automation import DAILY_AFTER_INGESTION, hourly_after_upstream_change
from reporting.defs.sensors import reporting_automation

DAYS = ["2013-01-11", "2013-01-12", "2013-01-13"]  # as loaded by conftest


def manifest_nodes(resource_type: str) -> list[dict]:
    nodes = {**MANIFEST["nodes"], **MANIFEST["sources"]}.values()
    return [n for n in nodes if n["resource_type"] == resource_type]


def test_every_model_is_an_asset_named_after_its_table():
    models = manifest_nodes("model")
    assert {m["name"] for m in models} >= {"daily_delay_summary", "route_performance"}
    assert set(DBT_MODELS) == {m["name"] for m in models}
    for model in models:
        (key,) = DBT_MODELS[model["name"]].keys
        assert key.path[0] == REPORTING_PREFIX
        # The IO manager's naming (first key component = schema) is where dbt writes it.
        assert table_for(key) == (model["schema"], model["alias"])
        assert DBT_MODELS[model["name"]].get_asset_spec(key).metadata["dagster/table_name"] == ".".join(table_for(key))
    assert all(asset in REPORTING_ASSETS for asset in DBT_MODELS.values())


def test_sources_are_ingestions_contract_assets():
    sources = manifest_nodes("source")
    assert sources
    for source in sources:
        key = TRANSLATOR.get_asset_key(source)
        assert key.path[0] == INGESTION_PREFIX
        assert table_for(key) == (source["schema"], source["name"])
    for name in ("daily_delay_summary", "route_performance"):
        assert [d.asset_key for d in DBT_MODELS[name].get_asset_spec().deps] == [FLIGHTS]


def test_a_source_without_its_contract_key_is_refused():
    source = {**manifest_nodes("source")[0], "meta": {}}
    with pytest.raises(ValueError, match="no meta.dagster.asset_key"):
        TRANSLATOR.get_asset_key(source)


def test_a_model_outside_daily_and_whole_history_is_refused():
    with pytest.raises(ValueError, match="exactly one of models/daily/ or models/whole_history/"):
        _partitioning_tag({"name": "loose", "tags": []})


def test_dbt_tests_are_asset_checks_of_their_model():
    # dagster-dbt's default (verified, not assumed): the translator does not turn it on itself.
    assert DagsterDbtTranslatorSettings().enable_asset_checks is True
    assert TRANSLATOR.settings.enable_asset_checks is True
    tests = manifest_nodes("test")
    for name, assets_def in DBT_MODELS.items():
        expected = {
            t["name"] for t in tests
            if f"model.reporting.{name}" in t["depends_on"]["nodes"]
            and (len([n for n in t["depends_on"]["nodes"] if n.startswith("model.")]) == 1)
        }  # fmt: skip
        assert expected
        assert {key.name for key in assets_def.check_keys} == expected, name
    summary_checks = {s.name: s for s in DBT_MODELS["daily_delay_summary"].check_specs}
    # error severity blocks downstream (the month); the reconciliation only warns, as before
    assert summary_checks["daily_delay_summary_one_row_per_day_carrier_origin"].blocking
    assert not summary_checks["summary_matches_flights"].blocking


def test_partitions_and_automation_match_the_python_reporting_assets():
    daily = DBT_MODELS["daily_delay_summary"]
    spec = daily.get_asset_spec()
    assert daily.partitions_def == DAYS_OF_2013
    assert spec.automation_condition == DAILY_AFTER_INGESTION
    assert daily.backfill_policy.max_partitions_per_run == 31
    routes = DBT_MODELS["route_performance"]
    assert routes.partitions_def is None
    assert routes.get_asset_spec().automation_condition.get_label() == hourly_after_upstream_change().get_label()


def test_the_automation_sensor_covers_every_dbt_model():
    from reporting.definitions import defs

    selected = reporting_automation.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key for a in DBT_MODELS.values() for key in a.keys} <= selected


# --- against a real warehouse ------------------------------------------------------------------


def summary_by_day(sql_rows, warehouse) -> dict[str, tuple[int, int]]:
    rows = sql_rows(
        warehouse,
        "SELECT flight_date, sum(flights)::int, count(*)::int FROM reporting.daily_delay_summary "
        "GROUP BY 1 ORDER BY 1",
    )
    return {d.isoformat(): (flights, groups) for d, flights, groups in rows}


@pytest.mark.postgres
def test_a_partition_run_replaces_exactly_its_window(loaded_warehouse, run_reporting, sql_rows):
    """Ingestion re-lands the middle day with fewer flights: re-running that one partition
    replaces its rows (delete+insert on flight_date), its neighbours stay as they were."""
    daily = DBT_MODELS["daily_delay_summary"]
    assert run_reporting([daily], partition_range=(DAYS[0], DAYS[-1])).success
    before = summary_by_day(sql_rows, loaded_warehouse)
    assert set(before) == set(DAYS)

    removed = sql_rows(
        loaded_warehouse,
        "DELETE FROM ingestion.flights WHERE flight_date = %s AND carrier = 'UA' RETURNING 1",
        (dt.date.fromisoformat(DAYS[1]),),
    )
    assert removed
    result = run_reporting([daily], partition_key=DAYS[1])
    assert result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {DAYS[1]}
    after = summary_by_day(sql_rows, loaded_warehouse)
    assert after[DAYS[0]] == before[DAYS[0]] and after[DAYS[2]] == before[DAYS[2]]
    assert after[DAYS[1]][0] == before[DAYS[1]][0] - len(removed)
    assert sql_rows(
        loaded_warehouse,
        "SELECT count(*) FROM reporting.daily_delay_summary WHERE flight_date = %s AND carrier = 'UA'",
        (dt.date.fromisoformat(DAYS[1]),),
    ) == [(0,)]


@pytest.mark.postgres
def test_models_refuse_a_missing_or_malformed_window(loaded_warehouse, reporting_env):
    """dbt run by hand without Dagster's window, or with a value that is not a date, fails to
    compile naming the var, instead of scanning every day or splicing text into SQL."""
    from reporting.defs.resources import dbt_cli

    dbt = dbt_cli()
    with pytest.raises(DagsterDbtCliRuntimeError, match="var 'min_date' is not set"):
        dbt.cli(["compile", "--select", "daily_delay_summary"]).wait()
    bad = json.dumps({"min_date": "2013-01-01'; DROP TABLE x; --", "max_date": "2013-01-02"})
    with pytest.raises(DagsterDbtCliRuntimeError, match="must be an ISO date"):
        dbt.cli(["compile", "--select", "daily_delay_summary", "--vars", bad]).wait()


def test_keys_are_stable():
    assert DBT_MODELS["daily_delay_summary"].key == AssetKey([REPORTING_PREFIX, "daily_delay_summary"])
    assert DBT_MODELS["route_performance"].key == AssetKey([REPORTING_PREFIX, "route_performance"])

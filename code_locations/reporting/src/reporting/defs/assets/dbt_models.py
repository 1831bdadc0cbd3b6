"""The dbt models of reporting/dbt as Dagster assets (dagster-dbt), one asset definition per model
so each keeps the key, op name and partitioning its Python predecessor had.

- Keys: `reporting/<table>` from the schema and alias dbt writes to, so `table_for(key)` is the
  model's table by construction. Sources carry ingestion's contract keys (meta.dagster.asset_key
  in models/sources.yml): lineage and automation run ingestion -> models across locations.
- Models tagged `daily` are partitioned like ingestion's days; a run passes its window as the
  vars min_date / max_date and the model replaces exactly those days (delete+insert). Models
  tagged `whole_history` are unpartitioned tables rebuilt as a whole.
- dbt tests are asset checks of their model (dagster-dbt's default, enable_asset_checks=True);
  `dbt build` runs each model's tests right after it.
- Automation is the same as the Python reporting assets' (reporting.defs.automation)."""

import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, AutomationCondition
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from flights_shared.asset_keys import (
    FLIGHT_DATE_COLUMN,
    FLIGHTS,
    INGESTION_PREFIX,
    WEATHER,
    WEATHER_DATE_COLUMN,
    table_for,
)
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.warehouse import WarehouseResource

from reporting.defs.assets.partition_window import DAILY_BACKFILL_POLICY, partition_days
from reporting.defs.assets.upstream import require_days, require_table
from reporting.defs.automation import DAILY_AFTER_INGESTION, hourly_after_upstream_change
from reporting.defs.dbt_project import DBT_PROJECT, ensure_manifest

DAILY_TAG = "daily"
WHOLE_HISTORY_TAG = "whole_history"
GROUP = "reporting"
# Dagster's documented metadata key for the table an asset is stored in (shown in the UI).
TABLE_NAME_METADATA = "dagster/table_name"
# Upstream day-partitioned tables and the column their days are in (checked before a daily run).
UPSTREAM_DATE_COLUMNS = {FLIGHTS: FLIGHT_DATE_COLUMN, WEATHER: WEATHER_DATE_COLUMN}

MANIFEST: dict = json.loads(ensure_manifest().read_text())


def _partitioning_tag(props: Mapping[str, Any]) -> str:
    tags = {DAILY_TAG, WHOLE_HISTORY_TAG} & set(props.get("tags", ()))
    if len(tags) != 1:
        raise ValueError(
            f"dbt model {props['name']!r} must be in exactly one of models/{DAILY_TAG}/ or "
            f"models/{WHOLE_HISTORY_TAG}/ (tags {sorted(tags)}): that decides its partitions "
            "and when automation runs it"
        )
    return tags.pop()


class ReportingDbtTranslator(DagsterDbtTranslator):
    """Keys, group, automation and partition column of the reporting models."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            meta_key = dbt_resource_props.get("meta", {}).get("dagster", {}).get("asset_key")
            if not meta_key:
                raise ValueError(
                    f"dbt source {dbt_resource_props['unique_id']} has no meta.dagster.asset_key: "
                    "name the ingestion asset it is (flights_shared.asset_keys)"
                )
            return AssetKey(meta_key)
        return AssetKey([dbt_resource_props["schema"], dbt_resource_props["alias"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return GROUP

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> AutomationCondition | None:
        if dbt_resource_props["resource_type"] != "model":
            return None
        if _partitioning_tag(dbt_resource_props) == DAILY_TAG:
            return DAILY_AFTER_INGESTION
        return hourly_after_upstream_change()

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        if dbt_resource_props["resource_type"] != "model":
            return metadata
        # schema.table as table_for names it: the manifest's database is the build-time parse
        # target's placeholder, not the deployment's warehouse database.
        schema, table = table_for(self.get_asset_key(dbt_resource_props))
        metadata[TABLE_NAME_METADATA] = f"{schema}.{table}"
        if DAILY_TAG in dbt_resource_props["tags"]:
            metadata[PARTITION_EXPR_METADATA] = FLIGHT_DATE_COLUMN
        return metadata


TRANSLATOR = ReportingDbtTranslator()


def dbt_build(
    context: AssetExecutionContext, dbt: DbtCliResource, dbt_vars: Mapping[str, str] | None = None
) -> Iterator:
    """`dbt build` of the run's selection (models and their tests). dbt's target and log files go
    to a temporary directory: the package is read-only in the image, and concurrent runs must not
    share one target directory."""
    args = ["build"] + (["--vars", json.dumps(dict(dbt_vars))] if dbt_vars else [])
    with tempfile.TemporaryDirectory(prefix="dbt-target-") as target:
        yield from dbt.cli(args, context=context, target_path=Path(target)).stream()


def _upstream_ingestion_keys(assets_def: AssetsDefinition) -> list[AssetKey]:
    return sorted(
        {dep.asset_key for spec in assets_def.specs for dep in spec.deps
         if dep.asset_key.path[0] == INGESTION_PREFIX},
        key=lambda key: key.path,
    )  # fmt: skip


def _daily_model(node: Mapping[str, Any]) -> AssetsDefinition:
    name = node["name"]

    @dbt_assets(
        manifest=MANIFEST,
        project=DBT_PROJECT,
        select="fqn:" + ".".join(node["fqn"]),
        name=name,
        partitions_def=DAYS_OF_2013,
        backfill_policy=DAILY_BACKFILL_POLICY,
        dagster_dbt_translator=TRANSLATOR,
    )
    def daily_model(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        if not context.selected_asset_keys:
            # Only the model's checks were selected (a re-check from the UI): the run has no
            # partition window, so its dbt tests run over the whole table.
            yield from dbt_build(context, dbt)
            return
        start, end, days = partition_days(context)
        # Every day of the window must have landed upstream, so delete+insert replaces exactly
        # the window; otherwise fail naming the days and the ingestion asset to run.
        with warehouse.connection() as conn, conn.cursor() as cursor:
            for key in _upstream_ingestion_keys(daily_model):
                if key in UPSTREAM_DATE_COLUMNS:
                    require_days(cursor, key, UPSTREAM_DATE_COLUMNS[key], days)
                else:
                    require_table(cursor, key)
            # One build of a model at a time: a backfill runs its windows in parallel runs, and
            # two first builds would both CREATE the table (duplicate key on pg_type). The lock is
            # the session's, held on this connection until the build ends.
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"dbt build {name}",))
            conn.commit()  # the lock outlives the transaction; no snapshot is held during the build
            print(f"dbt build of {name} for {len(days)} day(s) {start}..{days[-1]}")
            yield from dbt_build(context, dbt, {"min_date": start.isoformat(), "max_date": end.isoformat()})

    return daily_model


def _whole_history_model(node: Mapping[str, Any]) -> AssetsDefinition:
    name = node["name"]

    @dbt_assets(
        manifest=MANIFEST,
        project=DBT_PROJECT,
        select="fqn:" + ".".join(node["fqn"]),
        name=name,
        dagster_dbt_translator=TRANSLATOR,
    )
    def whole_history_model(
        context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        with warehouse.connection() as conn, conn.cursor() as cursor:
            for key in _upstream_ingestion_keys(whole_history_model):
                require_table(cursor, key)
        yield from dbt_build(context, dbt)

    return whole_history_model


def _models() -> dict[str, AssetsDefinition]:
    builders = {DAILY_TAG: _daily_model, WHOLE_HISTORY_TAG: _whole_history_model}
    models = sorted(
        (node for node in MANIFEST["nodes"].values()
         if node["resource_type"] == "model" and node["package_name"] == DBT_PROJECT.name),
        key=lambda node: node["name"],
    )  # fmt: skip
    return {node["name"]: builders[_partitioning_tag(node)](node) for node in models}


# Every model of the project, by model name.
DBT_MODELS: dict[str, AssetsDefinition] = _models()


def dbt_model(name: str) -> AssetsDefinition:
    if name not in DBT_MODELS:
        raise KeyError(f"no dbt model {name!r} in {DBT_PROJECT.project_dir} (models: {sorted(DBT_MODELS)})")
    return DBT_MODELS[name]


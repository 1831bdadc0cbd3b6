"""What the UI shows of the typed ingestion assets, asked the way the webserver asks: its GraphQL
schema over a workspace holding ingestion.definitions (loaded in this process: a code server
subprocess would cost make test-fast seconds and show nothing more). Each asset shows its
columns with types and descriptions, and its output's Dagster type is the table's schema."""

import pytest
from dagster import DagsterInstance
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql

from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from ingestion.defs.table_schemas import (
    AIRLINES_SCHEMA,
    AIRPORTS_SCHEMA,
    FLIGHTS_SCHEMA,
    PLANES_SCHEMA,
    WEATHER_SCHEMA,
)

SCHEMAS = {FLIGHTS: FLIGHTS_SCHEMA, WEATHER: WEATHER_SCHEMA, AIRLINES: AIRLINES_SCHEMA, AIRPORTS: AIRPORTS_SCHEMA,
           PLANES: PLANES_SCHEMA}  # fmt: skip
QUERY = """
{
  assetNodes {
    assetKey { path }
    type { displayName }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } }
    }
  }
}
"""


@pytest.fixture
def asset_nodes(tmp_path, monkeypatch):
    env = {"WAREHOUSE_HOST": "warehouse.invalid", "WAREHOUSE_PORT": "6543", "WAREHOUSE_DB": "placeholder",
           "WAREHOUSE_USER": "placeholder", "WAREHOUSE_PASSWORD": "placeholder", "LANDING_ZONE_DIR": str(tmp_path)}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    origin = LoadableTargetOrigin(module_name="ingestion.definitions", attribute="defs")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance, in_process_test_workspace(instance, origin) as context:
        result = execute_dagster_graphql(context, QUERY)
    assert not result.errors, result.errors
    return {tuple(node["assetKey"]["path"]): node for node in result.data["assetNodes"]}


def test_the_ui_lists_each_table_s_columns_with_types_and_descriptions(asset_nodes):
    """One test for the five tables: the workspace loads once (make test-fast's shards split a
    module's tests, and with them its module fixtures)."""
    for key, schema in SCHEMAS.items():
        node = asset_nodes[tuple(key.path)]
        [entry] = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
        columns = entry["schema"]["columns"]
        assert [c["name"] for c in columns] == list(schema.columns), key
        for column in columns:
            assert column["description"] == schema.columns[column["name"]].description
            assert column["type"] in ("date", "string", "Int64", "Float64", "datetime64[ns, UTC]"), column
        assert node["type"]["displayName"] == schema.name

"""The example asset: its table schema in memory, and its logic (SQL, so it needs the database)
and check against a throwaway Postgres (the repository's `warehouse` fixture):
materialize_to_memory runs the real asset function without writing anything."""

from datetime import UTC, date, datetime

from dagster import DagsterInstance, materialize, materialize_to_memory

from flights_shared import table_schemas
from flights_shared.postgres_io_manager import PostgresPandasIOManager

from __LOCATION__.defs.assets import COLUMNS, DAY_COLUMN, WAREHOUSE_SIZE_SCHEMA, size_frame, warehouse_size
from __LOCATION__.defs.checks import warehouse_size_is_measured


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_size_frame_is_one_row_stamped_with_the_day():
    frame = size_frame((8192, 1, 3), date(2026, 1, 2))
    assert frame.to_dict("records") == [{DAY_COLUMN: date(2026, 1, 2), "database_bytes": 8192, "tables": 1, "live_rows": 3}]


def test_the_schema_types_the_asset_and_refuses_an_impossible_size():
    """The Dagster type and the UI's column list come from WAREHOUSE_SIZE_SCHEMA."""
    assert table_schemas.violations(WAREHOUSE_SIZE_SCHEMA, size_frame((8192, 1, 3), date(2026, 1, 2))) == []
    verdict = table_schemas.type_check(WAREHOUSE_SIZE_SCHEMA, size_frame((0, 1, 3), date(2026, 1, 2)))
    assert not verdict.success
    assert "column 'database_bytes' breaks greater_than(0) in 1 row(s), e.g. 0" in verdict.description
    assert warehouse_size.op.outs["result"].dagster_type.unique_name == WAREHOUSE_SIZE_SCHEMA.name
    columns = warehouse_size.specs_by_key[warehouse_size.key].metadata["dagster/column_schema"].schema.columns
    assert [c.name for c in columns] == [DAY_COLUMN, *COLUMNS]


def test_asset_measures_the_warehouse(clean_warehouse):
    with clean_warehouse.connection() as conn, conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA demo; CREATE TABLE demo.items (id int); INSERT INTO demo.items VALUES (1), (2)")
    result = materialize_to_memory([warehouse_size], partition_key=today(), resources={"warehouse": clean_warehouse})
    assert result.success
    [row] = result.output_for_node("__LOCATION____warehouse_size").to_dict("records")
    assert row["tables"] >= 1 and row["database_bytes"] > 0


def test_a_past_day_is_refused(clean_warehouse):
    result = materialize_to_memory([warehouse_size], partition_key="__START_DATE__",
                                   resources={"warehouse": clean_warehouse}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "can only be measured for today" in failure.message


def test_check_passes_on_what_the_asset_wrote(clean_warehouse, sql_rows):
    resources = {"warehouse": clean_warehouse, "io_manager": PostgresPandasIOManager(warehouse=clean_warehouse)}
    for _ in range(2):  # a second run replaces the day's row instead of adding one
        result = materialize([warehouse_size, warehouse_size_is_measured], partition_key=today(),
                             resources=resources, instance=DagsterInstance.ephemeral())
        assert result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.passed, evaluation.metadata
    assert sql_rows(clean_warehouse, "SELECT count(*) FROM __LOCATION__.warehouse_size") == [(1,)]

"""flights_shared.table_schemas: one pandera schema gives the Dagster type, the column schema and
the blocking checks. In memory, except the last test, which shows with the real warehouse IO
manager that a frame breaking its type writes nothing."""

import datetime as dt

import pandas as pd
import pandera.pandas as pa
import pytest
from dagster import AssetKey, DagsterInstance, Output, asset, materialize, materialize_to_memory
from pandera.engines import pandas_engine

from flights_shared import table_schemas as ts
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA, PostgresPandasIOManager

KEY = AssetKey(["schematest", "visits"])
SCHEMA = pa.DataFrameSchema(
    {
        "visit_date": pa.Column(pandas_engine.Date, description="day of the visit"),
        "site": pa.Column("string", pa.Check.isin(["A", "B"]), description="where"),
        "minutes": pa.Column("Int64", pa.Check.in_range(0, 600), nullable=True, description="how long"),
        "score": pa.Column("Float64", nullable=True),
    },
    name="schematest_visits",
    description="One row per visit.",
    unique=["visit_date", "site"],
    strict=True,
)
DAY = dt.date(2013, 1, 1)


def frame(**columns) -> pd.DataFrame:
    base = {
        "visit_date": [DAY, DAY, dt.date(2013, 1, 2)],
        "site": pd.array(["A", "B", "A"], dtype="string"),
        "minutes": pd.array([10, None, 600], dtype="Int64"),
        "score": pd.array([1.5, None, 0.0], dtype="Float64"),
    }
    return pd.DataFrame({**base, **columns})


def by_name(results) -> dict:
    return {r.check_name: r for r in results}


def test_a_valid_frame_passes_the_type_and_every_check():
    assert ts.violations(SCHEMA, frame()) == []
    verdict = ts.type_check(SCHEMA, frame())
    assert verdict.success and verdict.description == "3 rows match schematest_visits"
    results = ts.check_results(KEY, SCHEMA, frame())
    assert [r.check_name for r in results] == list(ts.CHECK_NAMES)
    assert all(r.passed and r.description is None for r in results)


@pytest.mark.parametrize(
    ("columns", "check", "message"),
    [
        ({"minutes": pd.array([10, 5000, 601], dtype="Int64")}, ts.VALUES_IN_RANGE,
         "column 'minutes' breaks in_range(0, 600) in 2 row(s), e.g. 5000, 601"),
        ({"site": pd.array(["A", "ZZ", "A"], dtype="string")}, ts.VALUES_IN_RANGE,
         "column 'site' breaks isin(['A', 'B']) in 1 row(s), e.g. 'ZZ'"),
        ({"site": pd.array(["A", None, "B"], dtype="string")}, ts.NO_NULL_KEYS,
         "column 'site' breaks not_nullable in 1 row(s), e.g. <null>"),
        ({"visit_date": [DAY, DAY, DAY], "site": pd.array(["A", "B", "A"], dtype="string")}, ts.NO_DUPLICATES,
         "columns ['visit_date', 'site'] break multiple_fields_uniqueness in 2 row(s), e.g. (2013-01-01, 'A')"),
        ({"minutes": [10.5, 1.0, 2.0]}, ts.REQUIRED_COLUMNS, "column 'minutes' breaks dtype Int64: got float64"),
        ({"extra": [1, 2, 3]}, ts.REQUIRED_COLUMNS, "column 'extra' is not in the schema"),
    ],
    ids=["range", "allowed-set", "null-key", "duplicate", "wrong-type", "extra-column"],
)
def test_each_rule_fails_its_own_check_naming_column_rule_and_values(columns, check, message):
    bad = frame(**columns)
    results = by_name(ts.check_results(KEY, SCHEMA, bad))
    assert {n for n, r in results.items() if not r.passed} == {check}
    assert results[check].description == message
    verdict = ts.type_check(SCHEMA, bad)
    assert not verdict.success and verdict.description == f"schematest_visits: {message}"
    [failure] = verdict.metadata["failures"].data
    assert failure["check"] == check


def test_a_missing_column_is_named_and_counted_as_missing():
    results = by_name(ts.check_results(KEY, SCHEMA, frame().drop(columns=["score"])))
    assert results[ts.REQUIRED_COLUMNS].description == "column 'score' is missing"
    assert results[ts.REQUIRED_COLUMNS].metadata["missing_columns"].value == "score"


def test_a_long_list_of_offenders_is_sampled():
    bad = pd.DataFrame({
        "visit_date": [DAY + dt.timedelta(days=n) for n in range(20)],
        "site": pd.array(["A"] * 20, dtype="string"),
        "minutes": pd.array([1000 + n for n in range(20)], dtype="Int64"),
        "score": pd.array([None] * 20, dtype="Float64"),
    })  # fmt: skip
    [violation] = ts.violations(SCHEMA, bad)
    assert (violation.rows, len(violation.sample), violation.more) == (20, ts.SAMPLE_SIZE, True)
    assert str(violation).endswith("e.g. 1000, 1001, 1002, 1003, 1004, ...")


def test_checks_exist_only_for_the_rules_a_schema_declares():
    loose = pa.DataFrameSchema({"n": pa.Column("Int64", nullable=True)}, name="loose")
    assert ts.declared_checks(loose) == [ts.REQUIRED_COLUMNS]
    specs = ts.check_specs(KEY, SCHEMA, partitions_def=DAYS_OF_2013)
    assert [s.name for s in specs] == list(ts.CHECK_NAMES)
    assert all(s.blocking and s.partitions_def == DAYS_OF_2013 and s.description for s in specs)


def test_column_schema_lists_types_and_descriptions():
    metadata = ts.column_schema_metadata(SCHEMA)
    columns = metadata["dagster/column_schema"].schema.columns
    assert [(c.name, c.type, c.description) for c in columns] == [
        ("visit_date", "date", "day of the visit"),
        ("site", "string", "where"),
        ("minutes", "Int64", "how long"),
        ("score", "Float64", None),
    ]
    assert columns[2].constraints.other == ["in_range(0, 600)"] and columns[2].constraints.nullable
    assert ts.column_types(SCHEMA) == {"visit_date": "date", "site": "string", "minutes": "Int64", "score": "Float64"}


def test_a_schema_without_a_name_is_refused():
    with pytest.raises(ValueError, match="needs a name"):
        ts.dagster_type(pa.DataFrameSchema({"n": pa.Column("Int64")}))


def typed_asset(value: pd.DataFrame, metadata: dict | None = None, **kwargs):
    @asset(key=KEY, dagster_type=ts.dagster_type(SCHEMA), metadata={**ts.column_schema_metadata(SCHEMA), **(metadata or {})}, **kwargs)
    def visits() -> Output:
        return Output(value, metadata=ts.type_check_metadata(SCHEMA, value))

    return visits


def test_the_dagster_type_records_its_check_on_the_step_output():
    result = materialize_to_memory([typed_asset(frame())])
    assert result.success
    [output] = [e for e in result.all_events if e.is_successful_output]
    check = output.step_output_data.type_check_data
    assert check.success and check.description == "3 rows match schematest_visits"
    [materialization] = result.asset_materializations_for_node("schematest__visits")
    assert materialization.metadata[ts.TYPE_CHECK_METADATA].value == "passed: 3 rows match schematest_visits"


def test_a_frame_breaking_its_type_fails_the_step_with_the_violation():
    bad = frame(minutes=pd.array([10, 5000, 601], dtype="Int64"))
    result = materialize_to_memory([typed_asset(bad)], raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert 'expected type "schematest_visits"' in message
    assert "column 'minutes' breaks in_range(0, 600) in 2 row(s), e.g. 5000, 601" in message
    assert not result.get_asset_materialization_events()


@pytest.mark.postgres
def test_a_frame_breaking_its_type_writes_nothing_to_the_warehouse(clean_warehouse, sql_rows):
    """Through the real IO manager: the first good load creates the table and its day; a later
    bad frame for the same day (which would replace that day) fails and leaves it as it was."""
    resources = {"io_manager": PostgresPandasIOManager(warehouse=clean_warehouse)}
    partitioned = {"partitions_def": DAYS_OF_2013, "metadata": {PARTITION_EXPR_METADATA: "visit_date"}}
    good = frame().iloc[:2].reset_index(drop=True)
    with DagsterInstance.ephemeral() as instance:
        assert materialize([typed_asset(good, **partitioned)], resources=resources, partition_key="2013-01-01", instance=instance).success
        bad = good.assign(site=pd.array(["A", "Q"], dtype="string"))
        result = materialize([typed_asset(bad, **partitioned)], resources=resources, partition_key="2013-01-01",
                             instance=instance, raise_on_error=False)
    assert not result.success
    assert "column 'site' breaks isin(['A', 'B']) in 1 row(s), e.g. 'Q'" in result.get_step_failure_events()[0].step_failure_data.error.message
    assert sql_rows(clean_warehouse, "SELECT site, minutes FROM schematest.visits ORDER BY site") == [("A", 10), ("B", None)]

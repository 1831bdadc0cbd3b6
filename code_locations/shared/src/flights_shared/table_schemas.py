"""One pandera schema per table, and everything Dagster needs from it: the asset's Dagster type,
the column schema the UI shows, and the blocking checks. A rule is written once, in the schema;
the type check, the checks and the failure messages are all derived from that one definition.

    FLIGHTS_SCHEMA = pa.DataFrameSchema({...}, name="ingestion_flights", unique=[...], strict=True)

    @asset(dagster_type=dagster_type(FLIGHTS_SCHEMA), metadata=column_schema_metadata(FLIGHTS_SCHEMA),
           check_specs=check_specs(FLIGHTS, FLIGHTS_SCHEMA))
    def flights(...):
        results = check_results(FLIGHTS, FLIGHTS_SCHEMA, frame)
        ...

Each violation names the column, the rule (pandera's own name for it, e.g. `in_range(0, 300)`,
`not_nullable`) and a sample of the offending values, so a refused frame says what to fix."""

import datetime as dt
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    BetaWarning,
    DagsterType,
    MetadataValue,
    PartitionsDefinition,
    TableColumn,
    TableSchema,
    TypeCheck,
)
from dagster_pandera import pandera_schema_to_dagster_type
from pandera.errors import SchemaErrorReason

# The blocking checks a schema yields, one per kind of rule. A schema gets a check only for the
# kinds of rule it declares (no unique columns, no duplicates check: it could never fail).
REQUIRED_COLUMNS = "required_columns"
NO_NULL_KEYS = "no_null_keys"
NO_DUPLICATES = "no_duplicate_rows"
VALUES_IN_RANGE = "values_in_physical_range"
CHECK_NAMES = (REQUIRED_COLUMNS, NO_NULL_KEYS, NO_DUPLICATES, VALUES_IN_RANGE)
CHECK_DESCRIPTIONS = {
    REQUIRED_COLUMNS: "the frame has exactly the table's columns, each of its declared type",
    NO_NULL_KEYS: "no key column (declared not nullable) is empty",
    NO_DUPLICATES: "no row is delivered twice (the table's unique columns)",
    VALUES_IN_RANGE: "values are possible: within the ranges and sets the schema declares",
}
_CHECK_OF_REASON = {
    SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME: REQUIRED_COLUMNS,
    SchemaErrorReason.COLUMN_NOT_IN_SCHEMA: REQUIRED_COLUMNS,
    SchemaErrorReason.COLUMN_NOT_ORDERED: REQUIRED_COLUMNS,
    SchemaErrorReason.DUPLICATE_COLUMN_LABELS: REQUIRED_COLUMNS,
    SchemaErrorReason.WRONG_DATATYPE: REQUIRED_COLUMNS,
    SchemaErrorReason.DATATYPE_COERCION: REQUIRED_COLUMNS,
    SchemaErrorReason.SERIES_CONTAINS_NULLS: NO_NULL_KEYS,
    SchemaErrorReason.DUPLICATES: NO_DUPLICATES,
    SchemaErrorReason.SERIES_CONTAINS_DUPLICATES: NO_DUPLICATES,
}
SAMPLE_SIZE = 5
# Dagster's standard key for a table's columns (TableMetadataSet.column_schema, not exported).
COLUMN_SCHEMA_METADATA = "dagster/column_schema"
# Output metadata key with the verdict of the schema on the materialized frame.
TYPE_CHECK_METADATA = "type_check"


@dataclass(frozen=True)
class Violation:
    """One rule of the schema broken by some rows of a frame."""

    check_name: str
    columns: tuple[str, ...]
    rule: str
    rows: int  # offending rows (0 for a column-level problem: missing, extra, wrong type)
    sample: tuple  # up to SAMPLE_SIZE distinct offending values (key tuples for duplicates)
    more: bool = False  # more distinct offending values than the sample shows

    def __str__(self) -> str:
        one = len(self.columns) == 1
        where = f"column {self.columns[0]!r}" if one else f"columns {list(self.columns)}"
        if self.rule == "column_in_dataframe":
            return f"{where} is missing"
        if self.rule == "column_in_schema":
            return f"{where} is not in the schema"
        if not self.rows:
            return f"{where} {'breaks' if one else 'break'} {self.rule}: got {', '.join(map(str, self.sample))}"
        shown = ", ".join(map(_shown, self.sample)) + (", ..." if self.more else "")
        return f"{where} {'breaks' if one else 'break'} {self.rule} in {self.rows} row(s), e.g. {shown}"


def _shown(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_shown, value)) + ")"
    if value is None or pd.isna(value):
        return "<null>"
    if isinstance(value, (dt.date, pd.Timestamp)):
        return str(value)
    return repr(value)


def _plain(value):
    """numpy/pandas scalars as Python values, so samples print and serialize plainly."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes, pd.Timestamp)) else value


def _rule(error: pa_errors.SchemaError) -> str:
    check = error.check
    return getattr(check, "error", None) or getattr(check, "name", None) or str(check)


def _violation(schema: pa.DataFrameSchema, error: pa_errors.SchemaError) -> Violation:
    check_name = _CHECK_OF_REASON.get(error.reason_code, VALUES_IN_RANGE)
    cases = error.failure_cases
    rule = _rule(error)
    if not isinstance(cases, pd.DataFrame):  # column-level: the case is a column name or a dtype
        if error.reason_code in (SchemaErrorReason.COLUMN_NOT_IN_DATAFRAME, SchemaErrorReason.COLUMN_NOT_IN_SCHEMA):
            return Violation(check_name, (str(cases),), rule, 0, ())
        column = getattr(error.schema, "name", None) or schema.name
        if error.reason_code == SchemaErrorReason.WRONG_DATATYPE:
            rule = f"dtype {_type_name(getattr(error.schema, 'dtype', rule))}"
        return Violation(check_name, (str(column),), rule, 0, (_plain(cases),))
    if "column" in cases.columns and cases["column"].nunique() > 1:  # unique across columns
        wide = cases.pivot_table(index="index", columns="column", values="failure_case", aggfunc="first")
        order = schema.unique if error.reason_code == SchemaErrorReason.DUPLICATES and schema.unique else wide.columns
        columns = tuple(str(c) for c in order if c in wide.columns)
        keys = wide[list(columns)].drop_duplicates()
        sample = tuple(tuple(_plain(v) for v in row) for row in keys.head(SAMPLE_SIZE).itertuples(index=False))
        return Violation(check_name, columns, rule, len(wide), sample, len(keys) > SAMPLE_SIZE)
    column = getattr(error.schema, "name", None) or (cases["column"].iloc[0] if "column" in cases else schema.name)
    rows = cases["index"].nunique() if "index" in cases else len(cases)
    values = cases["failure_case"].drop_duplicates()
    sample = tuple(_plain(v) for v in values.head(SAMPLE_SIZE))
    return Violation(check_name, (str(column),), rule, int(rows), sample, len(values) > SAMPLE_SIZE)


def violations(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[Violation]:
    """Every rule of `schema` that `frame` breaks (all of them, not just the first)."""
    try:
        schema.validate(frame, lazy=True, inplace=True)  # inplace: no copy, nothing is coerced
    except pa_errors.SchemaErrors as errors:
        return [_violation(schema, error) for error in errors.schema_errors]
    return []


def describe(violations: Sequence[Violation]) -> str:
    return "; ".join(map(str, violations))


def _failure_sample(found: Sequence[Violation]) -> MetadataValue:
    rows = [
        {"check": v.check_name, "columns": ", ".join(v.columns), "rule": v.rule, "rows": v.rows,
         "sample": ", ".join(map(_shown, v.sample))}
        for v in found
    ]  # fmt: skip
    return MetadataValue.json(rows)


def type_check(schema: pa.DataFrameSchema, value: object) -> TypeCheck:
    """What the Dagster type of `schema` reports on an output (also usable on its own)."""
    if not isinstance(value, pd.DataFrame):
        return TypeCheck(False, f"expected a pandas DataFrame for {schema.name}, got {type(value).__name__}")
    found = violations(schema, value)
    if found:
        return TypeCheck(
            False,
            f"{schema.name}: {describe(found)}",
            metadata={"failed_rules": len(found), "failures": _failure_sample(found)},
        )
    return TypeCheck(True, f"{len(value)} rows match {schema.name}", metadata={"rows": len(value)})


def _pandera_dagster_type(schema: pa.DataFrameSchema) -> DagsterType:
    with warnings.catch_warnings():  # beta in dagster-pandera 0.29; pinned in the lock
        warnings.simplefilter("ignore", BetaWarning)
        return pandera_schema_to_dagster_type(schema)


def dagster_type(schema: pa.DataFrameSchema) -> DagsterType:
    """The asset's Dagster type: dagster-pandera's (name, description, column schema), with a type
    check whose failure names the column, the rule and a sample of the offending values (the
    stock one prints pandera's whole error report)."""
    if not schema.name:
        raise ValueError("a table schema needs a name: it becomes the Dagster type's name")
    base = _pandera_dagster_type(schema)
    return DagsterType(
        type_check_fn=lambda _context, value: type_check(schema, value),
        name=base.unique_name,
        description=base.description,
        metadata={"schema": MetadataValue.table_schema(column_schema(schema))},
        typing_type=pd.DataFrame,
    )


def _type_name(dtype) -> str:
    """pandas' name for a column type, without the storage suffix (string[python] -> string)."""
    return str(dtype).split("[python]")[0].split("[pyarrow]")[0]


def column_schema(schema: pa.DataFrameSchema) -> TableSchema:
    """The table's columns with their types, descriptions and constraints, as the UI lists them."""
    base = _pandera_dagster_type(schema).metadata["schema"].schema
    types = {name: _type_name(column.dtype) for name, column in schema.columns.items()}
    return TableSchema(
        columns=[
            TableColumn(name=c.name, type=types.get(c.name, c.type), description=c.description, constraints=c.constraints)
            for c in base.columns
        ],
        constraints=base.constraints,
    )


def column_schema_metadata(schema: pa.DataFrameSchema) -> dict:
    """Definition metadata for the asset (`dagster/column_schema`): the UI's columns table."""
    return {COLUMN_SCHEMA_METADATA: MetadataValue.table_schema(column_schema(schema))}


def column_types(schema: pa.DataFrameSchema) -> dict[str, str]:
    """Column name -> pandas type name, for code that types a frame to fit the schema."""
    return {name: _type_name(column.dtype) for name, column in schema.columns.items()}


def declared_checks(schema: pa.DataFrameSchema) -> list[str]:
    """The check names this schema has rules for, in CHECK_NAMES order."""
    columns = schema.columns.values()
    declared = {
        REQUIRED_COLUMNS: True,
        NO_NULL_KEYS: any(not c.nullable for c in columns),
        NO_DUPLICATES: bool(schema.unique) or any(c.unique for c in columns),
        VALUES_IN_RANGE: bool(schema.checks) or any(c.checks for c in columns),
    }
    return [name for name in CHECK_NAMES if declared[name]]


def check_specs(
    asset_key: AssetKey, schema: pa.DataFrameSchema, partitions_def: PartitionsDefinition | None = None
) -> list[AssetCheckSpec]:
    """Blocking check specs of an asset, one per kind of rule its schema declares; partitioned
    like the asset, so a failed day holds back only that day downstream."""
    return [
        AssetCheckSpec(name, asset=asset_key, blocking=True, description=CHECK_DESCRIPTIONS[name], partitions_def=partitions_def)
        for name in declared_checks(schema)
    ]


def check_results(asset_key: AssetKey, schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[AssetCheckResult]:
    """One result per declared check; a failed one describes every violation of its kind."""
    declared = declared_checks(schema)
    # A kind of violation the schema has no check for (none of pandera's reasons maps there
    # today) is reported under required_columns rather than dropped.
    found = [v if v.check_name in declared else replace(v, check_name=REQUIRED_COLUMNS) for v in violations(schema, frame)]
    results = []
    for name in declared:
        mine = [v for v in found if v.check_name == name]
        metadata: dict = {"failing_rows": sum(v.rows for v in mine)}
        if name == REQUIRED_COLUMNS:
            metadata["missing_columns"] = ", ".join(v.columns[0] for v in mine if v.rule == "column_in_dataframe")
        if mine:
            metadata["failures"] = _failure_sample(mine)
        results.append(
            AssetCheckResult(
                asset_key=asset_key,
                check_name=name,
                passed=not mine,
                severity=AssetCheckSeverity.ERROR,
                description=describe(mine) or None,
                metadata=metadata,
            )
        )
    return results


def failed_result(asset_key: AssetKey, check_name: str, description: str, metadata: Mapping | None = None) -> AssetCheckResult:
    """A failed check found before there is a frame (e.g. a file that lacks a column)."""
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata=dict(metadata or {}),
    )


def type_check_metadata(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> dict:
    """Output metadata recording the schema's verdict on the frame being materialized, so each
    materialization in the UI says it was checked against which schema (the Dagster type checks
    the same frame again on output and fails the step, before anything is written, if it breaks)."""
    found = violations(schema, frame)
    verdict = f"failed: {describe(found)}" if found else f"passed: {len(frame)} rows match {schema.name}"
    return {TYPE_CHECK_METADATA: verdict, "dagster_type": schema.name}

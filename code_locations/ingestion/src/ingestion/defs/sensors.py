"""The daemon's eye on the landing zone: a run for each day whose flights or weather file landed.
The cursor lists the dataset/day files already requested, so a restart neither skips nor repeats a
day; run keys make a repeated request a no-op even if a cursor were lost."""

import json

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from flights_shared.asset_keys import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER
from flights_shared.partitions import DAYS_OF_2013

from ingestion.defs.jobs import ingest_landed_day
from ingestion.defs.landing_zone import LandingZone

DATASET_KEYS = {"flights": FLIGHTS, "weather": WEATHER}

# Bounds one tick's work; the rest follows on the next tick.
MAX_RUNS_PER_TICK = 50


def decode_cursor(cursor: str | None) -> set[str]:
    if not cursor:
        return set()
    try:
        days = json.loads(cursor)
    except json.JSONDecodeError as exc:
        raise ValueError(f"landing sensor cursor is not JSON: {cursor[:80]!r}") from exc
    if not isinstance(days, list) or not all(isinstance(day, str) for day in days):
        raise ValueError(
            f'landing sensor cursor must be a JSON list of "dataset/YYYY-MM-DD" strings, got {cursor[:80]!r}'
        )
    return set(days)


def encode_cursor(days: set[str]) -> str:
    return json.dumps(sorted(days), separators=(",", ":"))


@sensor(
    job=ingest_landed_day,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a run for every landed day file of flights and weather.",
)
def landing_zone_sensor(context: SensorEvaluationContext, landing_zone: LandingZone):
    """Days whose files landed in the same tick share one run; each dataset/day is requested once."""
    requested = decode_cursor(context.cursor)
    valid_keys = set(DAYS_OF_2013.get_partition_keys())
    new: dict[str, list[str]] = {}
    outside: set[str] = set()
    for dataset in DATASET_KEYS:
        for day in landing_zone.days_available(dataset):
            key = day.isoformat()
            if key not in valid_keys:
                outside.add(f"{dataset}/{key}")
            elif f"{dataset}/{key}" not in requested:
                new.setdefault(key, []).append(dataset)
    if outside:
        context.log.warning(f"ignoring landed file(s) outside 2013: {sorted(outside)[:10]}")
    if not new:
        return SkipReason(f"no new landed file ({len(requested)} already requested)")
    batch = sorted(new)[:MAX_RUNS_PER_TICK]
    requests = [
        RunRequest(
            run_key=f"{'+'.join(new[day])}-{day}",
            partition_key=day,
            asset_selection=[DATASET_KEYS[dataset] for dataset in new[day]],
        )
        for day in batch
    ]
    return SensorResult(
        run_requests=requests,
        cursor=encode_cursor(requested | {f"{ds}/{day}" for day in batch for ds in new[day]}),
    )


# Reference tables are loaded as soon as the location first runs, then kept fresh by the schedule.
reference_automation = AutomationConditionSensorDefinition(
    "ingestion_reference_automation",
    target=AssetSelection.assets(AIRLINES, AIRPORTS, PLANES),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
)

"""Quality rules for landed data, evaluated on the typed frame *before* it is written.

They run inside the asset (inline, blocking check specs): a failed rule records a failed check
in the UI and fails the step, so the warehouse keeps what it had and nothing downstream runs."""

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from flights_shared.partitions import DAYS_OF_2013

REQUIRED_COLUMNS = "required_columns"
NO_NULL_KEYS = "no_null_keys"
NO_DUPLICATES = "no_duplicate_rows"
VALUES_IN_RANGE = "values_in_physical_range"
CHECK_NAMES = (REQUIRED_COLUMNS, NO_NULL_KEYS, NO_DUPLICATES, VALUES_IN_RANGE)


@dataclass(frozen=True)
class Rules:
    """What makes one dataset's rows acceptable."""

    keys: Sequence[str]
    unique: Sequence[str]
    ranges: dict[str, tuple[float, float]]
    allowed: dict[str, frozenset[str]]


NYC_AIRPORTS = frozenset({"EWR", "JFK", "LGA"})

FLIGHT_RULES = Rules(
    keys=("flight_date", "carrier", "flight", "origin", "dest", "sched_dep_time", "time_hour"),
    unique=("flight_date", "carrier", "flight", "origin", "sched_dep_time"),
    ranges={
        # Minutes; the 2013 extremes are -43..1301 (dep) and -86..1272 (arr).
        "dep_delay": (-240, 2880),
        "arr_delay": (-240, 2880),
        "dep_time": (0, 2400),
        "arr_time": (0, 2400),
        "sched_dep_time": (0, 2359),
        "sched_arr_time": (0, 2359),
        "air_time": (1, 1200),
        "distance": (1, 10000),
        "flight": (1, 9999),
    },
    allowed={"origin": NYC_AIRPORTS},
)

WEATHER_RULES = Rules(
    keys=("obs_date", "origin", "time_hour"),
    unique=("origin", "time_hour"),
    ranges={
        "temp": (-60, 130),  # Fahrenheit
        "dewp": (-80, 100),
        "humid": (0, 100),
        "wind_dir": (0, 360),
        # mph. The source has one impossible reading, 1048 mph at EWR on 2013-02-12 03:00:
        # that day's weather is held back by this check, by design.
        "wind_speed": (0, 300),
        "wind_gust": (0, 300),
        "precip": (0, 20),  # inches per hour
        "pressure": (900, 1100),  # millibar
        "visib": (0, 10),  # miles
    },
    allowed={"origin": NYC_AIRPORTS},
)


def check_specs(asset_key: AssetKey) -> list[AssetCheckSpec]:
    descriptions = {
        REQUIRED_COLUMNS: "the landed file has every column the warehouse table needs",
        NO_NULL_KEYS: "no key column is empty",
        NO_DUPLICATES: "no row is delivered twice",
        VALUES_IN_RANGE: "values are physically possible",
    }
    return [
        # Partitioned like the asset: a failed day holds back only that day downstream.
        AssetCheckSpec(
            name,
            asset=asset_key,
            blocking=True,
            description=descriptions[name],
            partitions_def=DAYS_OF_2013,
        )
        for name in CHECK_NAMES
    ]


def missing_columns_result(asset_key: AssetKey, missing: Sequence[str], description: str) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=REQUIRED_COLUMNS,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={"missing_columns": ", ".join(missing)},
    )


def evaluate(asset_key: AssetKey, frame: pd.DataFrame, rules: Rules) -> list[AssetCheckResult]:
    """One result per check; failing ones say which column and how many rows."""
    results = [AssetCheckResult(asset_key=asset_key, check_name=REQUIRED_COLUMNS, passed=True)]

    null_counts = {c: int(frame[c].isna().sum()) for c in rules.keys}
    bad_nulls = {c: n for c, n in null_counts.items() if n}
    results.append(
        AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_NULL_KEYS,
            passed=not bad_nulls,
            description=f"empty key values: {bad_nulls}" if bad_nulls else None,
            metadata={"null_keys": sum(bad_nulls.values())},
        )
    )

    duplicated = frame.duplicated(list(rules.unique), keep=False)
    results.append(
        AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_DUPLICATES,
            passed=not duplicated.any(),
            description=(
                f"{int(duplicated.sum())} rows share {list(rules.unique)} with another row"
                if duplicated.any()
                else None
            ),
            metadata={"duplicate_rows": int(duplicated.sum())},
        )
    )

    out_of_range: dict[str, int] = {}
    for column, (low, high) in rules.ranges.items():
        values = frame[column].dropna()
        count = int(((values < low) | (values > high)).sum())
        if count:
            out_of_range[column] = count
    for column, allowed in rules.allowed.items():
        count = int((~frame[column].dropna().isin(allowed)).sum())
        if count:
            out_of_range[column] = count
    results.append(
        AssetCheckResult(
            asset_key=asset_key,
            check_name=VALUES_IN_RANGE,
            passed=not out_of_range,
            description=f"rows outside physical ranges: {out_of_range}" if out_of_range else None,
            metadata={"rows_out_of_range": sum(out_of_range.values())},
        )
    )
    return results

